//! Replication and AOF glue: effects go out as `LOTTERY.APPLY key blob`; wins go out as an
//! XADD with the concrete entry ID the master's append got. Nothing random or clock-dependent
//! is ever re-run on a replica.

use crate::engine::effect::Effect;
use crate::entry::{log, Level};
use crate::ffi::key::KeyKind;
use crate::ffi::{server, Key, OwnedString, Str};
use redis_module::{Context, RedisString};

/// Sends an effect to replicas and the AOF, and signals the key as modified (WATCH,
/// client-side caching): an effect is exactly a change. A failure is logged loudly: it means
/// the master changed state that its copies will not see.
pub fn replicate(ctx: &Context, key: &RedisString, effect: &Effect) {
    replicate_str(ctx, Str::of(key), effect);
}

/// `replicate` of a borrowed key name: `LOTTERY.APPLY <key> <effect>` with the key string
/// passed through as is (no copy) and the effect as one binary argument.
pub fn replicate_str(ctx: &Context, key: Str<'_>, effect: &Effect) {
    signal_modified(ctx, key);
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let status = BUF.with(|b| {
        let Ok(mut blob) = b.try_borrow_mut() else {
            return false;
        };
        effect.encode_into(&mut blob);
        server::replicate_key_blob(ctx, c"LOTTERY.APPLY", key, &blob)
    });
    if !status {
        log(
            ctx.ctx,
            Level::Warning,
            "lottery: RedisModule_Replicate failed: a replica or the AOF may miss an effect",
        );
    }
}

/// Signals `key` as modified. The module runs with implicit signalling off, so a command
/// that opened a key for writing and then refused leaves WATCH untouched.
pub fn signal_modified(ctx: &Context, key: Str<'_>) {
    server::signal_modified(ctx, key);
}

/// A stream entry ID as Redis writes it: `<ms>-<seq>` (no formatting machinery).
pub fn stream_id_text(ms: u64, seq: u64) -> Vec<u8> {
    let mut a = itoa::Buffer::new();
    let mut b = itoa::Buffer::new();
    let mut t = Vec::with_capacity(41);
    t.extend_from_slice(a.format(ms).as_bytes());
    t.push(b'-');
    t.extend_from_slice(b.format(seq).as_bytes());
    t
}

/// One field value of a wins stream entry: bytes to copy, or a string Redis already holds
/// (a command argument).
pub enum Field<'a> {
    Bytes(&'a [u8]),
    Arg(Str<'a>),
}

/// Appends a win to the wins stream: `RedisModule_StreamAdd` (an automatic ID, blocked
/// readers woken) and the `xadd` keyspace event, then the XADD replicated explicitly with the
/// concrete ID it got, so replicas and the AOF append the identical entry. Nothing is written
/// unless the stream key is empty or a stream. `guard_migration`: the campaign has sold before
/// and the server is a cluster node, so a missing stream may be one half of a slot migration
/// (`crate::cluster`): then the win is refused with TRYAGAIN. Returns the entry ID, or an
/// error reply.
pub fn append_win(
    ctx: &Context,
    stream: &[u8],
    fields: &[(&'static [u8], Field)],
    guard_migration: bool,
) -> Result<(u64, u64), String> {
    let api = || "ERR module API unavailable".to_string();
    let name = OwnedString::new(ctx, stream).ok_or_else(api)?;
    let mut key = Key::write(ctx, name.as_str());
    let kind = key.kind().map_err(|_| api())?;
    if kind != KeyKind::Empty && kind != KeyKind::Stream {
        return Err("WRONGTYPE Operation against a key holding the wrong kind of value".into());
    }
    if kind == KeyKind::Empty && guard_migration && crate::cluster::slot_in_migration(ctx, stream) {
        return Err(format!(
            "TRYAGAIN the wins stream '{}' is not on this node while its slot is migrating; retry",
            crate::parse::shown(stream)
        ));
    }
    // Field names and values as Redis strings: names and copied values are owned here,
    // argument strings are borrowed from the command.
    let mut owned: Vec<OwnedString> = Vec::with_capacity(fields.len() * 2);
    let mut at: Vec<Option<Str>> = Vec::with_capacity(fields.len() * 2);
    for (name, value) in fields {
        owned.push(OwnedString::new(ctx, name).ok_or_else(api)?);
        at.push(None);
        match value {
            Field::Arg(s) => at.push(Some(*s)),
            Field::Bytes(b) => {
                owned.push(OwnedString::new(ctx, b).ok_or_else(api)?);
                at.push(None);
            }
        }
    }
    let mut next = owned.iter();
    let argv: Vec<Str> = at
        .into_iter()
        .map(|s| s.or_else(|| next.next().map(OwnedString::as_str)))
        .collect::<Option<_>>()
        .ok_or_else(api)?;
    let Some((ms, seq)) = key.stream_add(&argv).map_err(|_| api())? else {
        return Err("ERR the wins stream cannot take another entry (its IDs are exhausted)".into());
    };
    let name = name.as_str();
    signal_modified(ctx, name);
    // As XADD does (RedisModule_StreamAdd wakes blocked readers but raises no event).
    server::notify(
        ctx,
        redis_module::raw::REDISMODULE_NOTIFY_STREAM,
        c"xadd",
        name,
    );
    let id_text = stream_id_text(ms, seq);
    if !server::replicate_key_blob_argv(ctx, c"XADD", name, &id_text, &argv) {
        log(
            ctx.ctx,
            Level::Warning,
            "lottery: RedisModule_Replicate(XADD) failed: a replica or the AOF may miss a win",
        );
    }
    Ok((ms, seq))
}
