//! The command line.

use clap::{ArgGroup, Parser};
use std::time::Duration;

/// The largest value of every `*-ms` option: one day. (0 is refused where it would mean
/// "forever" or a busy loop: `--block-ms 0` would block forever in XREADGROUP.)
pub const MAX_MS: u64 = 86_400_000;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "lottery-writer",
    version,
    about = "Persists a redis-lottery campaign's wins stream and stock drains into SQLite, PostgreSQL or MySQL/MariaDB",
    group(ArgGroup::new("target").required(true).args(["campaign", "shards"]))
)]
pub struct Args {
    /// Redis URL, e.g. redis://127.0.0.1:6379 (redis://:password@host:port/db also works).
    /// With --cluster: a seed node of the cluster (repeat it, or separate several with commas).
    #[arg(long, required = true)]
    pub redis: Vec<String>,
    /// --redis is a Redis Cluster node: route every command to the master owning its key.
    #[arg(long)]
    pub cluster: bool,
    /// The campaign key (as given to LOTTERY.CONFIGURE).
    #[arg(long)]
    pub campaign: Option<String>,
    /// A sharded campaign: read the descriptor `lottery:shards:NAME` and consume every shard.
    #[arg(long, value_name = "NAME", conflicts_with = "stream")]
    pub shards: Option<String>,
    /// Consumer group name on the wins stream (created if missing).
    #[arg(long)]
    pub group: String,
    /// This writer's consumer name; keep it stable across restarts.
    #[arg(long)]
    pub consumer: String,
    /// sqlite:PATH, postgres://USER[:PASSWORD]@HOST[:PORT]/DB or
    /// mysql://USER[:PASSWORD]@HOST[:PORT]/DB (also mariadb://; percent-encode `@:/?#%` in a password)
    #[arg(long, default_value = "sqlite:wins.db")]
    pub database: String,
    /// Wins stream name; by default asked of the campaign (LOTTERY.STATS field `stream`).
    #[arg(long)]
    pub stream: Option<String>,
    /// Entries per XREADGROUP / XAUTOCLAIM and per database transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// How long one XREADGROUP blocks waiting for new entries (also the shutdown latency).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub block_ms: u64,
    /// Claim entries of other consumers pending longer than this (XAUTOCLAIM).
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub claim_idle_ms: u64,
    /// How often to look for such entries while running (default: --claim-idle-ms).
    #[arg(long, value_parser = clap::value_parser!(u64).range(100..=MAX_MS))]
    pub claim_every_ms: Option<u64>,
    /// Call LOTTERY.DRAIN this often and record it in stock_drains (0: never). Run one
    /// drain writer per campaign.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    pub drain_every_ms: u64,
    /// At most this many entries per second (0: unlimited).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub rate: u64,
    /// Connect timeout for Redis, and the limit of the retry backoff.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub timeout_ms: u64,
    /// Longest wait between two retries after a transient failure.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=MAX_MS))]
    pub max_backoff_ms: u64,
    /// SQLite: how long to wait for a lock (busy timeout). PostgreSQL: connect timeout.
    /// MySQL: connect, read and write timeout, and the lock wait timeout (whole seconds).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub db_timeout_ms: u64,
    /// How often to check that the campaign still exists and still writes to the same stream.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=MAX_MS))]
    pub check_every_ms: u64,
    /// Publish the counters into the hash `lottery-writer:{}:<group>:<consumer>:<target>` this often
    /// (0: never). It expires after 3 intervals (at least 15 s) unless refreshed.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    pub status_every_ms: u64,
    /// Deliver every win by HTTP POST to this URL (http://[USER:PASSWORD@]HOST[:PORT]/PATH;
    /// https is refused). Delivery runs beside storing; the database is its backlog. Also
    /// taken from the environment (keeps a password out of the process list).
    #[arg(
        long,
        value_name = "URL",
        env = "LOTTERY_AWARD_URL",
        hide_env_values = true
    )]
    pub award_url: Option<String>,
    /// Timeout of one award request (connect, send, response head), in ms.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub award_timeout_ms: u64,
    /// At most this many award requests per second, retries included (0: unlimited).
    /// (--rate limits entries read from the stream; this limits deliveries.)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub award_rate: u64,
    /// Award requests in flight at once: this many delivery threads, each with its own
    /// database connection, sharing --award-rate.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub award_concurrency: u64,
    /// At start, put the wins whose delivery failed (award_state 'failed') back in the queue.
    #[arg(long)]
    pub award_retry_failed: bool,
    /// A summary line at most this often (0: only at exit).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    pub log_every_ms: u64,
}

/// The read timeout of a writer's connections: a blocking read plus some slack.
pub fn read_timeout(args: &Args) -> Duration {
    Duration::from_millis(args.block_ms + args.timeout_ms.max(1000))
}
