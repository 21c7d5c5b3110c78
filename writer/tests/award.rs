//! Award delivery (`--award-url`) against a real HTTP server (tests/common/http.rs), a real
//! redis-server with the module and SQLite (and PostgreSQL when installed).

mod common;

use base64::Engine as _;
use common::http::{Act, Request, Server, OK};
use common::*;
use redis::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

const GROUP: &str = "writers";

/// Options that keep the tests fast: short timeouts and backoffs.
const FAST: &[&str] = &[
    "--block-ms",
    "100",
    "--log-every-ms",
    "200",
    "--max-backoff-ms",
    "200",
    "--award-timeout-ms",
    "400",
];

fn args(
    r: &RedisServer,
    campaign: &str,
    consumer: &str,
    db: &Path,
    url: &str,
    extra: &[&str],
) -> Vec<String> {
    // FAST, except what `extra` sets.
    let mut e: Vec<&str> = FAST
        .chunks(2)
        .filter(|kv| !extra.contains(&kv[0]))
        .flatten()
        .copied()
        .collect();
    e.extend(["--award-url", url]);
    e.extend(extra);
    writer_args(
        r,
        campaign,
        GROUP,
        consumer,
        &format!("sqlite:{}", db.display()),
        &e,
    )
}

fn stream_of(campaign: &str) -> String {
    format!("{}:wins", campaign)
}

/// Every entry of the stream: id -> fields.
fn entries(con: &mut redis::Connection, stream: &str) -> HashMap<String, HashMap<String, Vec<u8>>> {
    let v: Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap();
    let Value::Array(es) = v else {
        panic!("{:?}", v)
    };
    let mut out = HashMap::new();
    for e in es {
        let Value::Array(p) = e else { panic!() };
        let Value::BulkString(id) = &p[0] else {
            panic!()
        };
        let Value::Array(f) = &p[1] else { panic!() };
        let mut m = HashMap::new();
        for kv in f.chunks(2) {
            let (Value::BulkString(k), Value::BulkString(v)) = (&kv[0], &kv[1]) else {
                panic!()
            };
            m.insert(String::from_utf8(k.clone()).unwrap(), v.clone());
        }
        out.insert(String::from_utf8(id.clone()).unwrap(), m);
    }
    out
}

/// `wait_until`, showing the writer's log on a timeout.
fn wait_for(w: &WriterProc, timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(timeout, what, f)
    })) {
        eprintln!("writer log:\n{}", w.log_text());
        std::panic::resume_unwind(e);
    }
}

/// A bytes field of the body: the string, or `null` plus `<name>_b64`.
fn bytes_field(j: &serde_json::Value, name: &str) -> Option<Vec<u8>> {
    match &j[name] {
        serde_json::Value::String(s) => {
            assert!(j.get(format!("{}_b64", name)).is_none(), "{}", j);
            Some(s.as_bytes().to_vec())
        }
        serde_json::Value::Null => j.get(format!("{}_b64", name)).map(|b| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(b.as_str().unwrap())
                .unwrap();
            assert!(
                std::str::from_utf8(&b).is_err(),
                "valid UTF-8 sent as base64: {}",
                j
            );
            b
        }),
        o => panic!("{} is {:?}", name, o),
    }
}

fn expected_key(campaign: &str, id: &str) -> String {
    let mut k = String::new();
    for b in campaign.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            k.push(b as char);
        } else {
            k.push_str(&format!("%{:02X}", b));
        }
    }
    format!("{}:{}", k, id)
}

/// Every request is a well-formed award of an entry of the stream.
fn check_requests(
    reqs: &[Request],
    campaign: &str,
    path: &str,
    want: &HashMap<String, HashMap<String, Vec<u8>>>,
) {
    for r in reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, path);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let j: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON body");
        let id = j["stream_id"].as_str().unwrap();
        let e = want
            .get(id)
            .unwrap_or_else(|| panic!("{} not in the stream", id));
        assert_eq!(r.key(), expected_key(campaign, id));
        assert_eq!(bytes_field(&j, "campaign").unwrap(), campaign.as_bytes());
        assert_eq!(bytes_field(&j, "user").as_ref(), e.get("user"), "{}", j);
        assert_eq!(bytes_field(&j, "prize").as_ref(), e.get("prize"), "{}", j);
        assert_eq!(bytes_field(&j, "code").as_ref(), e.get("code"), "{}", j);
        let num = |k: &str| {
            String::from_utf8(e[k].clone())
                .unwrap()
                .parse::<i64>()
                .unwrap()
        };
        assert_eq!(j["draw"].as_i64().unwrap(), num("draw"));
        let ts = if e.contains_key("ts") {
            num("ts")
        } else {
            id.split('-').next().unwrap().parse().unwrap()
        };
        assert_eq!(j["ts_ms"].as_i64().unwrap(), ts);
    }
}

