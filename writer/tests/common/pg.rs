//! A throwaway PostgreSQL cluster (initdb under a temp dir, pg_ctl), for the tests built
//! with the `postgres` feature. `Cluster::start` is None when initdb is not installed.

use crate::common::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

/// initdb or pg_ctl: from PATH or Debian's versioned directories.
pub fn find_bin(name: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    crate::common::find_bin(name, &dirs)
}

pub struct Cluster {
    pg_ctl: PathBuf,
    pub data: PathBuf,
    as_postgres: bool,
    pub port: u16,
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
    pub fn start() -> Option<Cluster> {
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

    pub fn url(&self) -> String {
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

impl Cluster {
    fn ctl(&self, args: &[&str]) {
        let mut a = vec!["-D", self.data.to_str().unwrap()];
        a.extend_from_slice(args);
        let out = run(self.as_postgres, &self.pg_ctl, &a);
        assert!(
            out.status.success(),
            "pg_ctl {:?}: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (fast: connections are closed).
    pub fn stop(&self) {
        self.ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts it again with the same options.
    pub fn restart(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self._dir.path().display()
        );
        let logf = self._dir.path().join("pg.log");
        self.ctl(&[
            "-l",
            logf.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ]);
    }

    /// The postmaster's and its children's process ids.
    pub fn pids(&self) -> Vec<u32> {
        let pidfile = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let master: u32 = pidfile.lines().next().unwrap().trim().parse().unwrap();
        let out = Command::new("pgrep")
            .args(["-P", &master.to_string()])
            .output()
            .unwrap();
        let mut pids = vec![master];
        pids.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok()),
        );
        pids
    }

    /// SIGSTOP (`hang`) or SIGCONT every process of the server.
    pub fn hang(&self, hang: bool) {
        for p in self.pids() {
            let _ = Command::new("kill")
                .arg(if hang { "-STOP" } else { "-CONT" })
                .arg(p.to_string())
                .status();
        }
    }
}
