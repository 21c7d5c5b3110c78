//! LOTTERY.DRAW: one draw for one user, atomically: REQID replay, window, pause, client
//! (penalty box, CLIENTLIMIT), ban, MAXWINS, cooldown, daily chances, ADMIT, RATE; then one
//! chance is consumed and the alias table picks (paced prizes held back while ahead of their
//! pace). A win is appended to the wins stream (XADD, replicated with its concrete ID) before
//! anything changes, so a stream error changes nothing. The effects go to replicas and the AOF
//! as absolute values.
//!
//! Reply: [outcome, prize id|nil, win id|nil, chances left today, ms until the next chance].
//! The arguments are described in `DRAW` below; the options are parsed by
//! `parse::draw_options`.
//!
//! This is the hot path, so it is registered directly with `RedisModule_CreateCommand` and
//! talks to the module API without the per-call argument vector, reply tree and string copies
//! of the generic command wrapper.

use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::datatype::LOTTERY_TYPE;
use crate::engine::campaign::{Campaign, DrawReply, Plan, StreamId};
use crate::ffi::{bytes_of, OpenKey};
use crate::replication::Field;
use crate::{clock, entry, parse, replication, rng};
use redis_module::raw;
use std::os::raw::c_int;

/// LOTTERY.DRAW's description: registration, COMMAND DOCS and docs/commands.md. Its entry
/// point is its own (see above).
pub static DRAW: Command = Command {
    name: c"lottery.draw",
    entry: draw_command,
    flags: c"write deny-oom fast",
    key: Some(RW | ACCESS | UPDATE),
    arity: -3,
    summary: c"Draws once for a user: WIN, LOSE or the rule that refused the draw (COOLDOWN, QUOTA, BUSY, RETRY, LIMITED, ...)",
    complexity: c"O(1)",
    args: &[
        Arg::key(),
        Arg::string(c"user"),
        Arg::string(c"request-id").tok(c"REQID").opt(),
        Arg::string(c"client-id").tok(c"CLIENT").opt(),
    ],
};

/// The entry point of `DRAW`.
pub extern "C" fn draw_command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    entry::guard(
        DRAW.upper(),
        || entry::reply_error(ctx, &entry::internal_error_text(DRAW.upper())),
        || draw_entry(ctx, argv, argc),
    )
}

fn draw_entry(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    if argv.is_null() || argc < 0 {
        return entry::reply_error(ctx, "ERR bad arguments");
    }
    // SAFETY: Redis passes argc valid argument pointers for the duration of the call.
    let args = unsafe { std::slice::from_raw_parts(argv, argc as usize) };
    match draw(ctx, args) {
        Ok(()) => raw::REDISMODULE_OK as c_int,
        Err(Failure::Arity) => {
            if let Some(f) = unsafe { raw::RedisModule_WrongArity } {
                unsafe { f(ctx) };
            }
            raw::REDISMODULE_OK as c_int
        }
        Err(Failure::Msg(m)) => entry::reply_error(ctx, &m),
    }
}

enum Failure {
    Arity,
    Msg(String),
}

fn fail(m: impl Into<String>) -> Failure {
    Failure::Msg(m.into())
}

/// The campaign stored at an open key.
fn campaign_at<'a>(key: &OpenKey) -> Result<&'a mut Campaign, Failure> {
    let (Some(key_type), Some(get_type), Some(get_value)) = (
        unsafe { raw::RedisModule_KeyType },
        unsafe { raw::RedisModule_ModuleTypeGetType },
        unsafe { raw::RedisModule_ModuleTypeGetValue },
    ) else {
        return Err(fail("ERR module API unavailable"));
    };
    let t = unsafe { key_type(key.0) };
    if t == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
        return Err(fail("ERR no such campaign"));
    }
    if t != raw::REDISMODULE_KEYTYPE_MODULE as c_int
        || unsafe { get_type(key.0) } != *LOTTERY_TYPE.raw_type.borrow()
    {
        return Err(fail(
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ));
    }
    let v = unsafe { get_value(key.0) }.cast::<Campaign>();
    // SAFETY: a value of our type is a Box<Campaign> we stored; it lives while the key does,
    // and nothing else touches it during this command.
    unsafe { v.as_mut() }.ok_or_else(|| fail("ERR no such campaign"))
}

