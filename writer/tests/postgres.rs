//! lottery-writer on PostgreSQL, against a throwaway cluster (initdb under a temp dir).
//! Skipped, with a message, when initdb is not installed (Debian: `apt-get install postgresql`);
//! failed instead when CI is set.

#![cfg(feature = "postgres")]

mod common;

use common::pg::Cluster;
use common::*;
use std::time::Duration;

const CAMPAIGN: &str = "pg:{t}";
const STREAM: &str = "pg:{t}:wins";
const GROUP: &str = "writers";

#[test]
fn postgres_end_to_end_with_a_crash() {
    let Some(pg) = Cluster::start() else {
        tool_missing(
            "postgres_end_to_end_with_a_crash",
            "PostgreSQL (initdb, pg_ctl)",
        );
        return;
    };
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 20_000);
    let log = r.dir.path().join("w.log");
    let args = writer_args(
        &r,
        CAMPAIGN,
        GROUP,
        "w1",
        &pg.url(),
        &["--rate", "8000", "--drain-every-ms", "100"],
    );

    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let count = |db: &mut postgres::Client| -> i64 {
        db.query_opt("SELECT count(*) FROM wins", &[])
            .ok()
            .flatten()
            .map(|r| r.get(0))
            .unwrap_or(0)
    };
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(Duration::from_secs(120), "some rows", || {
        count(&mut db) >= 3000
    });
    w.kill9();
    assert!(count(&mut db) < 20_000);
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(Duration::from_secs(120), "rows == XLEN", || {
        count(&mut db) == xlen(&mut con, STREAM)
    });
    assert!(w.term().success(), "{}", w.log_text());

    let row = db
        .query_one("SELECT count(*), count(DISTINCT stream_id) FROM wins", &[])
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (20_000, 20_000)
    );
    // Fields round-trip, binary user ids included.
    let v: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    assert_eq!(v.len(), 20_000);
    for e in v.iter().step_by(97) {
        let redis::Value::Array(p) = e else { panic!() };
        let redis::Value::BulkString(id) = &p[0] else {
            panic!()
        };
        let redis::Value::Array(f) = &p[1] else {
            panic!()
        };
        let redis::Value::BulkString(user) = &f[1] else {
            panic!()
        };
        let id = String::from_utf8(id.clone()).unwrap();
        let row = db
            .query_one(
                "SELECT user_id, campaign FROM wins WHERE stream_id = $1",
                &[&id],
            )
            .unwrap();
        assert_eq!(&row.get::<_, Vec<u8>>(0), user);
        assert_eq!(row.get::<_, String>(1), CAMPAIGN);
    }
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
    let sold: i64 = db
        .query_one(
            "SELECT coalesce(sum(sold), 0)::bigint FROM stock_drains WHERE campaign = $1",
            &[&CAMPAIGN],
        )
        .unwrap()
        .get(0);
    assert_eq!(sold, stats_int(&mut con, CAMPAIGN, "wins"));
}

/// A `wins` table made by the previous version (no `code` column) gets it at start, once;
/// the code of a code prize's win is stored byte for byte (NUL and invalid UTF-8 included),
/// NULL for other wins and for the rows already there.
#[test]
fn postgres_code_column_added_and_binary_safe() {
    let Some(pg) = Cluster::start() else {
        tool_missing(
            "postgres_code_column_added_and_binary_safe",
            "PostgreSQL (initdb, pg_ctl)",
        );
        return;
    };
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    db.batch_execute(
        "CREATE TABLE wins (
            stream_id TEXT NOT NULL,
            campaign  TEXT NOT NULL,
            user_id   BYTEA NOT NULL,
            prize     TEXT NOT NULL,
            ts_ms     BIGINT NOT NULL,
            draw_seq  BIGINT NOT NULL,
            reqid     BYTEA,
            prize_raw BYTEA,
            PRIMARY KEY (campaign, stream_id)
        );
        INSERT INTO wins VALUES ('1-0', 'old:{c}', '\\x6f6c64', 'gold', 1, 1, NULL, NULL);",
    )
    .unwrap();

    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 30);
    let binary: &[u8] = b"\0\xff\xc3\x28-\0";
    let a = xadd(
        &mut con,
        STREAM,
        &[
            ("user", b"u1"),
            ("prize", b"card"),
            ("draw", b"31"),
            ("code", binary),
            ("reqid", b"r-31"),
        ],
    );
    let b = xadd(
        &mut con,
        STREAM,
        &[
            ("user", b"u2"),
            ("prize", b"card"),
            ("draw", b"32"),
            ("code", b"GIFT-2"),
        ],
    );
    let plain = xadd(
        &mut con,
        STREAM,
        &[("user", b"u3"), ("prize", b"gold"), ("draw", b"33")],
    );
    let log = r.dir.path().join("w.log");
    let args = writer_args(&r, CAMPAIGN, GROUP, "w1", &pg.url(), &[]);
    let count = |db: &mut postgres::Client| -> i64 {
        db.query_one("SELECT count(*) FROM wins", &[])
            .unwrap()
            .get(0)
    };
    for run in 1..=2 {
        let mut w = WriterProc::spawn(&log, &args);
        wait_until(Duration::from_secs(60), "rows == XLEN + 1", || {
            w.log_text().matches("event=recovered").count() == run
                && count(&mut db) == xlen(&mut con, STREAM) + 1
        });
        let st = w.term();
        assert!(st.success(), "{st:?} {}", w.log_text());
    }
    let ty: Vec<String> = db
        .query(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'wins' AND column_name = 'code'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ty, ["bytea"]);
    let code = |db: &mut postgres::Client, id: &str| -> Option<Vec<u8>> {
        db.query_one("SELECT code FROM wins WHERE stream_id = $1", &[&id])
            .unwrap()
            .get(0)
    };
    assert_eq!(code(&mut db, &a).as_deref(), Some(binary));
    assert_eq!(code(&mut db, &b).as_deref(), Some(&b"GIFT-2"[..]));
    assert_eq!(code(&mut db, &plain), None);
    let row = db
        .query_one(
            "SELECT reqid, user_id FROM wins WHERE stream_id = $1",
            &[&a],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, Option<Vec<u8>>>(0).as_deref(),
        Some(&b"r-31"[..])
    );
    assert_eq!(row.get::<_, Vec<u8>>(1), b"u1");
    let (old, with_code): (Option<Vec<u8>>, i64) = {
        let o = db
            .query_one("SELECT code FROM wins WHERE campaign = 'old:{c}'", &[])
            .unwrap()
            .get(0);
        let n = db
            .query_one("SELECT count(code) FROM wins", &[])
            .unwrap()
            .get(0);
        (o, n)
    };
    assert_eq!((old, with_code), (None, 2));
    assert_eq!(count(&mut db), 34);
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
}
