//! Moving stock between shards without ever creating or losing a unit.
//!
//! A transfer of `count` units of `prize` from shard A to shard B, with an id unique to this
//! run (`<run-id>.<n>`), is three steps, each one idempotent by its id:
//!
//! 1. `LOTTERY.TRANSFER A OUT id prize count B`: A takes t = min(count, its stock) and
//!    records OUT {id, prize, t, peer B, PENDING}, atomically. The units are now "in flight":
//!    in no shard's stock, but in A's pending record.
//! 2. `LOTTERY.TRANSFER B IN id prize t A`: B adds t and records IN {id}, atomically. A second
//!    IN of the same id adds nothing.
//! 3. `LOTTERY.TRANSFER A SETTLE id`: the OUT record is settled.
//!
//! Each step is acknowledged by the shard's replicas (`WAIT`) before the next one starts, so
//! a failover cannot undo a step whose successor already ran.
//!
//! Crash points: after 1, the units are in A's PENDING record; after 2, they are in B's stock
//! and A's record is still PENDING; after 3, done. So **every run first recovers**: for each
//! shard, each PENDING OUT record gets its IN on the peer, with the recorded t (a no-op when it
//! was already applied), then its SETTLE. An OUT that took 0 is settled without an IN. Only
//! after that are new transfers planned. At any instant, per prize:
//! `total = remaining + sold + (t of PENDING OUT records whose IN is not applied)`, which is
//! what `check` verifies.
//!
//! A code prize (`PRIZE id weight CODES`) moves codes: its OUT takes the t oldest codes out of
//! A's pool into the PENDING record, `LOTTERY.TRANSFER A CODES id` reads them, and its IN
//! gives them to B (`IN id prize t A CODES code ...`), so a code is always in one pool or in
//! one PENDING record. Recovery does the same for a PENDING record of a code prize (A's
//! `LOTTERY.STATS` tells which prizes are code prizes). A code prize's moves are split into
//! transfers of at most `MAX_CODES_PER_TRANSFER` codes, the most one OUT takes.
//!
//! The plan: per finite prize, an even share of the remaining stock for every shard (the
//! extra units of an uneven split to the shards that hold the most already), and moves from
//! shards above it to shards below it.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cluster::Cluster;
use crate::error::{shard_error, Error, Result};
use crate::stats::{parse_records, Record, ShardStats};
use lottery_cluster::descriptor::Descriptor;

/// What the protocol needs from the shards (the cluster, or a fake in tests).
pub trait Shards {
    fn transfer_out(
        &mut self,
        key: &str,
        id: &str,
        prize: &str,
        count: u64,
        peer: &str,
    ) -> Result<u64>;
    /// Returns true when the IN was applied now, false when it had been already. `codes`:
    /// those of a code prize's transfer (`count` of them), empty for a counted prize.
    fn transfer_in(
        &mut self,
        key: &str,
        id: &str,
        prize: &str,
        count: u64,
        peer: &str,
        codes: &[Vec<u8>],
    ) -> Result<bool>;
    /// The codes an OUT of a code prize took (`LOTTERY.TRANSFER key CODES id`).
    fn transfer_codes(&mut self, key: &str, id: &str) -> Result<Vec<Vec<u8>>>;
    fn settle(&mut self, key: &str, id: &str) -> Result<bool>;
    fn list(&mut self, key: &str, pending_only: bool) -> Result<Vec<Record>>;
    fn stats(&mut self, key: &str) -> Result<ShardStats>;
}

/// The most codes one transfer of a code prize moves (the module refuses an OUT of more).
pub const MAX_CODES_PER_TRANSFER: u64 = 100_000;

fn nonneg(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Campaign(format!("{what} replied {v}, expected >= 0")))
}

impl Shards for Cluster {
    fn transfer_out(
        &mut self,
        key: &str,
        id: &str,
        prize: &str,
        count: u64,
        peer: &str,
    ) -> Result<u64> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key)
            .arg("OUT")
            .arg(id)
            .arg(prize)
            .arg(count)
            .arg(peer);
        let v = self
            .query_durable::<i64>(key, &c)
            .map_err(|e| shard_error(e, key))?;
        nonneg(v, "TRANSFER OUT")
    }

    fn transfer_in(
        &mut self,
        key: &str,
        id: &str,
        prize: &str,
        count: u64,
        peer: &str,
        codes: &[Vec<u8>],
    ) -> Result<bool> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("IN").arg(id).arg(prize).arg(count).arg(peer);
        if !codes.is_empty() {
            c.arg("CODES").arg(codes);
        }
        let v = self
            .query_durable::<i64>(key, &c)
            .map_err(|e| shard_error(e, key))?;
        Ok(v == 1)
    }

    fn transfer_codes(&mut self, key: &str, id: &str) -> Result<Vec<Vec<u8>>> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("CODES").arg(id);
        self.query::<Vec<Vec<u8>>>(&c)
            .map_err(|e| shard_error(e, key))
    }

    fn settle(&mut self, key: &str, id: &str) -> Result<bool> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("SETTLE").arg(id);
        let v = self
            .query_durable::<i64>(key, &c)
            .map_err(|e| shard_error(e, key))?;
        Ok(v == 1)
    }

    fn list(&mut self, key: &str, pending_only: bool) -> Result<Vec<Record>> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("LIST");
        if pending_only {
            c.arg("PENDING");
        }
        let v: redis::Value = self.query(&c).map_err(|e| shard_error(e, key))?;
        parse_records(&v).map_err(Error::Campaign)
    }

    fn stats(&mut self, key: &str) -> Result<ShardStats> {
        let v: redis::Value = self
            .query(redis::cmd("LOTTERY.STATS").arg(key))
            .map_err(|e| shard_error(e, key))?;
        ShardStats::from_value(&v).map_err(|e| Error::Campaign(format!("{key}: {e}")))
    }
}