fn draw(
    ctx: *mut raw::RedisModuleCtx,
    args: &[*mut raw::RedisModuleString],
) -> Result<(), Failure> {
    let (key_arg, user_arg, opts) = match args {
        [_, k, u, rest @ ..] if rest.len() <= 4 => (*k, *u, rest),
        _ => return Err(Failure::Arity),
    };
    // The options as bytes, on the stack (at most 4 of them).
    let mut bytes: [&[u8]; 4] = [&[]; 4];
    for (b, &a) in bytes.iter_mut().zip(opts) {
        *b = unsafe { bytes_of(a) };
    }
    let o = parse::draw_options(&bytes[..opts.len()]).map_err(|e| match e {
        parse::ArgError::Arity => Failure::Arity,
        parse::ArgError::Invalid(m) => fail(format!("ERR {m}")),
    })?;
    // REQID: its checked bytes, and the raw argument (copied into the stream entry).
    let reqid = o.reqid.map(|(_, r)| r);
    let reqid_arg = o.reqid.map(|(i, _)| opts[i]);
    let client = o.client;
    let user = unsafe { bytes_of(user_arg) };
    let key = OpenKey::write(ctx, key_arg).ok_or_else(|| fail("ERR module API unavailable"))?;
    let c = campaign_at(&key)?;
    let now = clock::now_ms();
    let ukey = c.user_key(user);
    let rkey = reqid.map(|r| c.request_key(ukey, r));
    let ckey = client.map(|cl| c.client_key(cl));
    let plan = rng::with(|g| c.plan_draw_from(ukey, rkey, ckey, now, g))
        .ok_or_else(|| fail("ERR the OS gave no randomness"))?;
    let replay = matches!(plan, Plan::Replay(_));
    let won = match plan {
        Plan::Pass { prize, .. } => prize,
        _ => None,
    };
    let (reply, effect) = match plan {
        Plan::Replay(r) | Plan::Reject(r, _) => (r, c.count(&plan, now)),
        Plan::Pass { prize, seq, .. } => {
            let win_id = match prize.and_then(|i| c.prizes.get(i)) {
                None => None,
                Some(p) => {
                    let mut ts = itoa::Buffer::new();
                    let mut sq = itoa::Buffer::new();
                    let mut fields: [(&'static [u8], Field); 5] = [
                        (b"user", Field::Arg(user_arg)),
                        (b"prize", Field::Bytes(&p.id)),
                        (b"ts", Field::Bytes(ts.format(now).as_bytes())),
                        (b"draw", Field::Bytes(sq.format(seq).as_bytes())),
                        (b"reqid", Field::Bytes(b"")),
                    ];
                    let n = match reqid_arg {
                        Some(r) => {
                            fields[4].1 = Field::Arg(r);
                            5
                        }
                        None => 4,
                    };
                    let guard = c.counters.wins > 0
                        && crate::datatype::CLUSTER_MODE.load(std::sync::atomic::Ordering::Relaxed);
                    let (ms, seq) =
                        replication::append_win(ctx, &c.rules.stream, &fields[..n], guard)
                            .map_err(Failure::Msg)?;
                    Some(StreamId { ms, seq })
                }
            };
            c.commit_draw(ukey, rkey, now, &plan, win_id)
        }
    };
    replication::replicate_raw(ctx, key_arg, &effect);
    crate::metrics::record(reply.outcome, replay);
    crate::notify::soldout_if_empty(ctx, key_arg, c, won);
    reply_draw(ctx, c, &reply);
    Ok(())
}

fn reply_draw(ctx: *mut raw::RedisModuleCtx, c: &Campaign, r: &DrawReply) {
    raw::reply_with_array(ctx, 5);
    let name = r.outcome.name();
    raw::reply_with_string_buffer(ctx, name.as_ptr().cast(), name.len());
    match c.name(r.prize) {
        Some(id) => raw::reply_with_string_buffer(ctx, id.as_ptr().cast(), id.len()),
        None => raw::reply_with_null(ctx),
    };
    match r.win_id {
        Some(w) => {
            let s = replication::stream_id_text(w.ms, w.seq);
            raw::reply_with_string_buffer(ctx, s.as_ptr().cast(), s.len())
        }
        None => raw::reply_with_null(ctx),
    };
    raw::reply_with_long_long(ctx, r.chances_left);
    raw::reply_with_long_long(ctx, r.wait_ms);
}
