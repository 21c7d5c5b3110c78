//! LOTTERY.DRAW: one draw for one user, atomically: REQID replay, window, pause, client
//! (penalty box, CLIENTLIMIT), ban, MAXWINS, cooldown, daily chances, ADMIT, RATE; then one
//! chance is consumed and the alias table picks (paced prizes held back while ahead of their
//! pace). A win is appended to the wins stream before anything changes, so a stream error
//! changes nothing; the entry travels to replicas and the AOF inside the draw's effect, one
//! replicated command per draw. The effects go as absolute values; a refusal that changed
//! only a statistics counter goes out with the event loop iteration's batch (`stats_sync`).
//!
//! Reply: [outcome, prize id|nil, win id|nil, chances left today, ms until the next chance],
//! and a sixth element, the code, for a win of a code prize (a REQID replay of one too).
//! The arguments are described in `DRAW` below; the options are parsed by
//! `parse::draw_options`.
//!
//! This is the hot path, so its entry point is a direct one (`entry::run_direct`): it gets the
//! arguments as Redis holds them and replies itself, without the per-call argument vector,
//! reply tree and string copies of the generic command wrapper.

use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::engine::campaign::{Campaign, DrawReply, Plan};
use crate::engine::draw::DrawKey;
use crate::engine::effect::{Effect, WinEntry};
use crate::entry::{self, Failure};
use crate::ffi::{Key, KeyError, Str};
use crate::{clock, parse, replication, rng, stats_sync, verify_log};
use redis_module::Context;

/// LOTTERY.DRAW's description: registration, COMMAND DOCS and docs/commands.md. Its entry
/// point is a direct one (see above).
pub static DRAW: Command = Command {
    name: c"lottery.draw",
    entry: crate::direct_entry!(DRAW, draw),
    flags: c"write deny-oom fast",
    key: Some(RW | ACCESS | UPDATE),
    arity: -3,
    summary: c"Draws once for a user: WIN, LOSE or the rule that refused the draw (COOLDOWN, QUOTA, BUSY, RETRY, LIMITED, ...)",
    complexity: c"O(1); a guaranteed draw (GUARANTEE) O(G), G the prizes it may give; a REDRAW past a locked prize (AFTER) at worst O(N), N the prizes",
    args: &[
        Arg::key(),
        Arg::string(c"user"),
        Arg::string(c"request-id").tok(c"REQID").opt(),
        Arg::string(c"client-id").tok(c"CLIENT").opt(),
        Arg::string(c"tier").tok(c"TIER").opt(),
    ],
};

fn fail(m: impl Into<String>) -> Failure {
    Failure::Msg(m.into())
}

