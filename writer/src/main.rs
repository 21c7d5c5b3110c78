//! lottery-writer: persists a redis-lottery campaign's wins stream (consumer group,
//! one database transaction per batch, then XACK) and its LOTTERY.DRAIN batches.

#[macro_use]
mod log;
mod cluster;
mod signals;
mod store;
mod stream;

use clap::{ArgGroup, Parser};
use redis::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{DrainOutcome, Store};
use stream::Batch;

/// Exit codes.
const EXIT_FATAL: i32 = 1;
const EXIT_REDIS_UNREACHABLE: i32 = 3;
const EXIT_DB_UNREACHABLE: i32 = 4;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "lottery-writer",
    version,
    about = "Persists a redis-lottery campaign's wins stream and stock drains into SQLite or PostgreSQL",
    group(ArgGroup::new("target").required(true).args(["campaign", "shards"]))
)]
struct Args {
    /// Redis URL, e.g. redis://127.0.0.1:6379 (redis://:password@host:port/db also works).
    /// With --cluster: a seed node of the cluster (repeat it, or separate several with commas).
    #[arg(long, required = true)]
    redis: Vec<String>,
    /// --redis is a Redis Cluster node: route every command to the master owning its key.
    #[arg(long)]
    cluster: bool,
    /// The campaign key (as given to LOTTERY.CONFIGURE).
    #[arg(long)]
    campaign: Option<String>,
    /// A sharded campaign: read the descriptor `lottery:shards:NAME` and consume every shard.
    #[arg(long, value_name = "NAME", conflicts_with = "stream")]
    shards: Option<String>,
    /// Consumer group name on the wins stream (created if missing).
    #[arg(long)]
    group: String,
    /// This writer's consumer name; keep it stable across restarts.
    #[arg(long)]
    consumer: String,
    /// sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    #[arg(long, default_value = "sqlite:wins.db")]
    database: String,
    /// Wins stream name; by default asked of the campaign (LOTTERY.STATS field `stream`).
    #[arg(long)]
    stream: Option<String>,
    /// Entries per XREADGROUP / XAUTOCLAIM and per database transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch: u64,
    /// How long one XREADGROUP blocks waiting for new entries (also the shutdown latency).
    #[arg(long, default_value_t = 1000)]
    block_ms: u64,
    /// Claim entries of other consumers pending longer than this (XAUTOCLAIM).
    #[arg(long, default_value_t = 60_000)]
    claim_idle_ms: u64,
    /// How often to look for such entries while running (default: --claim-idle-ms).
    #[arg(long)]
    claim_every_ms: Option<u64>,
    /// Call LOTTERY.DRAIN this often and record it in stock_drains (0: never). Run one
    /// drain writer per campaign.
    #[arg(long, default_value_t = 0)]
    drain_every_ms: u64,
    /// At most this many entries per second (0: unlimited).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Connect timeout for Redis, and the limit of the retry backoff.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Longest wait between two retries after a transient failure.
    #[arg(long, default_value_t = 10_000)]
    max_backoff_ms: u64,
    /// A summary line at most this often (0: only at exit).
    #[arg(long, default_value_t = 5000)]
    log_every_ms: u64,
}

/// Leaky bucket: `tat` is when the bucket is empty again (GCRA form).
struct Bucket {
    per_entry: Option<Duration>,
    tat: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            per_entry: (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64)),
            tat: Instant::now(),
        }
    }
    /// How long to wait before `n` more entries may go.
    fn wait(&self) -> Duration {
        self.tat.saturating_duration_since(Instant::now())
    }
    fn take(&mut self, n: usize) {
        if let Some(p) = self.per_entry {
            self.tat = self.tat.max(Instant::now()) + p * n as u32;
        }
    }
}

#[derive(Default)]
struct Counts {
    read: u64,
    inserted: u64,
    duplicates: u64,
    acked: u64,
    deleted: u64,
    malformed: u64,
    recovered: u64,
    claimed: u64,
    batches: u64,
    drains_stored: u64,
    drains_skipped: u64,
    drains_empty: u64,
    errors: u64,
}

