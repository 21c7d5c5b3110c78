//! What the data type callbacks get from Redis: an RDB/AOF handle, a digest.

use super::string::Str;
use redis_module::raw;

/// The name of the key an RDB load is for (RESTORE, a replica's sync), if Redis says.
///
/// # Safety
/// `rdb` must be the handle Redis passed to the running `rdb_load` callback.
pub unsafe fn key_name<'a>(rdb: *mut raw::RedisModuleIO) -> Option<Str<'a>> {
    let name = raw::RedisModule_GetKeyNameFromIO?;
    let key = name(rdb);
    (!key.is_null()).then(|| Str::from_raw(key.cast_mut()))
}

/// Emits `<command> <key> <blob>` into an AOF rewrite.
///
/// # Safety
/// `aof` must be the handle Redis passed to the running `aof_rewrite` callback.
pub unsafe fn emit_aof(
    aof: *mut raw::RedisModuleIO,
    command: &std::ffi::CStr,
    key: Str<'_>,
    blob: &[u8],
) {
    if let Some(emit) = raw::RedisModule_EmitAOF {
        emit(
            aof,
            command.as_ptr(),
            c"sb".as_ptr(),
            key.raw(),
            blob.as_ptr(),
            blob.len(),
        );
    }
}

/// Adds a buffer and a number to a digest, then ends the sequence.
///
/// # Safety
/// `md` must be the handle Redis passed to the running `digest` callback.
pub unsafe fn digest(md: *mut raw::RedisModuleDigest, bytes: &[u8], n: i64) {
    if let Some(add) = raw::RedisModule_DigestAddStringBuffer {
        add(md, bytes.as_ptr().cast(), bytes.len());
    }
    if let Some(add) = raw::RedisModule_DigestAddLongLong {
        add(md, n);
    }
    if let Some(end) = raw::RedisModule_DigestEndSequence {
        end(md);
    }
}
