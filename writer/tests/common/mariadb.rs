//! A throwaway MariaDB server (Debian's `mariadb-server`): `mariadb-install-db` into a temp
//! dir, `mariadbd` on a free port of 127.0.0.1, a database and a user with a password that
//! needs percent-encoding in a URL. Killed (and its files removed) on Drop.
//! `MariaDb::start` is None when mariadbd is not installed.

use crate::common::{find_bin, free_port, wait_until};
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
        use mysql::prelude::Queryable;
        let mut c = self.root();
        c.query_drop(format!("USE {DB}")).unwrap();
        c
    }

    fn setup(&self) {
        use mysql::prelude::Queryable;
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
        Some(mut c) => {
            use mysql::prelude::Queryable;
            c.query_drop(format!("USE {DB}")).is_ok() && f(&mut c)
        }
        None => false,
    });
}