/// The step after which `--crash-after` aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Out,
    In,
}

/// One planned move: `count` units from shard `from` to shard `to` (indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: usize,
    pub to: usize,
    pub count: u64,
}

/// Moves that bring `remaining` (one prize, per shard) to an even share. Shares differ by at
/// most one unit; the extra units go to the shards holding the most (ties: lower index), so
/// the least moves. Moves below `min_move` units are left out.
pub fn plan(remaining: &[u64], min_move: u64) -> Vec<Move> {
    let n = remaining.len();
    if n < 2 {
        return Vec::new();
    }
    let total: u128 = remaining.iter().map(|&r| u128::from(r)).sum();
    let base = (total / n as u128) as u64;
    let extra = (total % n as u128) as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| remaining[b].cmp(&remaining[a]).then(a.cmp(&b)));
    let mut target = vec![base; n];
    for &i in order.iter().take(extra) {
        target[i] += 1;
    }
    let mut donors: Vec<(usize, u64)> = (0..n)
        .filter(|&i| remaining[i] > target[i])
        .map(|i| (i, remaining[i] - target[i]))
        .collect();
    let mut takers: Vec<(usize, u64)> = (0..n)
        .filter(|&i| remaining[i] < target[i])
        .map(|i| (i, target[i] - remaining[i]))
        .collect();
    donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    takers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut moves = Vec::new();
    let (mut d, mut t) = (0, 0);
    while d < donors.len() && t < takers.len() {
        let c = donors[d].1.min(takers[t].1);
        if c >= min_move.max(1) {
            moves.push(Move {
                from: donors[d].0,
                to: takers[t].0,
                count: c,
            });
        }
        donors[d].1 -= c;
        takers[t].1 -= c;
        if donors[d].1 == 0 {
            d += 1;
        }
        if takers[t].1 == 0 {
            t += 1;
        }
    }
    moves
}

/// The moves with every one above `most` units split into moves of at most `most`.
pub fn split(moves: Vec<Move>, most: u64) -> Vec<Move> {
    let most = most.max(1);
    let mut out = Vec::with_capacity(moves.len());
    for m in moves {
        let mut left = m.count;
        while left > 0 {
            let count = left.min(most);
            out.push(Move { count, ..m });
            left -= count;
        }
    }
    out
}

/// A run id: milliseconds since the epoch and the process id, so two runs never share ids.
pub fn run_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms}-{}", std::process::id())
}

/// The codes OUT `id` took on `from`, checked against its count `t` (a code prize's IN needs
/// exactly them).
fn codes_of(shards: &mut dyn Shards, from: &str, id: &str, t: u64) -> Result<Vec<Vec<u8>>> {
    let codes = shards
        .transfer_codes(from, id)
        .map_err(|e| e.context(format!("transfer {id}: CODES on {from}")))?;
    if codes.len() as u64 != t {
        return Err(Error::Campaign(format!(
            "transfer {id}: {from} holds {} codes for it, expected {t}",
            codes.len()
        )));
    }
    Ok(codes)
}

/// Finishes every pending transfer recorded on `keys` (IN on the peer with the recorded count,
/// and for a code prize the record's codes, then SETTLE; an OUT of 0 is only settled).
/// Returns how many it finished.
pub fn recover(
    shards: &mut dyn Shards,
    keys: &[String],
    say: &mut dyn FnMut(String),
) -> Result<usize> {
    let mut done = 0;
    for key in keys {
        let pending = shards
            .list(key, true)
            .map_err(|e| e.context(format!("listing pending transfers of {key}")))?;
        let pending: Vec<Record> = pending.into_iter().filter(Record::is_pending_out).collect();
        // Which prizes are code prizes, read from the source only when something is to move.
        let code_prizes: BTreeSet<String> = if pending.iter().any(|r| r.count > 0) {
            shards
                .stats(key)
                .map_err(|e| e.context(format!("reading {key} to recover its transfers")))?
                .code_prizes()
        } else {
            BTreeSet::new()
        };
        for r in pending {
            let count = nonneg(r.count, "a transfer record")?;
            let applied = if count > 0 {
                let codes = if code_prizes.contains(&r.prize) {
                    codes_of(shards, key, &r.id, count)?
                } else {
                    Vec::new()
                };
                shards
                    .transfer_in(&r.peer, &r.id, &r.prize, count, key, &codes)
                    .map_err(|e| {
                        e.context(format!("recovering transfer {} (IN on {})", r.id, r.peer))
                    })?
            } else {
                false
            };
            shards.settle(key, &r.id).map_err(|e| {
                e.context(format!("recovering transfer {} (SETTLE on {key})", r.id))
            })?;
            say(format!(
                "recovered {} {} {} {} -> {} ({})",
                r.id,
                r.prize,
                count,
                key,
                r.peer,
                if count == 0 {
                    "nothing was taken; settled"
                } else if applied {
                    "IN applied now; settled"
                } else {
                    "IN was applied; settled"
                }
            ));
            done += 1;
        }
    }
    Ok(done)
}

