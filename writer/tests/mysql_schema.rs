//! lottery-writer on MariaDB: what the tables hold and what is refused at open, against a
//! throwaway server (tests/common/mariadb.rs). Skipped, with a message, when mariadbd is not
//! installed; failed instead when CI is set.
//!
//! - hostile bytes (user ids, prize ids, codes, request ids; a 100 KB user id) and a
//!   4096-byte campaign key round-trip exactly; every entry delivered again stores nothing twice;
//! - refusals at open (MyISAM tables, a non-durable server, a wrong password, no database),
//!   a table of an earlier layout gets the columns added since, and a user with only SELECT,
//!   INSERT and UPDATE works on complete tables.

#![cfg(feature = "mysql")]

mod common;

use common::mariadb::*;
use common::*;
use mysql::prelude::Queryable;
use std::time::{Duration, Instant};

const CAMPAIGN: &str = "my:{t}";
const STREAM: &str = "my:{t}:wins";
const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(60);

/// A 4096-byte campaign key of multi-byte characters; prize ids, user ids, request ids and
/// codes that are not UTF-8 (NUL included); a user id of 100 KB (more than a BLOB holds).
#[test]
fn mysql_hostile_bytes_and_a_4096_byte_campaign_key_round_trip() {
    let Some(m) = start_or_skip("mysql_hostile_bytes_and_a_4096_byte_campaign_key_round_trip")
    else {
        return;
    };
    let mut campaign = String::from("{h}");
    while campaign.len() + 4 <= 4000 {
        campaign.push('🎁');
    }
    while campaign.len() + 2 <= 4095 {
        campaign.push('é');
    }
    while campaign.len() < 4096 {
        campaign.push('x');
    }
    assert_eq!(campaign.len(), 4096);
    let r = RedisServer::start();
    let mut con = r.con();
    let bin_prize: &[u8] = b"\xff\xfe\x00bin\\x";
    let _: () = redis::cmd("LOTTERY.CONFIGURE")
        .arg(&campaign)
        .arg("PRIZE")
        .arg(bin_prize)
        .arg(1)
        .arg("INF")
        .arg("PRIZE")
        .arg("é🎁")
        .arg(1)
        .arg("INF")
        .arg("PRIZE")
        .arg("card")
        .arg(1)
        .arg("CODES")
        .arg("MAXWINS")
        .arg("INF")
        .query(&mut con)
        .unwrap();
    let codes: Vec<Vec<u8>> = (0..100u8)
        .map(|i| {
            let mut c = vec![0, 0xff, i, b'\\', b'0'];
            c.extend(std::iter::repeat_n(0xa5, i as usize * 5));
            c
        })
        .collect();
    let _: redis::Value = redis::cmd("LOTTERY.CODES")
        .arg(&campaign)
        .arg("card")
        .arg("ADD")
        .arg(&codes)
        .query(&mut con)
        .unwrap();
    let stream: String = {
        let v: Vec<redis::Value> = redis::cmd("LOTTERY.STATS")
            .arg(&campaign)
            .query(&mut con)
            .unwrap();
        let i = v
            .iter()
            .position(|x| *x == redis::Value::BulkString(b"stream".to_vec()))
            .unwrap();
        redis::from_redis_value(&v[i + 1]).unwrap()
    };
    // Draws: binary user ids every 7th, a binary request id on some.
    let mut p = redis::pipe();
    for i in 0..150u64 {
        let c = p.cmd("LOTTERY.DRAW").arg(&campaign).arg(user(i));
        if i % 5 == 0 {
            c.arg("REQID").arg(&[0xc3u8, 0x28, 0, i as u8][..]);
        }
    }
    let _: Vec<redis::Value> = p.query(&mut con).unwrap();
    // Entries appended by hand, as the module writes them: a 100 KB user id, a prize id with
    // a NUL, a 512-byte code.
    let big_user = vec![0x80u8; 100_000];
    xadd(
        &mut con,
        &stream,
        &[("user", &big_user), ("prize", b"gold"), ("draw", b"1000")],
    );
    xadd(
        &mut con,
        &stream,
        &[
            ("user", b"u\0"),
            ("prize", b"nul\0prize"),
            ("draw", b"1001"),
        ],
    );
    let long_code = vec![0u8; 512];
    xadd(
        &mut con,
        &stream,
        &[
            ("user", b"u2"),
            ("prize", b"card"),
            ("draw", b"1002"),
            ("code", &long_code),
            ("reqid", b"\xff"),
        ],
    );
    let log = r.dir.path().join("w.log");
    let args = writer_args(
        &r,
        &campaign,
        GROUP,
        "w1",
        &m.url(),
        &["--batch", "7", "--drain-every-ms", "100"],
    );
    let mut c = m.db();
    let mut w = WriterProc::spawn(&log, &args);
    wait_until(LONG, "rows == XLEN", || {
        count(&mut c) == xlen(&mut con, &stream)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(w.term().success(), "{}", w.log_text());
    assert_eq!(xlen(&mut con, &stream), 153);
    check_final(&mut con, &m, &campaign, &stream, GROUP);

    // Everything delivered again (the group made anew): every row is already there, nothing
    // is inserted twice, every entry counted as a duplicate.
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&stream)
        .arg(GROUP)
        .query(&mut con)
        .unwrap();
    let log2 = r.dir.path().join("w2.log");
    let mut w = WriterProc::spawn(&log2, &args);
    wait_until(LONG, "everything read again", || {
        entries_read(&mut con, &stream, GROUP) == 153 && pending(&mut con, &stream, GROUP) == 0
    });
    assert!(w.term().success(), "{}", w.log_text());
    let t = w.log_text();
    assert!(t.contains(" inserted=0 duplicates=153 "), "{t}");
    check_final(&mut con, &m, &campaign, &stream, GROUP);
    // Codes handed out, byte for byte; the binary prize's exact bytes, in wins and drains.
    let got_codes: Vec<Vec<u8>> = c
        .query("SELECT code FROM wins WHERE code IS NOT NULL AND draw_seq < 1000")
        .unwrap();
    assert!(!got_codes.is_empty());
    for code in &got_codes {
        assert!(codes.contains(code), "{code:?}");
    }
    let drained: Vec<(String, Option<Vec<u8>>, i64)> = c
        .query("SELECT prize, prize_raw, sold FROM stock_drains")
        .unwrap();
    let mut by_prize = std::collections::HashMap::new();
    for (prize, raw, sold) in drained {
        *by_prize.entry(prize_bytes(prize, raw)).or_insert(0) += sold;
    }
    let bin_wins: i64 = c
        .exec_first(
            "SELECT COUNT(*) FROM wins WHERE prize_raw = ?",
            (bin_prize,),
        )
        .unwrap()
        .unwrap();
    assert!(bin_wins > 0);
    assert_eq!(by_prize.get(bin_prize), Some(&bin_wins));
    assert_eq!(by_prize.values().sum::<i64>(), 150);
}

#[test]
fn mysql_refusals_at_open_and_added_columns() {
    let Some(m) = start_or_skip("mysql_refusals_at_open_and_added_columns") else {
        return;
    };
    let r = RedisServer::start();
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    draw(&mut con, CAMPAIGN, 0, 20);
    let mut root = m.root();
    for db in ["myisam", "old"] {
        root.query_drop(format!("CREATE DATABASE {db}")).unwrap();
        root.query_drop(format!(
            "GRANT ALL ON {db}.* TO '{}'@'127.0.0.1'",
            common::mariadb::USER
        ))
        .unwrap();
    }
    let run = |db: &str, name: &str| -> (Option<i32>, String) {
        let log = r.dir.path().join(format!("{name}.log"));
        let mut w = WriterProc::spawn(&log, &writer_args(&r, CAMPAIGN, GROUP, "w1", db, FAST));
        let st = w.wait(Duration::from_secs(30));
        (st.code(), w.log_text())
    };

    // A MyISAM table (no transactions) is refused.
    root.query_drop(
        "CREATE TABLE myisam.stock_drains (campaign_hash BINARY(32) NOT NULL, seq BIGINT NOT NULL, \
         prize_hash BINARY(32) NOT NULL, campaign TEXT NOT NULL, prize LONGTEXT NOT NULL, \
         sold BIGINT NOT NULL, prize_raw LONGBLOB, PRIMARY KEY (campaign_hash, seq, prize_hash)) \
         ENGINE=MyISAM",
    )
    .unwrap();
    let (code, t) = run(&m.url_for("myisam"), "myisam");
    assert_eq!(code, Some(4), "{t}");
    assert!(t.contains("MyISAM engine, not InnoDB"), "{t}");

    // A wrong password: refused, and neither password is logged.
    let bad = m.url().replace("p%40ss", "wrong%40ss");
    let (code, t) = run(&bad, "badpw");
    assert_eq!(code, Some(4), "{t}");
    assert!(t.contains("Access denied"), "{t}");
    assert_no_password(&t);
    assert!(!t.contains("wrong%40ss") && !t.contains("wrong@ss"), "{t}");

    // No database in the URL, or a password that is not UTF-8: configuration errors.
    let (code, t) = run(&format!("mysql://writer:x@127.0.0.1:{}", m.port), "nodb");
    assert_eq!(code, Some(1), "{t}");
    let (code, t) = run(
        &format!("mysql://writer:%ff@127.0.0.1:{}/{DB}", m.port),
        "badutf8",
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("not UTF-8"), "{t}");

    // A server that does not flush each commit to its log is refused.
    root.query_drop("SET GLOBAL innodb_flush_log_at_trx_commit = 0")
        .unwrap();
    let (code, t) = run(&m.url(), "flush0");
    root.query_drop("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .unwrap();
    assert_eq!(code, Some(4), "{t}");
    assert!(t.contains("innodb_flush_log_at_trx_commit = 0"), "{t}");

    // A wins table without the `code` column (the first layout): the column is added at open,
    // once; the rows there keep NULL.
    root.query_drop(
        "CREATE TABLE old.wins (campaign_hash BINARY(32) NOT NULL, \
         stream_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
         campaign TEXT NOT NULL, user_id LONGBLOB NOT NULL, prize LONGTEXT NOT NULL, \
         ts_ms BIGINT NOT NULL, draw_seq BIGINT NOT NULL, reqid LONGBLOB, prize_raw LONGBLOB, \
         PRIMARY KEY (campaign_hash, stream_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .unwrap();
    root.query_drop(
        "INSERT INTO old.wins VALUES (UNHEX(SHA2('old', 256)), '1-0', 'old', 'u', 'gold', 1, 1, \
         NULL, NULL)",
    )
    .unwrap();
    let code_col = xadd(
        &mut con,
        STREAM,
        &[
            ("user", b"u1"),
            ("prize", b"card"),
            ("draw", b"21"),
            ("code", b"\0\xffC"),
        ],
    );
    let log = r.dir.path().join("old.log");
    for run in 1..=2 {
        let mut w = WriterProc::spawn(
            &log,
            &writer_args(&r, CAMPAIGN, GROUP, "w1", &m.url_for("old"), FAST),
        );
        let start = Instant::now();
        wait_until(LONG, "rows == XLEN + 1", || {
            w.log_text().matches("event=recovered").count() == run
                && root
                    .query_first::<i64, _>("SELECT COUNT(*) FROM old.wins")
                    .unwrap()
                    == Some(xlen(&mut con, STREAM) + 1)
        });
        assert!(start.elapsed() < LONG);
        assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    }
    let ty: Vec<String> = root
        .query(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'old' \
             AND TABLE_NAME = 'wins' AND COLUMN_NAME = 'code'",
        )
        .unwrap();
    assert_eq!(ty, ["longblob"]);
    let got: Option<Option<Vec<u8>>> = root
        .exec_first(
            "SELECT code FROM old.wins WHERE stream_id = ?",
            (&code_col,),
        )
        .unwrap();
    assert_eq!(got, Some(Some(b"\0\xffC".to_vec())));
    let old: Option<Option<Vec<u8>>> = root
        .query_first("SELECT code FROM old.wins WHERE campaign = 'old'")
        .unwrap();
    assert_eq!(old, Some(None));
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);

    // Once the tables are complete, SELECT, INSERT and UPDATE are enough.
    root.query_drop(
        "CREATE USER 'plain'@'127.0.0.1' IDENTIFIED BY 'pw'; \
         GRANT SELECT, INSERT, UPDATE ON old.* TO 'plain'@'127.0.0.1'",
    )
    .unwrap();
    draw(&mut con, CAMPAIGN, 20, 40);
    let mut w = WriterProc::spawn(
        &r.dir.path().join("plain.log"),
        &writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &format!("mysql://plain:pw@127.0.0.1:{}/old", m.port),
            FAST,
        ),
    );
    wait_until(LONG, "rows with the plain user", || {
        root.query_first::<i64, _>("SELECT COUNT(*) FROM old.wins")
            .unwrap()
            == Some(xlen(&mut con, STREAM) + 1)
    });
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
}
