//! End-to-end tests of lottery-writer on SQLite, each against its own redis-server.

mod common;

use common::*;
use std::time::Duration;

const CAMPAIGN: &str = "shop:{t}";
const STREAM: &str = "shop:{t}:wins";
const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(120);

#[test]
fn end_to_end_every_win_once_and_drains_add_up() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 3000);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &format!("sqlite:{}", db.display()),
            &["--drain-every-ms", "200", "--batch", "300"],
        ),
    );
    // More wins while it runs.
    draw(&mut con, CAMPAIGN, 3000, 4000);
    wait_until(LONG, "rows == XLEN", || rows(&db) == xlen(&mut con, STREAM));
    let st = w.term();
    assert!(st.success(), "exit {:?}; log:\n{}", st, w.log_text());
    let text = w.log_text();
    assert!(text.contains("event=stopped"), "{}", text);
    assert!(text.contains("inserted=4000"), "{}", text);

    assert_eq!(xlen(&mut con, STREAM), 4000);
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
    // The final drain on SIGTERM makes the stock counts complete.
    assert_eq!(
        drained_sold(&db, CAMPAIGN),
        stats_int(&mut con, CAMPAIGN, "wins")
    );
    assert_eq!(drained_sold(&db, CAMPAIGN), 4000);

    // Running it again over the same data changes nothing.
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &format!("sqlite:{}", db.display()),
            &["--drain-every-ms", "200"],
        ),
    );
    std::thread::sleep(Duration::from_millis(600));
    assert!(w.term().success());
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
    assert_eq!(drained_sold(&db, CAMPAIGN), 4000);
}

#[test]
fn kill9_mid_run_then_restart() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 100_000);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let args = writer_args(
        &r,
        CAMPAIGN,
        GROUP,
        "w1",
        &format!("sqlite:{}", db.display()),
        &["--rate", "40000"],
    );
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(LONG, "some rows", || rows(&db) >= 20_000);
    w.kill9();
    let mid = rows(&db);
    assert!(
        mid < 100_000,
        "the writer finished before it was killed ({} rows)",
        mid
    );

    let mut w = WriterProc::spawn(&log, &args);
    wait_until(LONG, "rows == XLEN", || rows(&db) == 100_000);
    assert!(w.term().success(), "{}", w.log_text());
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
}

#[test]
fn rate_limit_is_respected() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 3000);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let t0 = std::time::Instant::now();
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &format!("sqlite:{}", db.display()),
            &["--rate", "2000"],
        ),
    );
    wait_until(LONG, "rows == XLEN", || rows(&db) == 3000);
    let took = t0.elapsed();
    assert!(w.term().success());
    // 3000 entries at 2000/s: at least ~1.4 s (one burst of 200 allowed).
    assert!(took >= Duration::from_millis(1300), "too fast: {:?}", took);
}

#[test]
fn own_pending_entries_first_and_deleted_ones_are_acked() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 500);
    // A previous run of consumer w1 read 300 entries and died before its XACK.
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, GROUP, "0"])
        .query(&mut con)
        .unwrap();
    let v: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", GROUP, "w1", "COUNT", "300", "STREAMS", STREAM, ">"])
        .query(&mut con)
        .unwrap();
    // One of them was deleted from the stream meanwhile.
    let first_id = match &v {
        redis::Value::Array(s) => match &s[0] {
            redis::Value::Array(p) => match &p[1] {
                redis::Value::Array(e) => match &e[0] {
                    redis::Value::Array(x) => match &x[0] {
                        redis::Value::BulkString(id) => String::from_utf8(id.clone()).unwrap(),
                        _ => panic!(),
                    },
                    _ => panic!(),
                },
                _ => panic!(),
            },
            _ => panic!(),
        },
        _ => panic!(),
    };
    let _: i64 = redis::cmd("XDEL")
        .arg(STREAM)
        .arg(&first_id)
        .query(&mut con)
        .unwrap();
    assert_eq!(pending(&mut con, STREAM, GROUP), 300);

    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    // A huge claim idle time: only the own-pending path can find them.
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &format!("sqlite:{}", db.display()),
            &["--claim-idle-ms", "3600000"],
        ),
    );
    wait_until(LONG, "rows == XLEN", || rows(&db) == 499);
    wait_until(LONG, "nothing pending", || {
        pending(&mut con, STREAM, GROUP) == 0
    });
    assert!(w.term().success());
    let text = w.log_text();
    assert!(text.contains("event=recovered pending=300"), "{}", text);
    assert!(text.contains("deleted=1"), "{}", text);
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
}

