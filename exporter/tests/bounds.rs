//! What one hostile campaign can make the exporter produce: a 4096-byte key of characters
//! that need escaping and 65,536 prizes with 256-byte ids would give a 1.1 GB `/metrics`
//! (and as much memory per concurrent scrape) without a bound on the exposition.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// The exposition's bound (`prom::MAX_BYTES`) plus the few lines that are always there.
const METRICS_BOUND: usize = 32 * 1024 * 1024 + 64 * 1024;
/// `api::MAX_PRIZES` per campaign at most 256 * 6 bytes of id each, plus the rest.
const API_BOUND: usize = 2 * 1024 * 1024;

#[test]
fn a_huge_hostile_campaign_gives_bounded_answers() {
    let r = RedisServer::start();
    let mut con = r.con();
    let key: Vec<u8> = [&b"{a}"[..], &[b'"'; 4093][..]].concat();
    let mut cmd = redis::cmd("LOTTERY.CONFIGURE");
    cmd.arg(&key);
    for i in 0..65536u32 {
        let mut id = format!("\"\\{}", i).into_bytes();
        id.resize(256, b'\x01');
        cmd.arg("PRIZE").arg(id).arg(1).arg(1000);
    }
    cmd.arg("STREAM").arg("{a}:w");
    let () = cmd.query(&mut con).unwrap();

    let e = Exporter::start(&["--redis", &r.url()], &[]);
    for _ in 0..2 {
        let start = Instant::now();
        let m = e.get("/metrics");
        assert_eq!(m.status, 200);
        assert!(m.body.len() <= METRICS_BOUND, "{} bytes", m.body.len());
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        let parsed = parse_exposition(&m.text());
        assert_eq!(
            parsed.get("lottery_up", &[("node", &format!("127.0.0.1:{}", r.port))]),
            Some(1.0)
        );
        assert!(parsed.get("lottery_exporter_series_dropped", &[]).unwrap() > 100_000.0);
        // The campaign's own series come first: they are there.
        let k = String::from_utf8(key.clone()).unwrap();
        assert_eq!(
            parsed.get("lottery_draws_total", &[("campaign", &k)]),
            Some(0.0)
        );

        let a = e.get("/api/status");
        assert_eq!(a.status, 200);
        assert!(a.body.len() <= API_BOUND, "{} bytes", a.body.len());
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        let c = &v["campaigns"][0];
        assert_eq!(c["key"].as_str().unwrap(), k);
        assert_eq!(
            c["prizes_omitted"].as_u64().unwrap() + c["prizes"].as_array().unwrap().len() as u64,
            65536
        );
    }
}

/// Wins whose user id is 8 MB (the module takes any length), with an 8 MB foreign field
/// added by hand: the 20 newest entries are read at every sample, yet the exporter's memory
/// stays small (strings are cut while they are read, not after).
#[test]
fn huge_stream_entries_are_read_with_bounded_memory() {
    let r = RedisServer::start();
    let mut con = r.con();
    let () = redis::cmd("LOTTERY.CONFIGURE")
        .arg("big")
        .arg("PRIZE")
        .arg("p")
        .arg(1)
        .arg("INF")
        .query(&mut con)
        .unwrap();
    let huge = vec![b'u'; 8 << 20];
    for i in 0..10u8 {
        let mut user = huge.clone();
        user[0] = b'0' + i;
        let _: redis::Value = redis::cmd("LOTTERY.DRAW")
            .arg("big")
            .arg(&user)
            .query(&mut con)
            .unwrap();
        let _: String = redis::cmd("XADD")
            .arg("{big}:wins")
            .arg("*")
            .arg("user")
            .arg(&user)
            .arg("junk")
            .arg(&huge)
            .query(&mut con)
            .unwrap();
    }
    let e = Exporter::start(&["--redis", &r.url(), "--sample-ms", "200"], &[]);
    std::thread::sleep(Duration::from_millis(1000));
    let s = e.status();
    let wins = s["campaigns"][0]["recent_wins"].as_array().unwrap();
    assert_eq!(wins.len(), 20, "{}", s["errors"]);
    assert_eq!(wins[0]["user"].as_str().unwrap().len(), 512);
    assert!(wins[0]["user"].as_str().unwrap().starts_with('9'));
    // 20 entries of 8 to 16 MB each were read at each of about 5 samples.
    let peak = e.peak_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {} KiB", peak);
}
