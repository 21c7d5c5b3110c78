//! LOTTERY.APPLY key blob (internal)
//!
//! Applies a write's effects, as replicated by the master or written by an AOF rewrite. It
//! reads no clock and draws nothing. Refused from ordinary clients: only the master link
//! (REPLICATED) and the AOF loader (LOADING) may run it, so no one can forge state with it.
//! It re-propagates itself verbatim, so a replica's own AOF and sub-replicas get it too.

use super::{arg, err, no_campaign};
use crate::datatype::LOTTERY_TYPE;
use crate::engine::campaign::Campaign;
use crate::engine::effect::Effect;
use crate::engine::persist;
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

pub fn apply(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let flags = ctx.get_flags();
    if !flags.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING) {
        return Err(err("LOTTERY.APPLY is internal (replication and AOF only)"));
    }
    if args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    let effect = Effect::decode(arg(&args, 2)).map_err(|e| err(e.to_string()))?;
    let k = ctx.open_key_writable(&args[1]);
    match k.get_value::<Campaign>(&LOTTERY_TYPE) {
        Err(_) => return Err(RedisError::WrongType),
        Ok(Some(c)) => c.apply(&effect).map_err(|e| err(e.to_string()))?,
        Ok(None) => match &effect {
            Effect::Config(meta) => {
                let c = persist::decode_meta(meta).map_err(|e| err(e.to_string()))?;
                k.set_value(&LOTTERY_TYPE, c)
                    .map_err(|_| err("could not store the campaign"))?;
            }
            _ => return Err(no_campaign()),
        },
    }
    ctx.replicate_verbatim();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