impl Counts {
    /// The `key=value` fields of a `progress` / `stopped` line.
    fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("read", self.read),
            ("inserted", self.inserted),
            ("duplicates", self.duplicates),
            ("acked", self.acked),
            ("recovered", self.recovered),
            ("claimed", self.claimed),
            ("deleted", self.deleted),
            ("malformed", self.malformed),
            ("batches", self.batches),
            ("drains_stored", self.drains_stored),
            ("drains_skipped", self.drains_skipped),
            ("drains_empty", self.drains_empty),
            ("errors", self.errors),
        ]
        .into_iter()
        .map(|(k, n)| (k, n.to_string()))
        .collect()
    }

    fn add(&mut self, o: &Counts) {
        self.read += o.read;
        self.inserted += o.inserted;
        self.duplicates += o.duplicates;
        self.acked += o.acked;
        self.deleted += o.deleted;
        self.malformed += o.malformed;
        self.recovered += o.recovered;
        self.claimed += o.claimed;
        self.batches += o.batches;
        self.drains_stored += o.drains_stored;
        self.drains_skipped += o.drains_skipped;
        self.drains_empty += o.drains_empty;
        self.errors += o.errors;
    }
}

/// Where the commands go: one server (one connection), or a cluster (the master owning each
/// command's key; see cluster.rs).
enum Redis {
    Single {
        client: redis::Client,
        con: Option<redis::Connection>,
        connect_timeout: Duration,
        read_timeout: Duration,
        write_timeout: Duration,
    },
    Cluster(cluster::Cluster),
}

impl Redis {
    fn connected(&self) -> bool {
        match self {
            Redis::Single { con, .. } => con.is_some(),
            Redis::Cluster(_) => true,
        }
    }

    /// Single: opens the connection. Cluster: reads the slot map (connections are opened
    /// per node as commands need them).
    fn connect(&mut self) -> redis::RedisResult<()> {
        match self {
            Redis::Single {
                client,
                con,
                connect_timeout,
                read_timeout,
                write_timeout,
            } => {
                let c = client.get_connection_with_timeout(*connect_timeout)?;
                c.set_read_timeout(Some(*read_timeout))?;
                c.set_write_timeout(Some(*write_timeout))?;
                *con = Some(c);
                Ok(())
            }
            Redis::Cluster(cl) => cl.refresh(),
        }
    }

    /// Runs `c`, whose key is `key` (the key routes it in a cluster). A connection error
    /// drops the connection: the next command reconnects.
    fn query(&mut self, key: &str, c: &redis::Cmd) -> redis::RedisResult<Value> {
        match self {
            Redis::Single { .. } => {
                if !self.connected() {
                    self.connect()?;
                }
                let Redis::Single { con: Some(con), .. } = self else {
                    unreachable!("connected above");
                };
                let r = c.query::<Value>(con);
                if let Err(e) = &r {
                    if e.is_io_error()
                        || e.is_timeout()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error()
                    {
                        self.reset();
                    }
                }
                r
            }
            Redis::Cluster(cl) => cl.query(key.as_bytes(), c),
        }
    }

    fn reset(&mut self) {
        match self {
            Redis::Single { con, .. } => *con = None,
            Redis::Cluster(cl) => cl.reset(),
        }
    }

    /// A new handle on the same server or cluster, with its own connections.
    fn fresh(&self, read_timeout: Duration) -> Redis {
        match self {
            Redis::Single {
                client,
                connect_timeout,
                write_timeout,
                ..
            } => Redis::Single {
                client: client.clone(),
                con: None,
                connect_timeout: *connect_timeout,
                read_timeout,
                write_timeout: *write_timeout,
            },
            Redis::Cluster(cl) => Redis::Cluster(cl.fresh(read_timeout)),
        }
    }
}

