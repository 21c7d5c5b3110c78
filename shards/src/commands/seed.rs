//! `seed NAME rotate|reveal`: `LOTTERY.SEED` on every shard of a VERIFIABLE campaign. Each
//! shard is a campaign of its own, with its own seed, epochs and wins stream, so each reveals
//! its own seed (of its own epoch number); one shard's failure does not stop the others.

use lottery_shards::cluster::Cluster;
use lottery_shards::error::{shard_error, Error, Result};
use lottery_shards::stats::ShardStats;
use serde_json::{json, Value as Json};

use super::load;

/// STATS before, the seed, STATS after, in one atomic step on the shard: the epoch whose seed
/// was revealed is the one in force before (ROTATE reveals the previous epoch's seed, REVEAL
/// the current one), and ROTATE's new epoch and commitment are read after.
const SEED_AND_STATS: &str = "local b = redis.call('LOTTERY.STATS', KEYS[1]) \
     local s = redis.call('LOTTERY.SEED', KEYS[1], ARGV[1]) \
     return {b, s, redis.call('LOTTERY.STATS', KEYS[1])}";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedAction {
    /// Start a new epoch on every shard and reveal each shard's previous seed
    Rotate,
    /// Reveal each shard's current seed (only once the campaign's WINDOW has ended)
    Reveal,
}

impl SeedAction {
    fn word(self) -> &'static str {
        match self {
            SeedAction::Rotate => "ROTATE",
            SeedAction::Reveal => "REVEAL",
        }
    }

    fn name(self) -> &'static str {
        match self {
            SeedAction::Rotate => "rotate",
            SeedAction::Reveal => "reveal",
        }
    }
}

/// What one shard revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revealed {
    /// The epoch whose seed this is.
    pub epoch: i64,
    /// 64 lowercase hex characters, as the module replies it.
    pub seed: String,
    /// The epoch in force afterwards and its commitment (after ROTATE, the new one).
    pub now_epoch: i64,
    pub now_commitment: String,
}

/// Reads the script's reply `[stats before, seed, stats after]`.
pub fn parse_reply(v: &redis::Value) -> std::result::Result<Revealed, String> {
    let redis::Value::Array(parts) = v else {
        return Err(format!("unexpected reply {v:?}"));
    };
    let [before, seed, after] = parts.as_slice() else {
        return Err(format!("unexpected reply of {} parts", parts.len()));
    };
    let before = ShardStats::from_value(before)?;
    let after = ShardStats::from_value(after)?;
    let seed = match seed {
        redis::Value::BulkString(b) => b,
        other => return Err(format!("LOTTERY.SEED replied {other:?}, expected a seed")),
    };
    if seed.len() != 64 || !seed.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "LOTTERY.SEED replied {:?}, expected 64 lowercase hex characters",
            String::from_utf8_lossy(&seed[..seed.len().min(80)])
        ));
    }
    Ok(Revealed {
        epoch: before.get_i64("seed_epoch"),
        seed: String::from_utf8_lossy(seed).into_owned(),
        now_epoch: after.get_i64("seed_epoch"),
        now_commitment: after.get_str("seed_commitment"),
    })
}

fn on_shard(c: &mut Cluster, key: &str, action: SeedAction) -> Result<Revealed> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SEED_AND_STATS).arg(1).arg(key).arg(action.word());
    let v: redis::Value = match action {
        // Not idempotent (a resend would start a second epoch and print the seed of the
        // first new one): sent at most once.
        SeedAction::Rotate => c.query_once(key, &cmd),
        // Idempotent: a second REVEAL replies the same seed and appends nothing.
        SeedAction::Reveal => c.query(&cmd),
    }
    .map_err(|e| match e {
        Error::Campaign(m) => shard_error(Error::Campaign(without_script_suffix(m)), key),
        other => other,
    })?;
    parse_reply(&v).map_err(Error::Campaign)
}

/// A server's error from inside the script, without the ` script: <sha1>, on
/// @user_script:<line>.` that Redis adds (Valkey 9: ` script: on @user_script:<line>.`): the
/// module's own words are what the operator needs.
pub fn without_script_suffix(mut m: String) -> String {
    if let Some(at) = m.rfind(" script: ") {
        let tail = &m[at + " script: ".len()..];
        let sha_ok = tail.len() > 40
            && tail.as_bytes()[..40].iter().all(u8::is_ascii_hexdigit)
            && tail[40..].starts_with(", on @user_script:");
        if sha_ok || tail.starts_with("on @user_script:") {
            m.truncate(at);
        }
    }
    m
}

