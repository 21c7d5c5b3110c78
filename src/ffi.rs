//! Small owners and views over the module API's raw pointers, shared by the hot paths that
//! bypass the generic wrappers (LOTTERY.DRAW, the wins stream, the data type callbacks).

use redis_module::raw;

/// The bytes of a Redis-owned string (borrowed for the duration of the call; never freed
/// here). Null gives an empty slice.
///
/// # Safety
/// `s` must be null or a valid `RedisModuleString` that outlives the returned slice.
pub unsafe fn bytes_of<'a>(s: *mut raw::RedisModuleString) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    let mut len = 0;
    let p = raw::string_ptr_len(s, &mut len);
    if p.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// A Redis string we own, freed on drop.
pub struct OwnedString(pub *mut raw::RedisModuleString);

impl OwnedString {
    pub fn new(ctx: *mut raw::RedisModuleCtx, b: &[u8]) -> Option<OwnedString> {
        let create = unsafe { raw::RedisModule_CreateString }?;
        let p = unsafe { create(ctx, b.as_ptr().cast(), b.len()) };
        (!p.is_null()).then_some(OwnedString(p))
    }
}

impl Drop for OwnedString {
    fn drop(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            unsafe { free(std::ptr::null_mut(), self.0) };
        }
    }
}

/// An open key, closed on drop.
pub struct OpenKey(pub *mut raw::RedisModuleKey);

impl OpenKey {
    /// Opens `name` for reading and writing.
    pub fn write(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
    ) -> Option<OpenKey> {
        let open = unsafe { raw::RedisModule_OpenKey }?;
        let mode = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as i32;
        Some(OpenKey(unsafe { open(ctx, name, mode) }.cast()))
    }
}

impl Drop for OpenKey {
    fn drop(&mut self) {
        if !self.0.is_null() {
            if let Some(close) = unsafe { raw::RedisModule_CloseKey } {
                unsafe { close(self.0) };
            }
        }
    }
}
