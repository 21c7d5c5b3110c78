//! Award delivery (`--award-url`): one thread per process, beside the consumer(s), with its
//! own database connection. Storing and XACK never wait for it: the wins table is the queue
//! (award_store.rs), so an award service that is down or slow only grows the backlog.
//!
//! Loop: claim the oldest undelivered wins of each campaign (a lease), POST each one (at most
//! `--award-rate` per second), record the outcome: 2xx 'delivered'; 408, 425, 429, 5xx, no
//! response: retried later (backoff with jitter, `Retry-After` honoured up to
//! `--max-backoff-ms`); any other status 'failed' (not retried by itself). At least once: a
//! crash between a 2xx and its record sends that win again (same Idempotency-Key).
//!
//! `award_deliver`: the delivery loop; `award_http`: the HTTP client; `award_body`: the request
//! body and key; `award_store`: the queue in the wins table.

use crate::award_http::Endpoint;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The award counters (published as in the writer status hash).
#[derive(Default)]
pub struct AwardStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    pub backlog: AtomicU64,
}

impl AwardStats {
    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "awards_delivered_total",
                self.delivered.load(Ordering::Relaxed),
            ),
            ("awards_failed_total", self.failed.load(Ordering::Relaxed)),
            ("awards_retries_total", self.retries.load(Ordering::Relaxed)),
            ("award_backlog", self.backlog.load(Ordering::Relaxed)),
        ]
    }
    /// For `progress` / `stopped` lines.
    pub fn log_fields(&self) -> Vec<(&'static str, String)> {
        self.fields()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }
}

/// Wakes the delivery threads when a consumer committed new rows, with their campaign.
pub struct Wake {
    /// Per delivery thread: campaigns with new rows since its last `take` (at most one entry
    /// per campaign).
    woken: Mutex<Vec<HashSet<String>>>,
    cv: Condvar,
}

impl Wake {
    pub(crate) fn new(threads: usize) -> Self {
        Wake {
            woken: Mutex::new(vec![HashSet::new(); threads]),
            cv: Condvar::new(),
        }
    }
    pub fn notify(&self, campaign: &str) {
        if let Ok(mut w) = self.woken.lock() {
            for set in w.iter_mut() {
                if !set.contains(campaign) {
                    set.insert(campaign.to_string());
                }
            }
            self.cv.notify_all();
        }
    }
    /// Thread `k` waits up to `d` for a notification (one that came meanwhile counts).
    pub(crate) fn wait(&self, k: usize, d: Duration) {
        let Ok(w) = self.woken.lock() else { return };
        let _ = self
            .cv
            .wait_timeout_while(w, d, |w| w.get(k).is_none_or(|s| s.is_empty()));
    }
    /// The campaigns notified since thread `k`'s last call.
    pub(crate) fn take(&self, k: usize) -> HashSet<String> {
        self.woken
            .lock()
            .ok()
            .and_then(|mut w| w.get_mut(k).map(std::mem::take))
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub max_backoff: Duration,
    pub owner: String,
    pub campaigns: Vec<String>,
    pub retry_failed: bool,
    /// An `award_progress` line this often (sharded mode; None: never).
    pub log_every: Option<Duration>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The running delivery threads.
pub struct Award {
    pub stats: Arc<AwardStats>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Award {
    /// Stops the threads (each finishes and records its request in flight) and waits for them.
    pub fn finish(&mut self, stop: &Arc<AtomicBool>) {
        stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log!("error", "award_thread_panicked");
            }
        }
    }
}

/// Opens the delivery thread's own database connection and starts it; the writers get its
/// wake-up (and, for one campaign, its counters for their log lines). Err: the exit code.
pub fn start(
    args: &crate::args::Args,
    endpoint: Endpoint,
    writers: &mut [crate::consumer::Writer],
    stop: &Arc<AtomicBool>,
) -> Result<Award, i32> {
    let n = args.award_concurrency.max(1) as usize;
    let mut stores = Vec::new();
    for _ in 0..n {
        let mut store =
            match crate::store::open(&args.database, Duration::from_millis(args.db_timeout_ms)) {
                Ok(s) => s,
                Err(e) => {
                    log!("error", "startup_failed", what = "database", error = e);
                    return Err(crate::EXIT_DB_UNREACHABLE);
                }
            };
        if store.award().is_none() {
            let e = format!(
                "--award-url is not supported with a {} database",
                store.kind()
            );
            log!("error", "startup_failed", what = "arguments", error = e);
            eprintln!("lottery-writer: {}", e);
            return Err(crate::EXIT_FATAL);
        }
        stores.push(store);
    }
    let stats = Arc::new(AwardStats::default());
    let wake = Arc::new(Wake::new(n));
    let sharded = args.shards.is_some();
    for w in writers.iter_mut() {
        w.award_wake = Some(Arc::clone(&wake));
        if !sharded {
            w.award_stats = Some(Arc::clone(&stats));
        }
    }
    log!(
        "info",
        "award_start",
        url = endpoint.display,
        award_rate = args.award_rate,
        award_timeout_ms = args.award_timeout_ms,
        retry_failed = args.award_retry_failed,
        award_concurrency = n
    );
    let cfg = Config {
        endpoint,
        timeout: Duration::from_millis(args.award_timeout_ms),
        max_backoff: Duration::from_millis(args.max_backoff_ms),
        // Per thread, below.
        owner: String::new(),
        campaigns: writers.iter().map(|w| w.campaign.clone()).collect(),
        retry_failed: args.award_retry_failed,
        log_every: (sharded && args.log_every_ms > 0)
            .then(|| Duration::from_millis(args.log_every_ms)),
    };
    let bucket = Arc::new(Mutex::new(crate::rate::Bucket::new(args.award_rate)));
    let counted = Arc::new(crate::award_deliver::Counted::default());
    let mut award = Award {
        stats: Arc::clone(&stats),
        threads: Vec::new(),
    };
    // The claims of this writer's earlier processes (one killed mid-batch): free at once.
    let prefix = crate::award_store::owner_prefix(&args.group, &args.consumer);
    if let Some(db) = stores.first_mut().and_then(|s| s.award()) {
        match crate::award_store::release_claims(db, &prefix) {
            Ok(n) => log!("info", "award_claims_released", wins = n),
            Err(e) => log!(
                "warn",
                "award_claims_not_released",
                error = e,
                effect = "claimable again when their lease ends"
            ),
        }
    }
    let instance = format!("{}.{}", std::process::id(), now_ms());
    for (k, store) in stores.into_iter().enumerate() {
        let mut cfg = cfg.clone();
        // Each thread of each process claims under its own name.
        cfg.owner = format!("{}{}/{}", prefix, k, instance);
        if k > 0 {
            cfg.log_every = None;
        }
        let shared = crate::award_deliver::Shared {
            stop: Arc::clone(stop),
            stats: Arc::clone(&stats),
            wake: Arc::clone(&wake),
            bucket: Arc::clone(&bucket),
            counted: Arc::clone(&counted),
        };
        match crate::award_deliver::spawn(k, n, cfg, store, shared) {
            Ok(t) => award.threads.push(t),
            Err(e) => {
                log!("error", "startup_failed", what = "thread", error = e);
                award.finish(stop);
                return Err(crate::EXIT_FATAL);
            }
        }
    }
    Ok(award)
}
