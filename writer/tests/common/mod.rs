//! Test harness: a throwaway redis-server with the lottery module, the writer binary,
//! and checks of the SQLite tables against the stream.
#![allow(dead_code)]

pub mod http;
#[cfg(feature = "mysql")]
pub mod mariadb;
#[cfg(feature = "postgres")]
pub mod pg;
#[path = "../../../test-support/redis_cluster.rs"]
pub mod redis_cluster;

use redis::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lottery-writer");

pub fn module_path() -> PathBuf {
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
        "lottery module not found at {} (build it with `cargo build --release` at the repository root, or set LOTTERY_MODULE)",
        p.display()
    );
    p
}

/// A program from PATH, or else from one of `dirs` (the last match there in sorted order).
pub fn find_bin(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join(name))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// A test's server program is not installed: skipped with a message, except in CI (env `CI`
/// set), where the test fails instead.
pub fn tool_missing(test: &str, what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {what} is not installed, and CI is set: install it (make deps)");
    }
    eprintln!("SKIPPED {test}: {what} is not installed (make deps)");
}

/// A free port no other test of this process got (see `redis_cluster`).
pub fn free_port() -> u16 {
    redis_cluster::free_port()
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {:?} waiting for {}", timeout, what);
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

fn spawn_redis(port: u16, dir: &Path, extra: &[String]) -> Child {
    let mut c = Command::new("redis-server");
    c.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]);
    if !extra.iter().any(|a| a == "--appendonly") {
        c.args(["--appendonly", "no"]);
    }
    c.args(extra)
        .arg("--dir")
        .arg(dir)
        .arg("--loadmodule")
        .arg(module_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server not found in PATH")
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra redis-server arguments (e.g. `--appendonly yes`, `--requirepass x`).
    pub fn start_with(extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let child = spawn_redis(port, dir.path(), &extra);
            let mut s = RedisServer {
                child,
                port,
                dir,
                extra: extra.clone(),
            };
            if extra.iter().any(|a| a == "--requirepass") {
                std::thread::sleep(Duration::from_millis(300));
                return s;
            }
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if let Ok(Some(_)) = s.child.try_wait() {
                    break; // port taken? try another
                }
                if let Ok(mut c) = redis::Client::open(s.url()).and_then(|c| c.get_connection()) {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return s;
                    }
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            let _ = s.child.kill();
            let _ = s.child.wait();
            eprintln!(
                "redis-server did not start on port {} (attempt {})",
                port, attempt
            );
        }
        panic!("could not start redis-server");
    }

    /// `kill -9`, then the same server again (same port, directory and arguments).
    pub fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_redis(self.port, self.dir.path(), &self.extra);
        wait_until(Duration::from_secs(10), "redis-server back", || {
            redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn configure(con: &mut redis::Connection, campaign: &str) {
    let _: () = redis::cmd("LOTTERY.CONFIGURE")
        .arg(campaign)
        .arg(&[
            "PRIZE", "gold", "1", "INF", "PRIZE", "silver", "3", "INF", "NOTHING", "0", "MAXWINS",
            "INF",
        ])
        .query(con)
        .unwrap();
}

/// The user id of draw `i`: mostly text, every 7th arbitrary bytes (not UTF-8, with a NUL).
pub fn user(i: u64) -> Vec<u8> {
    if i.is_multiple_of(7) {
        let mut u = vec![0xff, 0xfe, 0x00];
        u.extend_from_slice(&i.to_le_bytes());
        u
    } else {
        format!("user-{}", i).into_bytes()
    }
}

/// Draws users `from..to` (pipelined); every 3rd with a REQID. All must win.
pub fn draw(con: &mut redis::Connection, campaign: &str, from: u64, to: u64) {
    let mut i = from;
    while i < to {
        let end = (i + 1000).min(to);
        let mut p = redis::pipe();
        for j in i..end {
            let c = p.cmd("LOTTERY.DRAW").arg(campaign).arg(user(j));
            if j.is_multiple_of(3) {
                c.arg("REQID").arg(format!("req-{}", j));
            }
        }
        let replies: Vec<Value> = p.query(con).unwrap();
        for r in &replies {
            match r {
                Value::Array(a) => assert_eq!(a[0], Value::BulkString(b"WIN".to_vec()), "{:?}", r),
                other => panic!("unexpected draw reply {:?}", other),
            }
        }
        i = end;
    }
}

/// Appends a wins-stream entry by hand (`XADD stream * field value ...`), as the module
/// writes them: `user prize draw [code] [reqid] [ts]`. Returns its ID.
pub fn xadd(con: &mut redis::Connection, stream: &str, fields: &[(&str, &[u8])]) -> String {
    let mut c = redis::cmd("XADD");
    c.arg(stream).arg("*");
    for (k, v) in fields {
        c.arg(*k).arg(*v);
    }
    c.query(con).unwrap()
}

pub fn xlen(con: &mut redis::Connection, stream: &str) -> i64 {
    redis::cmd("XLEN").arg(stream).query(con).unwrap()
}

pub fn pending(con: &mut redis::Connection, stream: &str, group: &str) -> i64 {
    let v: Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(con)
        .unwrap();
    match v {
        Value::Array(a) => match &a[0] {
            Value::Int(n) => *n,
            o => panic!("XPENDING {:?}", o),
        },
        o => panic!("XPENDING {:?}", o),
    }
}

pub fn stats_int(con: &mut redis::Connection, campaign: &str, name: &str) -> i64 {
    let v: Vec<Value> = redis::cmd("LOTTERY.STATS")
        .arg(campaign)
        .query(con)
        .unwrap();
    for kv in v.chunks(2) {
        if kv[0] == Value::BulkString(name.as_bytes().to_vec())
            || kv[0] == Value::SimpleString(name.into())
        {
            if let Value::Int(n) = kv[1] {
                return n;
            }
        }
    }
    panic!("no field {} in LOTTERY.STATS", name);
}

pub struct WriterProc {
    pub child: Child,
    pub log: PathBuf,
}

impl WriterProc {
    pub fn spawn(log: &Path, args: &[String]) -> Self {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        WriterProc {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn term(&mut self) -> ExitStatus {
        unsafe_kill(self.child.id(), 15);
        self.wait(Duration::from_secs(15))
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > end {
                self.kill9();
                panic!(
                    "writer did not exit in {:?}; log:\n{}",
                    timeout,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WriterProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let st = Command::new("kill")
        .arg(format!("-{}", sig))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn writer_args(
    redis: &RedisServer,
    campaign: &str,
    group: &str,
    consumer: &str,
    db: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--redis".into(),
        redis.url(),
        "--campaign".into(),
        campaign.into(),
        "--group".into(),
        group.into(),
        "--consumer".into(),
        consumer.into(),
        "--database".into(),
        db.into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

pub fn id_key(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

pub fn stream_ids(con: &mut redis::Connection, stream: &str) -> Vec<String> {
    let v: Vec<(String, Value)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap();
    v.into_iter().map(|(id, _)| id).collect()
}

/// Every entry of the stream is stored (`stored`), pending, or not delivered yet: nothing was
/// acknowledged without its row. For a database that does not change meanwhile (down, locked).
pub fn check_nothing_acked_unstored(
    con: &mut redis::Connection,
    stream: &str,
    group: &str,
    stored: &std::collections::HashSet<String>,
) {
    check_nothing_acked_unstored_live(con, stream, group, || stored.clone())
}

/// The same while a writer may be storing and acknowledging: the group's last delivered ID,
/// then its pending entries, then (`stored()`) the rows. An entry acknowledged by the time
/// the pending list is read was committed before, so it is among the rows read after.
pub fn check_nothing_acked_unstored_live(
    con: &mut redis::Connection,
    stream: &str,
    group: &str,
    stored: impl FnOnce() -> std::collections::HashSet<String>,
) {
    let groups: Vec<Vec<Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(con)
        .unwrap();
    let mut last = (0, 0);
    for g in groups {
        let name = g
            .chunks(2)
            .find(|kv| kv[0] == Value::BulkString(b"name".to_vec()))
            .map(|kv| kv[1].clone());
        if name == Some(Value::BulkString(group.as_bytes().to_vec())) {
            let Some(Value::BulkString(l)) = g
                .chunks(2)
                .find(|kv| kv[0] == Value::BulkString(b"last-delivered-id".to_vec()))
                .map(|kv| kv[1].clone())
            else {
                panic!()
            };
            last = id_key(&String::from_utf8(l).unwrap());
        }
    }
    let pend: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(1_000_000)
        .query(con)
        .unwrap();
    let pend: std::collections::HashSet<String> = pend.into_iter().map(|p| p.0).collect();
    let stored = stored();
    for id in stream_ids(con, stream) {
        assert!(
            stored.contains(&id) || pend.contains(&id) || id_key(&id) > last,
            "entry {} acknowledged but not stored",
            id
        );
    }
}

// ---------------------------------------------------------------- SQLite checks

pub fn sqlite(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Rows in `wins` (0 while the table does not exist yet).
pub fn rows(path: &Path) -> i64 {
    if !path.exists() {
        return 0;
    }
    let c = sqlite(path);
    c.query_row("SELECT count(*) FROM wins", [], |r| r.get(0))
        .unwrap_or(0)
}

pub fn drained_sold(path: &Path, campaign: &str) -> i64 {
    let c = sqlite(path);
    c.query_row(
        "SELECT coalesce(sum(sold), 0) FROM stock_drains WHERE campaign = ?1",
        [campaign],
        |r| r.get(0),
    )
    .unwrap()
}

/// user, prize (its exact bytes), ts, draw, reqid, code
pub type Fields = (Vec<u8>, Vec<u8>, i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// A row's prize as its exact bytes: `prize_raw` when the writer kept them (the prize id was
/// not text), else the text.
pub fn prize_bytes(prize: String, prize_raw: Option<Vec<u8>>) -> Vec<u8> {
    prize_raw.unwrap_or_else(|| prize.into_bytes())
}

/// Every entry of the stream: its ID and the fields a row must hold.
pub fn stream_fields(con: &mut redis::Connection, stream: &str) -> HashMap<String, Fields> {
    let mut want: HashMap<String, Fields> = HashMap::new();
    let mut start = "-".to_string();
    loop {
        let v: Value = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(5000)
            .query(con)
            .unwrap();
        let Value::Array(entries) = v else { panic!() };
        if entries.is_empty() {
            break;
        }
        let mut last = String::new();
        for e in &entries {
            let Value::Array(p) = e else { panic!() };
            let Value::BulkString(id) = &p[0] else {
                panic!()
            };
            let id = String::from_utf8(id.clone()).unwrap();
            let Value::Array(f) = &p[1] else { panic!() };
            let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for kv in f.chunks(2) {
                let (Value::BulkString(k), Value::BulkString(v)) = (&kv[0], &kv[1]) else {
                    panic!()
                };
                m.insert(k.clone(), v.clone());
            }
            let num = |k: &[u8]| {
                String::from_utf8(m[k].clone())
                    .unwrap()
                    .parse::<i64>()
                    .unwrap()
            };
            want.insert(
                id.clone(),
                (
                    m[&b"user"[..]].clone(),
                    m[&b"prize"[..]].clone(),
                    // the draw's time: `ts` if the entry has one, else the ID's ms
                    if m.contains_key(&b"ts"[..]) {
                        num(b"ts")
                    } else {
                        id.split('-').next().unwrap().parse::<i64>().unwrap()
                    },
                    num(b"draw"),
                    m.get(&b"reqid"[..]).cloned(),
                    m.get(&b"code"[..]).cloned(),
                ),
            );
            last = id;
        }
        start = format!("({}", last);
    }
    want
}

/// The rows of one campaign (`got`: stream id and fields) are exactly the stream's entries
/// (`want`), each once, field for field.
pub fn check_rows(want: &HashMap<String, Fields>, got: Vec<(String, Fields)>) {
    let mut seen = std::collections::HashSet::new();
    for (id, fields) in got {
        let w = want
            .get(&id)
            .unwrap_or_else(|| panic!("row {} not in the stream", id));
        assert_eq!(&fields, w, "row {} differs from the stream entry", id);
        assert!(seen.insert(id.clone()), "row {} stored twice", id);
    }
    assert_eq!(seen.len(), want.len(), "rows != stream entries");
}

/// Every stream entry has exactly one row with the same fields, and no other row exists.
pub fn check_rows_match_stream(
    con: &mut redis::Connection,
    stream: &str,
    db: &Path,
    campaign: &str,
) {
    let want = stream_fields(con, stream);
    let c = sqlite(db);
    let total: i64 = c
        .query_row("SELECT count(*) FROM wins", [], |r| r.get(0))
        .unwrap();
    let distinct: i64 = c
        .query_row("SELECT count(DISTINCT stream_id) FROM wins", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(total, distinct, "duplicate stream ids in wins");
    assert_eq!(total as usize, want.len(), "rows != stream entries");
    let mut st = c
        .prepare("SELECT stream_id, user_id, prize, prize_raw, ts_ms, draw_seq, reqid, code FROM wins WHERE campaign = ?1")
        .unwrap();
    let got = st
        .query_map([campaign], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get(1)?,
                    prize_bytes(r.get(2)?, r.get(3)?),
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ),
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    check_rows(&want, got);
}
