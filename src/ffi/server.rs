//! The context's services: the clock, module options, replication, keyspace events, ACL
//! checks, command info.

use super::string::{OwnedString, Str};
use redis_module::{raw, Context};
use std::ffi::CStr;
use std::os::raw::c_int;

fn ok(status: c_int) -> bool {
    status == raw::REDISMODULE_OK as c_int
}

/// Unix milliseconds from Redis (0 before the module API is set up).
pub fn milliseconds() -> i64 {
    // SAFETY: no arguments; the pointer is set by RedisModule_Init before any command runs.
    match unsafe { raw::RedisModule_Milliseconds } {
        Some(f) => unsafe { f() },
        None => 0,
    }
}

/// `RedisModule_SetModuleOptions` (absent before Redis 6.0: nothing happens).
pub fn set_module_options(ctx: &Context, options: u32) {
    if let Some(set) = unsafe { raw::RedisModule_SetModuleOptions } {
        // SAFETY: the load context.
        unsafe { set(ctx.ctx, options as c_int) };
    }
}

/// Signals `key` as modified (WATCH, client-side caching).
pub fn signal_modified(ctx: &Context, key: Str<'_>) {
    if let Some(f) = unsafe { raw::RedisModule_SignalModifiedKey } {
        // SAFETY: the command's context and a valid key name.
        unsafe { f(ctx.ctx, key.raw()) };
    }
}

/// Raises a keyspace event of `class` on `key`. A failure is ignored: events are advisory.
pub fn notify(ctx: &Context, class: c_int, event: &CStr, key: Str<'_>) {
    if ctx.ctx.is_null() || key.raw().is_null() {
        return;
    }
    if let Some(notify) = unsafe { raw::RedisModule_NotifyKeyspaceEvent } {
        // SAFETY: the command's context, a C string and a valid key name.
        unsafe { notify(ctx.ctx, class, event.as_ptr(), key.raw()) };
    }
}

/// Whether the server asks modules not to add to the replication stream: writes are paused
/// (`CLIENT PAUSE`, `FAILOVER`, a cluster's manual failover) so replicas can catch up.
pub fn writes_paused() -> bool {
    // SAFETY: a plain query of the server's state.
    unsafe { raw::RedisModule_AvoidReplicaTraffic }.is_some_and(|f| unsafe { f() } != 0)
}

/// The database the context has selected (0 if the server cannot say).
pub fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: a context Redis gave us.
    unsafe { raw::RedisModule_GetSelectedDb }.map_or(0, |f| unsafe { f(ctx.ctx) })
}

/// Selects database `db` in the context. False: no such database.
pub fn select_db(ctx: &Context, db: i32) -> bool {
    // SAFETY: a context Redis gave us; Redis checks the number.
    unsafe { raw::RedisModule_SelectDb }
        .is_some_and(|f| unsafe { f(ctx.ctx, db) } == raw::REDISMODULE_OK as c_int)
}

/// Replicates `<command> <key> <blob>` to replicas and the AOF. False: Redis refused.
pub fn replicate_key_blob(ctx: &Context, command: &CStr, key: Str<'_>, blob: &[u8]) -> bool {
    match unsafe { raw::RedisModule_Replicate } {
        // SAFETY: "sb" = a RedisModuleString, then a buffer pointer and its length.
        Some(f) => ok(unsafe {
            f(
                ctx.ctx,
                command.as_ptr(),
                c"sb".as_ptr(),
                key.raw(),
                blob.as_ptr(),
                blob.len(),
            )
        }),
        None => false,
    }
}

/// Replicates `<command> <key> <blob> <a> [<b>]` (the strings passed as they are, not
/// copied). False: Redis refused.
pub fn replicate_key_blob_args(
    ctx: &Context,
    command: &CStr,
    key: Str<'_>,
    blob: &[u8],
    a: Str<'_>,
    b: Option<Str<'_>>,
) -> bool {
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return false;
    };
    // SAFETY: "sbs" / "sbss": RedisModuleStrings and a buffer with its length, as given.
    ok(unsafe {
        match b {
            None => f(
                ctx.ctx,
                command.as_ptr(),
                c"sbs".as_ptr(),
                key.raw(),
                blob.as_ptr(),
                blob.len(),
                a.raw(),
            ),
            Some(b) => f(
                ctx.ctx,
                command.as_ptr(),
                c"sbss".as_ptr(),
                key.raw(),
                blob.as_ptr(),
                blob.len(),
                a.raw(),
                b.raw(),
            ),
        }
    })
}

