//! Replication and AOF glue: effects go out as `LOTTERY.APPLY key blob`; wins go out as an
//! XADD with the concrete entry ID the master's append got. Nothing random or clock-dependent
//! is ever re-run on a replica.

use crate::engine::effect::Effect;
use crate::entry::{log, Level};
use crate::ffi::{OpenKey, OwnedString};
use redis_module::{raw, Context, RedisString};

/// Sends an effect to replicas and the AOF, and signals the key as modified (WATCH,
/// client-side caching): an effect is exactly a change. A failure is logged loudly: it means
/// the master changed state that its copies will not see.
pub fn replicate(ctx: &Context, key: &RedisString, effect: &Effect) {
    replicate_raw(ctx.ctx, key.inner, effect);
}

/// `replicate` on raw pointers: `LOTTERY.APPLY <key> <effect>` with the key string passed
/// through as is (no copy) and the effect as one binary argument.
pub fn replicate_raw(
    ctx: *mut raw::RedisModuleCtx,
    key: *mut raw::RedisModuleString,
    effect: &Effect,
) {
    signal_modified(ctx, key);
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let status = BUF.with(|b| {
        let Ok(mut blob) = b.try_borrow_mut() else {
            return raw::REDISMODULE_ERR as i32;
        };
        effect.encode_into(&mut blob);
        replicate_blob(ctx, key, &blob)
    });
    if status != raw::REDISMODULE_OK as i32 {
        log(
            ctx,
            Level::Warning,
            "lottery: RedisModule_Replicate failed: a replica or the AOF may miss an effect",
        );
    }
}

/// Signals `key` as modified. The module runs with implicit signalling off, so a command
/// that opened a key for writing and then refused leaves WATCH untouched.
pub fn signal_modified(ctx: *mut raw::RedisModuleCtx, key: *mut raw::RedisModuleString) {
    if let Some(f) = unsafe { raw::RedisModule_SignalModifiedKey } {
        unsafe { f(ctx, key) };
    }
}

fn replicate_blob(
    ctx: *mut raw::RedisModuleCtx,
    key: *mut raw::RedisModuleString,
    blob: &[u8],
) -> i32 {
    match unsafe { raw::RedisModule_Replicate } {
        // SAFETY: "sb" = a RedisModuleString, then a buffer pointer and its length.
        Some(f) => unsafe {
            f(
                ctx,
                c"LOTTERY.APPLY".as_ptr(),
                c"sb".as_ptr(),
                key,
                blob.as_ptr(),
                blob.len(),
            )
        },
        None => raw::REDISMODULE_ERR as i32,
    }
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
    Arg(*mut raw::RedisModuleString),
}

/// Appends a win to the wins stream: `RedisModule_StreamAdd` (an automatic ID, blocked
/// readers woken) and the `xadd` keyspace event, then the XADD replicated explicitly with the
/// concrete ID it got, so replicas and the AOF append the identical entry. Nothing is written
/// unless the stream key is empty or a stream. `guard_migration`: the campaign has sold before
/// and the server is a cluster node, so a missing stream may be one half of a slot migration
/// (`crate::cluster`): then the win is refused with TRYAGAIN. Returns the entry ID, or an
/// error reply.
pub fn append_win(
    ctx: *mut raw::RedisModuleCtx,
    stream: &[u8],
    fields: &[(&'static [u8], Field)],
    guard_migration: bool,
) -> Result<(u64, u64), String> {
    let api = || "ERR module API unavailable".to_string();
    let (Some(key_type), Some(add), Some(replicate)) = (
        unsafe { raw::RedisModule_KeyType },
        unsafe { raw::RedisModule_StreamAdd },
        unsafe { raw::RedisModule_Replicate },
    ) else {
        return Err(api());
    };
    let name = OwnedString::new(ctx, stream).ok_or_else(api)?;
    let key = OpenKey::write(ctx, name.0).ok_or_else(api)?;
    let t = unsafe { key_type(key.0) };
    if t != raw::REDISMODULE_KEYTYPE_EMPTY as i32 && t != raw::REDISMODULE_KEYTYPE_STREAM as i32 {
        return Err("WRONGTYPE Operation against a key holding the wrong kind of value".into());
    }
    if t == raw::REDISMODULE_KEYTYPE_EMPTY as i32
        && guard_migration
        && crate::cluster::slot_in_migration(ctx, stream)
    {
        return Err(format!(
            "TRYAGAIN the wins stream '{}' is not on this node while its slot is migrating; retry",
            crate::parse::shown(stream)
        ));
    }
    // Field names and values as Redis strings: names and copied values are owned here,
    // argument strings are borrowed from the command.
    let mut owned: Vec<OwnedString> = Vec::with_capacity(fields.len() * 2);
    let mut argv: Vec<*mut raw::RedisModuleString> = Vec::with_capacity(fields.len() * 2);
    for (name, value) in fields {
        let n = OwnedString::new(ctx, name).ok_or_else(api)?;
        argv.push(n.0);
        owned.push(n);
        match value {
            Field::Arg(p) => argv.push(*p),
            Field::Bytes(b) => {
                let v = OwnedString::new(ctx, b).ok_or_else(api)?;
                argv.push(v.0);
                owned.push(v);
            }
        }
    }
    let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
    let numfields = fields.len() as i64;
    let ok = unsafe {
        add(
            key.0,
            raw::REDISMODULE_STREAM_ADD_AUTOID as i32,
            &mut id,
            argv.as_mut_ptr(),
            numfields,
        )
    };
    if ok != raw::REDISMODULE_OK as i32 {
        return Err("ERR the wins stream cannot take another entry (its IDs are exhausted)".into());
    }
    signal_modified(ctx, name.0);
    // As XADD does (RedisModule_StreamAdd wakes blocked readers but raises no event).
    if let Some(notify) = unsafe { raw::RedisModule_NotifyKeyspaceEvent } {
        unsafe {
            notify(
                ctx,
                raw::REDISMODULE_NOTIFY_STREAM,
                c"xadd".as_ptr(),
                name.0,
            )
        };
    }
    let id_text = stream_id_text(id.ms, id.seq);
    // SAFETY: "sbv" = a RedisModuleString, a buffer and its length, an argv and its length.
    let status = unsafe {
        replicate(
            ctx,
            c"XADD".as_ptr(),
            c"sbv".as_ptr(),
            name.0,
            id_text.as_ptr(),
            id_text.len(),
            argv.as_mut_ptr(),
            argv.len(),
        )
    };
    if status != raw::REDISMODULE_OK as i32 {
        log(
            ctx,
            Level::Warning,
            "lottery: RedisModule_Replicate(XADD) failed: a replica or the AOF may miss a win",
        );
    }
    drop(owned);
    Ok((id.ms, id.seq))
}