struct Writer {
    args: Args,
    redis: Redis,
    /// The campaign key (in sharded mode: this shard's key).
    campaign: String,
    store: Box<dyn Store>,
    stream: String,
    stop: Arc<AtomicBool>,
    bucket: Bucket,
    counts: Counts,
    last_claim: Instant,
    last_drain: Instant,
    last_log: Instant,
}

type Res<T> = Result<T, String>;

fn redis_err(what: &str, e: redis::RedisError) -> String {
    format!("Redis {}: {}", what, e)
}

fn mask_url(url: &str) -> String {
    // redis://user:secret@host -> redis://user:***@host
    if let (Some(scheme_end), Some(at)) = (url.find("://"), url.rfind('@')) {
        let auth = &url[scheme_end + 3..at];
        if let Some(colon) = auth.find(':') {
            return format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &auth[..colon],
                &url[at..]
            );
        }
    }
    url.to_string()
}

/// The read timeout of a writer's connections: a blocking read plus some slack.
fn read_timeout(args: &Args) -> Duration {
    Duration::from_millis(args.block_ms + args.timeout_ms.max(1000))
}

impl Writer {
    fn connect(&mut self) -> Res<()> {
        self.redis.connect().map_err(|e| redis_err("connect", e))
    }

    /// Runs `c` (`key`: the key it addresses). The outer error: could not connect.
    fn raw(&mut self, key: &str, c: &redis::Cmd) -> Res<redis::RedisResult<Value>> {
        if !self.redis.connected() {
            self.connect()?;
        }
        Ok(self.redis.query(key, c))
    }

    fn cmd(&mut self, what: &str, key: &str, c: &redis::Cmd) -> Res<Value> {
        self.raw(key, c)?.map_err(|e| redis_err(what, e))
    }

    fn ensure_group(&mut self) -> Res<()> {
        let mut c = redis::cmd("XGROUP");
        c.arg("CREATE")
            .arg(&self.stream)
            .arg(&self.args.group)
            .arg("0")
            .arg("MKSTREAM");
        let stream = self.stream.clone();
        match self.raw(&stream, &c)? {
            Ok(_) => {
                log!(
                    "info",
                    "group_created",
                    stream = self.stream,
                    group = self.args.group
                );
                Ok(())
            }
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(redis_err("XGROUP CREATE", e)),
        }
    }

