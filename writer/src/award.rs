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

/// Wakes the delivery thread when a consumer committed new rows, with their campaign.
#[derive(Default)]
pub struct Wake {
    /// Campaigns with new rows since the last `take` (at most one entry per campaign).
    woken: Mutex<HashSet<String>>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self, campaign: &str) {
        if let Ok(mut w) = self.woken.lock() {
            if !w.contains(campaign) {
                w.insert(campaign.to_string());
            }
            self.cv.notify_one();
        }
    }
    /// Waits up to `d` for a notification (one that came meanwhile counts).
    pub(crate) fn wait(&self, d: Duration) {
        let Ok(w) = self.woken.lock() else { return };
        let _ = self.cv.wait_timeout_while(w, d, |w| w.is_empty());
    }
    /// The campaigns notified since the last call.
    pub(crate) fn take(&self) -> HashSet<String> {
        self.woken
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

pub struct Config {
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub rate: u64,
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

/// The running delivery thread.
pub struct Award {
    pub stats: Arc<AwardStats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Award {
    /// Stops the thread (its request in flight is finished and recorded) and waits for it.
    pub fn finish(&mut self, stop: &Arc<AtomicBool>) {
        stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
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
    let stats = Arc::new(AwardStats::default());
    let wake = Arc::new(Wake::default());
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
        retry_failed = args.award_retry_failed
    );
    let cfg = Config {
        endpoint,
        timeout: Duration::from_millis(args.award_timeout_ms),
        rate: args.award_rate,
        max_backoff: Duration::from_millis(args.max_backoff_ms),
        // Unambiguous for any group and consumer names.
        owner: format!("{}:{}:{}", args.group.len(), args.group, args.consumer),
        campaigns: writers.iter().map(|w| w.campaign.clone()).collect(),
        retry_failed: args.award_retry_failed,
        log_every: (sharded && args.log_every_ms > 0)
            .then(|| Duration::from_millis(args.log_every_ms)),
    };
    match crate::award_deliver::spawn(cfg, store, Arc::clone(stop), Arc::clone(&stats), wake) {
        Ok(t) => Ok(Award {
            stats,
            thread: Some(t),
        }),
        Err(e) => {
            log!("error", "startup_failed", what = "thread", error = e);
            Err(crate::EXIT_FATAL)
        }
    }
}
