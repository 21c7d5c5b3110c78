//! LOTTERY.DRAW key user [REQID request-id]
//!
//! One draw for one user, atomically: REQID replay, window, pause, ban, MAXWINS, cooldown,
//! daily chances; then one chance is consumed and the alias table picks. A win is appended to
//! the wins stream (XADD, replicated with its concrete ID) before anything changes, so a
//! stream error changes nothing. The effects go to replicas and the AOF as absolute values.
//!
//! Reply: [outcome, prize id|nil, win id|nil, chances left today, ms until the next chance].

use super::{arg, bulk, campaign_mut, err, int, perr, text};
use crate::engine::campaign::{DrawReply, Plan, StreamId};
use crate::{clock, parse, replication, rng};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

pub fn draw(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let reqid = match args.len() {
        3 => None,
        5 if arg(&args, 3).eq_ignore_ascii_case(b"REQID") => {
            Some(parse::reqid_arg(arg(&args, 4)).map_err(perr)?)
        }
        5 => {
            return Err(err(format!(
                "unknown option '{}'",
                parse::shown(arg(&args, 3))
            )))
        }
        _ => return Err(RedisError::WrongArity),
    };
    let key = &args[1];
    let user = arg(&args, 2);
    let c = campaign_mut(ctx, key)?;
    let now = clock::now_ms();
    let ukey = c.user_key(user);
    let rkey = reqid.map(|r| c.request_key(ukey, r));
    let plan = rng::with(|g| c.plan_draw(ukey, rkey, now, g))
        .ok_or_else(|| err("the OS gave no randomness"))?;
    let (reply, effect) = match plan {
        Plan::Replay(r) | Plan::Reject(r) => (r, c.count(&plan, now)),
        Plan::Pass { prize, seq } => {
            let win_id = match prize.and_then(|i| c.prizes.get(i)) {
                None => None,
                Some(p) => {
                    let ts = now.to_string();
                    let seq = seq.to_string();
                    let mut fields: Vec<&[u8]> = vec![
                        b"user",
                        user,
                        b"prize",
                        &p.id,
                        b"ts",
                        ts.as_bytes(),
                        b"draw",
                        seq.as_bytes(),
                    ];
                    if let Some(r) = reqid {
                        fields.push(b"reqid");
                        fields.push(r);
                    }
                    let id = replication::xadd_win(ctx, &c.rules.stream, &fields)
                        .map_err(RedisError::String)?;
                    StreamId::parse(&id)
                }
            };
            c.commit_draw(ukey, rkey, now, prize, win_id)
        }
    };
    replication::replicate(ctx, key, &effect);
    Ok(reply_value(c, &reply))
}

fn reply_value(c: &crate::engine::campaign::Campaign, r: &DrawReply) -> RedisValue {
    RedisValue::Array(vec![
        text(r.outcome.name()),
        c.name(r.prize).map_or(RedisValue::Null, bulk),
        r.win_id.map_or(RedisValue::Null, |w| bulk(&w.to_bytes())),
        int(r.chances_left),
        int(r.wait_ms),
    ])
}
