//! LOTTERY.PAUSE key / LOTTERY.RESUME key
//!
//! While paused every draw gets PAUSED and consumes nothing. Reply: OK.

use super::campaign_mut;
use crate::{notify, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

fn set(ctx: &Context, args: Vec<RedisString>, paused: bool) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let c = campaign_mut(ctx, &args[1])?;
    let effect = c.set_paused(paused);
    replication::replicate(ctx, &args[1], &effect);
    let event = if paused {
        notify::PAUSE
    } else {
        notify::RESUME
    };
    notify::event(ctx.ctx, event, args[1].inner);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn pause(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    set(ctx, args, true)
}

pub fn resume(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    set(ctx, args, false)
}
