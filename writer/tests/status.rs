//! The status hash `lottery-writer:{}:<group>:<consumer>:<target>` against a real redis-server with the
//! module: its counts follow the writer's work (retries of a locked database included), it
//! has a TTL, and it disappears once the writer has stopped; `--status-every-ms 0` writes none.
//! The writer runs as a Redis user made by docs/operations.md's ACL recipe.

mod common;

use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CAMPAIGN: &str = "camp:{st}";
const STREAM: &str = "camp:{st}:wins";
const GROUP: &str = "writers";
const KEY: &str = "lottery-writer:{}:writers:w1:camp:{st}";
const LONG: Duration = Duration::from_secs(60);

fn status(con: &mut redis::Connection, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(con).unwrap()
}

fn num(h: &HashMap<String, String>, k: &str) -> u64 {
    h.get(k)
        .unwrap_or_else(|| panic!("no field {k} in {h:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{k} is not a number in {h:?}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// docs/operations.md's writer user.
const WRITER_ACL: &[&str] = &[
    "on",
    ">writer-pw",
    "resetkeys",
    "~camp:*",
    "resetchannels",
    "-@all",
    "+lottery.drain",
    "+lottery.stats",
    "+xreadgroup",
    "+xack",
    "+xautoclaim",
    "+xgroup|create",
    "+cluster|slots",
    "+ping",
    "(~lottery-writer:* +hset +pexpire)",
];

/// The writer's arguments, connecting as the recipe's user.
fn args_as_writer(r: &RedisServer, consumer: &str, db: &str, extra: &[&str]) -> Vec<String> {
    let mut a = writer_args(r, CAMPAIGN, GROUP, consumer, db, extra);
    a[1] = format!("redis://writer:writer-pw@127.0.0.1:{}", r.port);
    a
}

#[test]
fn status_hash_counts_ttl_and_expiry() {
    let r = RedisServer::start();
    let mut con = r.con();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("writer")
        .arg(WRITER_ACL)
        .query(&mut con)
        .unwrap();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 300);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let url = format!("sqlite:{}", db.display());
    let common = [
        "--db-timeout-ms",
        "100",
        "--max-backoff-ms",
        "200",
        "--block-ms",
        "100",
        "--log-every-ms",
        "0",
    ];
    let mut args = common.to_vec();
    args.extend(["--status-every-ms", "200"]);
    let mut w = WriterProc::spawn(&log, &args_as_writer(&r, "w1", &url, &args));
    wait_until(LONG, "status with 300 rows", || {
        status(&mut con, KEY).get("rows_total").map(String::as_str) == Some("300")
    });
    let h = status(&mut con, KEY);
    for (k, v) in [
        ("target", CAMPAIGN),
        ("stream", STREAM),
        ("group", GROUP),
        ("consumer", "w1"),
        ("database", "sqlite"),
    ] {
        assert_eq!(h.get(k).map(String::as_str), Some(v), "{k}: {h:?}");
    }
    for (k, n) in [
        ("read_total", 300),
        ("acked_total", 300),
        ("duplicates_total", 0),
        ("retries_total", 0),
        ("errors_total", 0),
    ] {
        assert_eq!(num(&h, k), n, "{k}: {h:?}");
    }
    let (started, updated) = (num(&h, "started_ms"), num(&h, "updated_ms"));
    assert!(started <= updated && updated <= now_ms() && now_ms() - updated < 5000);
    let ttl: i64 = redis::cmd("PTTL").arg(KEY).query(&mut con).unwrap();
    assert!(ttl > 0 && ttl <= 15_000, "PTTL {ttl}");
    // No password or URL in it.
    assert!(
        !h.values()
            .any(|v| v.contains("sqlite:") || v.contains("writer-pw")),
        "{h:?}"
    );

    // The database locked for a while: the writer retries, the hash counts it.
    let locker = sqlite(&db);
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    draw(&mut con, CAMPAIGN, 300, 500);
    wait_until(LONG, "retries in the status", || {
        status(&mut con, KEY)
            .get("retries_total")
            .is_some_and(|n| n != "0")
    });
    locker.execute_batch("COMMIT").unwrap();
    wait_until(LONG, "status with 500 rows", || {
        status(&mut con, KEY).get("rows_total").map(String::as_str) == Some("500")
    });
    let h = status(&mut con, KEY);
    assert_eq!(num(&h, "acked_total"), 500, "{h:?}");
    assert!(num(&h, "errors_total") >= num(&h, "retries_total"), "{h:?}");
    assert!(num(&h, "updated_ms") > updated, "{h:?}");
    assert_eq!(rows(&db), 500);

    // Stopped: the hash is no longer refreshed and expires.
    assert!(w.term().success(), "{}", w.log_text());
    let stopped = Instant::now();
    let last = num(&status(&mut con, KEY), "updated_ms");

    // Meanwhile: a user without the rights on the status key still stores every win; the
    // failures to publish are logged once (rate-limited) and no hash appears.
    let no_status: Vec<&str> = WRITER_ACL[..WRITER_ACL.len() - 1].to_vec();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("nostatus")
        .arg(&no_status)
        .arg(">nostatus-pw")
        .query(&mut con)
        .unwrap();
    let mut fast = common.to_vec();
    fast.extend(["--status-every-ms", "100"]);
    let mut a = args_as_writer(&r, "w2", &url, &fast);
    a[1] = format!("redis://nostatus:nostatus-pw@127.0.0.1:{}", r.port);
    draw(&mut con, CAMPAIGN, 500, 600);
    let mut w2 = WriterProc::spawn(&r.dir.path().join("w2.log"), &a);
    wait_until(LONG, "w2 stores the new wins", || rows(&db) == 600);
    std::thread::sleep(Duration::from_millis(500));
    assert!(w2.term().success(), "{}", w2.log_text());
    let t = w2.log_text();
    assert_eq!(t.matches("event=status_failed").count(), 1, "{t}");
    assert!(t.contains("NOPERM") || t.contains("permission"), "{t}");
    // The writer's own work never failed because of it.
    assert!(!t.contains("event=retry"), "{t}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg("lottery-writer:{}:writers:w2:camp:{st}")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0);

    // --status-every-ms 0 writes no hash.
    let mut off = common.to_vec();
    off.extend(["--status-every-ms", "0"]);
    draw(&mut con, CAMPAIGN, 600, 700);
    let mut w3 = WriterProc::spawn(
        &r.dir.path().join("w3.log"),
        &args_as_writer(&r, "w3", &url, &off),
    );
    wait_until(LONG, "w3 stores the new wins", || rows(&db) == 700);
    std::thread::sleep(Duration::from_millis(300));
    let exists: i64 = redis::cmd("EXISTS")
        .arg("lottery-writer:{}:writers:w3:camp:{st}")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0);
    assert!(w3.term().success(), "{}", w3.log_text());

    let h = status(&mut con, KEY);
    assert!(h.is_empty() || num(&h, "updated_ms") == last, "{h:?}");
    wait_until(Duration::from_secs(20), "the status expired", || {
        status(&mut con, KEY).is_empty()
    });
    assert!(stopped.elapsed() > Duration::from_secs(10));
}

/// The hash never stays without a TTL: a user allowed `HSET` but not `PEXPIRE` on the status
/// key (an ACL written by hand) writes no hash at all (it would never expire, and outlive the
/// writer as a live-looking entry); a hash left without a TTL (a writer killed between its two
/// commands; made by hand here) gets one at the next publish.
#[test]
fn status_hash_never_left_without_ttl() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 50);
    let url = format!("sqlite:{}", r.dir.path().join("wins.db").display());
    let fast = [
        "--status-every-ms",
        "100",
        "--block-ms",
        "100",
        "--log-every-ms",
        "0",
    ];
    let mut acl: Vec<&str> = WRITER_ACL[..WRITER_ACL.len() - 1].to_vec();
    acl.push("(~lottery-writer:* +hset)");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("writer")
        .arg(&acl)
        .query(&mut con)
        .unwrap();
    let mut w = WriterProc::spawn(
        &r.dir.path().join("w1.log"),
        &args_as_writer(&r, "w1", &url, &fast),
    );
    wait_until(LONG, "a failure to publish", || {
        w.log_text().contains("event=status_failed")
    });
    std::thread::sleep(Duration::from_millis(300));
    let exists: i64 = redis::cmd("EXISTS").arg(KEY).query(&mut con).unwrap();
    assert!(w.term().success(), "{}", w.log_text());
    assert_eq!(exists, 0, "a status hash without its TTL");

    // A hash without a TTL, left before: the next publish gives it one.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("writer")
        .arg(WRITER_ACL)
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(KEY)
        .arg("updated_ms")
        .arg(1)
        .query(&mut con)
        .unwrap();
    let mut w = WriterProc::spawn(
        &r.dir.path().join("w2.log"),
        &args_as_writer(&r, "w1", &url, &fast),
    );
    wait_until(LONG, "the hash refreshed", || {
        status(&mut con, KEY).get("updated_ms").map(String::as_str) != Some("1")
    });
    let ttl: i64 = redis::cmd("PTTL").arg(KEY).query(&mut con).unwrap();
    assert!(ttl > 0 && ttl <= 15_000, "PTTL {ttl}");
    assert!(w.term().success(), "{}", w.log_text());
}
