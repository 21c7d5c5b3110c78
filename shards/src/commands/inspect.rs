//! The subcommands that only read: `describe`, `route`, `stats` and `check`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::time::Duration;

use lottery_cluster::descriptor::{descriptor_key, Descriptor};
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{shard_error, Error, Result};
use lottery_shards::rebalance::Shards;
use lottery_shards::stats::{self, conservation, parse_records, ShardSnapshot, ShardStats};

use super::{inf, load};

pub fn describe(c: &mut Cluster, name: &str) -> Result<u8> {
    let d = load(c, name)?;
    let raw: BTreeMap<String, String> = c.query(redis::cmd("HGETALL").arg(descriptor_key(name)))?;
    // Known fields in their order, then anything else the hash holds.
    let known = d.fields();
    for (k, _) in &known {
        if let Some(v) = raw.get(k) {
            println!("{k} = {v}");
        }
    }
    for (k, v) in &raw {
        if !known.iter().any(|(f, _)| f == k) {
            println!("{k} = {v}");
        }
    }
    Ok(0)
}

pub fn route(c: &mut Cluster, name: &str, user: &OsStr) -> Result<u8> {
    let d = load(c, name)?;
    let (i, key) = d.shard_of(user.as_encoded_bytes());
    println!("{i} {key}");
    Ok(0)
}

fn read_stats(c: &mut Cluster, d: &Descriptor) -> Result<Vec<(String, String, ShardStats)>> {
    let mut out = Vec::with_capacity(d.keys.len());
    for key in &d.keys {
        let s = c
            .stats(key)
            .map_err(|e| e.context(format!("shard {key}")))?;
        out.push((key.clone(), c.topology.node_of_key(key), s));
    }
    Ok(out)
}

pub fn show_stats(c: &mut Cluster, name: &str, json: bool) -> Result<u8> {
    let d = load(c, name)?;
    let shards = read_stats(c, &d)?;
    if json {
        println!("{}", stats::stats_json(&d, &shards));
        return Ok(0);
    }
    let only: Vec<ShardStats> = shards.iter().map(|s| s.2.clone()).collect();
    println!("campaign {name}: {} shards", d.shards);
    println!(
        "draws {} wins {} losses {} users {}",
        stats::sum_field(&only, "draws"),
        stats::sum_field(&only, "wins"),
        stats::sum_field(&only, "losses"),
        stats::sum_field(&only, "users")
    );
    for (id, t) in stats::prize_totals(&d, &only) {
        println!(
            "prize {id}: total {} remaining {} sold {}",
            inf(t.total),
            inf(t.remaining),
            t.sold
        );
    }
    for (i, (key, node, s)) in shards.iter().enumerate() {
        let prizes: Vec<String> = s
            .prizes
            .iter()
            .map(|p| format!("{} {}/{}", p.id, inf(p.stock), p.sold))
            .collect();
        println!(
            "shard {i} {key} {node}: {} draws {} wins {} losses {} users {}; remaining/sold: {}{}",
            s.get_str("state"),
            s.get_i64("draws"),
            s.get_i64("wins"),
            s.get_i64("losses"),
            s.get_i64("users"),
            prizes.join(", "),
            seed_part(s)
        );
    }
    Ok(0)
}

/// A VERIFIABLE shard's seed in `stats`: `; seed epoch <n> from draw <s> commitment <hex>`
/// (` revealed` once its seed was shown); nothing for a shard that is not verifiable.
pub fn seed_part(s: &ShardStats) -> String {
    if s.get_i64("verifiable") != 1 {
        return String::new();
    }
    format!(
        "; seed epoch {} from draw {} commitment {}{}",
        s.get_i64("seed_epoch"),
        s.get_i64("seed_from_draw"),
        s.get_str("seed_commitment"),
        if s.get_i64("seed_revealed") == 1 {
            " revealed"
        } else {
            ""
        }
    )
}

const STATS_AND_LIST: &str =
    "return {redis.call('LOTTERY.STATS', KEYS[1]), redis.call('LOTTERY.TRANSFER', KEYS[1], 'LIST')}";

fn snapshot(c: &mut Cluster, d: &Descriptor) -> Result<Vec<ShardSnapshot>> {
    let mut out = Vec::new();
    for key in &d.keys {
        let v: redis::Value = c
            .eval(STATS_AND_LIST, key, &[])
            .map_err(|e| shard_error(e, key))?;
        let parts = match v {
            redis::Value::Array(p) if p.len() == 2 => p,
            other => {
                return Err(Error::Campaign(format!(
                    "{key}: unexpected reply {other:?}"
                )))
            }
        };
        out.push(ShardSnapshot {
            key: key.clone(),
            stats: ShardStats::from_value(&parts[0]).map_err(Error::Campaign)?,
            records: parse_records(&parts[1]).map_err(Error::Campaign)?,
        });
    }
    Ok(out)
}

pub fn check(c: &mut Cluster, name: &str, json: bool) -> Result<u8> {
    let d = load(c, name)?;
    // Each shard is read atomically, but not all at one instant: a transfer running meanwhile
    // can make one reading look off, so an unbalanced reading is taken again (up to 3 times).
    let mut report = conservation(&d, &snapshot(c, &d)?);
    for _ in 0..2 {
        if report.ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        report = conservation(&d, &snapshot(c, &d)?);
    }
    if json {
        println!("{}", report.to_json());
    } else {
        for (id, p) in &report.prizes {
            if p.total < 0 && p.remaining < 0 {
                println!("prize {id}: INF stock, sold {} (not checked)", p.sold);
            } else {
                println!(
                    "prize {id}: total {} {} remaining {} + sold {} + in_flight {}{}",
                    inf(p.total),
                    if p.ok() { "==" } else { "!=" },
                    inf(p.remaining),
                    p.sold,
                    p.in_flight,
                    if p.ok() { "" } else { "  NOT CONSERVED" }
                );
            }
        }
        println!("pending transfers: {}", report.pending);
        println!(
            "{}",
            if report.ok() {
                "conserved"
            } else {
                "NOT CONSERVED"
            }
        );
    }
    Ok(if report.ok() { 0 } else { 1 })
}
