//! Entries with a `type` field (the verifiable-draw log) go to `lottery_verify_log`, exactly
//! once, next to the wins (which are unaffected): SQLite, PostgreSQL and MariaDB.

mod common;

use common::*;
use redis::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const CAMPAIGN: &str = "vl:{t}";
const STREAM: &str = "vl:{t}:wins";
const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(60);

/// One stored row: kind, epoch, draw, fields (the JSON array's strings, decoded to bytes).
type Row = (String, Option<i64>, Option<i64>, Vec<Vec<u8>>);

/// The writer's text form back to bytes (`\0`, `\\`, `\xNN`; a text without a backslash is
/// the bytes themselves).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'0' => {
                    out.push(0);
                    i += 2
                }
                b'\\' => {
                    out.push(b'\\');
                    i += 2
                }
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 4
                }
                c => panic!("bad escape {}", c),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn row(kind: String, epoch: Option<i64>, draw: Option<i64>, fields: String) -> Row {
    let v: Vec<String> = serde_json::from_str(&fields).unwrap();
    (kind, epoch, draw, v.iter().map(|s| unescape(s)).collect())
}

/// The typed entries the test appends: (fields, expected kind, epoch, draw).
/// An entry to append: its fields, and the row it must give (kind, epoch, draw).
type Typed = (Vec<Vec<u8>>, &'static str, Option<i64>, Option<i64>);

fn typed_entries() -> Vec<Typed> {
    let h = "0f".repeat(32);
    let f = |x: &[&[u8]]| x.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
    vec![
        (
            f(&[
                b"type",
                b"epoch",
                b"epoch",
                b"1",
                b"commitment",
                h.as_bytes(),
                b"from_draw",
                b"1",
            ]),
            "epoch",
            Some(1),
            Some(1),
        ),
        (
            f(&[
                b"type",
                b"table",
                b"from_draw",
                b"1",
                b"tier",
                b"",
                b"gold",
                b"1",
                b"si\\lver",
                b"3",
                b"NOTHING",
                b"0",
            ]),
            "table",
            None,
            Some(1),
        ),
        (
            f(&[
                b"type",
                b"draw",
                b"draw",
                b"2",
                b"user",
                b"\xff\xfe\0u\\x",
                b"outcome",
                "🎁é\n".as_bytes(),
                b"pick",
                b"gold",
                b"tier",
                b"vip",
                b"rule",
                b"fallback",
            ]),
            "draw",
            None,
            Some(2),
        ),
        (
            f(&[b"type", b"reveal", b"epoch", b"1", b"seed", h.as_bytes()]),
            "reveal",
            Some(1),
            None,
        ),
        // Unknown type, and a draw entry missing fields: stored as they are.
        (
            f(&[b"type", b"\xffmystery", b"k", b"\0"]),
            "\\xffmystery",
            None,
            None,
        ),
        (f(&[b"type", b"draw", b"draw", b"3"]), "draw", None, Some(3)),
    ]
}

fn xadd_raw(con: &mut redis::Connection, fields: &[Vec<u8>]) -> String {
    let mut c = redis::cmd("XADD");
    c.arg(STREAM).arg("*");
    for f in fields {
        c.arg(f.as_slice());
    }
    c.query(con).unwrap()
}

/// Wins and typed entries interleaved; returns the typed entries' expected rows by ID.
fn fill(con: &mut redis::Connection) -> BTreeMap<String, Row> {
    configure(con, CAMPAIGN);
    let mut want = BTreeMap::new();
    for (i, (fields, kind, epoch, draw)) in typed_entries().into_iter().enumerate() {
        draw_wins(con, i as u64 * 10, i as u64 * 10 + 10);
        let id = xadd_raw(con, &fields);
        want.insert(id, (kind.to_string(), epoch, draw, fields));
    }
    want
}

fn draw_wins(con: &mut redis::Connection, from: u64, to: u64) {
    common::draw(con, CAMPAIGN, from, to);
}

/// Leaves the first `n` entries pending on consumer `w1`, as if a writer died before its XACK.
fn pend(con: &mut redis::Connection, n: usize) {
    let _: Value = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, GROUP, "0"])
        .query(con)
        .unwrap();
    let _: Value = redis::cmd("XREADGROUP")
        .arg(&[
            "GROUP",
            GROUP,
            "w1",
            "COUNT",
            &n.to_string(),
            "STREAMS",
            STREAM,
            ">",
        ])
        .query(con)
        .unwrap();
    assert_eq!(pending(con, STREAM, GROUP), n as i64);
}