/// Replicates `<command> <argv...>` verbatim (the strings passed as they are, not copied).
/// False: Redis refused.
pub fn replicate_argv(ctx: &Context, command: &CStr, argv: &[Str<'_>]) -> bool {
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return false;
    };
    // SAFETY: "v" = an array of RedisModuleString pointers and its length; a `Str` is a
    // transparent pointer to a string valid for the call, and Redis only reads the array.
    ok(unsafe {
        f(
            ctx.ctx,
            command.as_ptr(),
            c"v".as_ptr(),
            argv.as_ptr().cast_mut(),
            argv.len(),
        )
    })
}

/// Why an ACL check could not answer.
pub enum AclError {
    /// The server has no ACL module API (before Redis 7.0).
    NoApi,
    /// The current user was deleted.
    NoUser,
    /// A module API call failed.
    Unavailable,
}

/// Whether the calling user may write (insert into, update) `key`. Ok(true) without a user
/// (an internal client, which ACLs do not restrict).
pub fn acl_may_write(ctx: &Context, key: &[u8]) -> Result<bool, AclError> {
    let (Some(current), Some(from_name), Some(check), Some(free_user), Some(free_str)) = (
        unsafe { raw::RedisModule_GetCurrentUserName },
        unsafe { raw::RedisModule_GetModuleUserFromUserName },
        unsafe { raw::RedisModule_ACLCheckKeyPermissions },
        unsafe { raw::RedisModule_FreeModuleUser },
        unsafe { raw::RedisModule_FreeString },
    ) else {
        return Err(AclError::NoApi);
    };
    // SAFETY: the command's context; the name and user are freed once, here.
    let name = unsafe { current(ctx.ctx) };
    if name.is_null() {
        return Ok(true);
    }
    let user = unsafe { from_name(name) };
    unsafe { free_str(ctx.ctx, name) };
    if user.is_null() {
        return Err(AclError::NoUser);
    }
    let allowed = OwnedString::new(ctx, key).map(|k| {
        let flags = (raw::REDISMODULE_CMD_KEY_INSERT | raw::REDISMODULE_CMD_KEY_UPDATE) as c_int;
        // SAFETY: a live user and a string we own.
        ok(unsafe { check(user, k.as_str().raw(), flags) })
    });
    unsafe { free_user(user) };
    allowed.ok_or(AclError::Unavailable)
}

/// Why a command's info was not set.
pub enum InfoError {
    /// The server has no `RedisModule_SetCommandInfo` (before Redis 7.0).
    NoApi,
    /// No command of that name is registered.
    NotFound,
    /// Redis refused the info.
    Refused,
}

/// `RedisModule_SetCommandInfo` for the registered command `name`. What `info` points to
/// (arguments, key specs) must live for the process: it is leaked or static.
pub fn set_command_info(
    ctx: &Context,
    name: &CStr,
    info: &raw::RedisModuleCommandInfo,
) -> Result<(), InfoError> {
    let (Some(get), Some(set)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        return Err(InfoError::NoApi);
    };
    // SAFETY: the load context and a C string.
    let cmd = unsafe { get(ctx.ctx, name.as_ptr()) };
    if cmd.is_null() {
        return Err(InfoError::NotFound);
    }
    // SAFETY: a registered command; what `info` points to lives for the process.
    if ok(unsafe { set(cmd, info) }) {
        Ok(())
    } else {
        Err(InfoError::Refused)
    }
}

/// Every module option this server knows (`RedisModule_GetModuleOptionsAll`, Redis 7.2+ and
/// every Valkey); None where the API is missing (then only the options of Redis 7.0 are safe).
pub fn module_options_all() -> Option<u32> {
    // SAFETY: no arguments.
    unsafe { raw::RedisModule_GetModuleOptionsAll }.map(|f| unsafe { f() } as u32)
}

/// The module API functions whose presence differs by server, as (name, present).
pub fn optional_apis() -> [(&'static str, bool); 5] {
    // SAFETY: copies the function pointers (plain `Option<fn>` values) set by RedisModule_Init.
    let (acl_categories, defrag, command_info, key_permissions) = unsafe {
        (
            raw::RedisModule_SetCommandACLCategories,
            raw::RedisModule_RegisterDefragCallbacks,
            raw::RedisModule_SetCommandInfo,
            raw::RedisModule_ACLCheckKeyPermissions,
        )
    };
    [
        ("SetCommandACLCategories", acl_categories.is_some()),
        ("RegisterDefragCallbacks", defrag.is_some()),
        ("SetCommandInfo", command_info.is_some()),
        ("ACLCheckKeyPermissions", key_permissions.is_some()),
        ("GetModuleOptionsAll", module_options_all().is_some()),
    ]
}
