//! The delivery loop of the award thread (see award.rs): claim, POST, record, back off.

use crate::award::{now_ms, AwardStats, Config, Wake};
use crate::award_body::{body, idempotency_key};
use crate::award_http::{post, Reply};
use crate::award_store::{self as q, AwardRow};
use crate::rate::Bucket;
use crate::store::Store;
use crate::{log, Res};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wins claimed per claim, over all delivery threads (each claims its share, at least
/// `MIN_CLAIM`, so that concurrent threads spread a small backlog between them).
const CLAIM_BATCH: usize = 50;
const MIN_CLAIM: usize = 5;
/// How often to look for wins stored by other writers (our own commits wake the thread).
const POLL: Duration = Duration::from_millis(500);
/// How often the backlog is counted.
const BACKLOG_EVERY: Duration = Duration::from_secs(2);
/// A lease is extended before a request when less than the request timeout plus this is left
/// (so a lease never runs out during a request, with this much clock difference tolerated
/// between writers).
const LEASE_MARGIN_MS: i64 = 10_000;
/// The longest error text kept in `award_error`.
const MAX_ERROR_TEXT: usize = 300;

/// A request's result, classified.
enum Outcome {
    Delivered,
    /// Not retried: the status and the error text.
    Failed(String),
    /// Retried: the error text and the server's Retry-After.
    Retry(String, Option<Duration>),
}

fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn classify(r: Result<Reply, String>) -> Outcome {
    match r {
        Err(e) => Outcome::Retry(bounded(e), None),
        Ok(r) if (200..300).contains(&r.status) => Outcome::Delivered,
        Ok(r) => {
            let text = bounded(format!("HTTP {}: {}", r.status, printable(&r.body).trim()));
            if matches!(r.status, 408 | 425 | 429) || r.status >= 500 {
                Outcome::Retry(text, r.retry_after)
            } else {
                Outcome::Failed(text)
            }
        }
    }
}

/// Whether a request's result counts as delivered (a complete 2xx head, nothing else).
#[cfg(test)]
pub(crate) fn delivered(r: &Result<Reply, String>) -> bool {
    matches!(classify(r.clone()), Outcome::Delivered)
}

/// A small xorshift for the backoff jitter (no need for a real generator).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        Jitter((now_ms() as u64 ^ ((std::process::id() as u64) << 32)) | 1)
    }
    /// A duration uniformly in [d/2, d].
    fn apply(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let f = 0.5 + (self.0 % 1000) as f64 / 2000.0;
        d.mul_f64(f)
    }
}

/// What the delivery threads share.
pub struct Shared {
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<AwardStats>,
    pub wake: Arc<Wake>,
    /// `--award-rate`, over all threads.
    pub bucket: Arc<Mutex<Bucket>>,
    pub counted: Arc<Counted>,
}

/// When the backlog was last counted by any delivery thread of the process (one count per
/// `BACKLOG_EVERY`, whatever `--award-concurrency`: the count reads the whole backlog), and
/// how many times.
#[derive(Default)]
pub struct Counted {
    at: Mutex<Option<Instant>>,
    times: AtomicU64,
}

struct Deliverer {
    /// This thread's index.
    k: usize,
    /// Wins per claim.
    claim_size: usize,
    cfg: Config,
    store: Box<dyn Store>,
    stop: Arc<AtomicBool>,
    stats: Arc<AwardStats>,
    wake: Arc<Wake>,
    bucket: Arc<Mutex<Bucket>>,
    jitter: Jitter,
    /// Consecutive failed requests (the backoff's exponent); 0 after a success.
    failures: u32,
    /// The last lease value written (strictly increasing: each claim's rows are told apart).
    last_lease: i64,
    /// Outcomes known but not yet recorded (the database failed): recorded before anything
    /// else, so a delivered win is never posted again by this process.
    unrecorded: VecDeque<(AwardRow, Option<String>)>,
    next_campaign: usize,
    /// Campaigns that may have undelivered wins (counted, notified, or claimed from lately):
    /// the others are not claimed from (many shards cost nothing while idle).
    busy: HashSet<String>,
    /// `cfg.campaigns` as a set.
    ours: HashSet<String>,
    counted: Arc<Counted>,
    last_log: Instant,
    lease_ms: i64,
}

