//! lottery-writer on MariaDB (the `mysql://` / `mariadb://` store) through crashes, against a
//! throwaway server (tests/common/mariadb.rs). Skipped, with a message, when mariadbd is not
//! installed (Debian: `apt-get install mariadb-server`); failed instead when CI is set.
//!
//! - the writer killed with SIGKILL mid-stream and restarted: every win stored exactly once;
//! - mariadbd killed with SIGKILL under a running writer and restarted on the same data dir:
//!   the writer retries, nothing lost, nothing stored twice, nothing acknowledged unstored;
//! - mariadbd hung (SIGSTOP): reads time out after `--db-timeout-ms`, retried until resumed.
//!
//! Bytes, keys and refusals at open: mysql_schema.rs.

#![cfg(feature = "mysql")]

mod common;

use common::mariadb::*;
use common::*;
use std::time::{Duration, Instant};

const CAMPAIGN: &str = "my:{t}";
const STREAM: &str = "my:{t}:wins";
const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(60);

#[test]
fn mysql_writer_killed_mid_stream_then_restarted_stores_every_win_once() {
    let Some(m) =
        start_or_skip("mysql_writer_killed_mid_stream_then_restarted_stores_every_win_once")
    else {
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
        &m.url(),
        &["--rate", "8000", "--drain-every-ms", "100"],
    );
    let mut c = m.db();
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(LONG, "some rows", || count(&mut c) >= 3000);
    w.kill9();
    let mid = count(&mut c);
    assert!(mid < 20_000, "the writer finished before it was killed");
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(LONG, "rows == XLEN", || {
        count(&mut c) == xlen(&mut con, STREAM)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success(), "{}", w.log_text());
    assert_eq!(count(&mut c), 20_000);
    check_final(&mut con, &m, CAMPAIGN, STREAM, GROUP);
    let t = w.log_text();
    assert!(t.contains("db=mysql"), "{t}");
    assert!(t.contains(":***@"), "{t}");
    assert_no_password(&t);
}

#[test]
fn mysql_server_killed_and_restarted_under_the_writer() {
    let Some(mut m) = start_or_skip("mysql_server_killed_and_restarted_under_the_writer") else {
        return;
    };
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 500);
    let log = r.dir.path().join("w.log");
    let args = writer_args(&r, CAMPAIGN, GROUP, "w1", &m.url(), FAST);
    let mut w = WriterProc::spawn(&log, &args);
    wait_db(&m, LONG, "500 rows", |c| count(c) == 500);
    let stored = stored_ids(&mut m.db());

    // Down: what is drawn meanwhile is not acknowledged.
    m.kill9();
    draw(&mut con, CAMPAIGN, 500, 800);
    std::thread::sleep(Duration::from_millis(1000));
    check_nothing_acked_unstored(&mut con, STREAM, GROUP, &stored);
    m.restart();
    wait_db(&m, LONG, "800 rows after the restart", |c| count(c) == 800);

    // Killed again while wins flow in (batches of 50, so some commit is likely in flight).
    let url = r.url();
    let drawer = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        for i in 0..40u64 {
            draw(&mut con, CAMPAIGN, 800 + i * 100, 900 + i * 100);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    wait_db(&m, LONG, "rows flowing", |c| count(c) >= 1500);
    m.kill9();
    std::thread::sleep(Duration::from_millis(500));
    m.restart();
    // While the writer catches up: every entry acknowledged is a row (committed before the
    // crash, or after the restart).
    check_nothing_acked_unstored_live(&mut con, STREAM, GROUP, || stored_ids(&mut m.db()));
    drawer.join().unwrap();
    check_nothing_acked_unstored_live(&mut con, STREAM, GROUP, || stored_ids(&mut m.db()));
    wait_db(&m, LONG, "all rows", |c| count(c) == 4800);

    // Hung (SIGSTOP): the writer's reads time out after --db-timeout-ms and it retries; once
    // resumed, everything is stored.
    let retries = |w: &WriterProc| w.log_text().matches("event=retry").count();
    let before = retries(&w);
    m.hang(true);
    draw(&mut con, CAMPAIGN, 4800, 5000);
    let hung = Instant::now();
    wait_until(LONG, "a retry while hung", || retries(&w) > before);
    assert!(hung.elapsed() < Duration::from_secs(10));
    m.hang(false);
    // The retry says what happened (not just the socket's EAGAIN).
    let t = w.log_text();
    let hung_retry = t.lines().filter(|l| l.contains("event=retry")).nth(before);
    assert!(
        hung_retry.is_some_and(|l| l.contains("no answer within --db-timeout-ms")),
        "{t}"
    );
    wait_db(&m, LONG, "all rows after the hang", |c| count(c) == 5000);
    std::thread::sleep(Duration::from_millis(300));
    let st = w.term();
    assert_eq!(st.code(), Some(0), "{}", w.log_text());
    check_final(&mut con, &m, CAMPAIGN, STREAM, GROUP);
    let t = w.log_text();
    assert!(t.contains("event=retry"), "{t}");
    assert!(t.contains("MySQL"), "{t}");
    assert_no_password(&t);
}
