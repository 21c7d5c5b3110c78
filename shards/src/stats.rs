//! Reading the shards (`LOTTERY.STATS`, `LOTTERY.TRANSFER LIST`), the combined figures of
//! `stats`, and the conservation check of `check`. Everything but the reading is pure.

use std::collections::{BTreeMap, BTreeSet};

use redis::Value;
use serde_json::{json, Map, Value as Json};

use lottery_cluster::descriptor::{Descriptor, Stock};

/// One row of STATS' `prizes`: `[id, weight, stock (-1 INF), sold, ...]` (later fields, such
/// as a prize's `AFTER` and whether its stock is a code pool, are not needed here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrizeRow {
    pub id: String,
    pub weight: i64,
    /// -1: INF
    pub stock: i64,
    pub sold: i64,
}

/// A shard's `LOTTERY.STATS`, field order kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardStats {
    pub fields: Vec<(String, Json)>,
    pub prizes: Vec<PrizeRow>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Int(i) => json!(i),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        other => text(other).map(Json::String).unwrap_or(Json::Null),
    }
}

impl ShardStats {
    pub fn from_value(v: &Value) -> Result<ShardStats, String> {
        let Value::Array(items) = v else {
            return Err(format!("LOTTERY.STATS replied {v:?}, expected an array"));
        };
        if items.len() % 2 != 0 {
            return Err("LOTTERY.STATS replied an odd-length array".into());
        }
        let mut fields = Vec::new();
        let mut prizes = Vec::new();
        for pair in items.chunks(2) {
            let name = text(&pair[0]).ok_or("LOTTERY.STATS field name is not a string")?;
            if name == "prizes" {
                let Value::Array(rows) = &pair[1] else {
                    return Err("LOTTERY.STATS prizes is not an array".into());
                };
                for row in rows {
                    let parsed = match row {
                        Value::Array(r) if r.len() >= 4 => (|| {
                            Some(PrizeRow {
                                id: text(&r[0])?,
                                weight: int(&r[1])?,
                                stock: int(&r[2])?,
                                sold: int(&r[3])?,
                            })
                        })(),
                        _ => None,
                    };
                    prizes.push(parsed.ok_or("LOTTERY.STATS has a bad prize row")?);
                }
            }
            fields.push((name, to_json(&pair[1])));
        }
        Ok(ShardStats { fields, prizes })
    }

    /// The ids of the code prizes: the `codes` field lists `[id, unused, handed out, ...]`
    /// (empty from a module without code prizes).
    pub fn code_prizes(&self) -> BTreeSet<String> {
        let Some(Json::Array(a)) = self
            .fields
            .iter()
            .find(|(k, _)| k == "codes")
            .map(|(_, v)| v)
        else {
            return BTreeSet::new();
        };
        a.chunks(3)
            .filter_map(|c| c[0].as_str().map(str::to_string))
            .collect()
    }

    pub fn get_i64(&self, field: &str) -> i64 {
        self.fields
            .iter()
            .find(|(k, _)| k == field)
            .and_then(|(_, v)| v.as_i64())
            .unwrap_or(0)
    }

    pub fn get_str(&self, field: &str) -> String {
        self.fields
            .iter()
            .find(|(k, _)| k == field)
            .and_then(|(_, v)| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Json {
        Json::Object(self.fields.iter().cloned().collect::<Map<_, _>>())
    }
}

/// A campaign-wide prize line: -1 means INF in `total` and `remaining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrizeTotals {
    pub total: i64,
    pub remaining: i64,
    pub sold: i64,
}

/// Sums per prize over the shards; `total` from the descriptor (-1 INF; -1 also when the
/// descriptor does not know the prize, which `check` reports).
pub fn prize_totals(d: &Descriptor, shards: &[ShardStats]) -> BTreeMap<String, PrizeTotals> {
    let mut out: BTreeMap<String, PrizeTotals> = BTreeMap::new();
    for s in shards {
        for p in &s.prizes {
            let t = out.entry(p.id.clone()).or_insert_with(|| PrizeTotals {
                total: d.stock.get(&p.id).map_or(-1, |s| s.as_i64()),
                ..Default::default()
            });
            t.remaining = if t.remaining < 0 || p.stock < 0 {
                -1
            } else {
                t.remaining.saturating_add(p.stock)
            };
            t.sold = t.sold.saturating_add(p.sold);
        }
    }
    for (id, s) in &d.stock {
        out.entry(id.clone()).or_insert(PrizeTotals {
            total: s.as_i64(),
            remaining: 0,
            sold: 0,
        });
    }
    out
}

pub fn sum_field(shards: &[ShardStats], field: &str) -> i64 {
    shards.iter().map(|s| s.get_i64(field)).sum()
}

/// The `stats --json` document.
pub fn stats_json(d: &Descriptor, shards: &[(String, String, ShardStats)]) -> Json {
    let only: Vec<ShardStats> = shards.iter().map(|x| x.2.clone()).collect();
    let prizes: Map<String, Json> = prize_totals(d, &only)
        .into_iter()
        .map(|(id, t)| {
            (
                id,
                json!({"total": t.total, "remaining": t.remaining, "sold": t.sold}),
            )
        })
        .collect();
    json!({
        "name": d.name,
        "shards": shards.iter().map(|(key, node, s)| json!({
            "key": key, "node": node, "stats": s.to_json()
        })).collect::<Vec<_>>(),
        "prizes": prizes,
        "draws": sum_field(&only, "draws"),
        "wins": sum_field(&only, "wins"),
        "losses": sum_field(&only, "losses"),
        "users": sum_field(&only, "users"),
    })
}

/// One `LOTTERY.TRANSFER LIST` record: `[id, OUT|IN, prize, count, peer, state]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub dir: String,
    pub prize: String,
    pub count: i64,
    pub peer: String,
    pub state: String,
}

