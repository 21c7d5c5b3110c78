//! Test harness: a throwaway redis-server, a synthetic VERIFIABLE campaign laid out exactly as
//! the module writes it (docs/commands.md, "Verifiable draws"), its draws computed with the
//! construction, and the lottery-audit binary.
#![allow(dead_code)]

use lottery_audit::construction::{commitment, draw_pick, hex};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lottery-audit");

pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Redis {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Redis {
    /// A redis-server; with the lottery module when `module` is given.
    pub fn start(module: Option<&PathBuf>) -> Redis {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut c = Command::new("redis-server");
            c.args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path());
            if let Some(m) = module {
                c.arg("--loadmodule").arg(m);
            }
            let child = c
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server not found in PATH");
            let mut r = Redis { child, port, dir };
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if let Ok(Some(_)) = r.child.try_wait() {
                    break;
                }
                if let Ok(mut c) = redis::Client::open(r.url()).and_then(|c| c.get_connection()) {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return r;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
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
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn f(pairs: &[(&[u8], &[u8])]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

pub const BASE: &[(&str, u64)] = &[("gold", 1), ("silver", 3), ("NOTHING", 6)];
/// The base table from draw 45: gold at weight 0 (REDRAW zeros, or sold out).
pub const BASE2: &[(&str, u64)] = &[("gold", 0), ("silver", 3), ("NOTHING", 6)];
pub const VIP: &[(&str, u64)] = &[("gold", 5), ("silver", 3), ("NOTHING", 2)];

/// A campaign made VERIFIABLE at draw 4 (draws 1-3: plain wins), epoch 2 from draw 41 (epoch
/// 1's seed revealed then), every 5th draw of tier `vip`, the base table changed at draw 45,
/// three draws changed by a rule (soldout, fallback, redraw), LOG ALL.
pub struct Campaign {
    pub key: Vec<u8>,
    pub entries: Vec<Fields>,
    pub seeds: [[u8; 32]; 2],
}

pub fn user(s: u64) -> Vec<u8> {
    if s.is_multiple_of(7) {
        let mut u = vec![0xff, 0x00, b'\\'];
        u.extend_from_slice(s.to_string().as_bytes());
        u
    } else {
        format!("user-{}", s).into_bytes()
    }
}

fn table_entry(from: u64, tier: &[u8], t: &[(&str, u64)]) -> Fields {
    let mut e = f(&[
        (b"type", b"table"),
        (b"from_draw", from.to_string().as_bytes()),
        (b"tier", tier),
    ]);
    for (p, w) in t {
        e.push((p.as_bytes().to_vec(), w.to_string().into_bytes()));
    }
    e
}

impl Campaign {
    pub fn build(key: &[u8]) -> Campaign {
        let seeds = [[0x5a; 32], {
            let mut s = [0u8; 32];
            for (i, b) in s.iter_mut().enumerate() {
                *b = (i * 37 + 11) as u8;
            }
            s
        }];
        let mut entries = Vec::new();
        for s in 1..=3u64 {
            entries.push(f(&[
                (b"user", &user(s)),
                (b"prize", b"silver"),
                (b"draw", s.to_string().as_bytes()),
            ]));
        }
        let epoch = |n: u64, from: u64, seed: &[u8; 32]| {
            f(&[
                (b"type", b"epoch"),
                (b"epoch", n.to_string().as_bytes()),
                (b"commitment", commitment(seed).as_bytes()),
                (b"from_draw", from.to_string().as_bytes()),
            ])
        };
        entries.push(epoch(1, 4, &seeds[0]));
        let (mut base_pub, mut vip_pub) = (None::<&[(&str, u64)]>, false);
        let mut rules = ["soldout", "fallback", "redraw"].into_iter();
        for s in 4..=60u64 {
            if s == 41 {
                entries.push(epoch(2, 41, &seeds[1]));
                entries.push(f(&[
                    (b"type", b"reveal"),
                    (b"epoch", b"1"),
                    (b"seed", hex(&seeds[0]).as_bytes()),
                ]));
            }
            let seed = if s >= 41 { &seeds[1] } else { &seeds[0] };
            let vip = s.is_multiple_of(5);
            let t: &[(&str, u64)] = if vip {
                VIP
            } else if s >= 45 {
                BASE2
            } else {
                BASE
            };
            if vip && !vip_pub {
                entries.push(table_entry(s, b"vip", VIP));
                vip_pub = true;
            }
            if !vip && base_pub != Some(t) {
                entries.push(table_entry(s, b"", t));
                base_pub = Some(t);
            }
            let weights: Vec<u64> = t.iter().map(|(_, w)| *w).collect();
            let (_, i) = draw_pick(seed, key, s, &weights).unwrap();
            let pick: &str = if i + 1 == t.len() { "" } else { t[i].0 };
            let (mut outcome, mut rule) = (pick, None);
            if !pick.is_empty() && s > 10 && s % 3 == 0 {
                if let Some(r) = rules.next() {
                    rule = Some(r);
                    outcome = match r {
                        "fallback" if pick == "gold" => "silver",
                        "fallback" => "gold",
                        _ => "",
                    };
                }
            }
            let u = user(s);
            if !outcome.is_empty() {
                entries.push(f(&[
                    (b"user", &u),
                    (b"prize", outcome.as_bytes()),
                    (b"draw", s.to_string().as_bytes()),
                ]));
            }
            let mut d = f(&[
                (b"type", b"draw"),
                (b"draw", s.to_string().as_bytes()),
                (b"user", &u),
                (b"outcome", outcome.as_bytes()),
                (b"pick", pick.as_bytes()),
            ]);
            if vip {
                d.push((b"tier".to_vec(), b"vip".to_vec()));
            }
            if let Some(r) = rule {
                d.push((b"rule".to_vec(), r.as_bytes().to_vec()));
            }
            entries.push(d);
        }
        assert!(rules.next().is_none(), "every rule used");
        Campaign {
            key: key.to_vec(),
            entries,
            seeds,
        }
    }

    pub fn seed_arg(&self, epoch: usize) -> String {
        format!("{}={}", epoch, hex(&self.seeds[epoch - 1]))
    }

    /// Index of the first entry whose fields satisfy `pred`.
    pub fn find(&self, pred: impl Fn(&Fields) -> bool) -> usize {
        self.entries.iter().position(pred).expect("entry found")
    }

    /// XADD every entry to `stream` (IDs `*`).
    pub fn write(&self, con: &mut redis::Connection, stream: &[u8]) {
        let mut p = redis::pipe();
        for e in &self.entries {
            let c = p.cmd("XADD").arg(stream).arg("*");
            for (k, v) in e {
                c.arg(k.as_slice()).arg(v.as_slice());
            }
        }
        let _: Vec<String> = p.query(con).unwrap();
    }
}

pub fn get<'a>(e: &'a Fields, name: &[u8]) -> Option<&'a [u8]> {
    e.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

pub fn set(e: &mut Fields, name: &[u8], v: &[u8]) {
    e.iter_mut().find(|(k, _)| k == name).unwrap().1 = v.to_vec();
}

pub fn is_kind(e: &Fields, kind: &[u8]) -> bool {
    get(e, b"type") == Some(kind)
}

/// Runs lottery-audit; (exit code, stdout, stderr).
pub fn audit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run lottery-audit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}
