//! lottery-writer on MariaDB at the server's limits, against
//! a throwaway server (tests/common/mariadb.rs). Skipped, with a message, when mariadbd is not
//! installed; failed instead when CI is set.
//!
//! - a small `max_allowed_packet`: a batch of rows that each fit is stored (split into
//!   statements that fit); a single row that cannot fit is retried with an error naming the
//!   setting, and stored once the setting is raised;
//! - two prize ids whose stored text is the same (the text `\xff` and the byte 0xff) drained in
//!   one batch: both are kept, each with its own count;
//! - a table lock held by an operator: the writer's abandoned sessions do not pile up on the
//!   server waiting for it;
//! - a server that closes idle sessions (`wait_timeout`): replaced with no failed attempt.

#![cfg(feature = "mysql")]

mod common;

use common::mariadb::*;
use common::*;
use mysql::prelude::Queryable;
use std::time::Duration;

const CAMPAIGN: &str = "lim:{t}";
const STREAM: &str = "lim:{t}:wins";
const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(60);

#[test]
fn mysql_rows_that_fit_max_allowed_packet_are_stored_and_one_too_big_is_named() {
    let Some(m) =
        start_or_skip("mysql_rows_that_fit_max_allowed_packet_are_stored_and_one_too_big_is_named")
    else {
        return;
    };
    let mut root = m.root();
    // New sessions (the writer's) get 1 MiB.
    root.query_drop("SET GLOBAL max_allowed_packet = 1048576")
        .unwrap();
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 10);
    // 40 user ids of 200 KB: each row fits in 1 MiB, 8 of them do not.
    for i in 0..40u8 {
        let mut u = vec![0xa5u8; 200_000];
        u[0] = i;
        xadd(
            &mut con,
            STREAM,
            &[("user", &u), ("prize", b"gold"), ("draw", b"100")],
        );
    }
    let log = r.dir.path().join("w.log");
    let args = writer_args(&r, CAMPAIGN, GROUP, "w1", &m.url(), FAST);
    let mut w = WriterProc::spawn(&log, &args);
    let mut c = m.db();
    wait_until(Duration::from_secs(20), "50 rows", || count(&mut c) == 50);

    // A single row larger than the packet: retried, and the error says which setting.
    let big = vec![0x5au8; 1_200_000];
    let id = xadd(
        &mut con,
        STREAM,
        &[("user", &big), ("prize", b"gold"), ("draw", b"101")],
    );
    wait_until(LONG, "a retry naming max_allowed_packet", || {
        w.log_text()
            .lines()
            .any(|l| l.contains("event=retry") && l.contains("SET GLOBAL max_allowed_packet"))
    });
    assert_eq!(count(&mut c), 50);
    assert_eq!(pending(&mut con, STREAM, GROUP), 1);
    root.query_drop("SET GLOBAL max_allowed_packet = 16777216")
        .unwrap();
    wait_until(LONG, "the big row once raised", || count(&mut c) == 51);
    // A new session: the old one's packets are still limited to 1 MiB.
    let got: Option<Vec<u8>> = m
        .db()
        .exec_first("SELECT user_id FROM wins WHERE stream_id = ?", (&id,))
        .unwrap();
    assert_eq!(got.as_deref(), Some(&big[..]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    check_final(&mut con, &m, CAMPAIGN, STREAM, GROUP);
    assert_no_password(&w.log_text());
}

/// The prize id `\xff` (4 bytes of text) and the prize id made of the byte 0xff are two
/// prizes whose `prize` text is the same (the second is escaped): a drain batch holding both
/// keeps both rows, each with its count.
#[test]
fn mysql_drain_keeps_two_prizes_whose_text_is_the_same() {
    let Some(m) = start_or_skip("mysql_drain_keeps_two_prizes_whose_text_is_the_same") else {
        return;
    };
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
    let log = r.dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(&r, CAMPAIGN, GROUP, "w1", &m.url(), FAST),
    );
    let mut c = m.db();
    wait_until(LONG, "rows and a drain", || {
        count(&mut c) == 200 && common::mariadb::drained_sold(&mut c, CAMPAIGN) > 0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    let rows: Vec<(String, Option<Vec<u8>>, i64)> = c
        .query("SELECT prize, prize_raw, sold FROM stock_drains")
        .unwrap();
    let sold = |p: &[u8]| -> i64 {
        rows.iter()
            .filter(|(t, raw, _)| prize_bytes(t.clone(), raw.clone()) == p)
            .map(|(_, _, n)| n)
            .sum()
    };
    let mut won = |p: &[u8]| -> i64 {
        c.exec_first(
            "SELECT COUNT(*) FROM wins WHERE COALESCE(prize_raw, CAST(prize AS BINARY)) = ?",
            (p,),
        )
        .unwrap()
        .unwrap()
    };
    let (won_text, won_byte) = (won(text), won(byte));
    assert!(won_text > 0 && won_byte > 0, "{won_text} {won_byte}");
    assert_eq!(sold(text), won_text, "{rows:?}");
    assert_eq!(sold(byte), won_byte, "{rows:?}");
    check_final(&mut con, &m, CAMPAIGN, STREAM, GROUP);
}

/// A table lock held by an operator (`LOCK TABLES wins WRITE`; an `ALTER TABLE` waits the
/// same way): the writer's statements wait for the metadata lock at most `--db-timeout-ms`
/// on the server too, so the sessions it gave up on (read timeout, retried on a new one) do
/// not pile up on the server for a day (MariaDB's `lock_wait_timeout` default) and exhaust
/// its connections. Everything is stored once the lock is released.
#[test]
fn mysql_table_lock_wait_is_bounded_on_the_server() {
    let Some(m) = start_or_skip("mysql_table_lock_wait_is_bounded_on_the_server") else {
        return;
    };
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 20);
    let log = r.dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(&r, CAMPAIGN, GROUP, "w1", &m.url(), FAST),
    );
    let mut c = m.db();
    wait_until(LONG, "20 rows", || count(&mut c) == 20);
    let mut locker = m.db();
    locker.query_drop("LOCK TABLES wins WRITE").unwrap();
    draw(&mut con, CAMPAIGN, 20, 40);
    std::thread::sleep(Duration::from_millis(4000));
    // (--db-timeout-ms 500: a lock wait ends within a second.)
    let waiting: Vec<(i64, i64)> = c
        .exec(
            "SELECT ID, TIME FROM information_schema.PROCESSLIST WHERE USER = ? \
             AND STATE LIKE '%metadata lock%'",
            (USER,),
        )
        .unwrap();
    let old = waiting.iter().filter(|(_, t)| *t >= 3).count();
    locker.query_drop("UNLOCK TABLES").unwrap();
    assert_eq!(
        old, 0,
        "writer sessions still waiting for the lock: {waiting:?}"
    );
    assert!(w.log_text().contains("event=retry"), "{}", w.log_text());
    wait_until(LONG, "40 rows", || count(&mut c) == 40);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    check_final(&mut con, &m, CAMPAIGN, STREAM, GROUP);
}

/// A server that closes idle sessions (`wait_timeout`, often a minute or less on hosted
/// servers): the writer's session closed during a lull is replaced before the next batch, with
/// no failed attempt (no `retry` line, nothing counted as an error).
#[test]
fn mysql_session_closed_while_idle_is_replaced_without_a_retry() {
    let Some(m) = start_or_skip("mysql_session_closed_while_idle_is_replaced_without_a_retry")
    else {
        return;
    };
    m.root().query_drop("SET GLOBAL wait_timeout = 1").unwrap();
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    let log = r.dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(&r, CAMPAIGN, GROUP, "w1", &m.url(), FAST),
    );
    // (A new session for each look: an idle one of the test is closed too.)
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(2200));
        draw(&mut con, CAMPAIGN, i * 10, i * 10 + 10);
        wait_until(LONG, "the new rows", || {
            count(&mut m.db()) == (i as i64 + 1) * 10
        });
    }
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    let t = w.log_text();
    assert!(!t.contains("event=retry"), "{t}");
    assert!(t.contains(" errors=0 "), "{t}");
    check_final(&mut con, &m, CAMPAIGN, STREAM, GROUP);
}
