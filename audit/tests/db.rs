//! The database path: lottery-writer (the real binary, on a redis-server with the module)
//! stores a synthetic campaign's stream into SQLite, PostgreSQL and MariaDB; lottery-audit
//! --db gives the same report as lottery-audit --redis, clean and tampered.
//! Needs the module ($LOTTERY_MODULE or target/release/liblottery.so) and the lottery-writer
//! binary next to this test's (`cargo test --workspace` builds it; or
//! `cargo build -p lottery-writer`).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "db:{v}";
const STREAM: &str = "db:{v}:wins";

fn module() -> PathBuf {
    let p = std::env::var("LOTTERY_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/release/liblottery.so"
            ))
        });
    assert!(
        p.exists(),
        "lottery module not found at {} (cargo build --release -p redis-lottery, or set LOTTERY_MODULE)",
        p.display()
    );
    p
}

/// target/<profile>/lottery-writer, next to this test's directory (deps/).
fn writer_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("lottery-writer");
    assert!(
        p.exists(),
        "{} not found: build it (cargo build -p lottery-writer), or run cargo test --workspace",
        p.display()
    );
    p
}

/// The campaign (configured in the module), its stream filled with `c`'s entries.
fn setup(r: &Redis, c: &Campaign) {
    let mut con = r.con();
    let _: () = redis::cmd("LOTTERY.CONFIGURE")
        .arg(KEY)
        .arg(&["PRIZE", "gold", "1", "INF", "PRIZE", "silver", "3", "INF"])
        .query(&mut con)
        .unwrap();
    let v: redis::Value = redis::cmd("LOTTERY.STATS")
        .arg(KEY)
        .query(&mut con)
        .unwrap();
    assert!(format!("{v:?}").contains(STREAM), "{v:?}");
    c.write(&mut con, STREAM.as_bytes());
}

