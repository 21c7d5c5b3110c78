//! lottery-writer on PostgreSQL, against a throwaway cluster (initdb under a temp dir).
//! Skipped, with a message, when initdb is not installed (Debian: `apt-get install postgresql`).

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
        eprintln!("SKIPPED postgres_end_to_end_with_a_crash: initdb/pg_ctl not installed (apt-get install postgresql)");
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