#[test]
fn two_writers_share_a_group_one_killed() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 20_000);
    // A third writer, w0, died long ago holding 100 entries.
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, GROUP, "0"])
        .query(&mut con)
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", GROUP, "w0", "COUNT", "100", "STREAMS", STREAM, ">"])
        .query(&mut con)
        .unwrap();

    let db = r.dir.path().join("wins.db");
    let dbu = format!("sqlite:{}", db.display());
    let extra = [
        "--rate",
        "4000",
        "--claim-idle-ms",
        "1000",
        "--batch",
        "200",
    ];
    let mut w1 = WriterProc::spawn(
        &r.dir.path().join("w1.log"),
        &writer_args(&r, CAMPAIGN, GROUP, "w1", &dbu, &extra),
    );
    let mut w2 = WriterProc::spawn(
        &r.dir.path().join("w2.log"),
        &writer_args(&r, CAMPAIGN, GROUP, "w2", &dbu, &extra),
    );
    wait_until(LONG, "some rows", || rows(&db) >= 4000);
    w1.kill9();
    assert!(rows(&db) < 20_000);
    wait_until(LONG, "rows == XLEN", || rows(&db) == 20_000);
    // w1's in-hand entries become claimable after 1 s idle.
    wait_until(LONG, "nothing pending", || {
        pending(&mut con, STREAM, GROUP) == 0
    });
    assert!(w2.term().success(), "{}", w2.log_text());
    let t1 = w1.log_text();
    let t2 = w2.log_text();
    assert!(t2.contains("source=claimed"), "w2 claimed nothing:\n{}", t2);
    // Both did work (w1's progress is in the database; w2's summary shows its part).
    assert!(t1.contains("event=recovered"), "{}", t1);
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
}

#[test]
fn drain_reconciliation_across_crashes() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 2000);
    // A drain writer took a batch and crashed before its commit: LAST must hand it over.
    let v: redis::Value = redis::cmd("LOTTERY.DRAIN")
        .arg(CAMPAIGN)
        .query(&mut con)
        .unwrap();
    match &v {
        redis::Value::Array(a) => assert_eq!(a[0], redis::Value::Int(1), "{:?}", v),
        _ => panic!("{:?}", v),
    }

    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let args = writer_args(
        &r,
        CAMPAIGN,
        GROUP,
        "w1",
        &format!("sqlite:{}", db.display()),
        &["--drain-every-ms", "50"],
    );
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(LONG, "drained 2000", || {
        db.exists() && rows(&db) > 0 && drained_sold(&db, CAMPAIGN) == 2000
    });
    // Draws while it drains every 50 ms, killed -9 several times at arbitrary moments.
    let mut next = 2000;
    for round in 0..4 {
        for _ in 0..5 {
            draw(&mut con, CAMPAIGN, next, next + 300);
            next += 300;
            std::thread::sleep(Duration::from_millis(37 + round * 11));
        }
        w.kill9();
        draw(&mut con, CAMPAIGN, next, next + 100);
        next += 100;
        w = WriterProc::spawn(&log, &args);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success(), "{}", w.log_text());
    let wins = stats_int(&mut con, CAMPAIGN, "wins");
    assert_eq!(wins as u64, next);
    assert_eq!(drained_sold(&db, CAMPAIGN), wins, "log:\n{}", w.log_text());
    // Every seq stored once; at most one row per prize per seq (primary key).
    let c = sqlite(&db);
    let dup: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT seq, prize FROM stock_drains GROUP BY seq, prize HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 0);
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);

    // A restart replays LAST, which is already stored: skipped.
    let mut w = WriterProc::spawn(&log, &args);
    std::thread::sleep(Duration::from_millis(400));
    assert!(w.term().success());
    assert_eq!(drained_sold(&db, CAMPAIGN), wins);
}

#[test]
fn unreachable_redis_or_database_at_start_fails_clearly() {
    let port = free_port();
    let out = std::process::Command::new(BIN)
        .args([
            "--redis",
            &format!("redis://127.0.0.1:{}", port),
            "--campaign",
            "c",
            "--group",
            "g",
            "--consumer",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Redis"), "{}", err);

    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    let out = std::process::Command::new(BIN)
        .args(writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "x",
            "sqlite:/nonexistent-dir/x.db",
            &[],
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the database"));

    let out = std::process::Command::new(BIN)
        .args(writer_args(
            &r,
            "no-such-campaign",
            GROUP,
            "x",
            "sqlite:/tmp/lottery-writer-unused.db",
            &[],
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such campaign"));
}

#[test]
fn redis_connection_lost_mid_run_is_retried() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 1000);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &format!("sqlite:{}", db.display()),
            &["--drain-every-ms", "100"],
        ),
    );
    wait_until(LONG, "rows == 1000", || rows(&db) == 1000);
    // Drop every client connection but ours, twice, with draws in between.
    for k in 0..2 {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal"])
            .query(&mut con)
            .unwrap();
        draw(&mut con, CAMPAIGN, 1000 + k * 500, 1500 + k * 500);
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_until(LONG, "rows == XLEN", || rows(&db) == 2000);
    assert!(w.term().success());
    let text = w.log_text();
    assert!(text.contains("event=retry"), "{}", text);
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
    assert_eq!(drained_sold(&db, CAMPAIGN), 2000);
}