impl Deliverer {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early on a stop request. False when stopped.
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

    fn db(&mut self) -> Res<&mut dyn q::AwardSql> {
        self.store
            .award()
            .ok_or_else(|| "award delivery is not supported with this database".to_string())
    }

    fn backoff(&mut self, retry_after: Option<Duration>) -> Duration {
        let exp = self.failures.saturating_sub(1).min(20);
        let d = Duration::from_millis(100)
            .saturating_mul(1 << exp)
            .min(self.cfg.max_backoff);
        let d = self.jitter.apply(d);
        match retry_after {
            Some(ra) => d.max(ra.min(self.cfg.max_backoff)),
            None => d,
        }
    }

    /// Waits for `--award-rate` to allow one more request (shared by the threads) and takes
    /// it. False when stopped meanwhile.
    fn pace(&self) -> bool {
        loop {
            let wait = match self.bucket.lock() {
                Ok(mut b) => {
                    let w = b.wait();
                    if w.is_zero() {
                        b.take(1);
                        return true;
                    }
                    w
                }
                Err(_) => return true,
            };
            if !self.sleep(wait) {
                return false;
            }
        }
    }

    fn record_pending(&mut self) -> Res<()> {
        while let Some((row, err)) = self.unrecorded.front().cloned() {
            let owner = self.cfg.owner.clone();
            q::finish(
                self.db()?,
                &row.campaign,
                &row.stream_id,
                &owner,
                now_ms(),
                err.as_deref(),
            )?;
            self.unrecorded.pop_front();
        }
        Ok(())
    }

    /// Counts the undelivered wins of our campaigns (if no thread did for `BACKLOG_EVERY`),
    /// and tells every thread which campaigns have some.
    fn refresh_backlog(&mut self) -> Res<()> {
        let first = {
            let Ok(mut at) = self.counted.at.lock() else {
                return Ok(());
            };
            if at.is_some_and(|t| t.elapsed() < BACKLOG_EVERY) {
                return Ok(());
            }
            let first = at.is_none();
            *at = Some(Instant::now());
            first
        };
        self.counted.times.fetch_add(1, Ordering::Relaxed);
        let counts = &q::backlog(self.db()?)?;
        let mut ours = 0i64;
        for (c, n) in counts {
            if *n > 0 && self.ours.contains(c) {
                ours += n;
                self.busy.insert(c.clone());
                self.wake.notify(c);
            }
        }
        self.stats
            .backlog
            .store(ours.max(0) as u64, Ordering::Relaxed);
        if first {
            // What is about to be delivered (wins stored before, e.g. without --award-url).
            log!("info", "award_ready", backlog = ours);
        }
        Ok(())
    }

    fn next_lease(&mut self) -> i64 {
        self.last_lease = (now_ms() + self.lease_ms).max(self.last_lease + 1);
        self.last_lease
    }

    /// Claims the next batch, campaigns in turn; empty when there is nothing to deliver.
    fn claim(&mut self) -> Res<Vec<AwardRow>> {
        self.busy.extend(self.wake.take(self.k));
        let n = self.cfg.campaigns.len();
        for _ in 0..n {
            if self.busy.is_empty() {
                break;
            }
            let campaign = self.cfg.campaigns[self.next_campaign % n].clone();
            self.next_campaign = (self.next_campaign + 1) % n;
            if !self.busy.contains(&campaign) {
                continue;
            }
            let lease = self.next_lease();
            let owner = self.cfg.owner.clone();
            let size = self.claim_size;
            let rows = q::claim(self.db()?, &campaign, &owner, now_ms(), lease, size)?;
            if !rows.is_empty() {
                return Ok(rows);
            }
            // Nothing claimable now (or all leased by others): until counted or notified again.
            self.busy.remove(&campaign);
        }
        Ok(Vec::new())
    }

