//! LOTTERY.DEBUG, for tests only: CLOCK pins the module clock, or returns it to the real one;
//! PANIC panics inside the command, to show that the boundary guard (`crate::entry`) turns it
//! into an error reply and a log line rather than an aborted server. Refused unless the module
//! was loaded with `debug-clock yes`. The arguments are described in `DEBUG` below and parsed
//! by `parse::debug_args`.

use super::{aerr, err};
use crate::command_docs::{Arg, Command};
use crate::{clock, parse};
use redis_module::{Context, RedisResult, RedisString, RedisValue};

/// LOTTERY.DEBUG's description: registration, COMMAND DOCS and docs/commands.md.
pub static DEBUG: Command = Command {
    name: c"lottery.debug",
    entry: crate::generic_entry!(DEBUG, debug),
    flags: c"admin",
    key: None,
    arity: -2,
    summary: c"Test only (load option debug-clock yes): pins the module clock or returns to the real clock; PANIC shows the panic guard",
    complexity: c"O(1)",
    args: &[Arg::oneof(
        c"subcommand",
        &[
            Arg::block(
                c"clock",
                &[Arg::oneof(
                    c"time",
                    &[Arg::integer(c"ms"), Arg::pure(c"real", c"REAL")],
                )],
            )
            .tok(c"CLOCK"),
            Arg::pure(c"panic", c"PANIC"),
        ],
    )],
};

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
