//! LOTTERY.CONFIGURE key [PRIZE id weight stock]... [NOTHING w] [COOLDOWN ms] [DAILY n|INF]
//! [MAXWINS n|INF] [DAYOFFSET min] [WINDOW start end] [SOLDOUT LOSE|REDRAW|FALLBACK id]
//! [STREAM key] [IDEMPOTENCY ms]
//!
//! Creates the campaign, or changes it atomically while it runs. Any error changes nothing
//! and never creates the key. A campaign key is at most `MAX_KEY_LEN` bytes; a STREAM key
//! must be in the key's slot and writable by the caller (ACL). Replicated as an effect
//! carrying the options as given (plus, on creation, the random hash keys replicas must
//! share), so the effect is as large as the command, whatever the campaign's history.

use super::{err, perr};
use crate::datatype::LOTTERY_TYPE;
use crate::engine::campaign::Campaign;
use crate::engine::effect::Effect;
use crate::engine::keyslot;
use crate::engine::limits::MAX_KEY_LEN;
use crate::{acl, metrics, notify, parse, replication, rng};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

pub fn configure(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let key = &args[1];
    if key.as_slice().len() > MAX_KEY_LEN {
        return Err(err(format!(
            "campaign key too long: at most {MAX_KEY_LEN} bytes"
        )));
    }
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
        acl::check_write(ctx.ctx, s, "STREAM key").map_err(RedisError::String)?;
    }
    let given = || args[2..].iter().map(|a| a.as_slice().to_vec()).collect();
    let k = ctx.open_key_writable(key);
    let effect = match k.get_value::<Campaign>(&LOTTERY_TYPE) {
        Err(_) => return Err(RedisError::WrongType),
        Ok(Some(c)) => {
            c.configure(&change).map_err(|e| err(e.to_string()))?;
            Effect::Configure {
                created: None,
                args: given(),
            }
        }
        Ok(None) => {
            let default = keyslot::default_stream(key.as_slice());
            if change.stream.is_none() && keyslot::key_slot(&default) != slot {
                return Err(err(
                    "this key has no default wins stream in its slot ('}' outside a hash tag): give STREAM",
                ));
            }
            let seed = rng::seed().ok_or_else(|| err("the OS gave no randomness"))?;
            let c =
                Campaign::create(&change, seed, default.clone()).map_err(|e| err(e.to_string()))?;
            let effect = Effect::Configure {
                created: Some((seed, default)),
                args: given(),
            };
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
