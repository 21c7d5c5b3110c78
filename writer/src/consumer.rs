//! The consumer loop of one campaign (or one shard): recover own pending entries, claim dead
//! consumers' entries, read new ones, store each batch in one transaction and acknowledge it,
//! drain the stock counts; on a failure back off and recover again.

use crate::args::Args;
use crate::connection::{is_auth, redis_err, Redis};
use crate::counts::Counts;
use crate::rate::Bucket;
use crate::store::{DrainOutcome, Store};
use crate::stream::{self, Batch};
use crate::{log, signals, Res};
use crate::{EXIT_CAMPAIGN_CHANGED, EXIT_DB_LOST, EXIT_FATAL, EXIT_UNSTORED};
use redis::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Writer {
    pub args: Args,
    pub redis: Redis,
    /// The campaign key (in sharded mode: this shard's key).
    pub campaign: String,
    pub store: Box<dyn Store>,
    pub stream: String,
    pub stop: Arc<AtomicBool>,
    pub bucket: Bucket,
    pub counts: Counts,
    pub last_claim: Instant,
    pub last_drain: Instant,
    pub last_log: Instant,
    pub last_check: Instant,
    /// `LOTTERY.DRAIN LAST` is known to be stored (or empty): a new `DRAIN` may be called.
    /// False from the moment a `DRAIN` is sent until its batch is committed.
    pub last_reconciled: bool,
    /// Set with the exit code when the writer must stop instead of retrying.
    pub fatal: Option<i32>,
    /// `counts` as of the last step, for the status hash (status.rs).
    pub status: crate::status::Slot,
    /// Award delivery: woken after each commit of new rows.
    pub award_wake: Option<Arc<crate::award::Wake>>,
    /// Award counters shown in this writer's `progress` / `stopped` lines (one campaign).
    pub award_stats: Option<Arc<crate::award::AwardStats>>,
}

impl Writer {
    pub fn connect(&mut self) -> Res<()> {
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
        let r = self.raw(key, c)?;
        r.map_err(|e| self.redis_failure(what, e))
    }

    /// Logs-ready text of a Redis error; marks the errors retrying cannot fix as fatal.
    fn redis_failure(&mut self, what: &str, e: redis::RedisError) -> String {
        if is_auth(&e) || e.code() == Some("WRONGTYPE") {
            self.fatal = Some(EXIT_FATAL);
        } else if e.to_string().contains("no such campaign") {
            self.fatal = Some(EXIT_CAMPAIGN_CHANGED);
        }
        redis_err(what, e)
    }

    /// The store is still the database opened at start; if not, stop (nothing more is
    /// acknowledged).
    fn verify_store(&mut self) -> Res<()> {
        self.store.verify().inspect_err(|_| {
            self.fatal = Some(EXIT_DB_LOST);
        })
    }

    /// The campaign still exists and still writes to our stream (`LOTTERY.STATS`). When its
    /// stream changed, what is left on the old stream is stored first, then the writer stops
    /// (exit 7): restart it to follow the new stream.
    fn check_campaign(&mut self) -> Res<()> {
        self.last_check = Instant::now();
        let mut c = redis::cmd("LOTTERY.STATS");
        c.arg(&self.campaign);
        let campaign = self.campaign.clone();
        let v = self.cmd("LOTTERY.STATS", &campaign, &c)?;
        if self.args.stream.is_some() {
            return Ok(());
        }
        let now = stream::field(&v, "stream").and_then(stream::string);
        match now {
            Some(s) if s == self.stream => Ok(()),
            other => {
                let new = other.unwrap_or_default();
                log!(
                    "warn",
                    "stream_changed",
                    campaign = self.campaign,
                    old = self.stream,
                    new = new
                );
                self.finish_old_stream()?;
                self.fatal = Some(EXIT_CAMPAIGN_CHANGED);
                Err(format!(
                    "the campaign's wins stream changed from {:?} to {:?}: everything read from \
                     the old one is stored; restart the writer to follow the new one",
                    self.stream, new
                ))
            }
        }
    }

    /// One `XREADGROUP` of this consumer on the stream, from `id` (`>`: new entries; an ID:
    /// our own pending ones after it), blocking `block` ms if given.
    fn read_group(&mut self, block: Option<u64>, id: &str) -> Res<stream::Batch> {
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP")
            .arg(&self.args.group)
            .arg(&self.args.consumer)
            .arg("COUNT")
            .arg(self.batch_size());
        if let Some(ms) = block {
            c.arg("BLOCK").arg(ms);
        }
        c.arg("STREAMS").arg(&self.stream).arg(id);
        let stream = self.stream.clone();
        stream::parse_xreadgroup(&self.cmd("XREADGROUP", &stream, &c)?)
    }