/// (delivered, failed, undelivered) rows.
fn states(db: &Path) -> (i64, i64, i64) {
    let c = sqlite(db);
    let n = |w: &str| -> i64 {
        c.query_row(&format!("SELECT count(*) FROM wins WHERE {}", w), [], |r| {
            r.get(0)
        })
        .unwrap_or(0)
    };
    (
        n("award_state = 'delivered'"),
        n("award_state = 'failed'"),
        n("award_state IS NULL"),
    )
}

fn delivered_ids(db: &Path) -> HashSet<String> {
    let c = sqlite(db);
    let mut st = c
        .prepare("SELECT stream_id FROM wins WHERE award_state = 'delivered'")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|x| x.unwrap())
        .collect()
}

/// Keys answered 2xx more than once.
fn twice(reqs: &[Request]) -> Vec<String> {
    let mut seen = HashMap::new();
    for r in reqs {
        *seen.entry(r.key()).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect()
}

fn last_field(log: &str, event: &str, field: &str) -> Option<u64> {
    log.lines()
        .rfind(|l| l.contains(&format!("event={} ", event)))
        .and_then(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix(&format!("{}=", field)))
                .and_then(|v| v.parse().ok())
        })
}

/// Wins whose ids, prizes and codes are not text, appended as the module writes them.
fn hostile_entries(con: &mut redis::Connection, stream: &str) {
    xadd(
        con,
        stream,
        &[
            ("user", b"\xff\x00u"),
            ("prize", b"gold"),
            ("draw", b"900001"),
        ],
    );
    xadd(
        con,
        stream,
        &[
            ("user", "\u{1F600}\0\u{2028}\"\\".as_bytes()),
            ("prize", b"\xc3(\x00p"),
            ("draw", b"900002"),
            ("code", b"\x80\x00C"),
        ],
    );
    xadd(
        con,
        stream,
        &[
            ("user", b"u-text"),
            ("prize", "pr\u{e9}mio".as_bytes()),
            ("draw", b"900003"),
            ("code", b"GIFT-1"),
            ("ts", b"1764500000123"),
        ],
    );
}

