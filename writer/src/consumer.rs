//! The consumer loop of one campaign (or one shard): recover own pending entries, claim dead
//! consumers' entries, read new ones, store each batch in one transaction and acknowledge it,
//! drain the stock counts; on a failure back off and recover again.

use crate::args::Args;
use crate::connection::{redis_err, Redis};
use crate::counts::Counts;
use crate::rate::Bucket;
use crate::store::{DrainOutcome, Store};
use crate::stream::{self, Batch};
use crate::{log, Res};
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

    pub fn summary(&self, event: &str) {
        log::line("info", event, &self.counts.fields());
    }

    pub fn run(&mut self) {
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
