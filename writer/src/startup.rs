//! Startup: checks the arguments, reaches Redis, finds what to consume (the campaign, or every
//! shard the descriptor lists) and its wins stream, opens the stores and makes the writers.
//! Every failure is logged and turned into the process exit code.

use crate::args::{read_timeout, Args};
use crate::cluster;
use crate::connection::{is_auth, is_unreachable, Redis};
use crate::consumer::Writer;
use crate::counts::Counts;
use crate::log::mask_url;
use crate::rate::Bucket;
use crate::{log, store, stream, Res};
use crate::{EXIT_DB_UNREACHABLE, EXIT_FATAL, EXIT_REDIS_UNREACHABLE};
use lottery_cluster::descriptor::{descriptor_key, missing, validate_name, Descriptor};
use redis::Value;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One campaign (or shard) to consume: its key and its wins stream.
struct Target {
    campaign: String,
    stream: String,
}

/// The writers to run (one per campaign or shard), connected; or the exit code.
pub fn writers(args: &Args, stop: &Arc<AtomicBool>) -> Result<Vec<Writer>, i32> {
    let redis_urls = log_start(args);

    if let Some(name) = &args.shards {
        if let Err(e) = validate_name(name) {
            log!("error", "startup_failed", what = "campaign", error = e);
            return Err(EXIT_FATAL);
        }
    }

    if (1..10).contains(&args.drain_every_ms) {
        log!(
            "error",
            "startup_failed",
            what = "arguments",
            error = "--drain-every-ms must be 0 (off) or at least 10"
        );
        eprintln!("lottery-writer: --drain-every-ms must be 0 (off) or at least 10");
        return Err(EXIT_FATAL);
    }
    if (1..100).contains(&args.status_every_ms) {
        log!(
            "error",
            "startup_failed",
            what = "arguments",
            error = "--status-every-ms must be 0 (off) or at least 100"
        );
        eprintln!("lottery-writer: --status-every-ms must be 0 (off) or at least 100");
        return Err(EXIT_FATAL);
    }
    let mut probe = probe(args)?;
    if let Err(e) = store::check_url(&args.database) {
        log!("error", "startup_failed", what = "database", error = e);
        eprintln!("lottery-writer: {}", e);
        return Err(EXIT_FATAL);
    }

    // Redis first: fail at once (no retry) when it is unreachable at start.
    if let Err(e) = probe.connect() {
        if is_auth(&e) {
            log!(
                "error",
                "startup_failed",
                what = "redis_auth",
                url = redis_urls,
                error = e
            );
            eprintln!(
                "lottery-writer: Redis authentication failed at {}: {}",
                redis_urls, e
            );
            return Err(EXIT_FATAL);
        }
        log!(
            "error",
            "startup_failed",
            what = "redis",
            url = redis_urls,
            error = e
        );
        eprintln!(
            "lottery-writer: cannot reach Redis at {}: {}",
            redis_urls, e
        );
        return Err(EXIT_REDIS_UNREACHABLE);
    }

    let campaigns = campaigns(&mut probe, args)?;
    let targets = targets(&mut probe, args, campaigns)?;
    let sharded = args.shards.is_some();

    // One store per campaign / shard (each shard's thread writes through its own
    // connection; SQLite: WAL, IMMEDIATE transactions and a busy timeout serialize them).
    let mut writers = Vec::new();
    let now = Instant::now();
    for t in targets {
        let store = match store::open(&args.database, Duration::from_millis(args.db_timeout_ms)) {
            Ok(s) => s,
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "database",
                    database = mask_url(&args.database),
                    error = e
                );
                eprintln!(
                    "lottery-writer: cannot open the database {}: {}",
                    mask_url(&args.database),
                    e
                );
                return Err(EXIT_DB_UNREACHABLE);
            }
        };
        if sharded {
            log::set_shard(Some(&t.campaign));
        }
        log!(
            "info",
            "ready",
            stream = t.stream,
            db = store.kind(),
            batch = args.batch
        );
        log::set_shard(None);
        let mut w = Writer {
            bucket: Bucket::new(args.rate),
            args: args.clone(),
            redis: probe.fresh(read_timeout(args)),
            campaign: t.campaign,
            store,
            stream: t.stream,
            stop: Arc::clone(stop),
            counts: Counts::default(),
            last_claim: now,
            last_drain: now,
            last_log: now,
            last_check: now,
            last_reconciled: false,
            fatal: None,
            status: Default::default(),
            award_wake: None,
            award_stats: None,
        };
        if let Err(e) = w.connect() {
            log!("error", "startup_failed", what = "redis", error = e);
            return Err(EXIT_REDIS_UNREACHABLE);
        }
        writers.push(w);
    }
    Ok(writers)
}

