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

/// Wins of code prizes (`PRIZE id weight CODES`) carry a `code` field (after `draw`, before
/// `reqid`); it goes to the `code` column byte for byte, NULL for every other win. The entries
/// are appended by hand, as the module writes them, next to real draws.
#[test]
fn code_of_a_code_prize_win_is_stored_binary_safe() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 50);
    let binary: &[u8] = b"\0\xff\xfe code\r\n\\x00";
    let long = vec![0xa5u8; 512];
    let mut with_code = Vec::new();
    for (i, code) in [&b"GIFT-0001"[..], binary, &long].iter().enumerate() {
        let draw_no = (100 + i).to_string();
        let mut f: Vec<(&str, &[u8])> = vec![
            ("user", b"carol"),
            ("prize", b"card"),
            ("draw", draw_no.as_bytes()),
            ("code", code),
        ];
        if i == 1 {
            f.push(("reqid", b"req-code"));
        }
        with_code.push((xadd(&mut con, STREAM, &f), code.to_vec()));
    }
    // An entry without a code in between (a counted prize's win).
    let plain = xadd(
        &mut con,
        STREAM,
        &[("user", b"dave"), ("prize", b"gold"), ("draw", b"200")],
    );
    draw(&mut con, CAMPAIGN, 50, 100);

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
            &["--batch", "7"],
        ),
    );
    wait_until(LONG, "rows == XLEN", || rows(&db) == xlen(&mut con, STREAM));
    assert!(w.term().success(), "{}", w.log_text());
    assert_eq!(xlen(&mut con, STREAM), 104);
    // Every row equals its entry, `code` included (NULL where the entry has none).
    check_rows_match_stream(&mut con, STREAM, &db, CAMPAIGN);
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);

    let c = sqlite(&db);
    for (id, code) in &with_code {
        let (got, ty): (Vec<u8>, String) = c
            .query_row(
                "SELECT code, typeof(code) FROM wins WHERE stream_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(&got, code, "row {id}");
        assert_eq!(ty, "blob");
    }
    let none: Option<Vec<u8>> = c
        .query_row(
            "SELECT code FROM wins WHERE stream_id = ?1",
            [&plain],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(none, None);
    let (nulls, codes): (i64, i64) = c
        .query_row(
            "SELECT count(*) - count(code), count(code) FROM wins",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((nulls, codes), (101, 3));
}

/// The `wins` table of the previous version (no `code` column) as it was created then.
const WINS_BEFORE_CODES: &str = "
CREATE TABLE wins (
    stream_id TEXT NOT NULL,
    campaign  TEXT NOT NULL,
    user_id   BLOB NOT NULL,
    prize     TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    draw_seq  INTEGER NOT NULL,
    reqid     BLOB,
    prize_raw BLOB,
    PRIMARY KEY (campaign, stream_id)
);
INSERT INTO wins VALUES ('1-0', 'old:{c}', X'6f6c64', 'gold', 1, 1, NULL, NULL);
";

/// A database made by the previous version gets the `code` column at start (and an older one,
/// without `prize_raw` either, gets both); its rows stay, with a NULL code; a second start
/// changes nothing.
#[test]
fn old_schema_database_gets_the_code_column() {
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 20);
    let id = xadd(
        &mut con,
        STREAM,
        &[
            ("user", b"erin"),
            ("prize", b"card"),
            ("draw", b"21"),
            ("code", b"\x00\x01\x02"),
        ],
    );

    // Two databases: the previous version's, and the first version's (no prize_raw either,
    // and a stock_drains table without it).
    let before_codes = r.dir.path().join("before-codes.db");
    sqlite(&before_codes)
        .execute_batch(WINS_BEFORE_CODES)
        .unwrap();
    let first = r.dir.path().join("first.db");
    sqlite(&first)
        .execute_batch(
            &(WINS_BEFORE_CODES
                .replace("    prize_raw BLOB,\n", "")
                .replace(", NULL, NULL)", ", NULL)")
                + "CREATE TABLE stock_drains (campaign TEXT NOT NULL, seq INTEGER NOT NULL, \
                   prize TEXT NOT NULL, sold INTEGER NOT NULL, \
                   PRIMARY KEY (campaign, seq, prize));"),
        )
        .unwrap();

    let columns = |db: &std::path::Path, table: &str| -> Vec<String> {
        let c = sqlite(db);
        let mut st = c
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap();
        st.query_map([table], |r| r.get(0))
            .unwrap()
            .map(|x| x.unwrap())
            .collect()
    };
    for (n, db) in [&before_codes, &first].into_iter().enumerate() {
        let group = format!("g{n}");
        let log = r.dir.path().join(format!("w{n}.log"));
        let args = writer_args(
            &r,
            CAMPAIGN,
            &group,
            "w1",
            &format!("sqlite:{}", db.display()),
            &["--drain-every-ms", if n == 1 { "100" } else { "0" }],
        );
        // Twice: the second start finds the columns there.
        for run in 1..=2 {
            let mut w = WriterProc::spawn(&log, &args);
            wait_until(LONG, "the stream stored", || {
                w.log_text().matches("event=recovered").count() == run
                    && rows(db) == xlen(&mut con, STREAM) + 1
            });
            let st = w.term();
            assert!(st.success(), "{st:?} {}", w.log_text());
        }
        let wins = columns(db, "wins");
        assert_eq!(wins.iter().filter(|c| *c == "code").count(), 1, "{wins:?}");
        assert_eq!(
            wins[wins.len() - 7..],
            [
                "code",
                "award_state",
                "award_attempts",
                "award_at_ms",
                "award_error",
                "award_owner",
                "award_lease_until_ms"
            ],
            "{wins:?}"
        );
        assert!(columns(db, "stock_drains").contains(&"prize_raw".to_string()));
        let c = sqlite(db);
        // The old row is still there, without a code.
        let old: (Vec<u8>, Option<Vec<u8>>) = c
            .query_row(
                "SELECT user_id, code FROM wins WHERE campaign = 'old:{c}'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(old, (b"old".to_vec(), None));
        // Award delivery: the old row is 'skipped' (never delivered by itself), the rows this
        // version stored are waiting for a writer with --award-url (NULL).
        let awards: (i64, i64, i64) = c
            .query_row(
                "SELECT count(*) FILTER (WHERE award_state = 'skipped' AND campaign = 'old:{c}'), \
                 count(*) FILTER (WHERE award_state IS NULL), sum(award_attempts) FROM wins",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(awards, (1, xlen(&mut con, STREAM), 0));
        let code: Vec<u8> = c
            .query_row("SELECT code FROM wins WHERE stream_id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(code, b"\x00\x01\x02");
        let with_code: i64 = c
            .query_row("SELECT count(code) FROM wins", [], |r| r.get(0))
            .unwrap();
        assert_eq!(with_code, 1);
        // Without the old row, the rows match the stream.
        c.execute("DELETE FROM wins WHERE campaign = 'old:{c}'", [])
            .unwrap();
        drop(c);
        check_rows_match_stream(&mut con, STREAM, db, CAMPAIGN);
    }
    // The first version's database stored drains into its migrated stock_drains.
    assert_eq!(drained_sold(&first, CAMPAIGN), 20);
}

/// The prize id made of the four characters `\xff` and the one made of the byte 0xff: once
/// stored as the same text, which halted a drain batch holding both (a unique key violation,
/// retried forever, before any win was stored). Each keeps its own text, row and count.
#[test]
fn two_prize_ids_never_share_a_stored_text() {
    let r = RedisServer::start();
    let mut con = r.con();
    let text: &[u8] = b"\\xff";
    let byte: &[u8] = b"\xff";
    let _: () = redis::cmd("LOTTERY.CONFIGURE")
        .arg(CAMPAIGN)
        .arg("PRIZE")
        .arg(text)
        .arg(1)
        .arg("INF")
        .arg("PRIZE")
        .arg(byte)
        .arg(1)
        .arg("INF")
        .arg("MAXWINS")
        .arg("INF")
        .query(&mut con)
        .unwrap();
    draw(&mut con, CAMPAIGN, 0, 200);
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
            &["--drain-every-ms", "50", "--block-ms", "100"],
        ),
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let drained = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT COALESCE(SUM(sold), 0) FROM stock_drains", [], |r| {
            r.get(0)
        })
        .unwrap_or(0)
    };
    wait_until(LONG, "rows and the drain", || {
        rows(&db) == 200 && drained(&c) == 200
    });
    assert!(w.term().success(), "{}", w.log_text());
    let by = |sql: &str, p: &[u8]| -> i64 { c.query_row(sql, [p], |r| r.get(0)).unwrap() };
    let won = |p: &[u8]| {
        by(
            "SELECT COUNT(*) FROM wins WHERE COALESCE(prize_raw, CAST(prize AS BLOB)) = ?1",
            p,
        )
    };
    let sold = |p: &[u8]| {
        by(
            "SELECT COALESCE(SUM(sold), 0) FROM stock_drains \
             WHERE COALESCE(prize_raw, CAST(prize AS BLOB)) = ?1",
            p,
        )
    };
    assert!(won(text) > 0 && won(byte) > 0);
    assert_eq!(won(text) + won(byte), 200);
    assert_eq!((sold(text), sold(byte)), (won(text), won(byte)));
    let texts: Vec<String> = c
        .prepare("SELECT DISTINCT prize FROM wins ORDER BY prize")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(texts, vec!["\\\\xff".to_string(), "\\xff".to_string()]);
}
