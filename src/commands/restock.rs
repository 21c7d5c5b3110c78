//! LOTTERY.RESTOCK key prize delta
//!
//! Adds delta (may be negative) to a prize's remaining stock. Reply: the new stock. An
//! unknown prize, an INF stock, or a result below zero is an error and changes nothing.

use super::{arg, campaign_mut, err, int, perr};
use crate::{notify, parse, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString};

pub fn restock(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 4 {
        return Err(RedisError::WrongArity);
    }
    let delta = parse::i64_arg(arg(&args, 3), "delta", -i64::MAX, i64::MAX).map_err(perr)?;
    let c = campaign_mut(ctx, &args[1])?;
    let (stock, effect) = c
        .restock(arg(&args, 2), delta)
        .map_err(|e| err(e.to_string()))?;
    replication::replicate(ctx, &args[1], &effect);
    let before = u64::try_from(i128::from(stock) - i128::from(delta)).ok();
    notify::restocked(ctx.ctx, args[1].inner, before, Some(stock));
    Ok(int(stock))
}
