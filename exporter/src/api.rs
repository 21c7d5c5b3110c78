//! GET /api/status: the JSON the status page reads (documented in docs/operations.md).
//! Text comes from keys and ids made UTF-8 lossily; serde_json escapes every character.
//! Bounded: at most [`MAX_PRIZES`] prizes per campaign (the rest counted in
//! `prizes_omitted`), and campaigns past [`MAX_BYTES`] of JSON are left out (counted in
//! `campaigns_omitted`).

use crate::model::lossy;
use crate::sampler::State;
use serde_json::{json, Map, Value};

/// Prizes listed per campaign (a campaign may have 65,536).
pub const MAX_PRIZES: usize = 500;
/// Size of the campaigns' JSON past which the next campaigns are left out.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

pub fn render(st: &State, refresh_ms: u64) -> String {
    let mut size = 0usize;
    let mut omitted = 0u64;
    let s = &st.sample;
    let mut campaigns = Vec::new();
    // (stream, group) -> lag, the first seen of each.
    let mut lags: std::collections::HashMap<(String, String), Option<i64>> = Default::default();
    let mut version = Value::Null;
    let mut module_version = Value::Null;
    for n in &s.nodes {
        // A node that is down shows its last good sample (its errors say so).
        let Some(n) = (if n.up {
            Some(n)
        } else {
            st.last_good.get(&n.addr)
        }) else {
            continue;
        };
        if version.is_null() {
            version = n.version.clone().map(Value::from).unwrap_or(Value::Null);
        }
        if module_version.is_null() {
            module_version = n
                .module_version
                .map(|v| Value::from(v.to_string()))
                .unwrap_or(Value::Null);
        }
        for c in &n.campaigns {
            let key = lossy(&c.key);
            let stream = c.stream.as_deref().map(lossy);
            for g in &c.groups {
                if let Some(st) = &stream {
                    lags.entry((st.clone(), lossy(&g.name))).or_insert(g.lag);
                }
            }
            if size >= MAX_BYTES {
                omitted += 1;
                continue;
            }
            let mut rejections = Map::new();
            for (o, x) in &c.rejections {
                rejections.insert(o.clone(), json!(x));
            }
            let prizes: Vec<Value> = c
                .prizes
                .iter()
                .take(MAX_PRIZES)
                .map(|p| {
                    json!({
                        "id": lossy(&p.id),
                        "stock": p.stock,
                        "sold": p.sold,
                        "infinite": p.stock.is_none(),
                    })
                })
                .collect();
            let wins: Vec<Value> = c
                .recent_wins
                .iter()
                .map(|w| {
                    json!({
                        "id": w.id, "user": w.user, "prize": w.prize,
                        "ts_ms": w.ts_ms, "code": w.code,
                    })
                })
                .collect();
            let history: Vec<Value> = st
                .history
                .get(&key)
                .map(|h| h.iter().map(|p| json!(p)).collect())
                .unwrap_or_default();
            let card = json!({
                "key": key,
                "state": c.state,
                "draws": c.draws, "wins": c.wins, "losses": c.losses, "users": c.users,
                "rejections": rejections,
                "prizes": prizes,
                "prizes_omitted": c.prizes.len().saturating_sub(MAX_PRIZES),
                "stream": stream,
                "recent_wins": wins,
                "history": history,
            });
            size += card.to_string().len();
            campaigns.push(card);
        }
    }
    let mut writers = Vec::new();
    for n in s.nodes.iter().filter(|n| n.up) {
        for w in &n.writers {
            let lag = lags
                .get(&(w.stream.clone(), w.group.clone()))
                .copied()
                .flatten();
            let counter = |f: &str| w.counters.iter().find(|(k, _)| *k == f).map(|(_, v)| *v);
            writers.push(json!({
                "group": w.group, "consumer": w.consumer, "target": w.target,
                "rows_total": counter("rows_total"),
                "retries_total": counter("retries_total"),
                "errors_total": counter("errors_total"),
                "lag": lag,
                "age_ms": w.updated_ms.map(|u| s.time_ms.saturating_sub(u).max(0)),
            }));
        }
    }
    json!({
        "time_ms": s.time_ms,
        "refresh_ms": refresh_ms,
        "campaigns": campaigns,
        "campaigns_omitted": omitted,
        "writers": writers,
        "server": { "version": version, "module_version": module_version },
        "errors": s.errors,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Campaign, Group, Node, Writer};

    /// A writer's lag is looked up, not searched for: 2,000 writers over a stream with
    /// 200,000 consumer groups (anyone who may XGROUP CREATE can add them) render at once
    /// (a search for each writer took seconds of every sample).
    #[test]
    fn many_groups_and_writers_render_fast() {
        let groups: Vec<Group> = (0..200_000)
            .map(|i| Group {
                name: format!("g{}", i).into_bytes(),
                lag: Some(i),
                pending: None,
            })
            .collect();
        let writers: Vec<Writer> = (0..2000)
            .map(|i| Writer {
                group: format!("g{}", 199_000 + i % 1000 + if i < 1000 { 0 } else { 1000 }),
                consumer: format!("c{}", i),
                stream: "s".into(),
                ..Default::default()
            })
            .collect();
        let mut st = State::default();
        st.sample.nodes.push(Node {
            addr: "n".into(),
            up: true,
            campaigns: vec![Campaign {
                key: b"k".to_vec(),
                draws: 1,
                stream: Some(b"s".to_vec()),
                groups,
                ..Default::default()
            }],
            writers,
            ..Default::default()
        });
        let start = std::time::Instant::now();
        let v: Value = serde_json::from_str(&render(&st, 2000)).unwrap();
        let took = start.elapsed();
        let w = v["writers"].as_array().unwrap();
        assert_eq!(w.len(), 2000);
        assert_eq!(w[0]["lag"], json!(199_000));
        assert_eq!(w[1999]["lag"], Value::Null); // g200999: no such group
        assert!(took < std::time::Duration::from_millis(1500), "{:?}", took);
    }
}
