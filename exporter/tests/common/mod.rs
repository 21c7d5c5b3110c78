//! Test harness: a throwaway redis-server with the lottery module, the exporter binary on a
//! free port, a raw HTTP client, and a strict parser of the Prometheus text format.
#![allow(dead_code)]

#[path = "../../../test-support/redis_cluster.rs"]
pub mod redis_cluster;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lottery-exporter");

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
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--loadmodule")
                .arg(module_path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server not found in PATH");
            let mut s = RedisServer {
                child,
                port,
                _dir: dir,
            };
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if let Ok(Some(_)) = s.child.try_wait() {
                    break; // port taken: try another
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
        }
        panic!("could not start redis-server");
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

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Exporter {
    child: Child,
    pub addr: String,
}

impl Exporter {
    /// Starts the exporter with `args` (plus `--listen 127.0.0.1:0` unless given) and waits
    /// for its "listening on" line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let mut c = Command::new(BIN);
        c.args(args);
        if !args.contains(&"--listen") {
            c.args(["--listen", "127.0.0.1:0"]);
        }
        c.env_remove("LOTTERY_EXPORTER_TOKEN");
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let Some(addr) = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            let _ = child.kill();
            panic!("exporter did not start: {:?}", line);
        };
        // Keep draining stderr so the exporter never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = err.read_to_string(&mut sink);
        });
        let addr = addr.replace("0.0.0.0", "127.0.0.1");
        Exporter { child, addr }
    }

    /// The peak resident memory of the exporter so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn get(&self, path: &str) -> HttpReply {
        http(
            &self.addr,
            &format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", path),
        )
    }

    pub fn metrics(&self) -> Metrics {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.text());
        parse_exposition(&r.text())
    }

    pub fn status(&self) -> serde_json::Value {
        let r = self.get("/api/status");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the exporter expecting it to refuse to start: its exit code and stderr.
pub fn exporter_refuses(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("LOTTERY_EXPORTER_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `request` (raw bytes) and reads the whole answer (the server closes).
pub fn http_raw(addr: &str, request: &[u8]) -> HttpReply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The server may answer (and close) before taking all of an oversized request.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_reply(&buf)
}

pub fn http(addr: &str, request: &str) -> HttpReply {
    http_raw(addr, request.as_bytes())
}

pub fn parse_reply(buf: &[u8]) -> HttpReply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    HttpReply {
        status,
        head,
        body: buf[end + 4..].to_vec(),
    }
}

/// Series name + sorted labels -> value; plus the metric names of the TYPE lines.
pub struct Metrics {
    pub series: HashMap<(String, Vec<(String, String)>), f64>,
    pub types: HashMap<String, String>,
}

impl Metrics {
    /// The value of the series `name` with exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.sort();
        self.series.get(&(name.to_string(), l)).copied()
    }

    /// Every series of `name`: labels as a map, and the value.
    pub fn all(&self, name: &str) -> Vec<(HashMap<String, String>, f64)> {
        self.series
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| (l.iter().cloned().collect(), *v))
            .collect()
    }
}

/// A strict parser of the text exposition format: panics on anything malformed (a bad
/// escape, an unterminated label, a series before its TYPE, a duplicate series).
pub fn parse_exposition(text: &str) -> Metrics {
    let mut m = Metrics {
        series: HashMap::new(),
        types: HashMap::new(),
    };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, t) = rest.split_once(' ').unwrap();
            assert!(name_ok(n), "bad name {:?}", n);
            assert!(t == "counter" || t == "gauge", "type {:?}", t);
            assert!(
                m.types.insert(n.to_string(), t.to_string()).is_none(),
                "TYPE twice: {}",
                n
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "line {:?}",
            line
        );
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(name_ok(name));
        assert!(
            m.types.contains_key(name),
            "series before its TYPE: {:?}",
            line
        );
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            loop {
                let (start, _) = *chars.peek().unwrap();
                let eq = r[start..].find('=').unwrap() + start;
                let lname = r[start..eq].to_string();
                assert!(name_ok(&lname), "label name {:?}", lname);
                while chars.peek().unwrap().0 <= eq {
                    chars.next();
                }
                assert_eq!(chars.next().unwrap().1, '"', "label value must be quoted");
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("unterminated label value");
                    match c {
                        '"' => break,
                        '\\' => match chars.next().unwrap().1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            e => panic!("bad escape \\{} in {:?}", e, line),
                        },
                        '\n' => panic!("raw newline"),
                        c => value.push(c),
                    }
                }
                labels.push((lname, value));
                let (i, c) = chars.next().unwrap();
                match c {
                    ',' => continue,
                    '}' => {
                        rest = &r[i + 1..];
                        break;
                    }
                    c => panic!("unexpected {:?} after a label in {:?}", c, line),
                }
            }
        }
        let value = rest.strip_prefix(' ').expect("space before the value");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value {:?}", v)),
        };
        labels.sort();
        assert!(
            m.series.insert((name.to_string(), labels), v).is_none(),
            "duplicate series in {:?}",
            line
        );
    }
    m
}

/// LOTTERY.STATS as a map of its integer and text fields.
pub fn stats(con: &mut redis::Connection, key: &[u8]) -> HashMap<String, redis::Value> {
    let v: Vec<redis::Value> = redis::cmd("LOTTERY.STATS").arg(key).query(con).unwrap();
    v.chunks(2)
        .map(|c| match &c[0] {
            redis::Value::BulkString(b) => (String::from_utf8_lossy(b).into_owned(), c[1].clone()),
            other => panic!("field {:?}", other),
        })
        .collect()
}

pub fn int(v: &redis::Value) -> i64 {
    match v {
        redis::Value::Int(i) => *i,
        other => panic!("not an integer: {:?}", other),
    }
}
