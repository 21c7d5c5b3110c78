//! redis-lottery: prize draws for marketing campaigns, done atomically inside Redis.
//!
//! Layout: `engine` is plain Rust (alias table, rules, user state, encoding) and knows nothing
//! of Redis; `commands` holds one file per command; `datatype` is the Redis data type
//! (RDB/AOF/DUMP/COPY/...); `replication` sends effects to replicas and the AOF.

pub(crate) use lottery_engine as engine;
pub(crate) use lottery_engine::parse;

mod clock;
mod cluster;
mod command_docs;
mod commands;
mod datatype;
mod ffi;
mod metrics;
mod notify;
mod replication;
mod rng;

use commands::{
    apply, ban, configure, debug, drain, draw, grant, pause, restock, stats, transfer, user,
};
use datatype::LOTTERY_TYPE;
use redis_module::configuration::ConfigurationFlags;
use redis_module::{raw, redis_module, Context, RedisString, Status};

// Inside Redis, memory comes from Redis's allocator (so INFO and maxmemory see it); the unit
// tests run without Redis and use the system allocator.
#[cfg(not(test))]
type ModuleAlloc = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const MODULE_ALLOC: ModuleAlloc = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAlloc = std::alloc::System;
#[cfg(test)]
const MODULE_ALLOC: ModuleAlloc = std::alloc::System;

/// Checks the load arguments: `debug-clock yes|no`, `rng chacha|xoshiro`, nothing else.
fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let mut i = 0;
    while i < args.len() {
        let name = args[i].to_string_lossy();
        let value = args.get(i + 1).map(|v| v.to_string_lossy());
        let ok = matches!(
            (name.as_str(), value.as_deref()),
            ("debug-clock", Some("yes" | "no")) | ("rng", Some("chacha" | "xoshiro"))
        );
        if !ok {
            ctx.log_warning(&format!(
                "lottery: bad load option '{name}' (expected: debug-clock yes|no, rng chacha|xoshiro)"
            ));
            return Status::Err;
        }
        i += 2;
    }
    datatype::CLUSTER_MODE.store(
        ctx.get_flags()
            .contains(redis_module::ContextFlags::CLUSTER),
        std::sync::atomic::Ordering::Relaxed,
    );
    // Refuse (rather than crash on) short reads from RDB/RESTORE payloads.
    if let Some(set) = unsafe { raw::RedisModule_SetModuleOptions } {
        unsafe { set(ctx.ctx, raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as i32) };
    }
    // LOTTERY.DRAW is the hot path: registered directly, without the generic wrapper.
    let created = match unsafe { raw::RedisModule_CreateCommand } {
        Some(create) => unsafe {
            create(
                ctx.ctx,
                c"lottery.draw".as_ptr(),
                Some(draw::draw_command),
                c"write deny-oom fast".as_ptr(),
                1,
                1,
                1,
            )
        },
        None => raw::REDISMODULE_ERR as i32,
    };
    if created != raw::REDISMODULE_OK as i32 {
        ctx.log_warning("lottery: could not register lottery.draw");
        return Status::Err;
    }
    command_docs::register(ctx);
    metrics::register_info(ctx);
    ctx.log_notice(&format!("lottery: loaded (generator {})", rng::kind_name()));
    Status::Ok
}

redis_module! {
    name: "lottery",
    version: 1,
    allocator: (ModuleAlloc, MODULE_ALLOC),
    data_types: [LOTTERY_TYPE],
    init: init,
    commands: [
        ["lottery.configure", configure::configure, "write deny-oom", 1, 1, 1, ""],
        ["lottery.drain", drain::drain, "write", 1, 1, 1, ""],
        ["lottery.grant", grant::grant, "write deny-oom fast", 1, 1, 1, ""],
        ["lottery.restock", restock::restock, "write deny-oom fast", 1, 1, 1, ""],
        ["lottery.pause", pause::pause, "write fast", 1, 1, 1, ""],
        ["lottery.resume", pause::resume, "write fast", 1, 1, 1, ""],
        ["lottery.ban", ban::ban, "write deny-oom fast", 1, 1, 1, ""],
        ["lottery.unban", ban::unban, "write fast", 1, 1, 1, ""],
        ["lottery.user", user::user, "readonly fast", 1, 1, 1, ""],
        ["lottery.stats", stats::stats, "readonly", 1, 1, 1, ""],
        ["lottery.transfer", transfer::transfer, "write deny-oom", 1, 1, 1, ""],
        ["lottery.debug", debug::debug, "admin", 0, 0, 0, ""],
        ["lottery.apply", apply::apply, "write", 1, 1, 1, ""],
    ],
    configurations: [
        i64: [],
        string: [],
        bool: [
            ["debug-clock", &clock::DEBUG_CLOCK, false, ConfigurationFlags::IMMUTABLE, None],
        ],
        enum: [
            ["rng", &rng::RNG_KIND, rng::RngKind::chacha, ConfigurationFlags::IMMUTABLE, None],
        ],
        module_args_as_configuration: true,
    ]
}