    fn batch_size(&self) -> u64 {
        if self.args.rate > 0 {
            // Keep bursts to about a tenth of a second's worth.
            self.args.batch.min((self.args.rate / 10).max(1))
        } else {
            self.args.batch
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early on a stop request. Returns false when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// Stores a batch in one transaction, then acknowledges every entry in it.
    fn process(&mut self, b: Batch, source: &str) -> Res<()> {
        if b.is_empty() {
            return Ok(());
        }
        // Rate: wait before writing; a stop request ends the wait (the batch in hand is
        // still finished).
        let w = self.bucket.wait();
        if !w.is_zero() {
            self.sleep(w);
        }
        self.bucket.take(b.ack.len());
        for (id, why) in &b.malformed {
            log!(
                "warn",
                "malformed_entry",
                stream = self.stream,
                id = id,
                reason = why
            );
        }
        let inserted = if b.wins.is_empty() {
            0
        } else {
            self.store.write_wins(&self.campaign, &b.wins)?
        };
        let mut c = redis::cmd("XACK");
        c.arg(&self.stream).arg(&self.args.group).arg(&b.ack);
        let stream = self.stream.clone();
        let acked = stream::int(&self.cmd("XACK", &stream, &c)?).unwrap_or(0) as u64;
        let n = b.ack.len() as u64;
        self.counts.read += n;
        self.counts.batches += 1;
        self.counts.inserted += inserted as u64;
        self.counts.duplicates += (b.wins.len() - inserted) as u64;
        self.counts.acked += acked;
        self.counts.deleted += b.deleted as u64;
        self.counts.malformed += b.malformed.len() as u64;
        match source {
            "pending" => self.counts.recovered += n,
            "claimed" => self.counts.claimed += n,
            _ => {}
        }
        if source != "new" {
            log!(
                "info",
                "batch",
                source = source,
                entries = n,
                inserted = inserted,
                duplicates = b.wins.len() - inserted,
                deleted = b.deleted,
                malformed = b.malformed.len(),
                acked = acked
            );
        }
        Ok(())
    }

    /// Our own pending entries first (XREADGROUP with an ID instead of `>`).
    fn recover_pending(&mut self) -> Res<()> {
        let mut cursor = "0".to_string();
        loop {
            let mut c = redis::cmd("XREADGROUP");
            c.arg("GROUP")
                .arg(&self.args.group)
                .arg(&self.args.consumer)
                .arg("COUNT")
                .arg(self.batch_size())
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(&cursor);
            let b = stream::parse_xreadgroup(&self.cmd("XREADGROUP", &self.stream.clone(), &c)?)?;
            let Some(last) = b.last_id.clone() else {
                return Ok(());
            };
            self.process(b, "pending")?;
            cursor = last;
            if self.stopping() {
                return Ok(());
            }
        }
    }

    /// Entries pending on other (dead) consumers for longer than --claim-idle-ms.
    fn claim(&mut self) -> Res<()> {
        self.last_claim = Instant::now();
        let mut cursor = "0-0".to_string();
        loop {
            let mut c = redis::cmd("XAUTOCLAIM");
            c.arg(&self.stream)
                .arg(&self.args.group)
                .arg(&self.args.consumer)
                .arg(self.args.claim_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.batch_size());
            let (next, b) =
                stream::parse_xautoclaim(&self.cmd("XAUTOCLAIM", &self.stream.clone(), &c)?)?;
            if b.deleted > 0 && b.is_empty() {
                self.counts.deleted += b.deleted as u64;
                log!("info", "claim_deleted", entries = b.deleted);
            }
            self.process(b, "claimed")?;
            if next == "0-0" || self.stopping() {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn drain(&mut self, last: bool) -> Res<()> {
        self.last_drain = Instant::now();
        let mut c = redis::cmd("LOTTERY.DRAIN");
        c.arg(&self.campaign);
        if last {
            c.arg("LAST");
        }
        let d = stream::parse_drain(&self.cmd("LOTTERY.DRAIN", &self.campaign.clone(), &c)?)?;
        if last && d.seq == 0 {
            return Ok(());
        }
        let outcome = self.store.write_drain(&self.campaign, &d)?;
        let sold: i64 = d.sold.iter().map(|(_, n)| n).sum();
        match outcome {
            DrainOutcome::Stored => self.counts.drains_stored += 1,
            DrainOutcome::AlreadyStored => self.counts.drains_skipped += 1,
            DrainOutcome::Empty => self.counts.drains_empty += 1,
        }
        if outcome != DrainOutcome::Empty || last {
            log!(
                "info",
                "drain",
                last = last,
                seq = d.seq,
                prizes = d.sold.len(),
                sold = sold,
                outcome = format!("{:?}", outcome).to_lowercase()
            );
        }
        Ok(())
    }

    /// After (re)connecting: group, own pending entries, dead consumers' entries, last drain.
    fn recover(&mut self) -> Res<()> {
        self.ensure_group()?;
        if self.args.drain_every_ms > 0 {
            self.drain(true)?;
        }
        self.recover_pending()?;
        if !self.stopping() {
            self.claim()?;
        }
        Ok(())
    }

    fn step(&mut self) -> Res<()> {
        if self.args.drain_every_ms > 0
            && self.last_drain.elapsed() >= Duration::from_millis(self.args.drain_every_ms)
        {
            self.drain(false)?;
        }
        let claim_every = Duration::from_millis(
            self.args
                .claim_every_ms
                .unwrap_or(self.args.claim_idle_ms)
                .max(100),
        );
        if self.last_claim.elapsed() >= claim_every {
            self.claim()?;
        }
        if self.stopping() {
            return Ok(());
        }
        let mut block = self.args.block_ms;
        if self.args.drain_every_ms > 0 {
            let left = Duration::from_millis(self.args.drain_every_ms)
                .saturating_sub(self.last_drain.elapsed());
            block = block.min(left.as_millis() as u64).max(1);
        }
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP")
            .arg(&self.args.group)
            .arg(&self.args.consumer)
            .arg("COUNT")
            .arg(self.batch_size())
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">");
        let b = stream::parse_xreadgroup(&self.cmd("XREADGROUP", &self.stream.clone(), &c)?)?;
        self.process(b, "new")
    }

    fn summary(&self, event: &str) {
        log::line("info", event, &self.counts.fields());
    }

    fn run(&mut self) {
        let mut need_recover = true;
        let mut backoff = Duration::from_millis(100);
        let max_backoff = Duration::from_millis(self.args.max_backoff_ms.max(100));
        while !self.stopping() {
            let r = if need_recover {
                self.recover()
            } else {
                self.step()
            };
            match r {
                Ok(()) => {
                    if need_recover {
                        log!(
                            "info",
                            "recovered",
                            pending = self.counts.recovered,
                            claimed = self.counts.claimed
                        );
                    }
                    need_recover = false;
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    self.counts.errors += 1;
                    log!(
                        "error",
                        "retry",
                        error = e,
                        backoff_ms = backoff.as_millis()
                    );
                    if !self.sleep(backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(max_backoff);
                    if let Err(e) = self.store.reconnect() {
                        log!("error", "db_reconnect_failed", error = e);
                    }
                    self.redis.reset();
                    // Whatever was in hand is still pending: read it again.
                    need_recover = true;
                }
            }
            if self.args.log_every_ms > 0
                && self.last_log.elapsed() >= Duration::from_millis(self.args.log_every_ms)
            {
                self.last_log = Instant::now();
                self.summary("progress");
            }
        }
        // Stopping: the batch in hand was finished above. Record a last drain so the
        // stock counts are complete up to now.
        if self.args.drain_every_ms > 0 && !need_recover {
            if let Err(e) = self.drain(false) {
                log!("error", "final_drain_failed", error = e);
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    std::process::exit(real_main(args));
}

/// The descriptor of a sharded campaign: its shard keys, in order.
fn descriptor_key(name: &str) -> String {
    format!("lottery:shards:{}", name)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Reads `lottery:shards:NAME` (HGETALL): the shard keys `shard:0..shards-1`.
fn parse_descriptor(name: &str, v: &Value) -> Res<Vec<String>> {
    let key = descriptor_key(name);
    let empty = match v {
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => return Err(format!("unexpected HGETALL {} reply: {:?}", key, v)),
    };
    if empty {
        return Err(format!(
            "no sharded campaign {:?} ({} does not exist)",
            name, key
        ));
    }
    if let Some(f) = stream::field(v, "format").and_then(stream::string) {
        if f != "1" {
            return Err(format!("{}: unsupported format {:?} (expected 1)", key, f));
        }
    }
    let n = stream::field(v, "shards")
        .and_then(stream::int)
        .filter(|n| (1..=65536).contains(n))
        .ok_or_else(|| format!("{}: no valid `shards` field", key))?;
    let mut keys: Vec<String> = Vec::new();
    for i in 0..n {
        let k = stream::field(v, &format!("shard:{}", i))
            .and_then(stream::string)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("{}: no field shard:{} (shards={})", key, i, n))?;
        if keys.contains(&k) {
            return Err(format!("{}: shard key {:?} listed twice", key, k));
        }
        keys.push(k);
    }
    Ok(keys)
}

fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}

/// One campaign (or shard) to consume: its key and its wins stream.
struct Target {
    campaign: String,
    stream: String,
}

fn real_main(args: Args) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = signals::spawn(Arc::clone(&stop)) {
        log!("error", "startup_failed", what = "signals", error = e);
        return EXIT_FATAL;
    }

    let redis_urls = args
        .redis
        .iter()
        .map(|u| mask_url(u))
        .collect::<Vec<_>>()
        .join(",");
    match (&args.campaign, &args.shards) {
        (Some(campaign), None) if !args.cluster => log!(
            "info",
            "start",
            redis = redis_urls,
            campaign = campaign,
            group = args.group,
            consumer = args.consumer,
            database = mask_url(&args.database),
            rate = args.rate,
            drain_every_ms = args.drain_every_ms,
            claim_idle_ms = args.claim_idle_ms
        ),
        _ => log!(
            "info",
            "start",
            redis = redis_urls,
            cluster = args.cluster,
            campaign = args.campaign.as_deref().unwrap_or(""),
            shards = args.shards.as_deref().unwrap_or(""),
            group = args.group,
            consumer = args.consumer,
            database = mask_url(&args.database),
            rate = args.rate,
            drain_every_ms = args.drain_every_ms,
            claim_idle_ms = args.claim_idle_ms
        ),
    }

    if let Some(name) = &args.shards {
        if !valid_name(name) {
            log!(
                "error",
                "startup_failed",
                what = "campaign",
                error = format!(
                    "invalid sharded campaign name {:?} (expected [A-Za-z0-9_.:-]{{1,64}})",
                    name
                )
            );
            return EXIT_FATAL;
        }
    }

    let connect_timeout = Duration::from_millis(args.timeout_ms.max(1));
    let startup_read_timeout = Duration::from_millis(args.timeout_ms.max(1000));
    let write_timeout = Duration::from_millis(args.timeout_ms.max(1000));
    let mut probe = if args.cluster {
        match cluster::Cluster::new(
            &args.redis,
            connect_timeout,
            startup_read_timeout,
            write_timeout,
        ) {
            Ok(c) => Redis::Cluster(c),
            Err(e) => {
                log!("error", "startup_failed", what = "redis", error = e);
                return EXIT_FATAL;
            }
        }
    } else {
        if args.redis.len() > 1 {
            log!(
                "error",
                "startup_failed",
                what = "redis",
                error = "several --redis URLs need --cluster"
            );
            return EXIT_FATAL;
        }
        match redis::Client::open(args.redis[0].as_str()) {
            Ok(client) => Redis::Single {
                client,
                con: None,
                connect_timeout,
                read_timeout: startup_read_timeout,
                write_timeout,
            },
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "redis",
                    error = format!("invalid --redis URL: {}", e)
                );
                return EXIT_FATAL;
            }
        }
    };
    if let Err(e) = store::parse_url(&args.database) {
        log!("error", "startup_failed", what = "database", error = e);
        return EXIT_FATAL;
    }

    // Redis first: fail at once (no retry) when it is unreachable at start.
    if let Err(e) = probe.connect() {
        log!(
            "error",
            "startup_failed",
            what = "redis",
            url = redis_urls,
            error = e
        );
        eprintln!(
            "lottery-writer: cannot reach Redis at {}: {}",
            redis_urls, e
        );
        return EXIT_REDIS_UNREACHABLE;
    }

    // What to consume: the campaign, or every shard the descriptor lists.
    let mut campaigns: Vec<String> = Vec::new();
    if let Some(name) = &args.shards {
        let key = descriptor_key(name);
        let v = match probe.query(&key, redis::cmd("HGETALL").arg(&key)) {
            Ok(v) => v,
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "campaign",
                    shards = name,
                    error = e
                );
                eprintln!("lottery-writer: HGETALL {} failed: {}", key, e);
                return if is_unreachable(&e) {
                    EXIT_REDIS_UNREACHABLE
                } else {
                    EXIT_FATAL
                };
            }
        };
        match parse_descriptor(name, &v) {
            Ok(keys) => campaigns = keys,
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "campaign",
                    shards = name,
                    error = e
                );
                eprintln!("lottery-writer: {}", e);
                return EXIT_FATAL;
            }
        }
    } else if let Some(c) = &args.campaign {
        campaigns.push(c.clone());
    }
    let sharded = args.shards.is_some();

