//! The campaign's Redis data type (`lottery-1`... exactly 9 characters: `lottery01`): RDB
//! save/load, AOF rewrite, MEMORY USAGE, DEBUG DIGEST-VALUE, COPY, lazy free effort.
//!
//! RDB layout (encoding version 1): the meta record as one string buffer, then for each
//! chunk of per-user records the unsigned 1 followed by the chunk buffer, then unsigned 0.
//! Loading validates every record and refuses (returns NULL) on anything malformed or newer
//! than this build understands; Redis then refuses the RDB or the RESTORE. Every callback
//! runs inside `entry::guard`: a panic refuses the load or copy, never aborts the server.

use crate::engine::campaign::Campaign;
use crate::engine::effect::Effect;
use crate::engine::limits::MAX_KEY_LEN;
use crate::engine::persist;
use crate::entry::guard;
use crate::ffi::{io, Str};
use redis_module::native_types::RedisType;
use redis_module::raw;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the server runs in cluster mode (set at load; fixed for the process's life).
pub static CLUSTER_MODE: AtomicBool = AtomicBool::new(false);

/// The RDB encoding version this build writes (Redis passes it back as `encver`).
pub const RDB_ENCVER: i32 = 1;

pub static LOTTERY_TYPE: RedisType = RedisType::new(
    "lottery01",
    RDB_ENCVER,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save2: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        unlink: None,
        copy: Some(copy),
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
    },
);

/// Reads one string buffer from the RDB into an owned Vec (None on an I/O error).
fn load_buffer(rdb: *mut raw::RedisModuleIO) -> Option<Vec<u8>> {
    raw::load_string_buffer(rdb)
        .ok()
        .map(|b| b.as_ref().to_vec())
}

unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    guard("loading a campaign", ptr::null_mut, || load(rdb, encver))
}

fn load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver < 1 || encver > RDB_ENCVER {
        return ptr::null_mut();
    }
    let Some(meta) = load_buffer(rdb) else {
        return ptr::null_mut();
    };
    let Ok(mut c) = persist::decode_meta(&meta) else {
        return ptr::null_mut();
    };
    loop {
        match raw::load_unsigned(rdb) {
            Ok(0) => break,
            Ok(1) => {
                let Some(chunk) = load_buffer(rdb) else {
                    return ptr::null_mut();
                };
                if persist::load_chunk(&mut c, &chunk).is_err() {
                    return ptr::null_mut();
                }
            }
            _ => return ptr::null_mut(),
        }
    }
    // In a cluster, a DUMP restored under a name in another slot must not keep writing to
    // a stream outside its slot. (Standalone, the value keeps its stream, as with RENAME.)
    // A key too long for a default stream (only RENAME makes one) keeps its stream: the
    // RESTORE is refused rather than writing outside the slot.
    if CLUSTER_MODE.load(Ordering::Relaxed) {
        // SAFETY: the handle Redis passed this load.
        if let Some(key) = unsafe { io::key_name(rdb) } {
            let key = key.bytes();
            if c.needs_slot_fix(key) {
                if key.len() > MAX_KEY_LEN {
                    return ptr::null_mut();
                }
                c.fix_slot(key);
            }
        }
    }
    crate::metrics::campaign_created();
    Box::into_raw(Box::new(c)).cast::<c_void>()
}

unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    let Some(c) = value.cast::<Campaign>().as_ref() else {
        return;
    };
    guard("saving a campaign", || (), || save(rdb, c));
}

fn save(rdb: *mut raw::RedisModuleIO, c: &Campaign) {
    raw::save_slice(rdb, &persist::encode_meta(c));
    persist::for_each_chunk(c, |chunk| {
        raw::save_unsigned(rdb, 1);
        raw::save_slice(rdb, chunk);
    });
    raw::save_unsigned(rdb, 0);
}

/// Emits `LOTTERY.APPLY key <config>` then one `LOTTERY.APPLY key <chunk>` per chunk.
unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let Some(c) = value.cast::<Campaign>().as_ref() else {
        return;
    };
    let key = Str::from_raw(key);
    guard("rewriting the AOF", || (), || rewrite(aof, key, c));
}

fn rewrite(aof: *mut raw::RedisModuleIO, key: Str<'_>, c: &Campaign) {
    // SAFETY: the handle Redis passed this rewrite.
    let emit_one = |blob: Vec<u8>| unsafe { io::emit_aof(aof, c"LOTTERY.APPLY", key, &blob) };
    emit_one(Effect::Config(persist::encode_meta(c)).encode());
    persist::for_each_chunk(c, |chunk| emit_one(Effect::Chunk(chunk.to_vec()).encode()));
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    let c = value.cast::<Campaign>().as_ref();
    guard("MEMORY USAGE", || 0, || c.map_or(0, Campaign::mem_bytes))
}

unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let Some(c) = value.cast::<Campaign>().as_ref() else {
        return;
    };
    let Some((meta, users)) = guard("DEBUG DIGEST", || None, || Some(persist::fingerprint(c)))
    else {
        return;
    };
    io::digest(md, &meta, users as i64);
}

unsafe extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        let c = Box::from_raw(value.cast::<Campaign>());
        guard("freeing a campaign", || (), move || drop(c));
        crate::metrics::campaign_freed();
    }
}

/// Large campaigns are freed in a background thread (Redis's lazyfree threshold is 64).
unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    value.cast::<Campaign>().as_ref().map_or(1, |c| {
        let maps = c.users().len() + c.winners().len() + c.bans().len() + c.reqs().len();
        1 + (maps + c.clients().len() + c.waiting().len()) / 1024
    })
}

/// COPY: a deep copy. A campaign using its key's default wins stream gets the new key's
/// default stream (see `Campaign::follow_key`). A target key longer than `MAX_KEY_LEN` is
/// refused, as CONFIGURE refuses it (Redis replies that the copy failed).
unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    let Some(c) = value.cast::<Campaign>().as_ref() else {
        return ptr::null_mut();
    };
    let to = Str::from_raw(to).bytes();
    guard("COPY", ptr::null_mut, || copy_to(c, to))
}

fn copy_to(c: &Campaign, to: &[u8]) -> *mut c_void {
    if to.len() > MAX_KEY_LEN {
        return ptr::null_mut();
    }
    let mut n = c.clone();
    n.follow_key(to);
    n.invalidate_table();
    crate::metrics::campaign_created();
    Box::into_raw(Box::new(n)).cast::<c_void>()
}
