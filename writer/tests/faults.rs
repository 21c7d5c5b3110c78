//! Fault injection: a writer runs against a real redis-server with the module while wins are
//! drawn; a fault is injected (SQLite locked, read-only, its directory deleted, disk full;
//! PostgreSQL stopped, hung, fed a prize id with a NUL byte; Redis killed; the consumer group
//! destroyed; the campaign's stream changed or the campaign deleted); after recovery the
//! invariants are checked:
//! - rows == stream entries == the WINs the clients saw (every row equal to its entry);
//! - drained == sold (the sum of `stock_drains` per campaign == STATS `wins`);
//! - nothing acknowledged that is not in the database (every entry is a row, pending, or not
//!   delivered yet), nothing left pending at the end.
//!
//! Short timeouts (`--db-timeout-ms`, `--max-backoff-ms`, `--block-ms`) keep each test to a
//! few seconds.

mod common;

use common::*;
use redis::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CAMPAIGN: &str = "f:{t}";
const STREAM: &str = "f:{t}:wins";
const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(60);

const FAST: &[&str] = &[
    "--drain-every-ms",
    "100",
    "--db-timeout-ms",
    "300",
    "--max-backoff-ms",
    "300",
    "--block-ms",
    "200",
    "--check-every-ms",
    "200",
    "--log-every-ms",
    "0",
];

fn sqlite_ids(db: &Path) -> HashSet<String> {
    let c = sqlite(db);
    let mut st = c.prepare("SELECT stream_id FROM wins").unwrap();
    let ids = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    ids
}

/// The end state: rows == entries == `seen` WINs, drained == sold, nothing pending.
fn check_final(con: &mut redis::Connection, db: &Path, seen: u64) {
    assert_eq!(
        xlen(con, STREAM) as u64,
        seen,
        "stream entries != WINs seen"
    );
    check_rows_match_stream(con, STREAM, db, CAMPAIGN);
    assert_eq!(pending(con, STREAM, GROUP), 0, "entries left pending");
    assert_eq!(
        drained_sold(db, CAMPAIGN),
        stats_int(con, CAMPAIGN, "wins"),
        "drained != sold"
    );
}

fn setup(extra_redis: &[&str]) -> (RedisServer, redis::Connection) {
    let r = RedisServer::start_with(extra_redis);
    let mut con = r.con();
    configure(&mut con, CAMPAIGN);
    (r, con)
}

fn spawn(r: &RedisServer, db: &str, log: &Path) -> WriterProc {
    WriterProc::spawn(log, &writer_args(r, CAMPAIGN, GROUP, "w1", db, FAST))
}

