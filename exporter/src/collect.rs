//! One sample of one Redis node: `INFO`, the campaigns (found by `SCAN ... TYPE` or given),
//! one pipelined round of `LOTTERY.STATS` for all of them, one of `XLEN` + `XINFO GROUPS`
//! for their streams, one of `XREVRANGE ... COUNT 20` over a bounded reader (bounded.rs), and
//! the writer status hashes. Work per
//! sample: a constant number of round trips per [`crate::node::PIPELINE_BATCH`] campaigns,
//! plus the `SCAN` of discovery (the whole keyspace, at most every [`DISCOVER_EVERY`]).

use crate::model::{self, Node};
use crate::names;
use crate::node::pipeline;
use redis::{Connection, Value};
use std::time::{Duration, Instant};

/// Wins listed per campaign in the status API.
pub const RECENT_WINS: usize = 20;
/// Campaign discovery (`SCAN`) runs at most this often per node; in between the keys found
/// last time are sampled (a key that went away is rediscovered at once).
pub const DISCOVER_EVERY: Duration = Duration::from_secs(10);
/// Writer status hashes read per node at most.
pub const MAX_WRITERS: usize = 1000;
/// Keys asked per `SCAN` call.
const SCAN_COUNT: usize = 1000;

pub struct Options {
    /// Campaign keys given (`--campaign`); empty: discover.
    pub campaigns: Vec<Vec<u8>>,
    pub max_campaigns: usize,
}

/// What discovery found on one node, kept between samples.
#[derive(Default)]
pub struct Discovered {
    pub keys: Vec<Vec<u8>>,
    pub dropped: u64,
    pub writer_keys: Vec<Vec<u8>>,
    pub writers_dropped: u64,
    pub at: Option<Instant>,
}

fn server_error(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(format!("{} {}", e.code(), e.details().unwrap_or_default())),
        _ => None,
    }
}

/// `SCAN 0 MATCH pattern COUNT n [TYPE t]` to the end; keeps at most `max` keys and counts
/// the rest.
fn scan(
    con: &mut Connection,
    pattern: &str,
    ty: &str,
    max: usize,
) -> redis::RedisResult<(Vec<Vec<u8>>, u64)> {
    let mut cursor: Vec<u8> = b"0".to_vec();
    let mut keys = Vec::new();
    let mut dropped = 0u64;
    loop {
        let (next, batch): (Vec<u8>, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .arg("TYPE")
            .arg(ty)
            .query(con)?;
        for k in batch {
            if keys.len() < max {
                keys.push(k);
            } else {
                dropped += 1;
            }
        }
        if next == b"0" {
            break;
        }
        cursor = next;
    }
    // SCAN may return a key twice (rehashing): keep each once.
    keys.sort();
    keys.dedup();
    Ok((keys, dropped))
}

/// A discovery `SCAN` the server refused (an ACL without `+scan`, say) finds nothing and is
/// a scrape error; the node is up and its named campaigns are still read. A connection
/// problem stays an `Err` (the node is down).
fn refused(
    r: redis::RedisResult<(Vec<Vec<u8>>, u64)>,
    addr: &str,
    what: &str,
    errors: &mut Vec<String>,
) -> redis::RedisResult<(Vec<Vec<u8>>, u64)> {
    match r {
        Err(e) if !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped()) => {
            errors.push(format!("{}: {} (SCAN): {}", addr, what, e));
            Ok((Vec::new(), 0))
        }
        other => other,
    }
}

