//! Tests of the parent module.

use super::*;
use std::collections::BTreeMap;

fn b(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn stats_value(prizes: &[(&str, i64, i64)], draws: i64) -> Value {
    let rows = prizes
        .iter()
        .map(|(id, stock, sold)| {
            Value::Array(vec![
                b(id),
                Value::Int(1),
                Value::Int(*stock),
                Value::Int(*sold),
            ])
        })
        .collect();
    Value::Array(vec![
        b("state"),
        b("active"),
        b("fallback"),
        Value::Nil,
        b("users"),
        Value::Int(draws),
        b("draws"),
        Value::Int(draws),
        b("wins"),
        Value::Int(1),
        b("losses"),
        Value::Int(draws - 1),
        b("prizes"),
        Value::Array(rows),
    ])
}

fn desc(stock: &[(&str, Stock)]) -> Descriptor {
    Descriptor {
        name: "s".into(),
        shards: 2,
        keys: vec!["{s.0}".into(), "{s.1}".into()],
        stock: stock
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
        created_ms: 0,
    }
}

#[test]
fn parses_stats_and_sums() {
    let a = ShardStats::from_value(&stats_value(&[("phone", 3, 2), ("pts", -1, 5)], 10)).unwrap();
    let c = ShardStats::from_value(&stats_value(&[("phone", 4, 1), ("pts", -1, 7)], 4)).unwrap();
    assert_eq!(a.get_str("state"), "active");
    assert_eq!(
        a.prizes[1],
        PrizeRow {
            id: "pts".into(),
            weight: 1,
            stock: -1,
            sold: 5
        }
    );
    let d = desc(&[("phone", Stock::Finite(10)), ("pts", Stock::Inf)]);
    let t = prize_totals(&d, &[a.clone(), c.clone()]);
    assert_eq!(
        t["phone"],
        PrizeTotals {
            total: 10,
            remaining: 7,
            sold: 3
        }
    );
    assert_eq!(
        t["pts"],
        PrizeTotals {
            total: -1,
            remaining: -1,
            sold: 12
        }
    );
    assert_eq!(sum_field(&[a.clone(), c.clone()], "draws"), 14);
    let j = stats_json(
        &d,
        &[
            ("{s.0}".into(), "n:1".into(), a),
            ("{s.1}".into(), "n:2".into(), c),
        ],
    );
    assert_eq!(j["prizes"]["phone"]["remaining"], 7);
    assert_eq!(j["shards"][0]["stats"]["fallback"], Json::Null);
    assert_eq!(j["losses"], 12);
    assert!(ShardStats::from_value(&Value::Int(1)).is_err());
    assert!(ShardStats::from_value(&Value::Array(vec![b("x")])).is_err());
}

/// Prize rows with fields after `sold` (a server with per-prize `after` and code pools) read
/// the same; fewer than four fields are refused.
#[test]
fn prize_rows_with_more_fields() {
    let v = Value::Array(vec![
        b("prizes"),
        Value::Array(vec![Value::Array(vec![
            b("card"),
            Value::Int(2),
            Value::Int(40),
            Value::Int(3),
            Value::Int(5),
            Value::Int(1),
        ])]),
    ]);
    let s = ShardStats::from_value(&v).unwrap();
    assert_eq!(
        s.prizes,
        [PrizeRow {
            id: "card".into(),
            weight: 2,
            stock: 40,
            sold: 3
        }]
    );
    let short = Value::Array(vec![
        b("prizes"),
        Value::Array(vec![Value::Array(vec![
            b("card"),
            Value::Int(2),
            Value::Int(40),
        ])]),
    ]);
    assert!(ShardStats::from_value(&short).is_err());
}

fn rec(id: &str, dir: &str, count: i64, peer: &str, state: &str) -> Record {
    Record {
        id: id.into(),
        dir: dir.into(),
        prize: "phone".into(),
        count,
        peer: peer.into(),
        state: state.into(),
    }
}

#[test]
fn conservation_arithmetic() {
    let d = desc(&[("phone", Stock::Finite(10)), ("pts", Stock::Inf)]);
    let snap = |key: &str, stock: i64, sold: i64, records: Vec<Record>| ShardSnapshot {
        key: key.into(),
        stats: ShardStats::from_value(&stats_value(&[("phone", stock, sold), ("pts", -1, 0)], 1))
            .unwrap(),
        records,
    };
    // 10 = 4 + 3 remaining + 3 sold: conserved, nothing pending.
    let r = conservation(
        &d,
        &[snap("{s.0}", 4, 1, vec![]), snap("{s.1}", 3, 2, vec![])],
    );
    assert!(r.ok());
    assert_eq!(r.pending, 0);
    // OUT of 2 from shard 0 not yet IN on shard 1: 2 in flight.
    let r = conservation(
        &d,
        &[
            snap(
                "{s.0}",
                2,
                1,
                vec![rec("r.1", "OUT", 2, "{s.1}", "PENDING")],
            ),
            snap("{s.1}", 3, 2, vec![]),
        ],
    );
    assert_eq!(r.prizes["phone"].in_flight, 2);
    assert_eq!(r.pending, 1);
    assert!(r.ok());
    // IN applied, SETTLE missing: not in flight any more.
    let r = conservation(
        &d,
        &[
            snap(
                "{s.0}",
                2,
                1,
                vec![rec("r.1", "OUT", 2, "{s.1}", "PENDING")],
            ),
            snap("{s.1}", 5, 2, vec![rec("r.1", "IN", 2, "{s.0}", "APPLIED")]),
        ],
    );
    assert_eq!(r.prizes["phone"].in_flight, 0);
    assert!(r.ok());
    // An IN of the same id on another shard does not count.
    let r = conservation(
        &d,
        &[
            snap(
                "{s.0}",
                2,
                1,
                vec![rec("r.1", "OUT", 2, "{s.9}", "PENDING")],
            ),
            snap("{s.1}", 5, 2, vec![rec("r.1", "IN", 2, "{s.0}", "APPLIED")]),
        ],
    );
    assert!(!r.ok());
    // Stock created from nothing.
    let r = conservation(
        &d,
        &[snap("{s.0}", 5, 1, vec![]), snap("{s.1}", 3, 2, vec![])],
    );
    assert!(!r.ok());
    assert_eq!(r.to_json()["ok"], false);
    assert_eq!(r.to_json()["prizes"]["pts"]["total"], -1);
}

#[test]
fn records() {
    let v = Value::Array(vec![Value::Array(vec![
        b("r.1"),
        b("OUT"),
        b("phone"),
        Value::Int(3),
        b("{s.1}"),
        b("PENDING"),
    ])]);
    let r = parse_records(&v).unwrap();
    assert!(r[0].is_pending_out());
    assert_eq!(r[0].count, 3);
    assert!(parse_records(&Value::Array(vec![Value::Int(1)])).is_err());
}
