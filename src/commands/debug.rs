//! LOTTERY.DEBUG CLOCK ms|REAL
//! LOTTERY.DEBUG PANIC
//!
//! For tests only: CLOCK pins the module clock, or returns it to the real one; PANIC panics
//! inside the command, to show that the boundary guard (`crate::entry`) turns it into an
//! error reply and a log line rather than an aborted server. Refused unless the module was
//! loaded with `debug-clock yes`.

use super::{arg, err, perr};
use crate::{clock, parse};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

pub fn debug(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !clock::debug_enabled() {
        return Err(err(
            "LOTTERY.DEBUG is disabled (load the module with debug-clock yes)",
        ));
    }
    if args.len() == 2 && arg(&args, 1).eq_ignore_ascii_case(b"PANIC") {
        panic!("LOTTERY.DEBUG PANIC asked for a panic");
    }
    if args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    if !arg(&args, 1).eq_ignore_ascii_case(b"CLOCK") {
        return Err(err(format!(
            "unknown subcommand '{}'",
            parse::shown(arg(&args, 1))
        )));
    }
    let v = arg(&args, 2);
    if v.eq_ignore_ascii_case(b"REAL") {
        clock::pin(None);
    } else {
        clock::pin(Some(parse::i64_arg(v, "ms", 1, i64::MAX).map_err(perr)?));
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}