fn draw(ctx: &Context, args: &[Str<'_>]) -> Result<(), Failure> {
    let (key_arg, user_arg, opts) = match args {
        [_, k, u, rest @ ..] if rest.len() <= 6 => (*k, *u, rest),
        _ => return Err(Failure::Arity),
    };
    // The options as bytes, on the stack (at most 6 of them).
    let mut bytes: [&[u8]; 6] = [&[]; 6];
    for (b, &a) in bytes.iter_mut().zip(opts) {
        *b = a.bytes();
    }
    let o = parse::draw_options(&bytes[..opts.len()]).map_err(|e| match e {
        parse::ArgError::Arity => Failure::Arity,
        parse::ArgError::Invalid(m) => fail(format!("ERR {m}")),
    })?;
    // REQID: its checked bytes, and the raw argument (copied into the stream entry).
    let reqid = o.reqid.map(|(_, r)| r);
    let reqid_arg = o.reqid.map(|(i, _)| opts[i]);
    let client = o.client;
    let user = user_arg.bytes();
    let mut key = Key::write(ctx, key_arg);
    let c = match key.campaign_mut() {
        Ok(Some(c)) => c,
        Ok(None) => return Err(fail("ERR no such campaign")),
        Err(KeyError::WrongType) => {
            return Err(fail(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ))
        }
        Err(KeyError::Unavailable) => return Err(fail("ERR module API unavailable")),
    };
    let now = clock::now_ms();
    let ukey = c.user_key(user);
    let rkey = reqid.map(|r| c.request_key(ukey, r));
    let ckey = client.map(|cl| c.client_key(cl));
    let tier = match o.tier {
        Some(t) => match c.rules().tier_index(t) {
            Some(i) => Some(i),
            // A REQID replay comes first, whatever the tier: the tier the request drew on
            // may have been removed since, and the retry must still get its answer.
            None if rkey
                .is_some_and(|k| c.reqs().get(k, now, c.rules().idempotency_ms).is_some()) =>
            {
                None
            }
            None => return Err(fail(format!("ERR no such tier '{}'", parse::shown(t)))),
        },
        None => None,
    };
    // A VERIFIABLE campaign picks from its seed's words (`verify_log` appends its entries);
    // a revealed seed is replaced first, with a fresh one, by a draw that passes.
    let (plan, picked, fresh) = match c.verifiable().map(|v| v.revealed) {
        None => {
            let plan = rng::with(|g| c.plan_draw_tier(ukey, rkey, ckey, tier, now, g))
                .ok_or_else(|| fail("ERR the OS gave no randomness"))?;
            (plan, None, None)
        }
        Some(revealed) => {
            if revealed && c.epochs_exhausted() {
                return Err(fail(format!("ERR {}", super::seed::EXHAUSTED)));
            }
            let fresh = if revealed {
                Some(verify_log::fresh_seed().map_err(Failure::Msg)?)
            } else {
                None
            };
            let dk = DrawKey {
                key: key_arg.bytes(),
                fresh_seed: fresh.as_ref(),
            };
            let (plan, picked) =
                rng::with(|g| c.plan_draw_verified(ukey, rkey, ckey, tier, now, g, dk))
                    .ok_or_else(|| fail("ERR the OS gave no randomness"))?;
            (plan, picked, fresh)
        }
    };
    let won = match plan {
        Plan::Pass { prize, .. } => prize,
        _ => None,
    };
    if let Some(p) = &picked {
        verify_log::before_draw(ctx, key_arg, c, p, fresh.as_ref(), won.is_some(), now)
            .map_err(Failure::Msg)?;
    }
    let replay = matches!(plan, Plan::Replay(_));
    let effect = match plan {
        Plan::Replay(r) | Plan::Reject(r, _) => {
            if stats_sync::batching() && c.count_statistic(&plan) {
                // Only a statistics counter changed: it goes out with the iteration's batch.
                replication::signal_modified(ctx, key_arg);
                stats_sync::note(ctx, key_arg, c);
                finish(
                    ctx,
                    key_arg,
                    c,
                    &r,
                    replay,
                    won,
                    replayed_code(c, &plan, rkey),
                );
                return Ok(());
            }
            // A copy: counting may evict other remembered requests.
            let code = replayed_code(c, &plan, rkey).map(<[u8]>::to_vec);
            let effect = c.count(&plan, now);
            replication::replicate_str(ctx, key_arg, &effect);
            stats_sync::renote(ctx, key_arg, c);
            finish(ctx, key_arg, c, &r, replay, won, code.as_deref());
            return Ok(());
        }
        Plan::Pass { prize, seq, .. } => {
            let mut entry = None;
            let win_id = match prize.and_then(|i| c.prizes().get(i)) {
                None => None,
                Some(p) => {
                    let guard = c.counters().wins > 0
                        && crate::datatype::CLUSTER_MODE.load(std::sync::atomic::Ordering::Relaxed);
                    let win = replication::Win {
                        user: user_arg,
                        prize: &p.id,
                        draw: seq,
                        reqid: reqid_arg,
                        code: prize.and_then(|i| c.next_code(i)),
                        now,
                        hint: c.host.last_entry,
                    };
                    let (id, ts) = replication::append_win(ctx, &c.rules().stream, &win, guard)
                        .map_err(Failure::Msg)?;
                    entry = Some(WinEntry {
                        ms: id.ms,
                        seq: id.seq,
                        draw: seq,
                        reqid: reqid_arg.is_some(),
                        ts,
                    });
                    c.host.last_entry = Some(id);
                    Some(id)
                }
            };
            let (reply, mut effect) = c.commit_draw(ukey, rkey, now, &plan, win_id);
            if let Effect::Draw(d) = &mut effect {
                if entry.is_some() {
                    d.entry = entry;
                    replication::replicate_win(ctx, key_arg, &effect, user_arg, reqid_arg);
                    if let Some(p) = &picked {
                        verify_log::after_draw(ctx, c, p, user, won, now);
                    }
                    stats_sync::renote(ctx, key_arg, c);
                    let code = match &effect {
                        Effect::Draw(d) => d.code.as_deref(),
                        _ => None,
                    };
                    finish(ctx, key_arg, c, &reply, replay, won, code);
                    return Ok(());
                }
            }
            (reply, effect)
        }
    };
    let (reply, effect) = effect;
    replication::replicate_str(ctx, key_arg, &effect);
    if let Some(p) = &picked {
        verify_log::after_draw(ctx, c, p, user, won, now);
    }
    stats_sync::renote(ctx, key_arg, c);
    finish(ctx, key_arg, c, &reply, replay, won, None);
    Ok(())
}

/// The code of the win a REQID replay answers again (a code prize's win), if any.
fn replayed_code<'c>(c: &'c Campaign, plan: &Plan, rkey: Option<u128>) -> Option<&'c [u8]> {
    match plan {
        Plan::Replay(_) => c.reqs().code(rkey?),
        _ => None,
    }
}

/// What every draw does last: metrics, the sold-out event, the reply.
fn finish(
    ctx: &Context,
    key: Str<'_>,
    c: &Campaign,
    reply: &DrawReply,
    replay: bool,
    won: Option<usize>,
    code: Option<&[u8]>,
) {
    crate::metrics::record(reply.outcome, replay);
    crate::notify::soldout_if_empty(ctx, key, c, won);
    reply_draw(ctx, c, reply, code);
}

fn reply_draw(ctx: &Context, c: &Campaign, r: &DrawReply, code: Option<&[u8]>) {
    entry::reply_array(ctx, if code.is_some() { 6 } else { 5 });
    entry::reply_bulk(ctx, r.outcome.name().as_bytes());
    match c.name(r.prize) {
        Some(id) => entry::reply_bulk(ctx, id),
        None => entry::reply_null(ctx),
    };
    match r.win_id {
        Some(w) => {
            let mut buf = [0; 41];
            let n = replication::stream_id_text(w.ms, w.seq, &mut buf);
            entry::reply_bulk(ctx, &buf[..n]);
        }
        None => entry::reply_null(ctx),
    };
    entry::reply_int(ctx, r.chances_left);
    entry::reply_int(ctx, r.wait_ms);
    if let Some(code) = code {
        entry::reply_bulk(ctx, code);
    }
}