/// Every shard in order; a shard that fails is reported (stderr, and in the JSON) and the
/// others still go. Exit 0 when every shard succeeded; otherwise the error of the first shard
/// that failed (its exit code), naming how many failed. Refused credentials stop at once.
pub fn seed(c: &mut Cluster, name: &str, action: SeedAction, as_json: bool) -> Result<u8> {
    let d = load(c, name)?;
    let mut rows: Vec<Json> = Vec::with_capacity(d.keys.len());
    let mut failed: Vec<(usize, Error)> = Vec::new();
    for (i, key) in d.keys.iter().enumerate() {
        let node = c.topology.node_of_key(key);
        match on_shard(c, key, action) {
            Ok(r) => {
                if as_json {
                    let mut row = json!({"index": i, "key": key, "node": node,
                        "epoch": r.epoch, "seed": r.seed});
                    if action == SeedAction::Rotate {
                        row["next_epoch"] = json!(r.now_epoch);
                        row["commitment"] = json!(r.now_commitment);
                    }
                    rows.push(row);
                } else if action == SeedAction::Rotate {
                    println!(
                        "shard {i} {key} epoch {} seed {} next_epoch {} commitment {}",
                        r.epoch, r.seed, r.now_epoch, r.now_commitment
                    );
                } else {
                    println!("shard {i} {key} epoch {} seed {}", r.epoch, r.seed);
                }
            }
            Err(e) => {
                eprintln!("lottery-shards: shard {i} {key}: {e}");
                rows.push(json!({"index": i, "key": key, "node": node, "error": e.to_string()}));
                let auth = matches!(e, Error::Auth(_));
                failed.push((i, e));
                if auth {
                    break;
                }
            }
        }
    }
    if as_json {
        println!(
            "{}",
            json!({"name": name, "action": action.name(), "shards": rows,
                   "failed": failed.len()})
        );
    }
    let n = failed.len();
    match failed.into_iter().next() {
        None => Ok(0),
        Some((i, first)) => Err(first.context(format!(
            "seed {} failed on {n} of {} shards (first: shard {i})",
            action.name(),
            d.keys.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value as V;

    fn bulk(s: &str) -> V {
        V::BulkString(s.as_bytes().to_vec())
    }

    fn stats(epoch: i64, commitment: Option<&str>) -> V {
        V::Array(vec![
            bulk("draws"),
            V::Int(5),
            bulk("verifiable"),
            V::Int(1),
            bulk("seed_epoch"),
            V::Int(epoch),
            bulk("seed_commitment"),
            commitment.map_or(V::Nil, bulk),
        ])
    }

    #[test]
    fn reply_gives_the_revealed_epoch_and_the_next() {
        let seed = "0123456789abcdef".repeat(4);
        let c2 = "f".repeat(64);
        let v = V::Array(vec![
            stats(1, Some(&"e".repeat(64))),
            bulk(&seed),
            stats(2, Some(&c2)),
        ]);
        assert_eq!(
            parse_reply(&v).unwrap(),
            Revealed {
                epoch: 1,
                seed: seed.clone(),
                now_epoch: 2,
                now_commitment: c2
            }
        );
    }

    #[test]
    fn script_suffix_is_dropped() {
        let sha = "25716c33459639917fc7ceb7c83b66ce974df40b";
        assert_eq!(
            without_script_suffix(format!(
                "ERR the campaign is not VERIFIABLE (x) script: {sha}, on @user_script:1."
            )),
            "ERR the campaign is not VERIFIABLE (x)"
        );
        assert_eq!(
            without_script_suffix("ERR no room script: on @user_script:1.".to_string()),
            "ERR no room"
        );
        for kept in [
            "ERR plain".to_string(),
            "ERR a script: b".to_string(),
            format!("ERR x script: {}, on @user_script:1.", &sha[..39]),
            "ERR x script: ".to_string(),
            "ERR 抽奖 script: 奖".to_string(),
        ] {
            assert_eq!(without_script_suffix(kept.clone()), kept);
        }
    }

    #[test]
    fn bad_replies_are_errors_not_panics() {
        let good = "a".repeat(64);
        let st = || stats(1, None);
        for bad in [
            V::Nil,
            V::Array(vec![]),
            V::Array(vec![st(), bulk(&good)]),
            V::Array(vec![st(), bulk(&good), st(), st()]),
            V::Array(vec![st(), V::Int(1), st()]),
            V::Array(vec![st(), bulk(&"A".repeat(64)), st()]),
            V::Array(vec![st(), bulk(&"a".repeat(63)), st()]),
            V::Array(vec![st(), V::BulkString(vec![0xff; 100_000]), st()]),
            V::Array(vec![V::Int(3), bulk(&good), st()]),
        ] {
            let e = parse_reply(&bad).unwrap_err();
            assert!(e.len() < 1000, "{e}");
        }
    }
}