    /// Posts one claimed win (lease extended first if needed) and records the outcome.
    /// `lease`: until when the claim holds. A win that is no longer ours is skipped.
    fn deliver(&mut self, row: &AwardRow, lease: i64) -> Res<()> {
        // The rate first: its wait (shared by the threads, so unbounded at a low rate) must
        // not come between the lease check and the request, or the lease could lapse and
        // another thread or writer claim and post the same win meanwhile.
        if !self.pace() {
            return Ok(());
        }
        let timeout_ms = self.cfg.timeout.as_millis() as i64;
        if lease - now_ms() < timeout_ms + LEASE_MARGIN_MS {
            let new = self.next_lease();
            let owner = self.cfg.owner.clone();
            if !q::renew(self.db()?, &row.campaign, &row.stream_id, &owner, new)? {
                return Ok(());
            }
        }
        let key = idempotency_key(row.campaign.as_bytes(), &row.stream_id);
        let b = body(row);
        let outcome = classify(post(
            &self.cfg.endpoint,
            &[("Idempotency-Key", &key)],
            b.as_bytes(),
            self.cfg.timeout,
        ));
        match outcome {
            Outcome::Delivered => {
                self.failures = 0;
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                let _ =
                    self.stats
                        .backlog
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            Some(b.saturating_sub(1))
                        });
                self.unrecorded.push_back((row.clone(), None));
                self.record_pending()
            }
            Outcome::Failed(text) => {
                self.failures = 0;
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                log!(
                    "warn",
                    "award_failed",
                    campaign = row.campaign,
                    id = row.stream_id,
                    error = text
                );
                self.unrecorded.push_back((row.clone(), Some(text)));
                self.record_pending()
            }
            Outcome::Retry(text, retry_after) => {
                self.failures = self.failures.saturating_add(1);
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                let wait = self.backoff(retry_after);
                log!(
                    "warn",
                    "award_retry",
                    campaign = row.campaign,
                    id = row.stream_id,
                    error = text,
                    backoff_ms = wait.as_millis()
                );
                let r = q::note_retry(self.db()?, &row.campaign, &row.stream_id, &text);
                self.sleep(wait);
                r
            }
        }
    }

    fn round(&mut self) -> Res<()> {
        self.record_pending()?;
        self.refresh_backlog()?;
        let rows = self.claim()?;
        if rows.is_empty() {
            self.wake.wait(self.k, POLL);
            return Ok(());
        }
        let lease = self.last_lease;
        for row in &rows {
            if self.stopping() {
                break;
            }
            self.deliver(row, lease)?;
            // (a batch can take long while the service fails)
            self.refresh_backlog()?;
        }
        Ok(())
    }

    fn progress(&mut self, event: &str) {
        log::line("info", event, &self.stats.log_fields());
    }

    fn run(&mut self) {
        let mut db_backoff = Duration::from_millis(100);
        let mut started = false;
        while !self.stopping() {
            let r = (|| -> Res<()> {
                if !started {
                    self.db()?.relax_durability()?;
                    if self.cfg.retry_failed && self.k == 0 {
                        for c in self.cfg.campaigns.clone() {
                            let n = q::requeue_failed(self.db()?, &c)?;
                            log!("info", "award_requeued", campaign = c, failed = n);
                        }
                    }
                    started = true;
                }
                self.round()
            })();
            match r {
                Ok(()) => db_backoff = Duration::from_millis(100),
                Err(e) => {
                    log!(
                        "error",
                        "award_db_retry",
                        error = e,
                        backoff_ms = db_backoff.as_millis()
                    );
                    if !self.sleep(db_backoff) {
                        break;
                    }
                    db_backoff = (db_backoff * 2).min(self.cfg.max_backoff);
                    if let Err(e) = self.store.reconnect() {
                        log!("error", "award_db_reconnect_failed", error = e);
                    } else if let Some(db) = self.store.award() {
                        let _ = db.relax_durability();
                    }
                }
            }
            if let Some(every) = self.cfg.log_every {
                if self.last_log.elapsed() >= every {
                    self.last_log = Instant::now();
                    self.progress("award_progress");
                }
            }
        }
        // Outcomes still unrecorded (the database failing at the stop): one last try.
        if !self.unrecorded.is_empty() {
            if let Err(e) = self.record_pending() {
                log!(
                    "warn",
                    "award_unrecorded",
                    wins = self.unrecorded.len(),
                    error = e,
                    effect = "delivered again (same Idempotency-Key) after the next start"
                );
            }
        }
    }
}

