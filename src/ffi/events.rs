//! Server events the module listens to: the event loop's "before sleep" point.

use redis_module::{raw, Context};
use std::os::raw::c_int;

/// `REDISMODULE_EVENT_EVENTLOOP` (Redis 7.0 and later) and its "before sleep" sub-event.
const EVENT_LOOP: raw::RedisModuleEvent = raw::RedisModuleEvent { id: 15, dataver: 1 };
const BEFORE_SLEEP: u64 = 0;

/// The "before sleep" handler, set once at load.
static HANDLER: std::sync::OnceLock<fn(&Context)> = std::sync::OnceLock::new();

extern "C" fn callback(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut std::os::raw::c_void,
) {
    if subevent != BEFORE_SLEEP || ctx.is_null() {
        return;
    }
    if let Some(h) = HANDLER.get() {
        let ctx = Context::new(ctx);
        crate::entry::guard("the event loop hook", || (), || h(&ctx));
    }
}

/// Calls `handler` each time the event loop is about to sleep: after the commands of an
/// iteration ran, before the AOF is written and replies and the replication stream are
/// sent. False: the server has no such event (nothing is subscribed).
pub fn on_before_sleep(ctx: &Context, handler: fn(&Context)) -> bool {
    // SAFETY: plain calls with a value argument; the server answers whether it knows the event.
    let supported = unsafe { raw::RedisModule_IsSubEventSupported }
        .is_some_and(|f| unsafe { f(EVENT_LOOP, BEFORE_SLEEP) } != 0);
    if !supported || HANDLER.set(handler).is_err() {
        return false;
    }
    // SAFETY: the load context and a function that lives as long as the module.
    unsafe { raw::RedisModule_SubscribeToServerEvent }.is_some_and(|sub| {
        let status = unsafe { sub(ctx.ctx, EVENT_LOOP, Some(callback)) };
        status == raw::REDISMODULE_OK as c_int
    })
}

/// `REDISMODULE_EVENT_PERSISTENCE` and the sub-events of a save in the server's own process.
const PERSISTENCE: raw::RedisModuleEvent = raw::RedisModuleEvent { id: 1, dataver: 1 };
const SYNC_RDB_START: u64 = 2;
const SAVE_ENDED: u64 = 3;
const SAVE_FAILED: u64 = 4;

/// A handler of a server event.
type Handler = fn(&Context);

/// The synchronous save handlers (start, end), set once at load.
static SAVE_HANDLERS: std::sync::OnceLock<(Handler, Handler)> = std::sync::OnceLock::new();

extern "C" fn save_callback(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut std::os::raw::c_void,
) {
    if ctx.is_null() {
        return;
    }
    let Some(&(start, end)) = SAVE_HANDLERS.get() else {
        return;
    };
    let h = match subevent {
        SYNC_RDB_START => start,
        SAVE_ENDED | SAVE_FAILED => end,
        _ => return,
    };
    let ctx = Context::new(ctx);
    crate::entry::guard("the persistence hook", || (), || h(&ctx));
}

/// Calls `start` when the server begins an RDB save in its own process (SAVE, SHUTDOWN,
/// DEBUG RELOAD, ...: the file holds the keyspace as it is at that point), and `end` when any
/// save ends (also a fork child's, in that child). False: not subscribed.
pub fn on_sync_save(ctx: &Context, start: fn(&Context), end: fn(&Context)) -> bool {
    // SAFETY: as in `on_before_sleep`.
    let supported = unsafe { raw::RedisModule_IsSubEventSupported }
        .is_some_and(|f| unsafe { f(PERSISTENCE, SYNC_RDB_START) } != 0);
    if !supported || SAVE_HANDLERS.set((start, end)).is_err() {
        return false;
    }
    unsafe { raw::RedisModule_SubscribeToServerEvent }.is_some_and(|sub| {
        let status = unsafe { sub(ctx.ctx, PERSISTENCE, Some(save_callback)) };
        status == raw::REDISMODULE_OK as c_int
    })
}
