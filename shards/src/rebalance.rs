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
//! The plan: per finite prize, an even share of the remaining stock for every shard (the
//! extra units of an uneven split to the shards that hold the most already), and moves from
//! shards above it to shards below it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
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
    /// Returns true when the IN was applied now, false when it had been already.
    fn transfer_in(
        &mut self,
        key: &str,
        id: &str,
        prize: &str,
        count: u64,
        peer: &str,
    ) -> Result<bool>;
    fn settle(&mut self, key: &str, id: &str) -> Result<bool>;
    fn list(&mut self, key: &str, pending_only: bool) -> Result<Vec<Record>>;
    fn stats(&mut self, key: &str) -> Result<ShardStats>;
}

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
        nonneg(self.query_durable::<i64>(key, &c)?, "TRANSFER OUT")
    }

    fn transfer_in(
        &mut self,
        key: &str,
        id: &str,
        prize: &str,
        count: u64,
        peer: &str,
    ) -> Result<bool> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("IN").arg(id).arg(prize).arg(count).arg(peer);
        Ok(self.query_durable::<i64>(key, &c)? == 1)
    }

    fn settle(&mut self, key: &str, id: &str) -> Result<bool> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("SETTLE").arg(id);
        Ok(self.query_durable::<i64>(key, &c)? == 1)
    }

    fn list(&mut self, key: &str, pending_only: bool) -> Result<Vec<Record>> {
        let mut c = redis::cmd("LOTTERY.TRANSFER");
        c.arg(key).arg("LIST");
        if pending_only {
            c.arg("PENDING");
        }
        let v: redis::Value = self.query(&c)?;
        parse_records(&v).map_err(Error::Campaign)
    }

    fn stats(&mut self, key: &str) -> Result<ShardStats> {
        let v: redis::Value = self.query(redis::cmd("LOTTERY.STATS").arg(key))?;
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

/// A run id: milliseconds since the epoch and the process id, so two runs never share ids.
pub fn run_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms}-{}", std::process::id())
}

