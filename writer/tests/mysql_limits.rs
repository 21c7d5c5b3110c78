//! lottery-writer on MariaDB at the server's limits, against
//! a throwaway server (tests/common/mariadb.rs). Skipped, with a message, when mariadbd is not
//! installed; failed instead when CI is set.
//!
//! - a small `max_allowed_packet`: a batch of rows that each fit is stored (split into
//!   statements that fit); a single row that cannot fit is retried with an error naming the
//!   setting, and stored once the setting is raised;

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