    let mut targets = Vec::new();
    for campaign in campaigns {
        let stream_name = match &args.stream {
            Some(s) => s.clone(),
            None => {
                let stats = probe.query(&campaign, redis::cmd("LOTTERY.STATS").arg(&campaign));
                let name = match stats {
                    Ok(v) => stream::field(&v, "stream").and_then(stream::string),
                    Err(e) => {
                        log!(
                            "error",
                            "startup_failed",
                            what = "campaign",
                            campaign = campaign,
                            error = e
                        );
                        eprintln!("lottery-writer: LOTTERY.STATS {} failed: {}", campaign, e);
                        return if is_unreachable(&e) {
                            EXIT_REDIS_UNREACHABLE
                        } else {
                            EXIT_FATAL
                        };
                    }
                };
                match name {
                    Some(n) => n,
                    None => {
                        log!(
                            "error",
                            "startup_failed",
                            what = "campaign",
                            error = "LOTTERY.STATS has no stream field"
                        );
                        return EXIT_FATAL;
                    }
                }
            }
        };
        targets.push(Target {
            campaign,
            stream: stream_name,
        });
    }

    // One store per campaign / shard (each shard's thread writes through its own
    // connection; SQLite: WAL, IMMEDIATE transactions and a busy timeout serialize them).
    let mut writers = Vec::new();
    let now = Instant::now();
    for t in targets {
        let store = match store::open(&args.database) {
            Ok(s) => s,
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "database",
                    database = mask_url(&args.database),
                    error = e
                );
                eprintln!(
                    "lottery-writer: cannot open the database {}: {}",
                    mask_url(&args.database),
                    e
                );
                return EXIT_DB_UNREACHABLE;
            }
        };
        if sharded {
            log::set_shard(Some(&t.campaign));
        }
        log!(
            "info",
            "ready",
            stream = t.stream,
            db = store.kind(),
            batch = args.batch
        );
        log::set_shard(None);
        let mut w = Writer {
            bucket: Bucket::new(args.rate),
            args: args.clone(),
            redis: probe.fresh(read_timeout(&args)),
            campaign: t.campaign,
            store,
            stream: t.stream,
            stop: Arc::clone(&stop),
            counts: Counts::default(),
            last_claim: now,
            last_drain: now,
            last_log: now,
        };
        if let Err(e) = w.connect() {
            log!("error", "startup_failed", what = "redis", error = e);
            return EXIT_REDIS_UNREACHABLE;
        }
        writers.push(w);
    }
    drop(probe);

    if !sharded {
        let mut w = writers.pop().expect("one campaign");
        w.run();
        w.summary("stopped");
        return 0;
    }

    // One thread per shard; they share the stop flag (the signals stay blocked in them:
    // the mask is inherited from this thread).
    let n = writers.len();
    let mut handles = Vec::new();
    for mut w in writers {
        let key = w.campaign.clone();
        let h = std::thread::Builder::new()
            .name(format!("shard-{}", handles.len()))
            .spawn(move || {
                log::set_shard(Some(&key));
                w.run();
                w.summary("stopped");
                w.counts
            });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                log!("error", "startup_failed", what = "thread", error = e);
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    let mut total = Counts::default();
    let mut code = 0;
    let spawned = handles.len();
    for h in handles {
        match h.join() {
            Ok(c) => total.add(&c),
            Err(_) => {
                log!("error", "shard_panicked");
                code = EXIT_FATAL;
            }
        }
    }
    if spawned < n {
        code = EXIT_FATAL;
    }
    let mut fields = vec![("shards", n.to_string())];
    fields.extend(total.fields());
    log::line("info", "stopped", &fields);
    code
}
