//! The data type's callbacks: what Redis calls with raw pointers, each turned into safe
//! values and handed to `crate::datatype` inside the panic guard (`crate::entry::guard`): a
//! panic refuses the load or copy, never aborts the server. Every value Redis gets comes from
//! here (`Box::into_raw`) and goes back through `free`, so `INFO lottery`'s campaign count
//! is kept here.

use super::io;
use super::string::Str;
use crate::datatype::{self, RDB_ENCVER};
use crate::engine::campaign::Campaign;
use crate::engine::persist;
use crate::entry::guard;
use crate::metrics;
use redis_module::native_types::RedisType;
use redis_module::raw;
use std::os::raw::{c_int, c_void};
use std::ptr;

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

/// An RDB being loaded (RDB file, RESTORE, DEBUG RELOAD, a replica's sync).
pub struct RdbIn(*mut raw::RedisModuleIO);

impl RdbIn {
    /// One string buffer (None on a short read).
    pub fn buffer(&self) -> Option<Vec<u8>> {
        raw::load_string_buffer(self.0)
            .ok()
            .map(|b| b.as_ref().to_vec())
    }

    pub fn unsigned(&self) -> Option<u64> {
        raw::load_unsigned(self.0).ok()
    }

    /// The name of the key being loaded, if Redis says (RESTORE, a replica's sync).
    pub fn key_name(&self) -> Option<&[u8]> {
        // SAFETY: the handle Redis passed the running `rdb_load`.
        unsafe { io::key_name(self.0) }.map(|k| k.bytes())
    }
}

/// An RDB being written.
pub struct RdbOut(*mut raw::RedisModuleIO);

impl RdbOut {
    pub fn buffer(&self, b: &[u8]) {
        raw::save_slice(self.0, b);
    }

    pub fn unsigned(&self, v: u64) {
        raw::save_unsigned(self.0, v);
    }
}

/// The campaign behind a value pointer Redis holds (null: none).
///
/// # Safety
/// `value` must be null or a pointer this module gave Redis (`into_value`), not yet freed.
unsafe fn campaign<'a>(value: *const c_void) -> Option<&'a Campaign> {
    value.cast::<Campaign>().as_ref()
}

/// Hands a campaign to Redis.
fn into_value(c: Campaign) -> *mut c_void {
    metrics::campaign_created();
    Box::into_raw(Box::new(c)).cast::<c_void>()
}

unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    let rdb = RdbIn(rdb);
    guard("loading a campaign", ptr::null_mut, || {
        datatype::load(&rdb, encver).map_or(ptr::null_mut(), into_value)
    })
}

unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    if let Some(c) = campaign(value) {
        let rdb = RdbOut(rdb);
        guard("saving a campaign", || (), || datatype::save(&rdb, c));
    }
}

unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    if let Some(c) = campaign(value) {
        let key = Str::from_raw(key);
        guard(
            "rewriting the AOF",
            || (),
            || {
                datatype::rewrite(c, |blob| {
                    // SAFETY: the handle Redis passed this rewrite.
                    unsafe { io::emit_aof(aof, c"LOTTERY.APPLY", key, blob) }
                })
            },
        );
    }
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    let c = campaign(value);
    guard("MEMORY USAGE", || 0, || c.map_or(0, Campaign::mem_bytes))
}

unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let Some(c) = campaign(value) else {
        return;
    };
    if let Some((meta, users)) = guard("DEBUG DIGEST", || None, || Some(persist::fingerprint(c))) {
        io::digest(md, &meta, users as i64);
    }
}

unsafe extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        let c = Box::from_raw(value.cast::<Campaign>());
        guard("freeing a campaign", || (), move || drop(c));
        metrics::campaign_freed();
    }
}

unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    let c = campaign(value);
    guard("lazy free", || 1, || c.map_or(1, datatype::free_effort))
}

unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    let Some(c) = campaign(value) else {
        return ptr::null_mut();
    };
    let to = Str::from_raw(to).bytes();
    guard("COPY", ptr::null_mut, || {
        datatype::copy(c, to).map_or(ptr::null_mut(), into_value)
    })
}