fn sigterm(w: &WriterProc) {
    let st = Command::new("kill")
        .arg("-15")
        .arg(w.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Restarts the writer after a fault, lets it catch up, stops it (exit 0), checks the end.
fn recover_and_check(r: &RedisServer, con: &mut redis::Connection, db: &Path, seen: u64) {
    let log = r.dir.path().join("w2.log");
    let mut w = spawn(r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows == WINs", || rows(db) as u64 == seen);
    std::thread::sleep(Duration::from_millis(300));
    let st = w.term();
    assert_eq!(st.code(), Some(0), "{}", w.log_text());
    check_final(con, db, seen);
}

#[test]
fn sqlite_locked_sigterm_keeps_the_drain_batch_and_exits_5() {
    let (r, mut con) = setup(&[]);
    draw(&mut con, CAMPAIGN, 0, 500);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 500);
    wait_until(LONG, "drained", || drained_sold(&db, CAMPAIGN) == 500);
    // Another connection holds the write lock: every write (wins and stock_drains) fails.
    let locker = sqlite(&db);
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    draw(&mut con, CAMPAIGN, 500, 800);
    wait_until(LONG, "a failed write", || {
        w.log_text().contains("database is locked")
    });
    // The write error is the database's own text.
    assert!(w.log_text().contains("event=retry"), "{}", w.log_text());
    sigterm(&w);
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(5), "{}", w.log_text());
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    check_nothing_acked_unstored(&mut con, STREAM, GROUP, &sqlite_ids(&db));
    // The next run reconciles LAST before draining: the sold units are all stored.
    recover_and_check(&r, &mut con, &db, 800);
}

#[test]
fn sqlite_read_only_then_writable() {
    let (r, mut con) = setup(&[]);
    let dir = r.dir.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("wins.db");
    draw(&mut con, CAMPAIGN, 0, 300);
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 300);
    // Read-only: `chattr +i` (root ignores the mode bits); skipped where unsupported.
    // The WAL file is where commits go: it is made read-only too.
    let files = [db.clone(), dir.join("wins.db-wal"), dir.join("wins.db-shm")];
    let immutable = |on: bool| {
        files.iter().all(|f| {
            Command::new("chattr")
                .arg(if on { "+i" } else { "-i" })
                .arg(f)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
    };
    let is_root = unsafe { libc::geteuid() } == 0;
    let made_ro = if is_root {
        immutable(true)
    } else {
        files.iter().all(|f| {
            Command::new("chmod")
                .args(["0444"])
                .arg(f)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
    };
    if !made_ro {
        eprintln!("SKIPPED sqlite_read_only_then_writable: cannot make the file read-only here");
        return;
    }
    draw(&mut con, CAMPAIGN, 300, 600);
    wait_until(LONG, "a failed write", || {
        w.log_text().contains("event=retry")
    });
    check_nothing_acked_unstored(&mut con, STREAM, GROUP, &sqlite_ids(&db));
    if is_root {
        immutable(false);
    } else {
        for f in &files {
            let _ = Command::new("chmod").arg("0644").arg(f).status();
        }
    }
    wait_until(LONG, "rows after the fault", || rows(&db) == 600);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    check_final(&mut con, &db, 600);
}

#[test]
fn sqlite_directory_deleted_stops_with_6_and_acks_nothing_more() {
    let (r, mut con) = setup(&[]);
    let dir = r.dir.path().join("gone");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("wins.db");
    draw(&mut con, CAMPAIGN, 0, 300);
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 300);
    let stored = sqlite_ids(&db);
    std::fs::remove_dir_all(&dir).unwrap();
    draw(&mut con, CAMPAIGN, 300, 600);
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(6), "{}", w.log_text());
    assert!(
        w.log_text().contains("database file is gone"),
        "{}",
        w.log_text()
    );
    // Nothing drawn after the deletion was acknowledged.
    check_nothing_acked_unstored(&mut con, STREAM, GROUP, &stored);

    // A replaced file is refused too (the identity differs from the one opened).
    let dir2 = r.dir.path().join("swap");
    std::fs::create_dir(&dir2).unwrap();
    let db2 = dir2.join("wins.db");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            "g2",
            "w1",
            &format!("sqlite:{}", db2.display()),
            FAST,
        ),
    );
    wait_until(LONG, "rows", || rows(&db2) == 600);
    let stored2 = sqlite_ids(&db2);
    std::fs::rename(&db2, dir2.join("old.db")).unwrap();
    let _ = std::fs::remove_file(dir2.join("wins.db-wal"));
    std::fs::copy(dir2.join("old.db"), &db2).unwrap();
    draw(&mut con, CAMPAIGN, 600, 700);
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(6), "{}", w.log_text());
    let pend: i64 = {
        let v: Vec<Value> = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg("g2")
            .query(&mut con)
            .unwrap();
        match &v[0] {
            Value::Int(n) => *n,
            _ => panic!(),
        }
    };
    assert!(pend <= 100);
    assert!(stored2.len() == 600);
}

