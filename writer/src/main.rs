//! lottery-writer: persists a redis-lottery campaign's wins stream (consumer group,
//! one database transaction per batch, then XACK) and its LOTTERY.DRAIN batches.
//!
//! Layout:
//! - `args`: the command line;
//! - `startup`: checks, the descriptor of a sharded campaign, the writers to run;
//! - `connection`: one Redis server or a cluster; `cluster`: slot routing in a cluster;
//! - `consumer`: the consumer loop of one campaign or shard; `rate`, `counts`: its rate limit
//!   and its tallies; `run`: one writer in this thread, or one thread per shard;
//! - `stream`: parsing the replies (`verify_log`: the entries that are not wins); `store`:
//!   SQLite and PostgreSQL, `store_mysql`: MySQL / MariaDB; `status`: the status hash in Redis; `log`, `signals`;
//! - `award`: delivery of every win to `--award-url` (`award_deliver`: its loop,
//!   `award_http`: the HTTP client, `award_body`: the request body, `award_store`: the queue
//!   in the wins table).

#[macro_use]
mod log;
mod args;
mod award;
mod award_body;
mod award_deliver;
mod award_http;
mod award_store;
mod cluster;
mod connection;
mod consumer;
mod counts;
mod rate;
mod run;
mod signals;
mod startup;
mod status;
mod store;
#[cfg(feature = "mysql")]
mod store_mysql;
mod stream;
mod verify_log;

use clap::Parser;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit codes (see the README). 0: stopped by a signal with everything in hand stored;
/// 2: usage error (clap); 130: a second signal (see signals.rs).
/// Configuration: bad arguments or URL, an in-memory database, no such campaign, not a
/// campaign, `--stream` not a stream, module not loaded, Redis authentication failed.
const EXIT_FATAL: i32 = 1;
const EXIT_REDIS_UNREACHABLE: i32 = 3;
const EXIT_DB_UNREACHABLE: i32 = 4;
/// Stopped (signal) while the batch in hand, or a drain batch, was not stored: the entries
/// stay pending and the drain batch stays in `LOTTERY.DRAIN LAST`, for the next start.
const EXIT_UNSTORED: i32 = 5;
/// The database went away under the writer (the SQLite file removed or replaced): nothing
/// more is acknowledged.
const EXIT_DB_LOST: i32 = 6;
/// The campaign was deleted, or its wins stream changed (`LOTTERY.CONFIGURE ... STREAM`).
const EXIT_CAMPAIGN_CHANGED: i32 = 7;

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
    // A bad --award-url is a configuration error, found before anything is reached.
    let endpoint = match args.award_url.as_deref().map(award_http::Endpoint::parse) {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            log!("error", "startup_failed", what = "arguments", error = e);
            eprintln!("lottery-writer: {}", e);
            return EXIT_FATAL;
        }
    };
    let mut writers = match startup::writers(&args, &stop) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let award = match endpoint {
        None => None,
        Some(ep) => match award::start(&args, ep, &mut writers, &stop) {
            Ok(a) => Some(a),
            Err(code) => return code,
        },
    };
    // (the codes of a running writer: see consumer.rs and signals.rs)
    run::run(writers, args.shards.is_some(), &stop, award)
}
