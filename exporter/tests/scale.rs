//! 1,000 campaigns vs one, in the same run: every campaign reported with its numbers, and
//! the time of a sample and of a /metrics and /api/status answer (printed; run with
//! `--nocapture` to see them). Bounds are loose (shared CI machines); the printed numbers
//! are the measurement.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn setup(n: usize) -> RedisServer {
    let r = RedisServer::start();
    let mut con = r.con();
    let mut p = redis::pipe();
    for i in 0..n {
        let key = format!("camp:{{c{}}}", i);
        p.cmd("LOTTERY.CONFIGURE")
            .arg(&key)
            .arg(&[
                "PRIZE", "a", "1", "100", "PRIZE", "b", "1", "INF", "NOTHING", "0",
            ])
            .ignore();
        for u in 0..3 {
            p.cmd("LOTTERY.DRAW").arg(&key).arg(u).ignore();
        }
    }
    let _: () = p.query(&mut con).unwrap();
    r
}

struct Measured {
    sample_ms: f64,
    metrics_ms: f64,
    status_ms: f64,
    metrics_bytes: usize,
    status_bytes: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn measure(r: &RedisServer, n: usize) -> Measured {
    let e = Exporter::start(&["--redis", &r.url(), "--sample-ms", "100"], &[]);
    let mut samples = Vec::new();
    let mut metrics = Vec::new();
    let mut status = Vec::new();
    let (mut mb, mut sb) = (0, 0);
    for _ in 0..9 {
        let t = Instant::now();
        let a = e.get("/metrics");
        metrics.push(t.elapsed().as_secs_f64() * 1000.0);
        let m = parse_exposition(&a.text());
        mb = a.body.len();
        assert_eq!(m.get("lottery_exporter_campaigns", &[]), Some(n as f64));
        assert_eq!(m.all("lottery_wins_total").len(), n);
        assert!(m.all("lottery_wins_total").iter().all(|(_, v)| *v == 3.0));
        samples.push(
            m.get("lottery_exporter_scrape_duration_seconds", &[])
                .unwrap()
                * 1000.0,
        );
        let t = Instant::now();
        let s = e.get("/api/status");
        status.push(t.elapsed().as_secs_f64() * 1000.0);
        sb = s.body.len();
        std::thread::sleep(Duration::from_millis(150));
    }
    Measured {
        sample_ms: median(samples),
        metrics_ms: median(metrics),
        status_ms: median(status),
        metrics_bytes: mb,
        status_bytes: sb,
    }
}

#[test]
fn thousand_campaigns_vs_one() {
    let one = setup(1);
    let many = setup(1000);
    let a = measure(&one, 1);
    let b = measure(&many, 1000);
    for (n, m) in [(1, &a), (1000, &b)] {
        println!(
            "{:>5} campaigns: sample {:.2} ms, GET /metrics {:.2} ms ({} bytes), GET /api/status {:.2} ms ({} bytes)",
            n, m.sample_ms, m.metrics_ms, m.metrics_bytes, m.status_ms, m.status_bytes
        );
    }
    assert!(
        b.sample_ms < 2000.0,
        "a sample of 1000 campaigns took {} ms",
        b.sample_ms
    );
    assert!(b.metrics_ms < 2000.0);
}
