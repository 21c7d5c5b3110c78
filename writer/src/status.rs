//! The status hash: every `--status-every-ms` a thread of its own writes the writer's counters
//! into `lottery-writer:{}:<group>:<consumer>:<target>` (PEXPIRE, HSET, and PEXPIRE again when the HSET
//! created the hash; a TTL of 3 intervals, at least 15 s, so a dead writer's status
//! disappears). It has its own Redis connection and reads the
//! writers' counts from slots they refresh after each step: a slow or failing Redis delays
//! only this thread. A failure to publish is logged (at most once a minute) and counted in
//! `errors_total`, nothing else.

use crate::award::AwardStats;
use crate::connection::{redis_err, Redis};
use crate::consumer::Writer;
use crate::counts::Counts;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A writer's counts as of its last step (one slot per campaign or shard).
pub type Slot = Arc<Mutex<Counts>>;

/// The shortest TTL of the hash, whatever the interval.
const MIN_TTL_MS: u64 = 15_000;
/// At most one `status_failed` line this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// `lottery-writer:{}:<group>:<consumer>:<target>`: two writers of two campaigns may well
/// share their group and consumer names, so the key names the target. The empty hash tag `{}`
/// comes first, so the whole key is hashed: a hash tag in a name (a campaign's `{spring}`)
/// does not put the hash in that campaign's slot, which slot migrations move whole.
pub fn key(group: &str, consumer: &str, target: &str) -> String {
    format!("lottery-writer:{{}}:{}:{}:{}", group, consumer, target)
}

/// What the hash describes, fixed for the writer's life.
pub struct Info {
    /// The campaign key, or `shards:<NAME>`.
    pub target: String,
    /// The wins stream when there is exactly one, else empty.
    pub stream: String,
    pub group: String,
    pub consumer: String,
    /// The database kind (never its URL).
    pub database: &'static str,
    pub started_ms: u64,
}

/// The hash's fields: one list, in one place (the award counters when `--award-url` is given).
pub fn fields(
    info: &Info,
    c: &Counts,
    award: Option<&AwardStats>,
    updated_ms: u64,
) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("target", info.target.clone()),
        ("stream", info.stream.clone()),
        ("group", info.group.clone()),
        ("consumer", info.consumer.clone()),
        ("database", info.database.to_string()),
        ("started_ms", info.started_ms.to_string()),
        ("updated_ms", updated_ms.to_string()),
        ("read_total", c.read.to_string()),
        ("rows_total", c.inserted.to_string()),
        ("duplicates_total", c.duplicates.to_string()),
        ("verify_rows_total", c.verify_inserted.to_string()),
        ("acked_total", c.acked.to_string()),
        ("drains_total", c.drains_stored.to_string()),
        ("retries_total", c.retries.to_string()),
        ("errors_total", c.errors.to_string()),
    ];
    if let Some(a) = award {
        f.extend(a.fields().into_iter().map(|(k, v)| (k, v.to_string())));
    }
    f
}

pub fn ttl_ms(every_ms: u64) -> u64 {
    every_ms.saturating_mul(3).max(MIN_TTL_MS)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Stops the publishing thread when dropped (without waiting for it: a publish in progress
/// never delays the exit).
pub struct Publisher {
    done: Arc<AtomicBool>,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// Starts publishing the status of `writers` and of their award delivery, if any (None when
/// `--status-every-ms 0`).
pub fn spawn(
    writers: &[Writer],
    award: Option<Arc<AwardStats>>,
    stop: &Arc<AtomicBool>,
) -> Option<Publisher> {
    let first = writers.first()?;
    let args = &first.args;
    if args.status_every_ms == 0 {
        return None;
    }
    let info = Info {
        target: match &args.shards {
            Some(name) => format!("shards:{}", name),
            None => first.campaign.clone(),
        },
        stream: if writers.len() == 1 {
            first.stream.clone()
        } else {
            String::new()
        },
        group: args.group.clone(),
        consumer: args.consumer.clone(),
        database: first.store.kind(),
        started_ms: now_ms(),
    };
    let slots: Vec<Slot> = writers.iter().map(|w| Arc::clone(&w.status)).collect();
    let redis = first
        .redis
        .fresh(Duration::from_millis(args.timeout_ms.max(1000)));
    let every = Duration::from_millis(args.status_every_ms);
    let done = Arc::new(AtomicBool::new(false));
    let mut t = Task {
        key: key(&args.group, &args.consumer, &info.target),
        ttl_ms: ttl_ms(args.status_every_ms),
        info,
        slots,
        award,
        redis,
        failures: 0,
        last_warn: None,
    };
    let (d, s) = (Arc::clone(&done), Arc::clone(stop));
    let spawned = std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            let mut next = Instant::now();
            while !d.load(Ordering::Relaxed) && !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    t.publish();
                    next = Instant::now() + every;
                } else {
                    std::thread::sleep((next - now).min(Duration::from_millis(50)));
                }
            }
        });
    if let Err(e) = spawned {
        // The writers' work goes on without it.
        log!("warn", "status_failed", error = e);
        return None;
    }
    Some(Publisher { done })
}