impl Record {
    pub fn is_pending_out(&self) -> bool {
        self.dir == "OUT" && self.state == "PENDING"
    }
}

pub fn parse_records(v: &Value) -> Result<Vec<Record>, String> {
    let Value::Array(rows) = v else {
        return Err(format!(
            "LOTTERY.TRANSFER LIST replied {v:?}, expected an array"
        ));
    };
    rows.iter()
        .map(|row| match row {
            Value::Array(r) if r.len() == 6 => (|| {
                Some(Record {
                    id: text(&r[0])?,
                    dir: text(&r[1])?,
                    prize: text(&r[2])?,
                    count: int(&r[3])?,
                    peer: text(&r[4])?,
                    state: text(&r[5])?,
                })
            })()
            .ok_or_else(|| format!("bad transfer record {row:?}")),
            _ => Err(format!("bad transfer record {row:?}")),
        })
        .collect()
}

/// One shard as `check` reads it (STATS and LIST in one EVAL, so both are of one instant).
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub key: String,
    pub stats: ShardStats,
    pub records: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrizeCheck {
    /// -1: INF (not checked)
    pub total: i64,
    pub remaining: i64,
    pub sold: i64,
    pub in_flight: i64,
}

impl PrizeCheck {
    pub fn ok(&self) -> bool {
        self.total < 0 && self.remaining < 0
            || self.total >= 0
                && self.remaining >= 0
                && i128::from(self.total)
                    == i128::from(self.remaining)
                        + i128::from(self.sold)
                        + i128::from(self.in_flight)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub pending: usize,
    pub prizes: BTreeMap<String, PrizeCheck>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.prizes.values().all(PrizeCheck::ok)
    }

    pub fn to_json(&self) -> Json {
        let prizes: Map<String, Json> = self
            .prizes
            .iter()
            .map(|(id, p)| {
                (
                    id.clone(),
                    json!({"total": p.total, "remaining": p.remaining, "sold": p.sold,
                           "in_flight": p.in_flight}),
                )
            })
            .collect();
        json!({"ok": self.ok(), "pending": self.pending, "prizes": prizes})
    }
}

/// Conservation per prize: total == remaining + sold + in_flight, where in_flight counts the
/// pending OUT records whose IN is not applied on the peer yet. A pending OUT whose IN is
/// applied is already in the peer's remaining stock (only its SETTLE is missing).
pub fn conservation(d: &Descriptor, shards: &[ShardSnapshot]) -> CheckReport {
    let stats: Vec<ShardStats> = shards.iter().map(|s| s.stats.clone()).collect();
    let applied_in: BTreeSet<(&str, &str)> = shards
        .iter()
        .flat_map(|s| {
            s.records
                .iter()
                .filter(|r| r.dir == "IN")
                .map(move |r| (s.key.as_str(), r.id.as_str()))
        })
        .collect();
    let mut prizes: BTreeMap<String, PrizeCheck> = prize_totals(d, &stats)
        .into_iter()
        .map(|(id, t)| {
            (
                id,
                PrizeCheck {
                    total: t.total,
                    remaining: t.remaining,
                    sold: t.sold,
                    in_flight: 0,
                },
            )
        })
        .collect();
    let mut pending = 0;
    for s in shards {
        for r in s.records.iter().filter(|r| r.is_pending_out()) {
            pending += 1;
            if !applied_in.contains(&(r.peer.as_str(), r.id.as_str())) {
                let p = prizes.entry(r.prize.clone()).or_insert(PrizeCheck {
                    total: d.stock.get(&r.prize).map_or(0, |s| s.as_i64()),
                    remaining: 0,
                    sold: 0,
                    in_flight: 0,
                });
                p.in_flight = p.in_flight.saturating_add(r.count);
            }
        }
    }
    CheckReport { pending, prizes }
}

/// The finite stock of a prize, for callers that need u64.
pub fn finite(s: Stock) -> Option<u64> {
    match s {
        Stock::Finite(v) => Some(v),
        Stock::Inf => None,
    }
}

#[cfg(test)]
mod tests;
