//! lottery-writer: persists a redis-lottery campaign's wins stream (consumer group,
//! one database transaction per batch, then XACK) and its LOTTERY.DRAIN batches.

#[macro_use]
mod log;
mod signals;
mod store;
mod stream;

use clap::Parser;
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
    about = "Persists a redis-lottery campaign's wins stream and stock drains into SQLite or PostgreSQL"
)]
struct Args {
    /// Redis URL, e.g. redis://127.0.0.1:6379 (redis://:password@host:port/db also works).
    #[arg(long)]
    redis: String,
    /// The campaign key (as given to LOTTERY.CONFIGURE).
    #[arg(long)]
    campaign: String,
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

struct Writer {
    args: Args,
    client: redis::Client,
    con: Option<redis::Connection>,
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

impl Writer {
    fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.args.block_ms + self.args.timeout_ms.max(1000))
    }

    fn connect(&mut self) -> Res<()> {
        let con = self
            .client
            .get_connection_with_timeout(Duration::from_millis(self.args.timeout_ms.max(1)))
            .map_err(|e| redis_err("connect", e))?;
        con.set_read_timeout(Some(self.read_timeout()))
            .map_err(|e| redis_err("connect", e))?;
        con.set_write_timeout(Some(Duration::from_millis(self.args.timeout_ms.max(1000))))
            .map_err(|e| redis_err("connect", e))?;
        self.con = Some(con);
        Ok(())
    }

    fn cmd(&mut self, what: &str, c: &redis::Cmd) -> Res<Value> {
        if self.con.is_none() {
            self.connect()?;
        }
        let con = self.con.as_mut().unwrap();
        match c.query::<Value>(con) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                {
                    self.con = None;
                }
                Err(redis_err(what, e))
            }
        }
    }

    fn ensure_group(&mut self) -> Res<()> {
        let mut c = redis::cmd("XGROUP");
        c.arg("CREATE")
            .arg(&self.stream)
            .arg(&self.args.group)
            .arg("0")
            .arg("MKSTREAM");
        if self.con.is_none() {
            self.connect()?;
        }
        match c.query::<Value>(self.con.as_mut().unwrap()) {
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
            Err(e) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    self.con = None;
                }
                Err(redis_err("XGROUP CREATE", e))
            }
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
            let campaign = self.args.campaign.clone();
            self.store.write_wins(&campaign, &b.wins)?
        };
        let mut c = redis::cmd("XACK");
        c.arg(&self.stream).arg(&self.args.group).arg(&b.ack);
        let acked = stream::int(&self.cmd("XACK", &c)?).unwrap_or(0) as u64;
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
            let b = stream::parse_xreadgroup(&self.cmd("XREADGROUP", &c)?)?;
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
            let (next, b) = stream::parse_xautoclaim(&self.cmd("XAUTOCLAIM", &c)?)?;
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
        c.arg(&self.args.campaign);
        if last {
            c.arg("LAST");
        }
        let d = stream::parse_drain(&self.cmd("LOTTERY.DRAIN", &c)?)?;
        if last && d.seq == 0 {
            return Ok(());
        }
        let campaign = self.args.campaign.clone();
        let outcome = self.store.write_drain(&campaign, &d)?;
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
        let b = stream::parse_xreadgroup(&self.cmd("XREADGROUP", &c)?)?;
        self.process(b, "new")
    }

    fn summary(&self, event: &str) {
        let c = &self.counts;
        log!(
            "info",
            event,
            read = c.read,
            inserted = c.inserted,
            duplicates = c.duplicates,
            acked = c.acked,
            recovered = c.recovered,
            claimed = c.claimed,
            deleted = c.deleted,
            malformed = c.malformed,
            batches = c.batches,
            drains_stored = c.drains_stored,
            drains_skipped = c.drains_skipped,
            drains_empty = c.drains_empty,
            errors = c.errors
        );
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
                    self.con = None;
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

fn real_main(args: Args) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = signals::spawn(Arc::clone(&stop)) {
        log!("error", "startup_failed", what = "signals", error = e);
        return EXIT_FATAL;
    }

    log!(
        "info",
        "start",
        redis = mask_url(&args.redis),
        campaign = args.campaign,
        group = args.group,
        consumer = args.consumer,
        database = mask_url(&args.database),
        rate = args.rate,
        drain_every_ms = args.drain_every_ms,
        claim_idle_ms = args.claim_idle_ms
    );

    let client = match redis::Client::open(args.redis.as_str()) {
        Ok(c) => c,
        Err(e) => {
            log!(
                "error",
                "startup_failed",
                what = "redis",
                error = format!("invalid --redis URL: {}", e)
            );
            return EXIT_FATAL;
        }
    };
    if let Err(e) = store::parse_url(&args.database) {
        log!("error", "startup_failed", what = "database", error = e);
        return EXIT_FATAL;
    }

    // Redis first: fail at once (no retry) when it is unreachable at start.
    let mut con =
        match client.get_connection_with_timeout(Duration::from_millis(args.timeout_ms.max(1))) {
            Ok(c) => c,
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "redis",
                    url = mask_url(&args.redis),
                    error = e
                );
                eprintln!(
                    "lottery-writer: cannot reach Redis at {}: {}",
                    mask_url(&args.redis),
                    e
                );
                return EXIT_REDIS_UNREACHABLE;
            }
        };
    let _ = con.set_read_timeout(Some(Duration::from_millis(args.timeout_ms.max(1000))));
    let stream_name = match &args.stream {
        Some(s) => s.clone(),
        None => {
            let stats = redis::cmd("LOTTERY.STATS")
                .arg(&args.campaign)
                .query::<Value>(&mut con);
            let name = match stats {
                Ok(v) => stream::field(&v, "stream").and_then(stream::string),
                Err(e) => {
                    let unreachable =
                        e.is_io_error() || e.is_timeout() || e.is_connection_dropped();
                    log!(
                        "error",
                        "startup_failed",
                        what = "campaign",
                        campaign = args.campaign,
                        error = e
                    );
                    eprintln!(
                        "lottery-writer: LOTTERY.STATS {} failed: {}",
                        args.campaign, e
                    );
                    return if unreachable {
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
    log!(
        "info",
        "ready",
        stream = stream_name,
        db = store.kind(),
        batch = args.batch
    );

    let now = Instant::now();
    let mut w = Writer {
        bucket: Bucket::new(args.rate),
        args,
        client,
        con: None,
        store,
        stream: stream_name,
        stop,
        counts: Counts::default(),
        last_claim: now,
        last_drain: now,
        last_log: now,
    };
    if let Err(e) = w.connect().and_then(|_| {
        w.con
            .as_ref()
            .map(|_| ())
            .ok_or_else(|| "no connection".to_string())
    }) {
        log!("error", "startup_failed", what = "redis", error = e);
        return EXIT_REDIS_UNREACHABLE;
    }
    drop(con);
    w.run();
    w.summary("stopped");
    0
}