#[test]
fn in_memory_databases_are_refused() {
    let (r, _con) = setup(&[]);
    for db in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite:file::memory:?cache=shared",
        "sqlite:file:x.db?mode=memory",
        "sqlite:",
    ] {
        let out = Command::new(BIN)
            .args(writer_args(&r, CAMPAIGN, GROUP, "w1", db, &[]))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", db);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("in-memory"),
            "{}: {}",
            db,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn sqlite_disk_full_then_space_freed() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED sqlite_disk_full_then_space_freed: mounting a tmpfs needs root");
        return;
    }
    let (r, mut con) = setup(&[]);
    let mnt = r.dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED sqlite_disk_full_then_space_freed: cannot mount a tmpfs here");
        return;
    }
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Umount(mnt.clone());
    let db = mnt.join("wins.db");
    draw(&mut con, CAMPAIGN, 0, 200);
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 200);
    // Fill the file system.
    let filler = mnt.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    draw(&mut con, CAMPAIGN, 200, 3000);
    wait_until(LONG, "a disk full error", || {
        let t = w.log_text();
        t.contains("full") || t.contains("No space")
    });
    check_nothing_acked_unstored(&mut con, STREAM, GROUP, &sqlite_ids(&db));
    std::fs::remove_file(&filler).unwrap();
    wait_until(LONG, "rows after the fault", || rows(&db) == 3000);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    check_final(&mut con, &db, 3000);
}

#[test]
fn redis_killed_and_restarted() {
    let (mut r, mut con) = setup(&["--appendonly", "yes", "--appendfsync", "always"]);
    draw(&mut con, CAMPAIGN, 0, 500);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 500);
    r.kill9_and_restart();
    let mut con = r.con();
    draw(&mut con, CAMPAIGN, 500, 1000);
    wait_until(LONG, "rows after the restart", || rows(&db) == 1000);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    assert!(w.log_text().contains("event=retry"), "{}", w.log_text());
    check_final(&mut con, &db, 1000);
}

#[test]
fn consumer_group_destroyed() {
    let (r, mut con) = setup(&[]);
    draw(&mut con, CAMPAIGN, 0, 500);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 500);
    let _: i64 = redis::cmd("XGROUP")
        .arg(&["DESTROY", STREAM, GROUP])
        .query(&mut con)
        .unwrap();
    draw(&mut con, CAMPAIGN, 500, 800);
    wait_until(LONG, "rows after the fault", || rows(&db) == 800);
    wait_until(LONG, "nothing pending", || {
        pending(&mut con, STREAM, GROUP) == 0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
    let t = w.log_text();
    assert!(t.contains("NOGROUP"), "{}", t);
    // The group is made again from the start: the first 500 come back as duplicates, and
    // read = inserted + duplicates + malformed + deleted.
    assert!(t.contains("read=1300 inserted=800 duplicates=500"), "{}", t);
    check_final(&mut con, &db, 800);
}

#[test]
fn stream_changed_or_campaign_deleted_stops_with_7() {
    let (r, mut con) = setup(&[]);
    draw(&mut con, CAMPAIGN, 0, 300);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 300);
    // Draws, then the stream moves: what is on the old stream is still stored.
    draw(&mut con, CAMPAIGN, 300, 400);
    let _: () = redis::cmd("LOTTERY.CONFIGURE")
        .arg(CAMPAIGN)
        .arg("STREAM")
        .arg("f:{t}:other")
        .query(&mut con)
        .unwrap();
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(7), "{}", w.log_text());
    assert!(
        w.log_text().contains("event=stream_changed"),
        "{}",
        w.log_text()
    );
    assert_eq!(rows(&db), 400);
    assert_eq!(pending(&mut con, STREAM, GROUP), 0);

    // Deleted campaign.
    let db2 = r.dir.path().join("w2.db");
    let mut w = WriterProc::spawn(
        &log,
        &writer_args(
            &r,
            CAMPAIGN,
            "g2",
            "w1",
            &format!("sqlite:{}", db2.display()),
            FAST,
        ),
    );
    std::thread::sleep(Duration::from_millis(500));
    let _: i64 = redis::cmd("DEL").arg(CAMPAIGN).query(&mut con).unwrap();
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(7), "{}", w.log_text());
    assert!(
        w.log_text().contains("no such campaign"),
        "{}",
        w.log_text()
    );
}