/// The `start` line; returns the Redis URLs as logged (passwords masked).
fn log_start(args: &Args) -> String {
    let redis_urls = args
        .redis
        .iter()
        .map(|u| mask_url(u))
        .collect::<Vec<_>>()
        .join(",");
    match (&args.campaign, &args.shards) {
        (Some(campaign), None) if !args.cluster => log!(
            "info",
            "start",
            redis = redis_urls,
            campaign = campaign,
            group = args.group,
            consumer = args.consumer,
            database = mask_url(&args.database),
            rate = args.rate,
            drain_every_ms = args.drain_every_ms,
            claim_idle_ms = args.claim_idle_ms
        ),
        _ => log!(
            "info",
            "start",
            redis = redis_urls,
            cluster = args.cluster,
            campaign = args.campaign.as_deref().unwrap_or(""),
            shards = args.shards.as_deref().unwrap_or(""),
            group = args.group,
            consumer = args.consumer,
            database = mask_url(&args.database),
            rate = args.rate,
            drain_every_ms = args.drain_every_ms,
            claim_idle_ms = args.claim_idle_ms
        ),
    }
    redis_urls
}

/// The startup connection (also the template of every writer's own connections).
fn probe(args: &Args) -> Result<Redis, i32> {
    let connect_timeout = Duration::from_millis(args.timeout_ms.max(1));
    let startup_read_timeout = Duration::from_millis(args.timeout_ms.max(1000));
    let write_timeout = Duration::from_millis(args.timeout_ms.max(1000));
    if args.cluster {
        match cluster::Cluster::new(
            &args.redis,
            connect_timeout,
            startup_read_timeout,
            write_timeout,
        ) {
            Ok(c) => Ok(Redis::Cluster(c)),
            Err(e) => {
                log!("error", "startup_failed", what = "redis", error = e);
                Err(EXIT_FATAL)
            }
        }
    } else {
        if args.redis.len() > 1 {
            log!(
                "error",
                "startup_failed",
                what = "redis",
                error = "several --redis URLs need --cluster"
            );
            return Err(EXIT_FATAL);
        }
        match redis::Client::open(args.redis[0].as_str()) {
            Ok(client) => Ok(Redis::Single {
                client,
                con: None,
                connect_timeout,
                read_timeout: startup_read_timeout,
                write_timeout,
            }),
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "redis",
                    error = format!("invalid --redis URL: {}", e)
                );
                Err(EXIT_FATAL)
            }
        }
    }
}

/// The exit code for a failed Redis command at startup.
fn exit_code(e: &redis::RedisError) -> i32 {
    if is_unreachable(e) && !is_auth(e) {
        EXIT_REDIS_UNREACHABLE
    } else {
        EXIT_FATAL
    }
}

/// What to consume: the campaign, or every shard the descriptor lists.
fn campaigns(probe: &mut Redis, args: &Args) -> Result<Vec<String>, i32> {
    let Some(name) = &args.shards else {
        return Ok(args.campaign.iter().cloned().collect());
    };
    let key = descriptor_key(name);
    let v = match probe.query(&key, redis::cmd("HGETALL").arg(&key)) {
        Ok(v) => v,
        Err(e) => {
            log!(
                "error",
                "startup_failed",
                what = "campaign",
                shards = name,
                error = e
            );
            eprintln!("lottery-writer: HGETALL {} failed: {}", key, e);
            return Err(exit_code(&e));
        }
    };
    match shard_keys(name, &v) {
        Ok(keys) => Ok(keys),
        Err(e) => {
            log!(
                "error",
                "startup_failed",
                what = "campaign",
                shards = name,
                error = e
            );
            eprintln!("lottery-writer: {}", e);
            Err(EXIT_FATAL)
        }
    }
}