/// Finishes every pending transfer recorded on `keys` (IN on the peer with the recorded count,
/// then SETTLE; an OUT of 0 is only settled). Returns how many it finished.
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
        for r in pending.into_iter().filter(Record::is_pending_out) {
            let count = nonneg(r.count, "a transfer record")?;
            let applied = if count > 0 {
                shards
                    .transfer_in(&r.peer, &r.id, &r.prize, count, key)
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

/// Runs one transfer, OUT -> IN -> SETTLE. `after` is called after the OUT and after the IN;
/// when it returns true the transfer stops there (the crash-point test hook). Returns the
/// units moved.
#[allow(clippy::too_many_arguments)]
pub fn transfer(
    shards: &mut dyn Shards,
    id: &str,
    prize: &str,
    count: u64,
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
        shards
            .transfer_in(to, id, prize, t, from)
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
    for prize in prize_ids {
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
        for m in plan(&remaining, opts.min_move) {
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
            let moved = transfer(shards, &id, &prize, m.count, from, to, &mut after)?;
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
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn plan_evens_out() {
        for (rem, min) in [
            (vec![10u64, 0, 0], 1u64),
            (vec![0, 0, 7], 1),
            (vec![5, 5, 5], 1),
            (vec![100, 3, 50, 0, 1], 1),
            (vec![1, 0], 1),
            (vec![u64::MAX / 2, 0, 1], 1),
        ] {
            let moves = plan(&rem, min);
            let mut after = rem.clone();
            for m in &moves {
                assert!(m.count > 0 && m.from != m.to);
                after[m.from] -= m.count;
                after[m.to] += m.count;
            }
            let sum = |v: &[u64]| v.iter().map(|&x| u128::from(x)).sum::<u128>();
            assert_eq!(sum(&after), sum(&rem), "{rem:?}");
            let (lo, hi) = (after.iter().min().unwrap(), after.iter().max().unwrap());
            assert!(hi - lo <= 1, "{rem:?} -> {after:?}");
        }
        assert!(plan(&[5, 5, 5], 1).is_empty());
        assert!(plan(&[7], 1).is_empty());
        assert!(plan(&[], 1).is_empty());
        // [1, 0]: the shard holding the unit keeps it.
        assert!(plan(&[1, 0], 1).is_empty());
        // Moves under min_move are skipped.
        assert_eq!(plan(&[12, 10], 1).len(), 1);
        assert!(plan(&[12, 10], 2).is_empty());
    }

    /// The shards in memory, with the module's transfer semantics.
    #[derive(Default)]
    struct Fake {
        stock: BTreeMap<String, u64>,
        records: BTreeMap<String, Vec<Record>>,
    }

    impl Fake {
        fn rec(&mut self, key: &str, id: &str) -> Option<&mut Record> {
            self.records.get_mut(key)?.iter_mut().find(|r| r.id == id)
        }
    }

    impl Shards for Fake {
        fn transfer_out(
            &mut self,
            key: &str,
            id: &str,
            prize: &str,
            count: u64,
            peer: &str,
        ) -> Result<u64> {
            if let Some(r) = self.rec(key, id) {
                return Ok(r.count as u64);
            }
            let s = self.stock.get_mut(key).unwrap();
            let t = count.min(*s);
            *s -= t;
            self.records.entry(key.into()).or_default().push(Record {
                id: id.into(),
                dir: "OUT".into(),
                prize: prize.into(),
                count: t as i64,
                peer: peer.into(),
                state: "PENDING".into(),
            });
            Ok(t)
        }
        fn transfer_in(
            &mut self,
            key: &str,
            id: &str,
            prize: &str,
            count: u64,
            peer: &str,
        ) -> Result<bool> {
            if self.rec(key, id).is_some() {
                return Ok(false);
            }
            *self.stock.get_mut(key).unwrap() += count;
            self.records.entry(key.into()).or_default().push(Record {
                id: id.into(),
                dir: "IN".into(),
                prize: prize.into(),
                count: count as i64,
                peer: peer.into(),
                state: "APPLIED".into(),
            });
            Ok(true)
        }
        fn settle(&mut self, key: &str, id: &str) -> Result<bool> {
            let r = self
                .rec(key, id)
                .ok_or_else(|| Error::Campaign("no such".into()))?;
            let was = r.state == "PENDING";
            r.state = "SETTLED".into();
            Ok(was)
        }
        fn list(&mut self, key: &str, pending_only: bool) -> Result<Vec<Record>> {
            Ok(self
                .records
                .get(key)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| !pending_only || r.is_pending_out())
                .collect())
        }
        fn stats(&mut self, key: &str) -> Result<ShardStats> {
            let b = |s: &str| redis::Value::BulkString(s.as_bytes().to_vec());
            let v = redis::Value::Array(vec![
                b("prizes"),
                redis::Value::Array(vec![redis::Value::Array(vec![
                    b("phone"),
                    redis::Value::Int(1),
                    redis::Value::Int(self.stock[key] as i64),
                    redis::Value::Int(0),
                ])]),
            ]);
            ShardStats::from_value(&v).map_err(Error::Campaign)
        }
    }

    fn in_flight(f: &Fake) -> u64 {
        let mut n = 0;
        for (key, recs) in &f.records {
            for r in recs.iter().filter(|r| r.is_pending_out()) {
                let applied = f
                    .records
                    .get(&r.peer)
                    .is_some_and(|p| p.iter().any(|q| q.id == r.id && q.dir == "IN"));
                let _ = key;
                if !applied {
                    n += r.count as u64;
                }
            }
        }
        n
    }

    #[test]
    fn crash_points_conserve_and_recover() {
        let keys: Vec<String> = vec!["{s.0}".into(), "{s.1}".into()];
        for crash in [None, Some(Step::Out), Some(Step::In)] {
            let mut f = Fake::default();
            f.stock.insert(keys[0].clone(), 10);
            f.stock.insert(keys[1].clone(), 0);
            let mut after = |s: Step| Some(s) == crash;
            let r = transfer(&mut f, "r.1", "phone", 5, &keys[0], &keys[1], &mut after).unwrap();
            assert_eq!(r.is_none(), crash.is_some());
            let total = |f: &Fake| f.stock.values().sum::<u64>() + in_flight(f);
            assert_eq!(total(&f), 10, "{crash:?}");
            // A rerun recovers first; twice is as good as once.
            let mut lines = Vec::new();
            let n = recover(&mut f, &keys, &mut |l| lines.push(l)).unwrap();
            assert_eq!(n, usize::from(crash.is_some()));
            assert_eq!(recover(&mut f, &keys, &mut |_| {}).unwrap(), 0);
            assert_eq!(f.stock[&keys[0]], 5);
            assert_eq!(f.stock[&keys[1]], 5);
            assert_eq!(in_flight(&f), 0);
        }
    }

    #[test]
    fn out_of_zero_is_settled_without_in() {
        let keys: Vec<String> = vec!["{s.0}".into(), "{s.1}".into()];
        let mut f = Fake::default();
        f.stock.insert(keys[0].clone(), 0);
        f.stock.insert(keys[1].clone(), 0);
        let mut stop = |s: Step| s == Step::Out;
        transfer(&mut f, "r.1", "phone", 3, &keys[0], &keys[1], &mut stop).unwrap();
        recover(&mut f, &keys, &mut |_| {}).unwrap();
        assert!(!f.records.contains_key(&keys[1]), "no IN for an OUT of 0");
        assert_eq!(f.records[&keys[0]][0].state, "SETTLED");
    }

    #[test]
    fn round_evens_out() {
        let d = Descriptor {
            name: "s".into(),
            shards: 3,
            keys: vec!["{s.0}".into(), "{s.1}".into(), "{s.2}".into()],
            stock: Default::default(),
            created_ms: 0,
        };
        let mut f = Fake::default();
        for (k, v) in d.keys.iter().zip([9u64, 0, 3]) {
            f.stock.insert(k.clone(), v);
        }
        let opts = Options {
            min_move: 1,
            crash_after: None,
        };
        // Stopped before the first transfer: nothing moves.
        let mut seq = 0;
        let mut asked = 0;
        let stopping = |_: &mut Fake| {
            asked += 1;
            true
        };
        let n = round(&mut f, &d, "run", &mut seq, &opts, &mut |_| {}, &mut {
            stopping
        })
        .unwrap();
        assert_eq!((n, asked, seq), (0, 1, 0));
        assert_eq!(f.stock.values().copied().collect::<Vec<_>>(), [9, 0, 3]);
        let mut lines = Vec::new();
        let mut asked = 0;
        let n = round(
            &mut f,
            &d,
            "run",
            &mut seq,
            &opts,
            &mut |l| lines.push(l),
            &mut |_| {
                asked += 1;
                false
            },
        )
        .unwrap();
        assert_eq!((n, asked), (2, 2), "asked before every transfer");
        assert_eq!(
            lines,
            [
                "transfer run.1 phone 4 {s.0} -> {s.1}",
                "transfer run.2 phone 1 {s.0} -> {s.2}"
            ]
        );
        assert_eq!(f.stock.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
        assert_eq!(
            round(&mut f, &d, "run", &mut seq, &opts, &mut |_| {}, &mut |_| {
                false
            })
            .unwrap(),
            0
        );
    }
}