#[test]
fn config_errors_exit_1_or_2_instead_of_retrying() {
    // Wrong password: an authentication error, not "unreachable".
    let r = RedisServer::start_with(&["--requirepass", "right"]);
    let url = format!("redis://:wrong@127.0.0.1:{}", r.port);
    let out = Command::new(BIN)
        .args([
            "--redis",
            &url,
            "--campaign",
            CAMPAIGN,
            "--group",
            GROUP,
            "--consumer",
            "w1",
        ])
        .arg("--database")
        .arg(format!("sqlite:{}", r.dir.path().join("x.db").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", err);
    assert!(err.contains("authentication failed"), "{}", err);

    // --stream of the wrong type; a missing campaign with --stream.
    let (r, mut con) = setup(&[]);
    let _: () = redis::cmd("SET")
        .arg("f:{t}:str")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let db = format!("sqlite:{}", r.dir.path().join("x.db").display());
    for (campaign, stream) in [(CAMPAIGN, "f:{t}:str"), ("f:{nope}", "f:{nope}:wins")] {
        let out = Command::new(BIN)
            .args(writer_args(
                &r,
                campaign,
                GROUP,
                "w1",
                &db,
                &["--stream", stream],
            ))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Zero or huge values of the bounded options are usage errors.
    for (opt, v) in [
        ("--block-ms", "0"),
        ("--block-ms", "99999999999"),
        ("--batch", "0"),
        ("--timeout-ms", "0"),
        ("--max-backoff-ms", "0"),
        ("--claim-every-ms", "0"),
    ] {
        let out = Command::new(BIN)
            .args(writer_args(&r, CAMPAIGN, GROUP, "w1", &db, &[opt, v]))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{} {}", opt, v);
    }
    let out = Command::new(BIN)
        .args(writer_args(
            &r,
            CAMPAIGN,
            GROUP,
            "w1",
            &db,
            &["--drain-every-ms", "1"],
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn repeated_sigterm_still_stops_gracefully() {
    let (r, mut con) = setup(&[]);
    draw(&mut con, CAMPAIGN, 0, 2000);
    let db = r.dir.path().join("wins.db");
    let log = r.dir.path().join("w.log");
    let mut w = spawn(&r, &format!("sqlite:{}", db.display()), &log);
    wait_until(LONG, "rows", || rows(&db) == 2000);
    draw(&mut con, CAMPAIGN, 2000, 2500);
    // Like `timeout`: the process and its group, a few ms apart (the second may find the
    // writer already gone).
    sigterm(&w);
    std::thread::sleep(Duration::from_millis(5));
    let _ = Command::new("kill")
        .arg("-15")
        .arg(w.child.id().to_string())
        .status();
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{}", w.log_text());
    assert!(
        !w.log_text().contains("second_signal_hurry"),
        "{}",
        w.log_text()
    );
    // The final drain was made: drained == sold already.
    assert_eq!(drained_sold(&db, CAMPAIGN), 2500, "{}", w.log_text());
    check_nothing_acked_unstored(&mut con, STREAM, GROUP, &sqlite_ids(&db));
    recover_and_check(&r, &mut con, &db, 2500);
}

// ---------------------------------------------------------------- PostgreSQL

#[cfg(feature = "postgres")]
mod postgres_faults {
    use super::*;
    use common::pg::Cluster;

    fn count(db: &mut postgres::Client) -> i64 {
        db.query_opt("SELECT count(*) FROM wins", &[])
            .ok()
            .flatten()
            .map(|r| r.get(0))
            .unwrap_or(0)
    }

    fn pg_client(pg: &Cluster) -> postgres::Client {
        postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap()
    }

    fn check_pg_final(con: &mut redis::Connection, pg: &Cluster, seen: u64) {
        let mut db = pg_client(pg);
        let row = db
            .query_one("SELECT count(*), count(DISTINCT stream_id) FROM wins", &[])
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), row.get::<_, i64>(1), "duplicates");
        assert_eq!(row.get::<_, i64>(0) as u64, seen, "rows != WINs seen");
        assert_eq!(xlen(con, STREAM) as u64, seen);
        let ids: HashSet<String> = db
            .query("SELECT stream_id FROM wins", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in stream_ids(con, STREAM) {
            assert!(ids.contains(&id), "entry {} not stored", id);
        }
        assert_eq!(pending(con, STREAM, GROUP), 0);
        let sold: i64 = db
            .query_one(
                "SELECT coalesce(sum(sold), 0)::bigint FROM stock_drains WHERE campaign = $1",
                &[&CAMPAIGN],
            )
            .unwrap()
            .get(0);
        assert_eq!(sold, stats_int(con, CAMPAIGN, "wins"), "drained != sold");
    }

    #[test]
    fn postgres_stopped_restarted_hung_and_a_nul_prize() {
        let Some(pg) = Cluster::start() else {
            tool_missing(
                "postgres_stopped_restarted_hung_and_a_nul_prize",
                "PostgreSQL (initdb, pg_ctl)",
            );
            return;
        };
        let (r, mut con) = setup(&[]);
        // A prize id with a NUL byte (the module takes any bytes) next to ordinary ones.
        let _: () = redis::cmd("LOTTERY.CONFIGURE")
            .arg(CAMPAIGN)
            .arg("PRIZE")
            .arg(&b"nul\0prize"[..])
            .arg(1)
            .arg("INF")
            .arg("PRIZE")
            .arg("gold")
            .arg(1)
            .arg("INF")
            .query(&mut con)
            .unwrap();
        draw(&mut con, CAMPAIGN, 0, 500);
        let log = r.dir.path().join("w.log");
        let mut w = spawn(&r, &pg.url(), &log);
        let mut db = pg_client(&pg);
        wait_until(LONG, "rows", || count(&mut db) == 500);
        let raw: i64 = db
            .query_one(
                "SELECT count(*) FROM wins WHERE prize_raw = '\\x6e756c007072697a65'::bytea AND prize = 'nul\\0prize'",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(raw > 0, "the NUL prize is stored with its raw bytes");
        let stored: HashSet<String> = db
            .query("SELECT stream_id FROM wins", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        drop(db);

        // Stopped, then started again.
        pg.stop();
        draw(&mut con, CAMPAIGN, 500, 800);
        std::thread::sleep(Duration::from_millis(800));
        // Nothing drawn while it was down was acknowledged.
        check_nothing_acked_unstored(&mut con, STREAM, GROUP, &stored);
        let t = w.log_text();
        assert!(t.contains("event=retry"), "{}", t);
        assert!(
            !t.contains("error=\"PostgreSQL insert wins: db error\""),
            "{}",
            t
        );
        pg.restart();
        let mut db = pg_client(&pg);
        wait_until(LONG, "rows after the restart", || count(&mut db) == 800);
        drop(db);

        // Hung (every process stopped), a SIGTERM meanwhile, then resumed: the batch in hand
        // is finished, the exit is clean.
        pg.hang(true);
        draw(&mut con, CAMPAIGN, 800, 1000);
        std::thread::sleep(Duration::from_millis(500));
        sigterm(&w);
        std::thread::sleep(Duration::from_millis(1500));
        pg.hang(false);
        let st = w.wait(Duration::from_secs(30));
        assert!(
            st.code() == Some(0) || st.code() == Some(5),
            "{:?} {}",
            st,
            w.log_text()
        );
        // Restart to pick up what is left, then the end state.
        let mut w = spawn(&r, &pg.url(), &log);
        let mut db = pg_client(&pg);
        wait_until(LONG, "all rows", || count(&mut db) == 1000);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(w.term().code(), Some(0), "{}", w.log_text());
        check_pg_final(&mut con, &pg, 1000);
    }
}
