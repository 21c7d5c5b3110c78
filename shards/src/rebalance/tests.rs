//! Tests of the parent module.

use super::*;
use std::collections::{BTreeMap, VecDeque};

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

/// The shards in memory, with the module's transfer semantics. With `codes`, the prize is a
/// code prize: a shard's stock is its pool, an OUT holds the codes it took until SETTLE.
#[derive(Default)]
struct Fake {
    stock: BTreeMap<String, u64>,
    records: BTreeMap<String, Vec<Record>>,
    codes: bool,
    pools: BTreeMap<String, VecDeque<Vec<u8>>>,
    held: BTreeMap<(String, String), Vec<Vec<u8>>>,
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
        if self.codes {
            let pool = self.pools.get_mut(key).unwrap();
            let taken: Vec<Vec<u8>> = pool.drain(..t as usize).collect();
            self.held.insert((key.into(), id.into()), taken);
        }
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
        codes: &[Vec<u8>],
    ) -> Result<bool> {
        if self.rec(key, id).is_some() {
            return Ok(false);
        }
        if self.codes == codes.is_empty() || (self.codes && codes.len() as u64 != count) {
            return Err(Error::Campaign("bad codes".into()));
        }
        self.pools
            .entry(key.into())
            .or_default()
            .extend(codes.iter().cloned());
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
    fn transfer_codes(&mut self, key: &str, id: &str) -> Result<Vec<Vec<u8>>> {
        self.rec(key, id)
            .filter(|r| r.dir == "OUT")
            .ok_or_else(|| Error::Campaign("no such".into()))?;
        Ok(self
            .held
            .get(&(key.to_string(), id.to_string()))
            .cloned()
            .unwrap_or_default())
    }
    fn settle(&mut self, key: &str, id: &str) -> Result<bool> {
        let r = self
            .rec(key, id)
            .ok_or_else(|| Error::Campaign("no such".into()))?;
        let was = r.state == "PENDING";
        r.state = "SETTLED".into();
        self.held.remove(&(key.to_string(), id.to_string()));
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
        let codes = if self.codes {
            vec![
                b("phone"),
                redis::Value::Int(self.stock[key] as i64),
                redis::Value::Int(0),
            ]
        } else {
            Vec::new()
        };
        let v = redis::Value::Array(vec![
            b("codes"),
            redis::Value::Array(codes),
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
        let r = transfer(
            &mut f, "r.1", "phone", 5, false, &keys[0], &keys[1], &mut after,
        )
        .unwrap();
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
    transfer(
        &mut f, "r.1", "phone", 3, false, &keys[0], &keys[1], &mut stop,
    )
    .unwrap();
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

/// A shard pair for a code prize: shard 0 holds `n` codes, shard 1 none.
fn code_fake(keys: &[String], n: usize) -> Fake {
    let mut f = Fake {
        codes: true,
        ..Fake::default()
    };
    let codes: VecDeque<Vec<u8>> = (0..n).map(|i| format!("c{i:02}").into_bytes()).collect();
    f.stock.insert(keys[0].clone(), n as u64);
    f.stock.insert(keys[1].clone(), 0);
    f.pools.insert(keys[0].clone(), codes);
    f.pools.insert(keys[1].clone(), VecDeque::new());
    f
}

/// Every code once: in a pool, or held by a PENDING OUT whose IN the peer has not applied.
fn code_places(f: &Fake) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = f.pools.values().flatten().cloned().collect();
    for ((key, id), codes) in &f.held {
        let r = f.records[key].iter().find(|r| &r.id == id).unwrap();
        let applied = f
            .records
            .get(&r.peer)
            .is_some_and(|p| p.iter().any(|q| &q.id == id && q.dir == "IN"));
        if !applied {
            all.extend(codes.iter().cloned());
        }
    }
    all.sort();
    all
}

#[test]
fn code_prize_crash_points_move_each_code_once() {
    let keys: Vec<String> = vec!["{s.0}".into(), "{s.1}".into()];
    let every: Vec<Vec<u8>> = (0..10).map(|i| format!("c{i:02}").into_bytes()).collect();
    for crash in [None, Some(Step::Out), Some(Step::In)] {
        let mut f = code_fake(&keys, 10);
        let mut after = |s: Step| Some(s) == crash;
        let r = transfer(
            &mut f, "r.1", "phone", 5, true, &keys[0], &keys[1], &mut after,
        )
        .unwrap();
        assert_eq!(r.is_none(), crash.is_some());
        assert_eq!(code_places(&f), every, "{crash:?}");
        let n = recover(&mut f, &keys, &mut |_| {}).unwrap();
        assert_eq!(n, usize::from(crash.is_some()));
        assert_eq!(recover(&mut f, &keys, &mut |_| {}).unwrap(), 0);
        assert_eq!(code_places(&f), every, "{crash:?}");
        assert!(f.held.is_empty(), "settled records hold no codes");
        // The oldest codes moved.
        assert_eq!(f.pools[&keys[1]], every[..5].to_vec());
        assert_eq!(f.pools[&keys[0]], every[5..].to_vec());
    }
    // A counted prize's transfer sends no codes, and a code prize's IN needs them: the fake
    // refuses either mistake, as the module does.
    let mut f = code_fake(&keys, 4);
    assert!(transfer(
        &mut f,
        "r.2",
        "phone",
        2,
        false,
        &keys[0],
        &keys[1],
        &mut |_| false
    )
    .is_err());
    recover(&mut f, &keys, &mut |_| {}).unwrap();
    assert_eq!(f.stock.values().copied().collect::<Vec<_>>(), [2, 2]);
    assert_eq!(code_places(&f).len(), 4);
}

#[test]
fn code_prize_rounds_even_out_in_bounded_transfers() {
    let d = Descriptor {
        name: "s".into(),
        shards: 2,
        keys: vec!["{s.0}".into(), "{s.1}".into()],
        stock: Default::default(),
        created_ms: 0,
    };
    let mut f = code_fake(&d.keys, 9);
    let opts = Options {
        min_move: 1,
        crash_after: None,
    };
    let mut seq = 0;
    let mut lines = Vec::new();
    let n = round(
        &mut f,
        &d,
        "run",
        &mut seq,
        &opts,
        &mut |l| lines.push(l),
        &mut |_| false,
    )
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(lines, ["transfer run.1 phone 4 {s.0} -> {s.1}"]);
    assert_eq!(f.pools[&d.keys[1]].len(), 4);
    assert_eq!(f.pools[&d.keys[0]].len(), 5);

    assert_eq!(
        split(
            vec![
                Move {
                    from: 0,
                    to: 1,
                    count: 250_001
                },
                Move {
                    from: 2,
                    to: 1,
                    count: 3
                }
            ],
            MAX_CODES_PER_TRANSFER
        )
        .iter()
        .map(|m| (m.from, m.count))
        .collect::<Vec<_>>(),
        [(0, 100_000), (0, 100_000), (0, 50_001), (2, 3)]
    );
}
