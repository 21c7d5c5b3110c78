//! LOTTERY.PAUSE / LOTTERY.RESUME: while paused every draw gets PAUSED and consumes nothing.
//! Reply: OK. Described in `PAUSE` and `RESUME` below.

use super::{campaign_mut, write_key};
use crate::command_docs::{Arg, Command, RW, UPDATE};
use crate::ffi::Str;
use crate::{notify, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// LOTTERY.PAUSE's description: registration, COMMAND DOCS and docs/commands.md.
pub static PAUSE: Command = Command {
    name: c"lottery.pause",
    entry: crate::generic_entry!(PAUSE, pause),
    flags: c"write fast",
    key: Some(RW | UPDATE),
    arity: 2,
    summary: c"Pauses a campaign: every draw gets PAUSED until LOTTERY.RESUME",
    complexity: c"O(1)",
    args: &[Arg::key()],
};

/// LOTTERY.RESUME's description: registration, COMMAND DOCS and docs/commands.md.
pub static RESUME: Command = Command {
    name: c"lottery.resume",
    entry: crate::generic_entry!(RESUME, resume),
    flags: c"write fast",
    key: Some(RW | UPDATE),
    arity: 2,
    summary: c"Resumes a paused campaign",
    complexity: c"O(1)",
    args: &[Arg::key()],
};

fn set(ctx: &Context, args: Vec<RedisString>, paused: bool) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let effect = c.set_paused(paused);
    replication::replicate(ctx, &args[1], &effect);
    let event = if paused {
        notify::PAUSE
    } else {
        notify::RESUME
    };
    notify::event(ctx, event, Str::of(&args[1]));
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn pause(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    set(ctx, args, true)
}

pub fn resume(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    set(ctx, args, false)
}