/// Runs one transfer, OUT -> IN -> SETTLE; for a code prize (`codes`) the IN carries the
/// codes the OUT took (`CODES id` on the source). `after` is called after the OUT and after
/// the IN; when it returns true the transfer stops there (the crash-point test hook). Returns
/// the units moved.
#[allow(clippy::too_many_arguments)]
pub fn transfer(
    shards: &mut dyn Shards,
    id: &str,
    prize: &str,
    count: u64,
    codes: bool,
    from: &str,
    to: &str,
    after: &mut dyn FnMut(Step) -> bool,
) -> Result<Option<u64>> {
    let t = shards
        .transfer_out(from, id, prize, count, to)
        .map_err(|e| e.context(format!("transfer {id}: OUT on {from}")))?;
    if after(Step::Out) {
        return Ok(None);
    }
    if t > 0 {
        let codes = if codes {
            codes_of(shards, from, id, t)?
        } else {
            Vec::new()
        };
        shards
            .transfer_in(to, id, prize, t, from, &codes)
            .map_err(|e| e.context(format!("transfer {id}: IN on {to} (rerun to finish it)")))?;
        if after(Step::In) {
            return Ok(None);
        }
    }
    shards.settle(from, id).map_err(|e| {
        e.context(format!(
            "transfer {id}: SETTLE on {from} (rerun to finish it)"
        ))
    })?;
    Ok(Some(t))
}

pub struct Options {
    pub min_move: u64,
    pub crash_after: Option<Step>,
}

/// One rebalance round: recover, read every shard, plan per finite prize, transfer.
/// `before_transfer` is called before each transfer (the mover refreshes its lease there) and
/// stops the round when it returns true (a signal arrived). Returns the transfers made.
pub fn round<S: Shards>(
    shards: &mut S,
    d: &Descriptor,
    run: &str,
    seq: &mut u64,
    opts: &Options,
    say: &mut dyn FnMut(String),
    before_transfer: &mut dyn FnMut(&mut S) -> bool,
) -> Result<usize> {
    recover(shards, &d.keys, say)?;
    let mut stats = Vec::with_capacity(d.keys.len());
    for key in &d.keys {
        stats.push(shards.stats(key)?);
    }
    let mut made = 0;
    let Some(first) = stats.first() else {
        return Ok(0);
    };
    let prize_ids: Vec<String> = first.prizes.iter().map(|p| p.id.clone()).collect();
    let code_prizes = first.code_prizes();
    for prize in prize_ids {
        let codes = code_prizes.contains(&prize);
        let remaining: Option<Vec<u64>> = stats
            .iter()
            .map(|s| {
                s.prizes
                    .iter()
                    .find(|p| p.id == prize)
                    .and_then(|p| u64::try_from(p.stock).ok())
            })
            .collect();
        let Some(remaining) = remaining else {
            continue; // INF, or not in every shard's table
        };
        let mut moves = plan(&remaining, opts.min_move);
        if codes {
            moves = split(moves, MAX_CODES_PER_TRANSFER);
        }
        for m in moves {
            if before_transfer(shards) {
                return Ok(made);
            }
            *seq += 1;
            let id = format!("{run}.{seq}");
            let (from, to) = (&d.keys[m.from], &d.keys[m.to]);
            let first_transfer = *seq == 1;
            let mut after = |step: Step| {
                if first_transfer && opts.crash_after == Some(step) {
                    let name = if step == Step::Out { "out" } else { "in" };
                    eprintln!(
                        "--crash-after {name}: aborting after the {name} step of transfer {id}"
                    );
                    std::process::abort();
                }
                false
            };
            let moved = transfer(shards, &id, &prize, m.count, codes, from, to, &mut after)?;
            let moved = moved.unwrap_or(0);
            say(format!(
                "transfer {id} {prize} {moved} {from} -> {to}{}",
                if moved < m.count {
                    format!(" (planned {}; the rest was drawn meanwhile)", m.count)
                } else {
                    String::new()
                }
            ));
            made += 1;
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests;
