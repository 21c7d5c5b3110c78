//! LOTTERY.DRAIN key [LAST]
//!
//! Hands out the sold counts accumulated since the previous DRAIN and resets them:
//! `[seq, [prize-id, count, ...]]`. `LAST` repeats the previous batch unchanged, so a writer
//! that crashed mid-write can redo it idempotently, keyed by seq.

use super::{arg, bulk, campaign, campaign_mut, err, int};
use crate::parse;
use crate::replication;
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

fn batch_value(seq: u64, batch: &[(Vec<u8>, u64)]) -> RedisValue {
    let mut items = Vec::with_capacity(batch.len() * 2);
    for (id, n) in batch {
        items.push(bulk(id));
        items.push(int(*n));
    }
    RedisValue::Array(vec![int(seq), RedisValue::Array(items)])
}

pub fn drain(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    match args.len() {
        2 => {
            let c = campaign_mut(ctx, &args[1])?;
            let (seq, batch, effect) = c.drain();
            replication::replicate(ctx, &args[1], &effect);
            Ok(batch_value(seq, &batch))
        }
        3 if arg(&args, 2).eq_ignore_ascii_case(b"LAST") => {
            let c = campaign(ctx, &args[1])?;
            Ok(batch_value(c.drain_seq(), c.last_batch()))
        }
        3 => Err(err(format!(
            "unknown option '{}'",
            parse::shown(arg(&args, 2))
        ))),
        _ => Err(RedisError::WrongArity),
    }
}
