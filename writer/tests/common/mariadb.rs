//! A throwaway MariaDB server (Debian's `mariadb-server`): `mariadb-install-db` into a temp
//! dir, `mariadbd` on a free port of 127.0.0.1, a database and a user with a password that
//! needs percent-encoding in a URL. Killed (and its files removed) on Drop.
//! `MariaDb::start` is None when mariadbd is not installed.

use crate::common::{
    check_rows, find_bin, free_port, pending, prize_bytes, stats_int, stream_fields, tool_missing,
    wait_until,
};
use mysql::prelude::Queryable;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DB: &str = "lottery";
pub const USER: &str = "writer";
/// `@ : / % ?` and a non-ASCII letter: each must be percent-encoded in the URL.
pub const PASSWORD: &str = "p@ss:w/rd%?é";
const PASSWORD_ENCODED: &str = "p%40ss%3Aw%2Frd%25%3F%C3%A9";

/// Server options for a test: small buffers and logs. Commits stay durable
/// (`innodb_flush_log_at_trx_commit = 1`, the default): the tests kill it with SIGKILL.
const SERVER_OPTS: &[&str] = &[
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--skip-name-resolve",
    "--max-connections=50",
    "--performance-schema=OFF",
];

pub struct MariaDb {
    mariadbd: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn dirs() -> Vec<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(PathBuf::from)
        .collect()
}

