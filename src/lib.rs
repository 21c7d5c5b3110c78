//! redis-lottery: prize draws for marketing campaigns, done atomically inside Redis.
//!
//! Layout: `engine` is plain Rust (alias table, rules, user state, encoding, argument parsing)
//! and knows nothing of Redis; `commands` holds one file per command, each with its static
//! description (`command_docs::Command`) from which the command is registered and documented; `entry` is the boundary Redis calls
//! through (the panic guard, safe replies and logs); `datatype` is the Redis data type
//! (RDB/AOF/DUMP/COPY/...); `replication` sends effects to replicas and the AOF.

pub(crate) use lottery_engine as engine;
pub(crate) use lottery_engine::parse;

mod acl;
mod clock;
mod cluster;
mod command_docs;
mod commands;
mod compat;
mod datatype;
mod entry;
mod ffi;
mod metrics;
mod notify;
mod replication;
mod rng;
mod stats_sync;
mod verify_log;

use datatype::LOTTERY_TYPE;
use entry::Level;
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

/// The load arguments: `debug-clock yes|no`, `rng chacha|xoshiro`, nothing else. Read as
/// bytes, so no argument (a NUL, invalid UTF-8) can trip anything; they override the
/// `lottery.debug-clock` / `lottery.rng` lines of the config file.
fn load_options(args: &[RedisString]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let name = args[i].as_slice();
        let value = args.get(i + 1).map(|v| v.as_slice());
        match (name, value) {
            (b"debug-clock", Some(v @ (b"yes" | b"no"))) => {
                clock::DEBUG_CLOCK.store(v == b"yes", std::sync::atomic::Ordering::Relaxed);
            }
            (b"rng", Some(v @ (b"chacha" | b"xoshiro"))) => {
                let kind = if v == b"chacha" {
                    rng::RngKind::chacha
                } else {
                    rng::RngKind::xoshiro
                };
                if let Ok(mut k) = rng::RNG_KIND.lock() {
                    *k = kind;
                }
            }
            _ => {
                return Err(format!(
                "lottery: bad load option '{}' (expected: debug-clock yes|no, rng chacha|xoshiro)",
                parse::shown(name)
            ))
            }
        }
        i += 2;
    }
    Ok(())
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    entry::install_panic_hook();
    entry::guard("module load", || Status::Err, || load(ctx, args))
}

fn load(ctx: &Context, args: &[RedisString]) -> Status {
    if let Err(e) = load_options(args) {
        entry::log(ctx.ctx, Level::Warning, &e);
        return Status::Err;
    }
    datatype::CLUSTER_MODE.store(
        ctx.get_flags()
            .contains(redis_module::ContextFlags::CLUSTER),
        std::sync::atomic::Ordering::Relaxed,
    );
    // Refuse (rather than crash on) short reads from RDB/RESTORE payloads; signal a key as
    // modified (WATCH, client-side caching) only when a command really changed it, never
    // because it was opened for writing and then refused. Plus what this server has
    // (`compat`: atomic slot migration on Valkey 9).
    let server = compat::detect(ctx);
    ffi::server::set_module_options(
        ctx,
        raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
            | raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED
            | server.extra_options,
    );
    // Every command as its description (`commands::ALL`) says.
    for &command in commands::ALL.iter() {
        if !entry::create_command(ctx.ctx, command) {
            entry::log(
                ctx.ctx,
                Level::Warning,
                &format!(
                    "lottery: could not register {}",
                    command.name.to_string_lossy()
                ),
            );
            return Status::Err;
        }
    }
    command_docs::register(ctx);
    metrics::register_info(ctx);
    stats_sync::init(ctx);
    entry::log(
        ctx.ctx,
        Level::Notice,
        &format!(
            "lottery: loaded (generator {}; {})",
            rng::kind_name(),
            server.summary
        ),
    );
    Status::Ok
}

redis_module! {
    name: "lottery",
    version: 1,
    allocator: (ModuleAlloc, MODULE_ALLOC),
    data_types: [LOTTERY_TYPE],
    init: init,
    commands: [],
    configurations: [
        i64: [],
        string: [],
        bool: [
            ["debug-clock", &clock::DEBUG_CLOCK, false, ConfigurationFlags::IMMUTABLE, None],
        ],
        enum: [
            ["rng", &rng::RNG_KIND, rng::RngKind::chacha, ConfigurationFlags::IMMUTABLE, None],
        ],
        module_args_as_configuration: false,
    ]
}
