//! The INFO callback's side of the module API.

use redis_module::{raw, Context};
use std::os::raw::c_int;

/// The signature of an INFO callback.
pub type InfoFn = extern "C" fn(*mut raw::RedisModuleInfoCtx, c_int);

/// Registers the module's INFO callback. False: Redis refused or lacks the API.
pub fn register(ctx: &Context, f: InfoFn) -> bool {
    // SAFETY: the load context and a function that lives as long as the module.
    unsafe { raw::RedisModule_RegisterInfoFunc }
        .is_some_and(|reg| unsafe { reg(ctx.ctx, Some(f)) } == raw::REDISMODULE_OK as c_int)
}

/// The context Redis passes an INFO callback, for the duration of the call.
pub struct Info(*mut raw::RedisModuleInfoCtx);

impl Info {
    /// # Safety
    /// `ctx` must be the context Redis passed to the running INFO callback.
    pub unsafe fn new(ctx: *mut raw::RedisModuleInfoCtx) -> Info {
        Info(ctx)
    }

    /// Starts the module's section (named after the module). False: INFO did not ask for it.
    pub fn section(&self) -> bool {
        match unsafe { raw::RedisModule_InfoAddSection } {
            // SAFETY: the callback's context; a null name is the module's name.
            Some(f) => (unsafe { f(self.0, std::ptr::null()) }) == raw::REDISMODULE_OK as c_int,
            None => false,
        }
    }

    /// Adds `name:text` (neither may hold a NUL: the field is then skipped).
    pub fn text(&self, name: &str, text: &str) {
        let (Ok(n), Ok(t)) = (std::ffi::CString::new(name), std::ffi::CString::new(text)) else {
            return;
        };
        if let Some(f) = unsafe { raw::RedisModule_InfoAddFieldCString } {
            // SAFETY: the callback's context and two C strings.
            unsafe { f(self.0, n.as_ptr(), t.as_ptr()) };
        }
    }

    /// Adds `name:n`.
    pub fn number(&self, name: &str, n: u64) {
        let Ok(c) = std::ffi::CString::new(name) else {
            return;
        };
        if let Some(f) = unsafe { raw::RedisModule_InfoAddFieldULongLong } {
            // SAFETY: the callback's context and a C string.
            unsafe { f(self.0, c.as_ptr(), n) };
        }
    }
}
