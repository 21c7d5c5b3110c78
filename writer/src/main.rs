//! lottery-writer: persists a redis-lottery campaign's wins stream (consumer group,
//! one database transaction per batch, then XACK) and its LOTTERY.DRAIN batches.
//!
//! Layout:
//! - `args`: the command line;
//! - `startup`: checks, the descriptor of a sharded campaign, the writers to run;
//! - `connection`: one Redis server or a cluster; `cluster`: slot routing in a cluster;
//! - `consumer`: the consumer loop of one campaign or shard; `rate`, `counts`: its rate limit
//!   and its tallies; `run`: one writer in this thread, or one thread per shard;
//! - `stream`: parsing the replies; `store`: SQLite and PostgreSQL; `log`, `signals`.

#[macro_use]
mod log;
mod args;
mod cluster;
mod connection;
mod consumer;
mod counts;
mod rate;
mod run;
mod signals;
mod startup;
mod store;
mod stream;

use clap::Parser;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit codes.
const EXIT_FATAL: i32 = 1;
const EXIT_REDIS_UNREACHABLE: i32 = 3;
const EXIT_DB_UNREACHABLE: i32 = 4;

type Res<T> = Result<T, String>;

fn main() {
    let args = args::Args::parse();
    std::process::exit(real_main(args));
}

fn real_main(args: args::Args) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = signals::spawn(Arc::clone(&stop)) {
        log!("error", "startup_failed", what = "signals", error = e);
        return EXIT_FATAL;
    }
    match startup::writers(&args, &stop) {
        Ok(writers) => run::run(writers, args.shards.is_some(), &stop),
        Err(code) => code,
    }
}
