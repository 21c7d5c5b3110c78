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