impl MariaDb {
    pub fn start() -> Option<MariaDb> {
        let mariadbd = find_bin("mariadbd", &dirs())?;
        let install = find_bin("mariadb-install-db", &dirs())?;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // Its own temporary dir: bootstraps running at once collide in a shared one.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let mut c = Command::new(&install);
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(SERVER_OPTS);
        if unsafe { libc::geteuid() } == 0 {
            c.arg("--user=root");
        }
        let out = c.output().expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut m = MariaDb {
            mariadbd,
            child: None,
            dir,
            port: 0,
        };
        // A port taken between free_port() and the bind: try another.
        for _ in 0..5 {
            m.port = free_port();
            if m.spawn_and_wait() {
                m.setup();
                return Some(m);
            }
        }
        panic!("mariadbd did not start: {}", m.error_log());
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mariadb.sock")
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Starts mariadbd on the data dir; true once it answers, false if it exited.
    fn spawn_and_wait(&mut self) -> bool {
        let d = self.dir.path();
        let mut c = Command::new(&self.mariadbd);
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", d.join("mariadb.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .args(SERVER_OPTS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if unsafe { libc::geteuid() } == 0 {
            c.arg("--user=root");
        }
        let mut child = c.spawn().expect("spawn mariadbd");
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if self.try_root().is_some() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("mariadbd not ready after 60 s: {}", self.error_log());
    }

    fn try_root(&self) -> Option<mysql::Conn> {
        let o = mysql::OptsBuilder::new()
            .socket(Some(self.socket().to_str().unwrap()))
            .user(Some("root"))
            .tcp_connect_timeout(Some(Duration::from_secs(2)))
            .read_timeout(Some(Duration::from_secs(30)));
        mysql::Conn::new(o).ok()
    }

    /// root, over the server's Unix socket (no password).
    pub fn root(&self) -> mysql::Conn {
        self.try_root()
            .unwrap_or_else(|| panic!("root connection: {}", self.error_log()))
    }

    /// root, in the test database.
    pub fn db(&self) -> mysql::Conn {
        let mut c = self.root();
        c.query_drop(format!("USE {DB}")).unwrap();
        c
    }

    fn setup(&self) {
        let mut c = self.root();
        let pw = PASSWORD.replace('\'', "''");
        for s in [
            format!("CREATE DATABASE {DB}"),
            format!("CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{pw}'"),
            format!("GRANT ALL ON {DB}.* TO '{USER}'@'127.0.0.1'"),
        ] {
            c.query_drop(&s).unwrap();
        }
    }

    /// The writer's `--database`: the user with its password, percent-encoded.
    pub fn url(&self) -> String {
        self.url_for(DB)
    }

    pub fn url_for(&self, db: &str) -> String {
        format!(
            "mariadb://{USER}:{PASSWORD_ENCODED}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// `kill -9` (no shutdown: InnoDB recovers at the next start).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data dir and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        let ok = self.spawn_and_wait();
        assert!(ok, "mariadbd did not restart: {}", self.error_log());
    }

    /// SIGSTOP (`hang`) or SIGCONT the server: connections stay open, nothing answers.
    pub fn hang(&self, hang: bool) {
        let pid = self.child.as_ref().expect("running").id();
        let st = Command::new("kill")
            .arg(if hang { "-STOP" } else { "-CONT" })
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until `f` holds, querying through a fresh root connection each time (the server
/// may be restarting).
pub fn wait_db(
    m: &MariaDb,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut(&mut mysql::Conn) -> bool,
) {
    wait_until(timeout, what, || match m.try_root() {
        Some(mut c) => c.query_drop(format!("USE {DB}")).is_ok() && f(&mut c),
        None => false,
    });
}

// ---------------------------------------------------------------- checks of the tables

pub const FAST: &[&str] = &[
    "--drain-every-ms",
    "100",
    "--db-timeout-ms",
    "500",
    "--max-backoff-ms",
    "300",
    "--block-ms",
    "200",
    "--check-every-ms",
    "200",
    "--log-every-ms",
    "0",
];

/// A server for `test`; None (the test returns) when mariadbd is not installed and CI is
/// not set (with CI set, the test fails).
pub fn start_or_skip(test: &str) -> Option<MariaDb> {
    let m = MariaDb::start();
    if m.is_none() {
        tool_missing(test, "MariaDB (mariadbd, mariadb-install-db)");
    }
    m
}

pub fn count(c: &mut mysql::Conn) -> i64 {
    c.query_first("SELECT COUNT(*) FROM wins")
        .ok()
        .flatten()
        .unwrap_or(0)
}

pub fn stored_ids(c: &mut mysql::Conn) -> HashSet<String> {
    c.query("SELECT stream_id FROM wins")
        .unwrap()
        .into_iter()
        .collect()
}

/// Every stream entry is exactly one row of `campaign` (found by its hash, the way a reader
/// looks a campaign up), field for field; the campaign column holds the key exactly.
pub fn check_rows_match_stream(
    con: &mut redis::Connection,
    c: &mut mysql::Conn,
    stream: &str,
    campaign: &str,
) {
    let want = stream_fields(con, stream);
    let (total, distinct): (i64, i64) = c
        .query_first("SELECT COUNT(*), COUNT(DISTINCT campaign_hash, stream_id) FROM wins")
        .unwrap()
        .unwrap();
    assert_eq!(total, distinct);
    assert_eq!(total as usize, want.len(), "rows != stream entries");
    type Row = (
        String,
        Vec<u8>,
        String,
        Option<Vec<u8>>,
        i64,
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = c
        .exec(
            "SELECT stream_id, user_id, prize, prize_raw, ts_ms, draw_seq, reqid, code FROM wins \
             WHERE campaign_hash = UNHEX(SHA2(?, 256))",
            (campaign,),
        )
        .unwrap();
    let got = rows
        .into_iter()
        .map(|(id, user, prize, raw, ts, draw, reqid, code)| {
            (id, (user, prize_bytes(prize, raw), ts, draw, reqid, code))
        })
        .collect();
    check_rows(&want, got);
    let other: i64 = c
        .exec_first(
            "SELECT COUNT(*) FROM wins WHERE campaign <> ? OR campaign_hash <> UNHEX(SHA2(campaign, 256))",
            (campaign,),
        )
        .unwrap()
        .unwrap();
    assert_eq!(other, 0, "campaign column or its hash differs");
}

/// The group's `entries-read` (XINFO GROUPS).
pub fn entries_read(con: &mut redis::Connection, stream: &str, group: &str) -> i64 {
    let groups: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(con)
        .unwrap();
    for g in groups {
        let f: Vec<(String, redis::Value)> = g
            .chunks(2)
            .map(|kv| (redis::from_redis_value(&kv[0]).unwrap(), kv[1].clone()))
            .collect();
        if f.iter()
            .any(|(k, v)| k == "name" && *v == redis::Value::BulkString(group.into()))
        {
            for (k, v) in f {
                if k == "entries-read" {
                    return redis::from_redis_value(&v).unwrap_or(-1);
                }
            }
        }
    }
    -1
}

pub fn drained_sold(c: &mut mysql::Conn, campaign: &str) -> i64 {
    c.exec_first(
        "SELECT CAST(COALESCE(SUM(sold), 0) AS SIGNED) FROM stock_drains \
         WHERE campaign_hash = UNHEX(SHA2(?, 256))",
        (campaign,),
    )
    .unwrap()
    .unwrap()
}

/// The end state: rows == entries, each once; drained == sold; nothing pending.
pub fn check_final(
    con: &mut redis::Connection,
    m: &MariaDb,
    campaign: &str,
    stream: &str,
    group: &str,
) {
    let mut c = m.db();
    check_rows_match_stream(con, &mut c, stream, campaign);
    assert_eq!(pending(con, stream, group), 0, "entries left pending");
    assert_eq!(
        drained_sold(&mut c, campaign),
        stats_int(con, campaign, "wins"),
        "drained != sold"
    );
}

pub fn assert_no_password(log: &str) {
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
    assert!(
        !log.contains("p%40ss"),
        "the encoded password is in the log:\n{log}"
    );
}