/// The shard keys of the descriptor `lottery:shards:NAME` (its HGETALL reply), parsed and
/// checked by the descriptor parser lottery-shards uses.
fn shard_keys(name: &str, v: &Value) -> Res<Vec<String>> {
    let fields: BTreeMap<String, String> = redis::from_redis_value(v)
        .map_err(|e| format!("unexpected HGETALL {} reply: {}", descriptor_key(name), e))?;
    if fields.is_empty() {
        return Err(missing(name));
    }
    let fields: Vec<(String, String)> = fields.into_iter().collect();
    Descriptor::parse(name, &fields).map(|d| d.keys)
}

/// Each campaign with its wins stream: `--stream`, or the one `LOTTERY.STATS` reports.
fn targets(probe: &mut Redis, args: &Args, campaigns: Vec<String>) -> Result<Vec<Target>, i32> {
    let mut targets = Vec::new();
    for campaign in campaigns {
        // The campaign must exist, also with --stream.
        let stats = probe.query(&campaign, redis::cmd("LOTTERY.STATS").arg(&campaign));
        let name = match stats {
            Ok(v) => stream::field(&v, "stream").and_then(stream::string),
            Err(e) => {
                log!(
                    "error",
                    "startup_failed",
                    what = "campaign",
                    campaign = campaign,
                    error = e
                );
                eprintln!("lottery-writer: LOTTERY.STATS {} failed: {}", campaign, e);
                return Err(exit_code(&e));
            }
        };
        let stream_name = match &args.stream {
            Some(s) => {
                // A key of another type would fail every XREADGROUP: refuse it now.
                match probe.query(s, redis::cmd("TYPE").arg(s)) {
                    Ok(v) => {
                        let t = stream::string(&v).unwrap_or_default();
                        if t != "stream" && t != "none" {
                            log!(
                                "error",
                                "startup_failed",
                                what = "stream",
                                stream = s,
                                error = format!("--stream {:?} is a {}, not a stream", s, t)
                            );
                            eprintln!("lottery-writer: --stream {:?} is a {}, not a stream", s, t);
                            return Err(EXIT_FATAL);
                        }
                    }
                    Err(e) => {
                        log!("error", "startup_failed", what = "stream", error = e);
                        return Err(exit_code(&e));
                    }
                }
                s.clone()
            }
            None => match name {
                Some(n) => n,
                None => {
                    log!(
                        "error",
                        "startup_failed",
                        what = "campaign",
                        error = "LOTTERY.STATS has no stream field"
                    );
                    return Err(EXIT_FATAL);
                }
            },
        };
        targets.push(Target {
            campaign,
            stream: stream_name,
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(fields: &[(&str, &str)]) -> Value {
        Value::Array(
            fields
                .iter()
                .flat_map(|(k, v)| [k, v])
                .map(|s| Value::BulkString(s.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn descriptor_shard_keys() {
        let mut f = vec![
            ("format", "1"),
            ("name", "s"),
            ("shards", "2"),
            ("route", lottery_cluster::route::ROUTE_NAME),
            ("shard:0", "{s.0}"),
            ("shard:1", "{s.1}"),
        ];
        assert_eq!(shard_keys("s", &hash(&f)).unwrap(), ["{s.0}", "{s.1}"]);
        assert!(shard_keys("s", &hash(&[]))
            .unwrap_err()
            .contains("no sharded campaign"));
        f[2] = ("shards", "16385");
        assert!(shard_keys("s", &hash(&f)).is_err());
        f[2] = ("shards", "2");
        f[5] = ("shard:1", "{s.0}");
        assert!(shard_keys("s", &hash(&f)).is_err());
    }
}
