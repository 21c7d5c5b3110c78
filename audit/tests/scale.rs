//! lottery-audit on long and moving streams, on a real redis-server: memory does not grow with
//! the number of draws, a stream appended to while it is read is read up to its last entry at
//! the start, and a win entry copied (a second prize for one draw) is found.

mod common;

use common::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "抽奖:{v}";

/// 300,000 draw entries of one epoch (its seed not revealed: parsed and counted, not
/// recomputed, to keep the test fast), appended by a server-side script.
fn many_draws(con: &mut redis::Connection, stream: &str, n: u64) {
    use lottery_audit::construction::commitment;
    let mut e = redis::cmd("XADD");
    e.arg(stream)
        .arg("1-1")
        .arg(&["type", "epoch", "epoch", "1"]);
    e.arg("commitment")
        .arg(commitment(&[9; 32]))
        .arg(&["from_draw", "1"]);
    let _: String = e.query(con).unwrap();
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("1-2")
        .arg(&[
            "type",
            "table",
            "from_draw",
            "1",
            "tier",
            "",
            "NOTHING",
            "1",
        ])
        .query(con)
        .unwrap();
    let script = "for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
           redis.call('XADD', KEYS[1], '2-' .. i, 'type', 'draw', 'draw', tostring(i),
             'user', 'user-' .. i, 'outcome', '', 'pick', '')
         end
         return 1";
    let step = 50_000;
    let mut from = 1;
    while from <= n {
        let to = (from + step - 1).min(n);
        let _: i64 = redis::cmd("EVAL")
            .arg(script)
            .arg(1)
            .arg(stream)
            .arg(from)
            .arg(to)
            .query(con)
            .unwrap();
        from = to + 1;
    }
}

/// The audit keeps no entry: with its address space limited to 100 MB it reads 300,000 draw
/// entries (keeping them all took about 700 bytes each: 210 MB).
#[test]
fn memory_does_not_grow_with_the_draws() {
    let r = Redis::start(None);
    let mut con = r.con();
    let n = 300_000u64;
    many_draws(&mut con, "many", n);
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 100000 && exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .args([
            "--redis",
            &r.url(),
            "--campaign",
            KEY,
            "--stream",
            "many",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let j = json(&stdout);
    assert_eq!(j["draws"], n);
    assert_eq!(j["draws_unverifiable"], n);
    assert_eq!(j["entries_read"], n + 2);
}

/// Entries appended without pause while the audit reads (one entry per page): it stops at the
/// last entry the stream had when it started, and the campaign passes.
#[test]
fn a_stream_appended_to_while_read_is_read_to_its_end_at_the_start() {
    let r = Redis::start(None);
    let mut con = r.con();
    let c = Campaign::build(KEY.as_bytes());
    c.write(&mut con, b"live");
    let len: u64 = redis::cmd("XLEN").arg("live").query(&mut con).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let appender = {
        let stop = stop.clone();
        let mut con = r.con();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                let mut p = redis::pipe();
                for _ in 0..200 {
                    p.cmd("XADD")
                        .arg("live")
                        .arg("*")
                        .arg(&["type", "later", "n"])
                        .arg(n);
                    n += 1;
                }
                let _: Vec<String> = p.query(&mut con).unwrap();
            }
            n
        })
    };
    // The appender is running.
    let t0 = Instant::now();
    while redis::cmd("XLEN")
        .arg("live")
        .query::<u64>(&mut con)
        .unwrap()
        < len + 1000
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "no appends");
        std::thread::sleep(Duration::from_millis(5));
    }
    let seed2 = c.seed_arg(2);
    let start = Instant::now();
    let (code, out, err) = audit(&[
        "--redis",
        &r.url(),
        "--campaign",
        KEY,
        "--stream",
        "live",
        "--seed",
        &seed2,
        "--page",
        "1",
        "--json",
    ]);
    let took = start.elapsed();
    let still_appending = !appender.is_finished();
    stop.store(true, Ordering::Relaxed);
    let appended = appender.join().unwrap();
    assert!(still_appending, "the audit ran until the appends stopped");
    assert_eq!(code, 0, "{out}{err}");
    let j = json(&out);
    assert_eq!(j["draws_checked"], 57, "{out}");
    let read = j["entries_read"].as_u64().unwrap();
    let unknown = j["unknown_entries"].as_u64().unwrap();
    assert_eq!(read, len + unknown);
    assert!(read < len + appended, "{read} of {len} + {appended}");
    eprintln!("read {read} entries in {took:?}; {appended} appended meanwhile");
}

/// A win entry copied after its draw (a second prize for one draw), or before it: a mismatch.
#[test]
fn a_second_win_entry_for_one_draw_is_a_mismatch() {
    let r = Redis::start(None);
    let seed2 = c_seed2();
    for (name, before) in [("copy-after", false), ("copy-before", true)] {
        let mut c = Campaign::build(KEY.as_bytes());
        // The first win drawn after the campaign became verifiable (draw 4 on).
        let i = c.find(|e| {
            get(e, b"type").is_none() && !matches!(get(e, b"draw"), Some(b"1" | b"2" | b"3"))
        });
        let win = c.entries[i].clone();
        let s = String::from_utf8(get(&win, b"draw").unwrap().to_vec()).unwrap();
        if before {
            c.entries.insert(i, win);
        } else {
            c.entries.push(win);
        }
        let mut con = r.con();
        c.write(&mut con, name.as_bytes());
        let (code, out, err) = audit(&[
            "--redis",
            &r.url(),
            "--campaign",
            KEY,
            "--stream",
            name,
            "--seed",
            &seed2,
            "--json",
        ]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let j = json(&out);
        assert_eq!(j["mismatches"], 1, "{name}: {out}");
        let reason = j["first_mismatches"][0]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("win of draw {s}")) && reason.contains("win entr"),
            "{name}: {out}"
        );
    }
}

fn c_seed2() -> String {
    Campaign::build(KEY.as_bytes()).seed_arg(2)
}

/// A server that answers every XRANGE with the same first entry (a hostile or broken server):
/// an error (exit 2), not a loop reading the same page forever.
#[test]
fn a_server_repeating_a_page_is_an_error_not_a_loop() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let entry = |id: &str| {
                    format!(
                        "*1\r\n*2\r\n${}\r\n{id}\r\n*2\r\n$4\r\ntype\r\n$1\r\nx\r\n",
                        id.len()
                    )
                };
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let req = String::from_utf8_lossy(&buf[..n]);
                    // One reply per command (the client pipelines its CLIENT SETINFO).
                    let commands = req.split("\r\n").filter(|l| l.starts_with('*')).count();
                    let reply = if req.contains("XREVRANGE") {
                        entry("5-0")
                    } else if req.contains("XRANGE") {
                        entry("1-0")
                    } else {
                        "+OK\r\n".repeat(commands)
                    };
                    if c.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut child = Command::new(BIN)
        .args([
            "--redis",
            &format!("redis://127.0.0.1:{port}"),
            "--campaign",
            KEY,
            "--stream",
            "s",
            "--page",
            "1",
            "--timeout-ms",
            "2000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lottery-audit still reading the same page after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("out of order"), "{err}");
}