struct Task {
    key: String,
    ttl_ms: u64,
    info: Info,
    slots: Vec<Slot>,
    award: Option<Arc<AwardStats>>,
    redis: Redis,
    /// Failures to publish (counted in errors_total).
    failures: u64,
    last_warn: Option<Instant>,
}

impl Task {
    /// The counts of every writer, added up.
    fn counts(&self) -> Counts {
        let mut total = Counts::default();
        for s in &self.slots {
            total.add(&s.lock().unwrap_or_else(|e| e.into_inner()));
        }
        total.errors += self.failures;
        total
    }

    fn publish(&mut self) {
        let fields = fields(&self.info, &self.counts(), self.award.as_deref(), now_ms());
        let mut hset = redis::cmd("HSET");
        hset.arg(&self.key);
        for (k, v) in &fields {
            hset.arg(*k).arg(v);
        }
        let mut pexpire = redis::cmd("PEXPIRE");
        pexpire.arg(&self.key).arg(self.ttl_ms);
        // PEXPIRE first: the hash is written only by a connection allowed to give it its TTL
        // (else it would never expire), and a hash already there keeps a TTL through the
        // HSET. PEXPIRE again only when it created the hash (its first publish, or after it
        // expired): a failure between the two leaves a TTL-less hash that the next publish's
        // first PEXPIRE fixes.
        let r = self.redis.query(&self.key, &pexpire).and_then(|existed| {
            self.redis.query(&self.key, &hset)?;
            if existed == redis::Value::Int(0) {
                self.redis.query(&self.key, &pexpire)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            self.failures += 1;
            if self.last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                self.last_warn = Some(Instant::now());
                log!(
                    "warn",
                    "status_failed",
                    key = self.key,
                    failures = self.failures,
                    error = redis_err("status", e)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_and_fields() {
        assert_eq!(ttl_ms(5000), 15_000);
        assert_eq!(ttl_ms(100), 15_000);
        assert_eq!(ttl_ms(60_000), 180_000);
        assert_eq!(ttl_ms(u64::MAX), u64::MAX);
        let info = Info {
            target: "c".into(),
            stream: "c:wins".into(),
            group: "g".into(),
            consumer: "w".into(),
            database: "mysql",
            started_ms: 1,
        };
        let c = Counts {
            inserted: 7,
            verify_inserted: 4,
            retries: 2,
            ..Counts::default()
        };
        let f = fields(&info, &c, None, 9);
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("rows_total"), Some("7"));
        assert_eq!(get("verify_rows_total"), Some("4"));
        assert_eq!(get("retries_total"), Some("2"));
        assert_eq!(get("database"), Some("mysql"));
        assert_eq!(get("updated_ms"), Some("9"));
        assert_eq!(get("award_backlog"), None);
        let a = AwardStats::default();
        a.delivered.store(5, std::sync::atomic::Ordering::Relaxed);
        a.backlog.store(3, std::sync::atomic::Ordering::Relaxed);
        let f = fields(&info, &c, Some(&a), 9);
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("awards_delivered_total"), Some("5"));
        assert_eq!(get("awards_failed_total"), Some("0"));
        assert_eq!(get("award_backlog"), Some("3"));
        assert_eq!(get("rows_total"), Some("7"));
        assert_eq!(key("g", "w", "c:{x}"), "lottery-writer:{}:g:w:c:{x}");
    }
}
