//! ACL checks on keys a command writes without naming them as its key: the wins stream set
//! with `CONFIGURE ... STREAM` is written by every later win, so the caller must be allowed to
//! write it (`RedisModule_ACLCheckKeyPermissions`, Redis 7.0+).

use crate::ffi::OwnedString;
use redis_module::raw;
use std::os::raw::c_int;

/// `Err(reply)` if the calling user may not write `key`. Replicated and loading contexts
/// (the master's stream, the AOF) are not checked: the command was checked where it ran.
/// A server without the ACL module API refuses rather than guesses.
pub fn check_write(ctx: *mut raw::RedisModuleCtx, key: &[u8], what: &str) -> Result<(), String> {
    let flags = unsafe { raw::RedisModule_GetContextFlags }.map_or(0, |f| unsafe { f(ctx) } as u32);
    if flags & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0 {
        return Ok(());
    }
    let (Some(current), Some(from_name), Some(check), Some(free_user), Some(free_str)) = (
        unsafe { raw::RedisModule_GetCurrentUserName },
        unsafe { raw::RedisModule_GetModuleUserFromUserName },
        unsafe { raw::RedisModule_ACLCheckKeyPermissions },
        unsafe { raw::RedisModule_FreeModuleUser },
        unsafe { raw::RedisModule_FreeString },
    ) else {
        return Err("ERR this server has no ACL API for modules (Redis 7.0+ needed)".into());
    };
    let name = unsafe { current(ctx) };
    if name.is_null() {
        return Ok(()); // no user: an internal client, which ACLs do not restrict
    }
    let user = unsafe { from_name(name) };
    unsafe { free_str(ctx, name) };
    if user.is_null() {
        return Err("NOPERM the current user no longer exists".into());
    }
    let allowed = OwnedString::new(ctx, key).map(|k| {
        let flags = (raw::REDISMODULE_CMD_KEY_INSERT | raw::REDISMODULE_CMD_KEY_UPDATE) as c_int;
        let status = unsafe { check(user, k.0, flags) };
        status == raw::REDISMODULE_OK as c_int
    });
    unsafe { free_user(user) };
    match allowed {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "NOPERM this user has no permissions to write the {what} '{}'",
            crate::parse::shown(key)
        )),
        None => Err("ERR module API unavailable".into()),
    }
}