/// Samples one node. A connection-level failure is returned as `Err` (the node is down);
/// problems with single replies go to `errors`.
pub fn sample_node(
    con: &mut Connection,
    raw: (&redis::ConnectionInfo, Duration),
    addr: &str,
    opts: &Options,
    disc: &mut Discovered,
    errors: &mut Vec<String>,
) -> redis::RedisResult<Node> {
    let mut node = Node {
        addr: addr.to_string(),
        up: true,
        ..Default::default()
    };
    let info = pipeline(
        con,
        &[
            redis::cmd("INFO").arg("server").clone(),
            redis::cmd("INFO").arg("lottery").clone(),
            redis::cmd("MODULE").arg("LIST").clone(),
        ],
    )?;
    if let Some(text) = info.first().and_then(model::bytes) {
        node.version = model::info_field(text, "redis_version")
            .or_else(|| model::info_field(text, "valkey_version"));
    }
    if let Some(v) = info.get(1) {
        match model::bytes(v) {
            Some(text) => node.info = model::info_ints(text, "lottery_"),
            None => errors.push(format!(
                "{}: INFO lottery: {}",
                addr,
                server_error(v).unwrap_or_default()
            )),
        }
    }
    // MODULE LIST may be refused by ACL: then no module version, and no error.
    if let Some(list) = info.get(2).and_then(model::array) {
        for m in list {
            let f = model::pairs(m);
            if f.iter()
                .any(|(k, v)| *k == b"name" && model::bytes(v) == Some(b"lottery"))
            {
                node.module_version = f
                    .iter()
                    .find(|(k, _)| *k == b"ver")
                    .and_then(|(_, v)| model::int(v));
            }
        }
    }

    // The campaigns.
    if disc.at.is_none_or(|t| t.elapsed() >= DISCOVER_EVERY) {
        let (keys, dropped) = if opts.campaigns.is_empty() {
            refused(
                scan(con, "*", names::CAMPAIGN_TYPE, opts.max_campaigns),
                addr,
                "campaign discovery",
                errors,
            )?
        } else {
            (Vec::new(), 0)
        };
        let (writer_keys, writers_dropped) = refused(
            scan(con, names::WRITER_PATTERN, "hash", MAX_WRITERS),
            addr,
            "writer status discovery",
            errors,
        )?;
        *disc = Discovered {
            keys,
            dropped,
            writer_keys,
            writers_dropped,
            at: Some(Instant::now()),
        };
    }
    let keys: &[Vec<u8>] = if opts.campaigns.is_empty() {
        &disc.keys
    } else {
        &opts.campaigns
    };
    node.dropped = disc.dropped;
    let cmds: Vec<redis::Cmd> = keys
        .iter()
        .map(|k| redis::cmd("LOTTERY.STATS").arg(k).clone())
        .collect();
    let replies = pipeline(con, &cmds)?;
    let mut stale = false;
    for (k, v) in keys.iter().zip(replies.iter()) {
        match model::parse_stats(k, v) {
            Some(c) => node.campaigns.push(c),
            None => match server_error(v) {
                // Not (or no longer) here: a given key lives on another node, or a
                // discovered one was deleted (rediscover next time).
                Some(e)
                    if e.contains("no such campaign")
                        || e.starts_with("MOVED")
                        || e.starts_with("ASK") =>
                {
                    stale = true;
                }
                Some(e) => errors.push(format!(
                    "{}: LOTTERY.STATS {}: {}",
                    addr,
                    model::lossy(k),
                    e
                )),
                None => errors.push(format!(
                    "{}: LOTTERY.STATS {}: reply not understood",
                    addr,
                    model::lossy(k)
                )),
            },
        }
    }

    if stale && opts.campaigns.is_empty() {
        disc.at = None;
    }

    // Their streams: length and consumer groups; the newest wins over a bounded reader
    // (bounded.rs: an entry may be of any size).
    let mut cmds = Vec::new();
    let mut recent = Vec::new();
    let with_stream: Vec<usize> = (0..node.campaigns.len())
        .filter(|&i| {
            node.campaigns[i]
                .stream
                .as_ref()
                .is_some_and(|s| !s.is_empty())
        })
        .collect();
    for &i in &with_stream {
        let s = node.campaigns[i].stream.as_ref().expect("filtered");
        cmds.push(redis::cmd("XLEN").arg(s).clone());
        cmds.push(redis::cmd("XINFO").arg("GROUPS").arg(s).clone());
        recent.push(vec![
            b"XREVRANGE".to_vec(),
            s.clone(),
            b"+".to_vec(),
            b"-".to_vec(),
            b"COUNT".to_vec(),
            RECENT_WINS.to_string().into_bytes(),
        ]);
    }
    let replies = pipeline(con, &cmds)?;
    let wins = if recent.is_empty() {
        Ok(Vec::new())
    } else {
        crate::bounded::Reader::connect(raw.0, raw.1).and_then(|mut r| {
            let mut out = Vec::with_capacity(recent.len());
            for batch in recent.chunks(crate::node::PIPELINE_BATCH) {
                out.extend(r.run(batch)?);
            }
            for e in r.errors.iter().take(crate::sampler::MAX_ERRORS) {
                errors.push(format!("{}: XREVRANGE: {}", addr, e));
            }
            Ok(out)
        })
    };
    let wins = wins.unwrap_or_else(|e| {
        errors.push(format!("{}: XREVRANGE (the newest wins): {}", addr, e));
        Vec::new()
    });
    for (k, (&i, r)) in with_stream.iter().zip(replies.chunks_exact(2)).enumerate() {
        let c = &mut node.campaigns[i];
        c.stream_length = model::int(&r[0]);
        // No stream yet (no win so far): XINFO says "no such key"; nothing to report.
        if server_error(&r[1]).is_none() {
            c.groups = model::parse_groups(&r[1]);
        }
        if let Some(w) = wins.get(k) {
            c.recent_wins = model::parse_wins(w);
            c.recent_wins.truncate(RECENT_WINS);
        }
    }

    // Writer status hashes.
    if disc.writers_dropped > 0 {
        errors.push(format!(
            "{}: {} writer status hashes beyond {} not read",
            addr, disc.writers_dropped, MAX_WRITERS
        ));
    }
    let cmds: Vec<redis::Cmd> = disc
        .writer_keys
        .iter()
        .map(|k| redis::cmd("HGETALL").arg(k).clone())
        .collect();
    let replies = pipeline(con, &cmds)?;
    for v in &replies {
        if let Some(w) = model::parse_writer(v) {
            node.writers.push(w);
        }
    }
    Ok(node)
}