/// Runs lottery-writer until `stored()` counts every entry of the stream.
fn store(r: &Redis, db: &str, n: usize, stored: &mut dyn FnMut() -> usize) {
    let log = r.dir.path().join("writer.log");
    let mut w = Command::new(writer_bin())
        .args([
            "--redis",
            &r.url(),
            "--campaign",
            KEY,
            "--group",
            "g",
            "--consumer",
            "c",
            "--database",
            db,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while stored() < n {
        if let Ok(Some(st)) = w.try_wait() {
            panic!(
                "writer exited ({st}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < end,
            "writer stored {} of {}: {}",
            stored(),
            n,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = w.kill();
    let _ = w.wait();
}

/// The reports of --redis and --db (JSON), which must be equal; (exit code, report).
fn both(r: &Redis, db: &str, c: &Campaign) -> (i32, serde_json::Value) {
    let url = r.url();
    let seed = c.seed_arg(2);
    let (code_r, out_r, err_r) = audit(&[
        "--redis",
        &url,
        "--campaign",
        KEY,
        "--seed",
        &seed,
        "--json",
    ]);
    let (code_d, out_d, err_d) = audit(&["--db", db, "--campaign", KEY, "--seed", &seed, "--json"]);
    assert!(code_r < 2, "{err_r}");
    assert!(code_d < 2, "{err_d}");
    assert_eq!(code_r, code_d);
    assert_eq!(json(&out_r), json(&out_d), "\n{out_r}\n{out_d}");
    (code_r, json(&out_r))
}

/// A win's draw entry deleted, and the last draw that won without its win entry (right
/// before it).
fn tampered() -> Campaign {
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"draw") && get(e, b"outcome") != Some(b""));
    c.entries.remove(i);
    let won = |e: &Fields| is_kind(e, b"draw") && get(e, b"outcome") != Some(b"");
    let last = c.entries.iter().rposition(won).unwrap();
    assert!(get(&c.entries[last - 1], b"type").is_none());
    c.entries.remove(last - 1);
    c
}

fn check(r: &Redis, db: &str, c: &Campaign, clean: bool) {
    let (code, j) = both(r, db, c);
    if clean {
        assert_eq!(code, 0, "{j}");
        assert_eq!(j["draws_checked"], 57);
        assert_eq!(j["entries_read"], c.entries.len());
    } else {
        assert_eq!(code, 1, "{j}");
        let reasons = j["first_mismatches"].to_string();
        assert!(reasons.contains("has no draw entry"), "{j}");
        assert!(reasons.contains("has no win entry"), "{j}");
    }
}

#[test]
fn sqlite_report_equals_the_stream_report() {
    let m = module();
    for clean in [true, false] {
        let r = Redis::start(Some(&m));
        let c = if clean {
            Campaign::build(KEY.as_bytes())
        } else {
            tampered()
        };
        setup(&r, &c);
        let path = r.dir.path().join("w.db");
        let db = format!("sqlite:{}", path.display());
        store(&r, &db, c.entries.len(), &mut || {
            let Ok(con) = rusqlite::Connection::open(&path) else {
                return 0;
            };
            con.query_row(
                "SELECT (SELECT count(*) FROM wins) + (SELECT count(*) FROM lottery_verify_log)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0) as usize
        });
        check(&r, &db, &c, clean);
    }
}

fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|d| d.ok())
        .map(|d| d.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

#[test]
fn postgres_report_equals_the_stream_report() {
    let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL is not installed, and CI is set"
        );
        eprintln!("skipped: PostgreSQL (initdb, pg_ctl) is not installed");
        return;
    };
    let m = module();
    let dir = tempfile::tempdir().unwrap();
    let root = is_root();
    let run = |prog: &PathBuf, args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(prog);
            c
        } else {
            Command::new(prog)
        };
        let out = c.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if root {
        assert!(Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status()
            .unwrap()
            .success());
    }
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap().to_string();
    run(
        &initdb,
        &["-D", &data_s, "-A", "trust", "-U", "postgres", "--no-sync"],
    );
    let port = free_port();
    let opts = format!(
        "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        port,
        dir.path().display()
    );
    let logf = dir.path().join("pg.log");
    run(
        &pg_ctl,
        &[
            "-D",
            &data_s,
            "-l",
            logf.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ],
    );
    struct Stop<'a>(&'a dyn Fn());
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let stop = || {
        let _ =
            std::panic::catch_unwind(|| run(&pg_ctl, &["-D", &data_s, "-m", "immediate", "stop"]));
    };
    let _stop = Stop(&stop);
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", port);
    for clean in [true, false] {
        let r = Redis::start(Some(&m));
        let c = if clean {
            Campaign::build(KEY.as_bytes())
        } else {
            tampered()
        };
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        pg.batch_execute("DROP TABLE IF EXISTS wins, stock_drains, lottery_verify_log")
            .unwrap();
        setup(&r, &c);
        store(&r, &url, c.entries.len(), &mut || {
            pg.query_one(
                "SELECT (SELECT count(*) FROM wins) + (SELECT count(*) FROM lottery_verify_log)",
                &[],
            )
            .map(|r| r.get::<_, i64>(0) as usize)
            .unwrap_or(0)
        });
        check(&r, &url, &c, clean);
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A throwaway MariaDB (mariadb-install-db into a temp dir, mariadbd on a free port) with a
/// database `lottery` and a user `w` (password `pw`) over TCP; killed on drop.
struct Maria {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Maria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin_in(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

fn start_mariadb() -> Option<Maria> {
    use mysql::prelude::Queryable;
    let dirs = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];
    let mariadbd = bin_in("mariadbd", &dirs)?;
    let install = bin_in("mariadb-install-db", &dirs)?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tmp")).unwrap();
    let opts = [
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=16M",
        "--skip-name-resolve",
        "--performance-schema=OFF",
    ];
    let root = is_root();
    let mut c = Command::new(install);
    c.arg("--no-defaults")
        .arg(format!("--datadir={}", d.join("data").display()))
        .arg(format!("--tmpdir={}", d.join("tmp").display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .args(opts);
    if root {
        c.arg("--user=root");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let sock = d.join("m.sock");
    let mut c = Command::new(mariadbd);
    c.arg("--no-defaults")
        .arg(format!("--datadir={}", d.join("data").display()))
        .arg(format!("--tmpdir={}", d.join("tmp").display()))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--pid-file={}", d.join("m.pid").display()))
        .arg(format!("--log-error={}", d.join("error.log").display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .args(opts)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if root {
        c.arg("--user=root");
    }
    let m = Maria {
        child: c.spawn().unwrap(),
        port,
        _dir: dir,
    };
    let end = Instant::now() + Duration::from_secs(60);
    let mut con = loop {
        let o = mysql::OptsBuilder::new()
            .socket(Some(sock.to_str().unwrap()))
            .user(Some("root"));
        if let Ok(c) = mysql::Conn::new(o) {
            break c;
        }
        assert!(Instant::now() < end, "mariadbd did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    for s in [
        "CREATE DATABASE lottery",
        "CREATE USER 'w'@'127.0.0.1' IDENTIFIED BY 'pw'",
        "GRANT ALL ON lottery.* TO 'w'@'127.0.0.1'",
    ] {
        con.query_drop(s).unwrap();
    }
    Some(m)
}

#[test]
fn mariadb_report_equals_the_stream_report() {
    use mysql::prelude::Queryable;
    let Some(maria) = start_mariadb() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MariaDB is not installed, and CI is set"
        );
        eprintln!("skipped: MariaDB (mariadbd, mariadb-install-db) is not installed");
        return;
    };
    let m = module();
    let url = format!("mysql://w:pw@127.0.0.1:{}/lottery", maria.port);
    for clean in [true, false] {
        let r = Redis::start(Some(&m));
        let c = if clean {
            Campaign::build(KEY.as_bytes())
        } else {
            tampered()
        };
        let mut db = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
        db.query_drop("DROP TABLE IF EXISTS wins, stock_drains, lottery_verify_log")
            .unwrap();
        setup(&r, &c);
        store(&r, &url, c.entries.len(), &mut || {
            db.query_first::<i64, _>(
                "SELECT (SELECT count(*) FROM wins) + (SELECT count(*) FROM lottery_verify_log)",
            )
            .ok()
            .flatten()
            .unwrap_or(0) as usize
        });
        check(&r, &url, &c, clean);
    }
}
