//! LOTTERY.CONFIGURE key [PRIZE id weight stock]... [NOTHING w] [COOLDOWN ms] [DAILY n|INF]
//! [MAXWINS n|INF] [DAYOFFSET min] [WINDOW start end] [SOLDOUT LOSE|REDRAW|FALLBACK id]
//! [STREAM key] [IDEMPOTENCY ms]
//!
//! Creates the campaign, or changes it atomically while it runs. Any error changes nothing
//! and never creates the key. Replicated as the resulting configuration (an effect), never as
//! the command: creation picks random hash keys that replicas must share.

use super::{err, perr};
use crate::datatype::LOTTERY_TYPE;
use crate::engine::campaign::Campaign;
use crate::engine::effect::Effect;
use crate::engine::{keyslot, persist};
use crate::{metrics, notify, parse, replication, rng};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

pub fn configure(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let key = &args[1];
    let opts: Vec<&[u8]> = args[2..].iter().map(|a| a.as_slice()).collect();
    let change = parse::configure_args(&opts).map_err(perr)?;
    let slot = keyslot::key_slot(key.as_slice());
    if let Some(s) = &change.stream {
        if keyslot::key_slot(s) != slot {
            return Err(RedisError::String(format!(
                "CROSSSLOT STREAM key '{}' hashes to slot {}, the campaign key to slot {slot}",
                parse::shown(s),
                keyslot::key_slot(s)
            )));
        }
        if s.as_slice() == key.as_slice() {
            return Err(err("STREAM key must not be the campaign key itself"));
        }
    }
    let k = ctx.open_key_writable(key);
    let effect = match k.get_value::<Campaign>(&LOTTERY_TYPE) {
        Err(_) => return Err(RedisError::WrongType),
        Ok(Some(c)) => {
            c.configure(&change).map_err(|e| err(e.to_string()))?;
            Effect::Config(persist::encode_meta(c))
        }
        Ok(None) => {
            let default = keyslot::default_stream(key.as_slice());
            if change.stream.is_none() && keyslot::key_slot(&default) != slot {
                return Err(err(
                    "this key has no default wins stream in its slot ('}' outside a hash tag): give STREAM",
                ));
            }
            let seed = rng::seed().ok_or_else(|| err("the OS gave no randomness"))?;
            let c = Campaign::create(&change, seed, default).map_err(|e| err(e.to_string()))?;
            let effect = Effect::Config(persist::encode_meta(&c));
            k.set_value(&LOTTERY_TYPE, c)
                .map_err(|_| err("could not store the campaign"))?;
            metrics::campaign_created();
            effect
        }
    };
    replication::replicate(ctx, key, &effect);
    notify::event(ctx.ctx, notify::CONFIGURE, key.inner);
    Ok(RedisValue::SimpleStringStatic("OK"))
}
