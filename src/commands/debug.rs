//! LOTTERY.DEBUG, for tests only: CLOCK pins the module clock, or returns it to the real one;
//! PANIC panics inside the command, to show that the boundary guard (`crate::entry`) turns it
//! into an error reply and a log line rather than an aborted server. Refused unless the module
//! was loaded with `debug-clock yes`. The arguments are parsed by `parse::debug_args`.

use super::{aerr, err};
use crate::{clock, parse};
use redis_module::{Context, RedisResult, RedisString, RedisValue};

pub fn debug(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !clock::debug_enabled() {
        return Err(err(
            "LOTTERY.DEBUG is disabled (load the module with debug-clock yes)",
        ));
    }
    let rest: Vec<&[u8]> = args.iter().skip(1).map(|a| a.as_slice()).collect();
    match parse::debug_args(&rest).map_err(aerr)? {
        parse::Debug::Panic => panic!("LOTTERY.DEBUG PANIC asked for a panic"),
        parse::Debug::Clock(at) => clock::pin(at),
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}