    /// Stores what is left on the (old) stream: new entries until none is left.
    fn finish_old_stream(&mut self) -> Res<()> {
        loop {
            let b = self.read_group(None, ">")?;
            if b.is_empty() {
                return Ok(());
            }
            self.process(b, "new")?;
        }
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
        // Not for an id that is only escaped for its backslashes: that is text.
        let not_text = |raw: &[u8]| std::str::from_utf8(raw).map_or(true, |s| s.contains('\0'));
        for w in b
            .wins
            .iter()
            .filter(|w| w.prize_raw.as_deref().is_some_and(not_text))
        {
            log!(
                "warn",
                "prize_not_text",
                stream = self.stream,
                id = w.id,
                stored_as = w.prize
            );
        }
        for (id, why) in &b.malformed {
            log!(
                "warn",
                "malformed_entry",
                stream = self.stream,
                id = id,
                reason = why
            );
        }
        for (id, why) in &b.verify_malformed {
            log!(
                "warn",
                "malformed_verify_entry",
                stream = self.stream,
                id = id,
                reason = why
            );
        }
        self.verify_store()?;
        // The wins and the typed entries (the verifiable-draw log) in one transaction.
        let (inserted, verify_inserted) = if b.wins.is_empty() && b.verify.is_empty() {
            (0, 0)
        } else {
            self.store.write_batch(&self.campaign, &b.wins, &b.verify)?
        };
        if inserted > 0 {
            if let Some(w) = &self.award_wake {
                w.notify(&self.campaign);
            }
        }
        // Committed; still the database we opened (not an unlinked or replaced file)?
        self.verify_store()?;
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
        self.counts.verify_inserted += verify_inserted as u64;
        self.counts.verify_duplicates += (b.verify.len() - verify_inserted) as u64;
        self.counts.verify_malformed += b.verify_malformed.len() as u64;
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
                verify_inserted = verify_inserted,
                verify_malformed = b.verify_malformed.len(),
                acked = acked
            );
        }
        Ok(())
    }

    /// Our own pending entries first (XREADGROUP with an ID instead of `>`).
    fn recover_pending(&mut self) -> Res<()> {
        let mut cursor = "0".to_string();
        loop {
            let b = self.read_group(None, &cursor)?;
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

    /// `LOTTERY.DRAIN` (`last`: `LAST`, the previous batch again) and its batch stored. A new
    /// drain is only sent once `LAST` is known to be stored: otherwise `LAST` is reconciled
    /// first, so a batch is never replaced before it is durable.
    fn drain(&mut self, last: bool) -> Res<()> {
        if !last && !self.last_reconciled {
            self.drain(true)?;
        }
        self.verify_store()?;
        let mut c = redis::cmd("LOTTERY.DRAIN");
        c.arg(&self.campaign);
        if last {
            c.arg("LAST");
        } else {
            self.last_drain = Instant::now();
            self.last_reconciled = false;
        }
        let d = stream::parse_drain(&self.cmd("LOTTERY.DRAIN", &self.campaign.clone(), &c)?)?;
        if last && d.seq == 0 {
            self.last_reconciled = true;
            return Ok(());
        }
        let outcome = self.store.write_drain(&self.campaign, &d)?;
        self.verify_store()?;
        self.last_reconciled = true;
        let sold: i64 = d.sold.iter().map(|s| s.n).sum();
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
        self.check_campaign()?;
        self.ensure_group()?;
        if self.args.drain_every_ms > 0 {
            self.last_reconciled = false;
            self.drain(true)?;
        }
        self.recover_pending()?;
        if !self.stopping() {
            self.claim()?;
        }
        Ok(())
    }

    fn step(&mut self) -> Res<()> {
        if self.last_check.elapsed() >= Duration::from_millis(self.args.check_every_ms) {
            self.check_campaign()?;
        }
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
        let b = self.read_group(Some(block), ">")?;
        self.process(b, "new")
    }

    /// Copies the counts where the status thread reads them.
    pub fn publish_counts(&self) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = self.counts.clone();
    }

    pub fn summary(&self, event: &str) {
        let mut f = self.counts.fields();
        if let Some(a) = &self.award_stats {
            f.extend(a.log_fields());
        }
        log::line("info", event, &f);
    }

    /// Runs until stopped; the exit code (see main.rs).
    pub fn run(&mut self) -> i32 {
        let mut need_recover = true;
        // The last attempt failed (and nothing succeeded since).
        let mut failing = false;
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
                    failing = false;
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    self.counts.errors += 1;
                    failing = true;
                    if let Some(code) = self.fatal {
                        log!("error", "fatal", error = e, exit_code = code);
                        return code;
                    }
                    self.counts.retries += 1;
                    log!(
                        "error",
                        "retry",
                        error = e,
                        backoff_ms = backoff.as_millis()
                    );
                    // Whatever was in hand is still pending: read it again.
                    need_recover = true;
                    self.redis.reset();
                    if !self.sleep(backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(max_backoff);
                    if let Err(e) = self.store.reconnect() {
                        log!("error", "db_reconnect_failed", error = e);
                        if self.store.verify().is_err() {
                            log!("error", "fatal", error = e, exit_code = EXIT_DB_LOST);
                            return EXIT_DB_LOST;
                        }
                    }
                }
            }
            self.publish_counts();
            if self.args.log_every_ms > 0
                && self.last_log.elapsed() >= Duration::from_millis(self.args.log_every_ms)
            {
                self.last_log = Instant::now();
                self.summary("progress");
            }
        }
        // Stopping: the batch in hand was finished above (or failed: then it is still pending).
        if failing {
            log!(
                "error",
                "stopped_unstored",
                reason = "the last attempt failed: its entries stay pending, a drain batch stays in LOTTERY.DRAIN LAST",
                exit_code = EXIT_UNSTORED
            );
            return EXIT_UNSTORED;
        }
        if signals::hurry() {
            log!("warn", "final_drain_skipped", reason = "second signal");
            return signals::EXIT_SIGNALLED_TWICE;
        }
        // Record a last drain so the stock counts are complete up to now (after reconciling
        // LAST, like every drain).
        if self.args.drain_every_ms > 0 {
            if let Err(e) = self.drain(false) {
                log!(
                    "error",
                    "final_drain_failed",
                    error = e,
                    exit_code = EXIT_UNSTORED
                );
                return self.fatal.unwrap_or(EXIT_UNSTORED);
            }
        }
        0
    }
}
