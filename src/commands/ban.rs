//! LOTTERY.BAN key user ms / LOTTERY.UNBAN key user
//!
//! A banned user gets BANNED (with the ms left) until the ban ends. BAN replies OK; UNBAN
//! replies 1 if an active ban was lifted, else 0.

use super::{arg, campaign_mut, int, perr};
use crate::{clock, parse, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

pub fn ban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 4 {
        return Err(RedisError::WrongArity);
    }
    let ms = parse::i64_arg(arg(&args, 3), "ms", 1, i64::MAX).map_err(perr)?;
    let c = campaign_mut(ctx, &args[1])?;
    let until = clock::now_ms().saturating_add(ms);
    let ukey = c.user_key(arg(&args, 2));
    let effect = c.ban(ukey, until);
    replication::replicate(ctx, &args[1], &effect);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn unban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    let c = campaign_mut(ctx, &args[1])?;
    let ukey = c.user_key(arg(&args, 2));
    let (lifted, effect) = c.unban(ukey, clock::now_ms());
    replication::replicate(ctx, &args[1], &effect);
    Ok(int(i64::from(lifted)))
}
