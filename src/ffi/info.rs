//! The INFO callback's side of the module API.

use redis_module::{raw, Context};
use std::os::raw::c_int;

/// The module's INFO callback: `crate::metrics::add_fields` inside the panic guard.
extern "C" fn callback(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let info = Info(ctx);
    crate::entry::guard("INFO", || (), || crate::metrics::add_fields(&info));
}

/// Registers the module's INFO callback (replacing the generic one the module macro
/// installs). False: Redis refused or lacks the API.
pub fn register(ctx: &Context) -> bool {
    // SAFETY: the load context and a function that lives as long as the module.
    unsafe { raw::RedisModule_RegisterInfoFunc }
        .is_some_and(|reg| unsafe { reg(ctx.ctx, Some(callback)) } == raw::REDISMODULE_OK as c_int)
}

/// The context Redis passes an INFO callback, for the duration of the call.
pub struct Info(*mut raw::RedisModuleInfoCtx);

impl Info {
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
