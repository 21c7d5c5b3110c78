//! Several delivery threads of one process on a real SQLite queue and a real HTTP server:
//! what they share (the rate, the backlog count) must not cost correctness or work per thread.

use super::*;
use crate::award_http::Endpoint;
use crate::stream::Win;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;

/// Answers every POST 200 and counts the Idempotency-Keys.
fn server() -> (u16, Arc<Mutex<HashMap<String, u32>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let keys = Arc::new(Mutex::new(HashMap::new()));
    let k2 = Arc::clone(&keys);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let keys = Arc::clone(&k2);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut chunk = [0u8; 4096];
                // The bodies are small: the head and body arrive before "}".
                while !req.ends_with(b"}") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(k) = text
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("Idempotency-Key: "))
                {
                    *keys.lock().unwrap().entry(k.to_string()).or_insert(0) += 1;
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
    (port, keys)
}

/// Threads sharing a slow `--award-rate`, with leases much shorter than the wait for the rate: a
/// claim must never lapse between its last check and its request (another thread would post
/// the same win).
#[test]
fn a_claim_never_lapses_while_waiting_for_the_rate() {
    const WINS: usize = 12;
    const THREADS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("w.db").display());
    let timeout = Duration::from_secs(5);
    let mut store = crate::store::open(&url, timeout).unwrap();
    let wins: Vec<Win> = (0..WINS)
        .map(|i| Win {
            id: format!("{}-0", i + 1),
            user: format!("u{}", i).into_bytes(),
            prize: "gold".into(),
            prize_raw: None,
            ts_ms: i as i64 + 1,
            draw_seq: i as i64,
            reqid: None,
            code: None,
        })
        .collect();
    store.write_wins("c", &wins).unwrap();
    let (port, keys) = server();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(AwardStats::default());
    let wake = Arc::new(Wake::new(THREADS));
    // 6 requests a second over 4 threads: each waits about 0.7 s for its turn, far longer
    // than the 400 ms lease.
    let bucket = Arc::new(Mutex::new(Bucket::new(6)));
    let threads: Vec<_> = (0..THREADS)
        .map(|k| {
            let cfg = Config {
                endpoint: Endpoint::parse(&format!("http://127.0.0.1:{}/", port)).unwrap(),
                timeout: Duration::from_secs(2),
                max_backoff: Duration::from_millis(100),
                owner: format!("t#{}", k),
                campaigns: vec!["c".into()],
                retry_failed: false,
                log_every: None,
            };
            let shared = Shared {
                stop: Arc::clone(&stop),
                stats: Arc::clone(&stats),
                wake: Arc::clone(&wake),
                bucket: Arc::clone(&bucket),
                counted: Arc::default(),
            };
            let mut d = Deliverer::new(
                k,
                THREADS,
                cfg,
                crate::store::open(&url, timeout).unwrap(),
                shared,
            );
            d.lease_ms = 400;
            d.claim_size = 3;
            std::thread::spawn(move || d.run())
        })
        .collect();
    // Until every win was posted, then as long again for any second post.
    let end = Instant::now() + Duration::from_secs(15);
    while keys.lock().unwrap().len() < WINS && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), WINS, "every win delivered: {:?}", keys);
    let twice: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "posted more than once: {:?}", twice);
}

/// With the award service refusing, many threads keep failing and so keep counting: the
/// backlog (a read of the whole queue) is still counted once per `BACKLOG_EVERY` by the
/// process, not once per thread.
#[test]
fn the_backlog_is_counted_once_per_period_whatever_the_threads() {
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("w.db").display());
    let timeout = Duration::from_secs(5);
    let mut store = crate::store::open(&url, timeout).unwrap();
    let wins: Vec<Win> = (0..200)
        .map(|i| Win {
            id: format!("{}-0", i + 1),
            user: b"u".to_vec(),
            prize: "gold".into(),
            prize_raw: None,
            ts_ms: i + 1,
            draw_seq: i,
            reqid: None,
            code: None,
        })
        .collect();
    store.write_wins("c", &wins).unwrap();
    // Nothing listens there: every request is refused at once.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(AwardStats::default());
    let wake = Arc::new(Wake::new(THREADS));
    let bucket = Arc::new(Mutex::new(Bucket::new(0)));
    let counted = Arc::new(Counted::default());
    let threads: Vec<_> = (0..THREADS)
        .map(|k| {
            let cfg = Config {
                endpoint: Endpoint::parse(&format!("http://127.0.0.1:{}/", port)).unwrap(),
                timeout: Duration::from_secs(1),
                max_backoff: Duration::from_millis(50),
                owner: format!("t#{}", k),
                campaigns: vec!["c".into()],
                retry_failed: false,
                log_every: None,
            };
            let shared = Shared {
                stop: Arc::clone(&stop),
                stats: Arc::clone(&stats),
                wake: Arc::clone(&wake),
                bucket: Arc::clone(&bucket),
                counted: Arc::clone(&counted),
            };
            let store = crate::store::open(&url, timeout).unwrap();
            let mut d = Deliverer::new(k, THREADS, cfg, store, shared);
            std::thread::spawn(move || d.run())
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(BACKLOG_EVERY + Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let periods = start.elapsed().as_millis() / BACKLOG_EVERY.as_millis() + 1;
    let times = counted.times.load(Ordering::SeqCst) as u128;
    assert!(
        (1..=periods).contains(&times),
        "counted {} times in {} periods",
        times,
        periods
    );
    // Every thread took part (the count told them all where the wins are).
    assert!(stats.retries.load(Ordering::SeqCst) >= THREADS as u64);
    assert_eq!(stats.backlog.load(Ordering::SeqCst), 200);
}