/// Runs the writer until `done`, then stops it; its log.
fn run_writer(r: &RedisServer, db: &str, done: &mut dyn FnMut() -> bool) -> String {
    let log = r.dir.path().join(format!("w{}.log", rand_suffix()));
    let mut w = WriterProc::spawn(&log, &writer_args(r, CAMPAIGN, GROUP, "w1", db, &[]));
    wait_until(LONG, "everything stored", &mut *done);
    let st = w.term();
    let text = w.log_text();
    assert!(st.success(), "exit {:?}; log:\n{}", st, text);
    text
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The whole scenario on one database: `rows()` reads (win rows, typed rows).
fn scenario(r: &RedisServer, db: &str, rows: &mut dyn FnMut() -> (i64, BTreeMap<String, Row>)) {
    let mut con = r.con();
    let want = fill(&mut con);
    let wins = (typed_entries().len() * 10) as i64;
    assert_eq!(xlen(&mut con, STREAM), wins + want.len() as i64);
    // Some entries (wins and typed ones) pending on w1: recovered at start.
    pend(&mut con, 25);
    let text = run_writer(r, db, &mut || {
        let (w, v) = rows();
        w == wins && v.len() == want.len()
    });
    assert!(text.contains(&format!(" inserted={wins} ")), "{text}");
    assert!(text.contains("malformed=0"), "{text}");
    assert!(
        text.contains(&format!("verify_inserted={}", want.len())),
        "{text}"
    );
    assert!(text.contains("verify_malformed=2"), "{text}");
    assert!(text.contains("event=malformed_verify_entry"), "{text}");
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
    let (w, got) = rows();
    assert_eq!(w, wins);
    assert_eq!(got, want);

    // Everything delivered again (the group rewound): nothing stored twice.
    let _: Value = redis::cmd("XGROUP")
        .arg(&["SETID", STREAM, GROUP, "0"])
        .query(&mut con)
        .unwrap();
    draw_wins(&mut con, 1000, 1005);
    let text = run_writer(r, db, &mut || rows().0 == wins + 5);
    assert!(text.contains(" inserted=5 "), "{text}");
    assert!(
        text.contains(&format!("verify_duplicates={}", want.len())),
        "{text}"
    );
    assert!(text.contains("verify_inserted=0"), "{text}");
    let (w, got) = rows();
    assert_eq!(w, wins + 5);
    assert_eq!(got, want);
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);
}

#[test]
fn sqlite_typed_entries_exactly_once() {
    let r = RedisServer::start();
    let path = r.dir.path().join("v.db");
    let db = format!("sqlite:{}", path.display());
    scenario(&r, &db, &mut || {
        if !path.exists() {
            return (0, BTreeMap::new());
        }
        let c = sqlite(&path);
        let w = rows(&path);
        let Ok(mut st) = c.prepare(
            "SELECT entry_id, kind, epoch, draw, fields FROM lottery_verify_log WHERE campaign = ?1",
        ) else {
            return (w, BTreeMap::new());
        };
        let v = st
            .query_map([CAMPAIGN], |r| {
                Ok((r.get(0)?, row(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            })
            .unwrap()
            .collect::<Result<BTreeMap<String, Row>, _>>()
            .unwrap();
        (w, v)
    });
}

#[test]
fn sqlite_database_of_an_earlier_version_gets_the_table() {
    let r = RedisServer::start();
    let path = r.dir.path().join("old.db");
    {
        // The schema of a writer that knew no typed entries.
        let c = sqlite(&path);
        c.execute_batch(
            "CREATE TABLE wins (stream_id TEXT NOT NULL, campaign TEXT NOT NULL, user_id BLOB NOT NULL, \
             prize TEXT NOT NULL, ts_ms INTEGER NOT NULL, draw_seq INTEGER NOT NULL, reqid BLOB, \
             PRIMARY KEY (campaign, stream_id));
             CREATE TABLE stock_drains (campaign TEXT NOT NULL, seq INTEGER NOT NULL, prize TEXT NOT NULL, \
             sold INTEGER NOT NULL, PRIMARY KEY (campaign, seq, prize));",
        )
        .unwrap();
    }
    let mut con = r.con();
    let want = fill(&mut con);
    let db = format!("sqlite:{}", path.display());
    run_writer(&r, &db, &mut || {
        sqlite(&path)
            .query_row("SELECT count(*) FROM lottery_verify_log", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0)
            == want.len() as i64
            && rows(&path) == 60
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_typed_entries_exactly_once() {
    let Some(pg) = common::pg::Cluster::start() else {
        tool_missing(
            "postgres_typed_entries_exactly_once",
            "PostgreSQL (initdb, pg_ctl)",
        );
        return;
    };
    let r = RedisServer::start();
    let mut c = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    scenario(&r, &pg.url(), &mut || {
        let w: i64 = c
            .query_opt("SELECT count(*) FROM wins", &[])
            .ok()
            .flatten()
            .map(|r| r.get(0))
            .unwrap_or(0);
        let v = c
            .query(
                "SELECT entry_id, kind, epoch, draw, fields FROM lottery_verify_log WHERE campaign = $1",
                &[&CAMPAIGN],
            )
            .map(|rs| {
                rs.iter()
                    .map(|r| (r.get(0), row(r.get(1), r.get(2), r.get(3), r.get(4))))
                    .collect()
            })
            .unwrap_or_default();
        (w, v)
    });
}

#[cfg(feature = "mysql")]
#[test]
fn mariadb_typed_entries_exactly_once() {
    use mysql::prelude::Queryable;
    let Some(m) = common::mariadb::start_or_skip("mariadb_typed_entries_exactly_once") else {
        return;
    };
    let r = RedisServer::start();
    let mut c = m.db();
    scenario(&r, &m.url(), &mut || {
        let w = common::mariadb::count(&mut c);
        let v = c
            .exec_map(
                "SELECT entry_id, kind, epoch, draw, fields FROM lottery_verify_log \
                 WHERE campaign_hash = UNHEX(SHA2(?, 256))",
                (CAMPAIGN,),
                |(id, k, e, d, f): (String, String, Option<i64>, Option<i64>, String)| {
                    (id, row(k, e, d, f))
                },
            )
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        (w, v)
    });
}