#[test]
fn every_win_delivered_once_with_its_body_and_key() {
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "aw ard%:{t}"; // a space and a % in the key: percent-encoded in the header
    configure(&mut con, campaign);
    let stream = stream_of(campaign);
    draw(&mut con, campaign, 0, 300);
    hostile_entries(&mut con, &stream);
    let srv = Server::start();
    let db = r.dir.path().join("w.db");
    let mut w = WriterProc::spawn(
        &r.dir.path().join("w.log"),
        &args(&r, campaign, "w1", &db, &srv.url("/hook?x=1"), &[]),
    );
    wait_until(Duration::from_secs(30), "303 deliveries", || {
        states(&db).0 == 303
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success(), "{}", w.log_text());

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 303, "one request per win");
    assert!(twice(&reqs).is_empty());
    let want = entries(&mut con, &stream);
    assert_eq!(want.len(), 303);
    check_requests(&reqs, campaign, "/hook?x=1", &want);
    let got: HashSet<String> = reqs.iter().map(|r| r.key()).collect();
    let all: HashSet<String> = want.keys().map(|id| expected_key(campaign, id)).collect();
    assert_eq!(got, all);
    assert!(
        reqs[0].key().starts_with("aw%20ard%25:{t}:"),
        "{}",
        reqs[0].key()
    );
    // Oldest first: by ts_ms, then stream id (the entry with an old `ts` went first).
    let order: Vec<(i64, String)> = reqs
        .iter()
        .map(|r| {
            let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (
                j["ts_ms"].as_i64().unwrap(),
                j["stream_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(order[0].0, 1764500000123);
    // The hostile ones really went as base64.
    assert!(reqs
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains("\"prize_b64\":")));
    assert!(reqs
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains("\"code_b64\":\"gABD\"")));
    // Rows: delivered once, at a time, by this writer.
    let c = sqlite(&db);
    let (attempts, at, owners): (i64, i64, i64) = c
        .query_row(
            "SELECT max(award_attempts), count(award_at_ms), count(DISTINCT award_owner) FROM wins",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((attempts, at, owners), (1, 303, 1));
    let log = w.log_text();
    assert_eq!(
        last_field(&log, "stopped", "awards_delivered_total"),
        Some(303),
        "{}",
        log
    );
    assert_eq!(last_field(&log, "stopped", "awards_retries_total"), Some(0));
    assert_eq!(last_field(&log, "stopped", "award_backlog"), Some(0));
    assert!(!log.contains("event=award_retry"), "{}", log);
    assert!(log.contains("event=award_ready backlog="), "{}", log);
}

#[test]
fn failures_timeouts_and_resets_are_retried_nothing_marked_without_a_2xx() {
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "retry:{t}";
    configure(&mut con, campaign);
    let stream = stream_of(campaign);
    let srv = Server::start();
    // The first request gets a 429 with Retry-After: 1, then failures of every kind.
    srv.script(&[
        Act::Status(429, Some(1), "slow down", Duration::ZERO),
        Act::Status(500, None, "oops", Duration::ZERO),
        Act::Status(503, None, "", Duration::ZERO),
        Act::Hang(Duration::from_millis(700)),
        Act::Reset,
        Act::Status(408, None, "", Duration::ZERO),
        Act::Status(502, None, "", Duration::ZERO),
    ]);
    let db = r.dir.path().join("w.db");
    let log = r.dir.path().join("w.log");
    draw(&mut con, campaign, 0, 20);
    let mut w = WriterProc::spawn(
        &log,
        &args(
            &r,
            campaign,
            "w1",
            &db,
            &srv.url("/"),
            &["--max-backoff-ms", "1500"],
        ),
    );
    wait_for(&w, Duration::from_secs(30), "20 deliveries", || {
        states(&db).0 == 20
    });
    let reqs = srv.requests();
    // Retry-After honoured: the second request came at least ~1 s after the 429.
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        gap >= Duration::from_millis(900),
        "Retry-After: 1 not honoured: {:?}",
        gap
    );

    // The server fails everything: more wins are stored, none is marked delivered.
    srv.set_default(Act::Status(503, None, "down", Duration::ZERO));
    draw(&mut con, campaign, 20, 40);
    wait_until(Duration::from_secs(20), "stored", || rows(&db) == 40);
    let before = srv.requests().len();
    wait_until(Duration::from_secs(20), "failed attempts", || {
        srv.requests().len() >= before + 5
    });
    assert_eq!(states(&db), (20, 0, 20));
    let c = sqlite(&db);
    let (tried, err): (i64, String) = c
        .query_row(
            "SELECT count(*), max(award_error) FROM wins WHERE award_state IS NULL AND award_attempts > 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        tried >= 1 && err.starts_with("HTTP 503: down"),
        "{} {}",
        tried,
        err
    );

    // Back: all delivered, every delivered row had a 2xx and every 2xx is a delivered row.
    srv.set_default(OK);
    wait_until(Duration::from_secs(30), "40 deliveries", || {
        states(&db).0 == 40
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success(), "{}", w.log_text());
    let reqs = srv.requests();
    let ok = srv.delivered();
    assert!(
        twice(&ok).is_empty(),
        "a win answered 2xx twice: {:?}",
        twice(&ok)
    );
    let ok_ids: HashSet<String> = ok
        .iter()
        .map(|r| r.key().rsplit(':').next().unwrap().to_string())
        .collect();
    assert_eq!(ok_ids, delivered_ids(&db));
    check_requests(&reqs, campaign, "/", &entries(&mut con, &stream));
    let failed_attempts = reqs.len() - ok.len();
    let text = w.log_text();
    assert_eq!(
        last_field(&text, "stopped", "awards_retries_total"),
        Some(failed_attempts as u64),
        "{}",
        text
    );
    assert!(text.contains("error=\"HTTP 429: slow down\""), "{}", text);
    assert!(
        text.contains("error=\"timed out\"")
            || text.contains("error=\"reading the response: timed out\""),
        "{}",
        text
    );
    let attempts: i64 = c
        .query_row("SELECT sum(award_attempts) FROM wins", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts as usize, reqs.len());
}

#[test]
fn a_4xx_marks_failed_and_retry_failed_requeues() {
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "bad:{t}";
    configure(&mut con, campaign);
    let srv = Server::start();
    srv.set_default(Act::Status(
        400,
        None,
        "bad user \u{7}\u{1b}[31m",
        Duration::ZERO,
    ));
    let db = r.dir.path().join("w.db");
    let log = r.dir.path().join("w.log");
    draw(&mut con, campaign, 0, 10);
    let mut w = WriterProc::spawn(&log, &args(&r, campaign, "w1", &db, &srv.url("/"), &[]));
    wait_until(Duration::from_secs(20), "10 failed", || states(&db).1 == 10);
    std::thread::sleep(Duration::from_millis(500));
    assert!(w.term().success());
    // Not retried: one request each.
    assert_eq!(srv.requests().len(), 10);
    let text = w.log_text();
    assert_eq!(
        last_field(&text, "stopped", "awards_failed_total"),
        Some(10),
        "{}",
        text
    );
    let err: String = sqlite(&db)
        .query_row("SELECT award_error FROM wins LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(err, "HTTP 400: bad user   [31m");

    // Without --award-retry-failed nothing moves; with it, they are delivered.
    srv.set_default(OK);
    let mut w = WriterProc::spawn(&log, &args(&r, campaign, "w1", &db, &srv.url("/"), &[]));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(w.term().success());
    assert_eq!(srv.requests().len(), 10);
    let mut w = WriterProc::spawn(
        &log,
        &args(
            &r,
            campaign,
            "w1",
            &db,
            &srv.url("/"),
            &["--award-retry-failed"],
        ),
    );
    wait_until(Duration::from_secs(20), "10 delivered", || {
        states(&db).0 == 10
    });
    assert!(w.term().success());
    assert_eq!(srv.delivered().len(), 10);
    assert!(w
        .log_text()
        .contains("event=award_requeued campaign=bad:{t} failed=10"));
}

#[test]
fn award_rate_paces_deliveries_and_unlimited_is_fast() {
    let r = RedisServer::start();
    let mut con = r.con();
    let srv = Server::start();

    // Paced: 60 at 20/s take at least ~3 s.
    let campaign = "rate:{t}";
    configure(&mut con, campaign);
    draw(&mut con, campaign, 0, 60);
    let db = r.dir.path().join("w.db");
    let mut w = WriterProc::spawn(
        &r.dir.path().join("w.log"),
        &args(
            &r,
            campaign,
            "w1",
            &db,
            &srv.url("/"),
            &["--award-rate", "20"],
        ),
    );
    wait_until(Duration::from_secs(30), "60 deliveries", || {
        states(&db).0 == 60
    });
    assert!(w.term().success());
    let reqs = srv.requests();
    let took = reqs.last().unwrap().at.duration_since(reqs[0].at);
    eprintln!("--award-rate 20: 60 deliveries in {:?}", took);
    assert!(took >= Duration::from_millis(2500), "{:?}", took);
    assert!(took <= Duration::from_secs(15), "{:?}", took);

    // Unlimited: deliveries per second, next to the storing rate.
    let campaign = "fast:{t}";
    configure(&mut con, campaign);
    let n = 3000;
    draw(&mut con, campaign, 0, n);
    let db = r.dir.path().join("f.db");
    let start = Instant::now();
    let mut w = WriterProc::spawn(
        &r.dir.path().join("f.log"),
        &args(&r, campaign, "w1", &db, &srv.url("/"), &[]),
    );
    wait_until(Duration::from_secs(30), "stored", || rows(&db) == n as i64);
    let stored = start.elapsed();
    wait_until(Duration::from_secs(60), "delivered", || {
        states(&db).0 == n as i64
    });
    let delivered = start.elapsed();
    assert!(w.term().success());
    eprintln!(
        "MEASURED: {} wins stored in {:?} ({:.0}/s); delivered (--award-rate 0) in {:?} ({:.0}/s)",
        n,
        stored,
        n as f64 / stored.as_secs_f64(),
        delivered,
        n as f64 / delivered.as_secs_f64()
    );
    assert!(twice(&srv.delivered()).is_empty());
}

#[test]
fn kill9_mid_delivery_then_restart_redelivers_at_most_the_one_in_flight() {
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "kill:{t}";
    configure(&mut con, campaign);
    draw(&mut con, campaign, 0, 400);
    let srv = Server::start();
    srv.set_default(Act::Status(200, None, "ok", Duration::from_millis(3)));
    let db = r.dir.path().join("w.db");
    let log = r.dir.path().join("w.log");
    let a = args(&r, campaign, "w1", &db, &srv.url("/"), &[]);
    let mut kills = 0;
    for at in [60, 180, 300] {
        let mut w = WriterProc::spawn(&log, &a);
        wait_until(Duration::from_secs(30), "some deliveries", || {
            srv.delivered().len() >= at
        });
        w.kill9();
        kills += 1;
    }
    let mut w = WriterProc::spawn(&log, &a);
    wait_until(Duration::from_secs(30), "400 delivered", || {
        states(&db).0 == 400
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success());
    let ok = srv.delivered();
    let keys: HashSet<String> = ok.iter().map(|r| r.key()).collect();
    assert_eq!(keys.len(), 400, "every win delivered");
    // Every row marked delivered was answered 2xx.
    let ok_ids: HashSet<String> = keys
        .iter()
        .map(|k| k.rsplit(':').next().unwrap().to_string())
        .collect();
    assert!(delivered_ids(&db).is_subset(&ok_ids));
    let dup = twice(&ok);
    eprintln!("kill -9 x{}: {} wins delivered twice", kills, dup.len());
    assert!(
        dup.len() <= kills,
        "more than one in-flight win per kill delivered twice: {:?}",
        dup
    );
}

#[test]
fn award_service_down_storing_goes_on_and_the_backlog_drains() {
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "down:{t}";
    configure(&mut con, campaign);
    let mut srv = Server::start();
    let url = srv.url("/");
    srv.down();
    let db = r.dir.path().join("w.db");
    let log = r.dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &args(&r, campaign, "w1", &db, &url, &["--award-rate", "100"]),
    );
    // Draws go on while the service is down: every win is stored and acknowledged.
    for i in 0..5 {
        draw(&mut con, campaign, i * 40, (i + 1) * 40);
        wait_until(Duration::from_secs(20), "stored", || {
            rows(&db) == (i as i64 + 1) * 40
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(pending(&mut con, &stream_of(campaign), GROUP), 0);
    assert_eq!(states(&db), (0, 0, 200));
    wait_until(Duration::from_secs(10), "backlog logged", || {
        last_field(&w.log_text(), "progress", "award_backlog") == Some(200)
    });
    let text = w.log_text();
    assert!(text.contains("event=award_retry"), "{}", text);
    assert!(last_field(&text, "progress", "awards_retries_total").unwrap() >= 1);

    // Back: the backlog drains at --award-rate (200 at 100/s: about 2 s).
    srv.up();
    let t = Instant::now();
    wait_until(Duration::from_secs(30), "drained", || states(&db).0 == 200);
    let took = t.elapsed();
    eprintln!("backlog of 200 drained in {:?} at --award-rate 100", took);
    assert!(took >= Duration::from_millis(1500), "{:?}", took);
    wait_until(Duration::from_secs(10), "backlog 0 logged", || {
        last_field(&w.log_text(), "progress", "award_backlog") == Some(0)
    });

    // A service that hangs (every request past the timeout): storing does not wait for it.
    srv.set_default(Act::Hang(Duration::from_millis(1500)));
    let t = Instant::now();
    draw(&mut con, campaign, 200, 260);
    wait_until(Duration::from_secs(20), "stored", || rows(&db) == 260);
    let stored_in = t.elapsed();
    assert!(
        stored_in < Duration::from_secs(3),
        "storing waited: {:?}",
        stored_in
    );
    assert_eq!(pending(&mut con, &stream_of(campaign), GROUP), 0);
    assert_eq!(states(&db).0, 200);
    wait_until(Duration::from_secs(10), "a request timed out", || {
        w.log_text()
            .contains("error=\"reading the response: timed out\"")
    });
    srv.set_default(OK);
    wait_until(Duration::from_secs(30), "260 delivered", || {
        states(&db).0 == 260
    });
    assert!(w.term().success());
    assert!(twice(&srv.delivered()).is_empty());
    assert_eq!(srv.delivered().len(), 260);
}

#[test]
fn two_writers_on_one_database_never_deliver_a_win_twice() {
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "two:{t}";
    configure(&mut con, campaign);
    let srv = Server::start();
    srv.set_default(Act::Status(200, None, "ok", Duration::from_millis(5)));
    // A few failures too, so leases are taken over by the other writer's claims.
    srv.script(&[
        Act::Status(500, None, "", Duration::ZERO),
        Act::Reset,
        Act::Status(503, None, "", Duration::ZERO),
    ]);
    let db = r.dir.path().join("w.db");
    // Rows already there before both start: both claim from the same backlog.
    let mut w1 = WriterProc::spawn(
        &r.dir.path().join("1.log"),
        &args(&r, campaign, "w1", &db, &srv.url("/"), &[]),
    );
    let mut w2 = WriterProc::spawn(
        &r.dir.path().join("2.log"),
        &args(&r, campaign, "w2", &db, &srv.url("/"), &[]),
    );
    // In chunks, so that both writers store some (and are woken by their own commits).
    for i in 0..6 {
        draw(&mut con, campaign, i * 100, (i + 1) * 100);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(Duration::from_secs(40), "600 delivered", || {
        states(&db).0 == 600
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w1.term().success());
    assert!(w2.term().success());
    let reqs = srv.requests();
    let ok = srv.delivered();
    assert_eq!(ok.len(), 600, "each win answered 2xx exactly once");
    assert!(twice(&ok).is_empty());
    // No win was even requested twice except the ones that failed.
    assert_eq!(reqs.len(), 603);
    let owners: i64 = sqlite(&db)
        .query_row("SELECT count(DISTINCT award_owner) FROM wins", [], |r| {
            r.get(0)
        })
        .unwrap();
    eprintln!("two writers: deliveries by {} distinct owners", owners);
    assert_eq!(owners, 2, "both writers delivered");
}

/// Requests in flight at once, at most (from the server's arrival and answer times).
fn max_in_flight(reqs: &[Request]) -> usize {
    reqs.iter()
        .map(|r| {
            reqs.iter()
                .filter(|o| o.at <= r.at && r.at < o.done)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn award_concurrency_overlaps_requests_to_a_slow_service_and_shares_the_rate() {
    let r = RedisServer::start();
    let mut con = r.con();
    let srv = Server::start();
    srv.set_default(Act::Status(200, None, "ok", Duration::from_millis(50)));

    // 120 wins, 50 ms each: one at a time would take 6 s.
    let campaign = "conc:{t}";
    configure(&mut con, campaign);
    draw(&mut con, campaign, 0, 120);
    let db = r.dir.path().join("w.db");
    let log = r.dir.path().join("w.log");
    let a = args(
        &r,
        campaign,
        "w1",
        &db,
        &srv.url("/"),
        &["--award-concurrency", "4"],
    );
    let mut w = WriterProc::spawn(&log, &a);
    wait_for(&w, Duration::from_secs(30), "120 delivered", || {
        states(&db).0 == 120
    });
    assert!(w.term().success());
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 120);
    assert!(twice(&reqs).is_empty());
    let took = reqs.last().unwrap().at.duration_since(reqs[0].at);
    let overlap = max_in_flight(&reqs);
    eprintln!(
        "--award-concurrency 4: 120 x 50 ms in {:?}, {} in flight at most",
        took, overlap
    );
    assert!((2..=4).contains(&overlap), "{}", overlap);
    assert!(took < Duration::from_millis(4500), "{:?}", took);
    let text = w.log_text();
    assert_eq!(
        last_field(&text, "stopped", "awards_delivered_total"),
        Some(120),
        "{}",
        text
    );
    let owners: i64 = sqlite(&db)
        .query_row("SELECT count(DISTINCT award_owner) FROM wins", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(owners >= 2, "{}", owners);

    // The rate is shared: 40 at 20/s over 4 threads still take about 2 s.
    let campaign = "conc2:{t}";
    configure(&mut con, campaign);
    draw(&mut con, campaign, 0, 40);
    srv.set_default(OK);
    let db = r.dir.path().join("w2.db");
    let before = srv.requests().len();
    let a = args(
        &r,
        campaign,
        "w1",
        &db,
        &srv.url("/"),
        &["--award-concurrency", "4", "--award-rate", "20"],
    );
    let mut w = WriterProc::spawn(&log, &a);
    wait_for(&w, Duration::from_secs(30), "40 delivered", || {
        states(&db).0 == 40
    });
    assert!(w.term().success());
    let reqs = &srv.requests()[before..];
    let took = reqs.last().unwrap().at.duration_since(reqs[0].at);
    eprintln!("--award-concurrency 4 --award-rate 20: 40 in {:?}", took);
    assert!(took >= Duration::from_millis(1700), "{:?}", took);
}

/// `--shards`: one delivery thread serves every shard (all shards on one server here).
#[test]
fn sharded_campaign_every_shard_delivered_once() {
    let r = RedisServer::start();
    let mut con = r.con();
    let name = "aw";
    let keys: Vec<String> = (0..3).map(|i| format!("{{{}.{}}}", name, i)).collect();
    let mut h = redis::cmd("HSET");
    h.arg(format!("lottery:shards:{}", name))
        .arg(&[
            "format",
            "1",
            "name",
            name,
            "shards",
            "3",
            "route",
            "fnv1a64-splitmix-mul/1",
        ])
        .arg(&["stock:gold", "INF", "stock:silver", "INF"]);
    for (i, k) in keys.iter().enumerate() {
        configure(&mut con, k);
        h.arg(format!("shard:{}", i)).arg(k);
    }
    let _: i64 = h.query(&mut con).unwrap();
    for (i, k) in keys.iter().enumerate() {
        draw(&mut con, k, 0, 50 * (i as u64 + 1));
    }
    let srv = Server::start();
    let db = r.dir.path().join("w.db");
    let mut a: Vec<String> = FAST.iter().map(|s| s.to_string()).collect();
    a.extend(
        [
            "--redis",
            &r.url(),
            "--shards",
            name,
            "--group",
            GROUP,
            "--consumer",
            "w1",
            "--database",
            &format!("sqlite:{}", db.display()),
            "--award-url",
            &srv.url("/s"),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut w = WriterProc::spawn(&r.dir.path().join("w.log"), &a);
    wait_for(&w, Duration::from_secs(30), "300 delivered", || {
        states(&db).0 == 300
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success());
    let ok = srv.delivered();
    assert_eq!(ok.len(), 300);
    assert!(twice(&ok).is_empty());
    for (i, k) in keys.iter().enumerate() {
        let of_shard: Vec<Request> = ok
            .iter()
            .filter(|r| r.key().starts_with(&format!("{}:", k)))
            .cloned()
            .collect();
        assert_eq!(of_shard.len(), 50 * (i + 1), "{}", k);
        check_requests(&of_shard, k, "/s", &entries(&mut con, &stream_of(k)));
    }
    let text = w.log_text();
    assert!(text.contains("event=award_progress"), "{}", text);
    let last = text
        .lines()
        .rfind(|l| l.contains("event=stopped shards=3"))
        .unwrap();
    assert!(last.contains("awards_delivered_total=300 "), "{}", last);
}

#[test]
fn bad_award_urls_refused_and_credentials_never_logged_nor_in_arguments() {
    let r = RedisServer::start();
    let db = r.dir.path().join("w.db");
    for (url, msg) in [
        ("https://example.com/x", "https is not supported"),
        ("ftp://h/", "must start with http://"),
        ("http://h:0/", "bad port"),
    ] {
        let log = r.dir.path().join("bad.log");
        let mut w = WriterProc::spawn(&log, &args(&r, "nope:{t}", "w1", &db, url, &[]));
        let st = w.wait(Duration::from_secs(10));
        assert_eq!(st.code(), Some(1), "{}", w.log_text());
        assert!(w.log_text().contains(msg), "{}", w.log_text());
    }
    // Credentials in the URL are never logged (they go as Basic auth).
    let mut con = r.con();
    configure(&mut con, "cred:{t}");
    draw(&mut con, "cred:{t}", 0, 3);
    let srv = Server::start();
    let url = format!("http://alice:s3cr%40t@127.0.0.1:{}/h", srv.port);
    let log = r.dir.path().join("cred.log");
    let mut w = WriterProc::spawn(&log, &args(&r, "cred:{t}", "w1", &db, &url, &[]));
    wait_until(Duration::from_secs(20), "3 delivered", || {
        srv.delivered().len() == 3
    });
    assert!(w.term().success());
    let text = w.log_text();
    assert!(!text.contains("s3cr"), "{}", text);
    assert!(text.contains("url=http://alice:***@127.0.0.1"), "{}", text);
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr@t");
    assert_eq!(
        srv.requests()[0].header("authorization"),
        Some(format!("Basic {}", auth).as_str())
    );

    // From the environment: not in the process's arguments, same requests.
    let log = r.dir.path().join("env.log");
    let mut a = args(&r, "cred:{t}", "w1", &db, "x", &[]);
    let i = a.iter().position(|s| s == "--award-url").unwrap();
    a.drain(i..i + 2);
    let f = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(BIN)
        .args(&a)
        .env("LOTTERY_AWARD_URL", &url)
        .stderr(f)
        .spawn()
        .unwrap();
    let mut w = WriterProc { child, log };
    draw(&mut con, "cred:{t}", 3, 6);
    wait_until(Duration::from_secs(20), "3 more delivered", || {
        srv.delivered().len() == 6
    });
    assert!(w.term().success());
    let text = w.log_text();
    assert!(!text.contains("s3cr"), "{}", text);
    assert!(
        text.contains("event=award_start url=http://alice:***@127.0.0.1"),
        "{}",
        text
    );
    assert_eq!(
        srv.requests()[5].header("authorization"),
        Some(format!("Basic {}", auth).as_str())
    );
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_two_writers_with_failures_deliver_each_win_once() {
    let Some(pg) = common::pg::Cluster::start() else {
        if std::env::var_os("CI").is_some() {
            panic!("initdb/pg_ctl not installed and CI is set");
        }
        eprintln!(
            "SKIPPED postgres award test: initdb/pg_ctl not installed (apt-get install postgresql)"
        );
        return;
    };
    let r = RedisServer::start();
    let mut con = r.con();
    let campaign = "pg:{t}";
    configure(&mut con, campaign);
    hostile_entries(&mut con, &stream_of(campaign));
    draw(&mut con, campaign, 0, 300);
    let srv = Server::start();
    srv.script(&[Act::Status(500, None, "", Duration::ZERO), Act::Reset]);
    let mk = |consumer: &str| {
        let mut e: Vec<&str> = FAST.to_vec();
        let url = srv.url("/pg");
        let mut a = writer_args(&r, campaign, GROUP, consumer, &pg.url(), &[]);
        e.extend(["--award-url", &url]);
        a.extend(e.iter().map(|s| s.to_string()));
        a
    };
    let mut w1 = WriterProc::spawn(&r.dir.path().join("1.log"), &mk("w1"));
    let mut w2 = WriterProc::spawn(&r.dir.path().join("2.log"), &mk("w2"));
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    wait_until(Duration::from_secs(60), "303 delivered", || {
        db.query_one(
            "SELECT count(*) FROM wins WHERE award_state = 'delivered'",
            &[],
        )
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(0)
            == 303
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w1.term().success(), "{}", w1.log_text());
    assert!(w2.term().success(), "{}", w2.log_text());
    let ok = srv.delivered();
    assert_eq!(ok.len(), 303);
    assert!(twice(&ok).is_empty());
    assert_eq!(srv.requests().len(), 305);
    check_requests(
        &srv.requests(),
        campaign,
        "/pg",
        &entries(&mut con, &stream_of(campaign)),
    );
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE award_state IS NULL), sum(award_attempts)::bigint FROM wins",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (0, 305));
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_two_writers_with_failures_deliver_each_win_once() {
    use mysql::prelude::Queryable;
    let Some(m) = common::mariadb::MariaDb::start() else {
        tool_missing("mysql award test", "mariadbd (mariadb-server)");
        return;
    };
    let r = RedisServer::start();
    let mut con = r.con();
    // A key longer than an InnoDB key may hold: the queue's statements go by its hash.
    let campaign = format!("my:{{t}}:{}", "k".repeat(4000));
    configure(&mut con, &campaign);
    hostile_entries(&mut con, &stream_of(&campaign));
    draw(&mut con, &campaign, 0, 300);
    let srv = Server::start();
    srv.script(&[Act::Status(500, None, "", Duration::ZERO), Act::Reset]);
    let mk = |consumer: &str| {
        let mut e: Vec<&str> = FAST.to_vec();
        let url = srv.url("/my");
        let mut a = writer_args(&r, &campaign, GROUP, consumer, &m.url(), &[]);
        e.extend(["--award-url", &url, "--award-concurrency", "2"]);
        a.extend(e.iter().map(|s| s.to_string()));
        a
    };
    let mut w1 = WriterProc::spawn(&r.dir.path().join("1.log"), &mk("w1"));
    let mut w2 = WriterProc::spawn(&r.dir.path().join("2.log"), &mk("w2"));
    let mut db = m.db();
    let delivered = |db: &mut mysql::Conn| -> i64 {
        db.query_first("SELECT count(*) FROM wins WHERE award_state = 'delivered'")
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(60), "303 delivered", || {
        delivered(&mut db) == 303
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w1.term().success(), "{}", w1.log_text());
    assert!(w2.term().success(), "{}", w2.log_text());
    let ok = srv.delivered();
    assert_eq!(ok.len(), 303);
    assert!(twice(&ok).is_empty());
    assert_eq!(srv.requests().len(), 305);
    check_requests(
        &srv.requests(),
        &campaign,
        "/my",
        &entries(&mut con, &stream_of(&campaign)),
    );
    let (left, attempts): (i64, i64) = db
        .query_first(
            "SELECT CAST(SUM(award_state IS NULL) AS SIGNED), \
             CAST(SUM(award_attempts) AS SIGNED) FROM wins",
        )
        .unwrap()
        .unwrap();
    assert_eq!((left, attempts), (0, 305));
    // The claim goes through the queue's index, not a scan of the table.
    let plan: Vec<mysql::Row> = db
        .query(format!(
            "EXPLAIN UPDATE wins SET award_owner = 'x' WHERE award_state IS NULL AND \
             campaign_hash = UNHEX(SHA2('{}', 256)) ORDER BY ts_ms, stream_id LIMIT 50",
            campaign
        ))
        .unwrap();
    let key: Option<String> = plan[0].get("key").flatten();
    assert_eq!(key.as_deref(), Some("wins_award_todo"), "{plan:?}");
}