impl Deliverer {
    fn new(k: usize, threads: usize, cfg: Config, store: Box<dyn Store>, shared: Shared) -> Self {
        let Shared {
            stop,
            stats,
            wake,
            bucket,
            counted,
        } = shared;
        let timeout_ms = cfg.timeout.as_millis() as i64;
        let ours = cfg.campaigns.iter().cloned().collect();
        Deliverer {
            k,
            claim_size: (CLAIM_BATCH / threads.max(1)).max(MIN_CLAIM),
            bucket,
            lease_ms: (2 * timeout_ms + 2 * LEASE_MARGIN_MS).max(60_000),
            cfg,
            store,
            stop,
            stats,
            wake,
            jitter: Jitter::new(),
            failures: 0,
            last_lease: 0,
            unrecorded: VecDeque::new(),
            next_campaign: 0,
            busy: HashSet::new(),
            ours,
            counted,
            last_log: Instant::now(),
        }
    }
}

/// Starts delivery thread `k`.
pub fn spawn(
    k: usize,
    threads: usize,
    cfg: Config,
    store: Box<dyn Store>,
    shared: Shared,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut d = Deliverer::new(k, threads, cfg, store, shared);
    std::thread::Builder::new()
        .name(format!("award-{}", k))
        .spawn(move || {
            log::set_shard(None);
            d.run()
        })
}

#[cfg(test)]
mod threads;

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, retry_after: Option<u64>, body: &[u8]) -> Result<Reply, String> {
        Ok(Reply {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: body.to_vec(),
        })
    }

    #[test]
    fn outcomes() {
        for s in [200, 201, 204, 299] {
            assert!(matches!(classify(reply(s, None, b"")), Outcome::Delivered));
        }
        for s in [408, 425, 429, 500, 502, 503, 599] {
            assert!(
                matches!(classify(reply(s, None, b"")), Outcome::Retry(..)),
                "{}",
                s
            );
        }
        for s in [101, 301, 400, 401, 404, 409, 422] {
            assert!(
                matches!(classify(reply(s, None, b"")), Outcome::Failed(_)),
                "{}",
                s
            );
        }
        assert!(matches!(
            classify(Err("timed out".into())),
            Outcome::Retry(e, None) if e == "timed out"
        ));
        match classify(reply(400, None, &[b'x'; 1000])) {
            Outcome::Failed(t) => assert_eq!(t.len(), MAX_ERROR_TEXT),
            _ => panic!(),
        }
        match classify(reply(422, None, "\u{e9}\n\0 no".repeat(200).as_bytes())) {
            Outcome::Failed(t) => {
                assert!(t.len() <= MAX_ERROR_TEXT && !t.chars().any(|c| c.is_control()))
            }
            _ => panic!(),
        }
        match classify(reply(503, Some(7), b"")) {
            Outcome::Retry(_, ra) => assert_eq!(ra, Some(Duration::from_secs(7))),
            _ => panic!(),
        }
    }

    #[test]
    fn jitter_stays_in_half_to_full() {
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let d = j.apply(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1000));
        }
    }
}
