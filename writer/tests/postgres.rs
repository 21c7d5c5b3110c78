//! lottery-writer on PostgreSQL, against a throwaway cluster (initdb under a temp dir).
//! Skipped, with a message, when initdb is not installed (Debian: `apt-get install postgresql`).

#![cfg(feature = "postgres")]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CAMPAIGN: &str = "pg:{t}";
const STREAM: &str = "pg:{t}:wins";
const GROUP: &str = "writers";

fn find_bin(name: &str) -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    port: u16,
    _dir: tempfile::TempDir,
}

fn run(as_postgres: bool, prog: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        Command::new(prog)
    };
    c.args(args).output().expect("run")
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let initdb = find_bin("initdb")?;
        let pg_ctl = find_bin("pg_ctl")?;
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            // initdb refuses to run as root: run it as the postgres user.
            let st = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown postgres {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let out = run(
            as_postgres,
            &initdb,
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            port,
            dir.path().display()
        );
        let logf = dir.path().join("pg.log");
        let out = run(
            as_postgres,
            &pg_ctl,
            &[
                "-D",
                data.to_str().unwrap(),
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
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&logf).unwrap_or_default()
        );
        Some(Cluster {
            pg_ctl,
            data,
            as_postgres,
            port,
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(
            self.as_postgres,
            &self.pg_ctl,
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

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
