//! The HTTP side as a hostile client sees it: the token rule, read-only methods, oversized
//! and malformed requests, slow clients; the server keeps answering throughout.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-token-0123456789";

#[test]
fn non_loopback_needs_a_token() {
    let r = RedisServer::start();
    let (code, err) = exporter_refuses(&["--redis", &r.url(), "--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, 2, "{}", err);
    assert!(err.contains("without a token"), "{}", err);
    // Too short a token is refused too.
    let (code, err) = exporter_refuses(
        &[
            "--redis",
            &r.url(),
            "--listen",
            "0.0.0.0:0",
            "--token",
            "short",
        ],
        &[],
    );
    assert_eq!(code, 2, "{}", err);
    // With a token (from the environment), it starts and every request needs it.
    let e = Exporter::start(
        &["--redis", &r.url(), "--listen", "0.0.0.0:0"],
        &[("LOTTERY_EXPORTER_TOKEN", TOKEN)],
    );
    assert_eq!(e.get("/metrics").status, 401);
    let ok = http(
        &e.addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nAuthorization: Bearer {}\r\n\r\n",
            TOKEN
        ),
    );
    assert_eq!(ok.status, 200);
    assert!(ok.text().contains("lottery_up{"));
}

#[test]
fn token_rules() {
    let r = RedisServer::start();
    let e = Exporter::start(&["--redis", &r.url(), "--token", TOKEN], &[]);
    for path in ["/", "/metrics", "/api/status", "/nope"] {
        let a = e.get(path);
        assert_eq!(a.status, 401, "{}", path);
        assert_eq!(a.header("WWW-Authenticate").as_deref(), Some("Bearer"));
        assert!(!a.text().contains("lottery_"), "{}", path);
    }
    let with = |auth: &str, path: &str| {
        http(
            &e.addr,
            &format!("GET {} HTTP/1.1\r\n{}\r\n\r\n", path, auth),
        )
        .status
    };
    assert_eq!(
        with(&format!("Authorization: Bearer {}", TOKEN), "/metrics"),
        200
    );
    assert_eq!(
        with(&format!("authorization: bearer   {}", TOKEN), "/api/status"),
        200
    );
    assert_eq!(
        with(&format!("Authorization: Bearer {}x", TOKEN), "/metrics"),
        401
    );
    assert_eq!(
        with(
            &format!("Authorization: Bearer {}", &TOKEN[..TOKEN.len() - 1]),
            "/metrics"
        ),
        401
    );
    assert_eq!(
        with(&format!("Authorization: Basic {}", TOKEN), "/metrics"),
        401
    );
    assert_eq!(with("Authorization: Bearer", "/metrics"), 401);
    assert_eq!(with("X: y", &format!("/?token={}", TOKEN)), 200);
    assert_eq!(
        with("X: y", "/api/status?a=1&token=s3cret%2Dtoken-0123456789"),
        200
    );
    assert_eq!(
        with("X: y", "/api/status?token=s3cret-token-012345678%"),
        401
    );
    assert_eq!(with("X: y", "/api/status?token="), 401);
    // The page passes its token on to the API and is served with a strict policy.
    let page = http(&e.addr, &format!("GET /?token={} HTTP/1.1\r\n\r\n", TOKEN));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("api/status"));
    assert_eq!(
        page.header("Referrer-Policy").as_deref(),
        Some("no-referrer")
    );
    assert!(page
        .header("Content-Security-Policy")
        .unwrap()
        .contains("default-src 'none'"));
}

#[test]
fn read_only_and_malformed_requests() {
    let r = RedisServer::start();
    let e = Exporter::start(&["--redis", &r.url()], &[]);
    for m in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ] {
        let a = http(
            &e.addr,
            &format!("{} /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", m),
        );
        assert_eq!(a.status, 405, "{}", m);
        assert_eq!(a.header("Allow").as_deref(), Some("GET, HEAD"));
    }
    let head = http(&e.addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(
        head.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );
    assert_eq!(
        e.get("/metrics").header("Content-Type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(e.get("/nope").status, 404);

    // Oversized: one huge header, many small ones, a huge request line.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    assert_eq!(http(&e.addr, &big).status, 431);
    let many = format!("GET /metrics HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(200));
    assert_eq!(http(&e.addr, &many).status, 431);
    let line = format!("GET /{} HTTP/1.1\r\n\r\n", "p".repeat(20_000));
    assert_eq!(http(&e.addr, &line).status, 431);
    // Malformed: garbage bytes, NUL, invalid UTF-8, a bad version, no method.
    for raw in [
        &b"\x00\xff\xfe\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"get /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b" \r\n\r\n",
    ] {
        let a = http_raw(&e.addr, raw);
        assert!(
            a.status == 400 || a.status == 404 || a.status == 505,
            "{:?}: {}",
            raw,
            a.status
        );
    }
    // Random bytes: an answer or a close, never a crash.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..50 {
        let mut buf = Vec::new();
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push((x & 0xff) as u8);
        }
        buf.extend_from_slice(b"\r\n\r\n");
        let mut s = TcpStream::connect(&e.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&buf);
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut out);
    }
    assert_eq!(e.get("/metrics").status, 200);
}

/// Clients that send nothing hold a worker for at most the head timeout (5 s): as many as
/// there are workers delay a real request, never block it.
#[test]
fn slow_clients_are_cut_off() {
    let r = RedisServer::start();
    let e = Exporter::start(&["--redis", &r.url()], &[]);
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&e.addr).unwrap();
        s.write_all(b"GET /metr").unwrap();
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let a = e.get("/metrics");
    assert_eq!(a.status, 200);
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(9), "{:?}", waited);
    for s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &s, &mut out);
        assert_eq!(parse_reply(&out).status, 408);
    }
}

/// Many connections that send nothing (more than the connection bound) must not starve a
/// scrape: it is answered at once, not after the idle ones time out one by one.
#[test]
fn idle_connection_flood_does_not_starve_scrapes() {
    let r = RedisServer::start();
    let e = Exporter::start(&["--redis", &r.url()], &[]);
    let mut idle = Vec::new();
    for _ in 0..400 {
        if let Ok(mut s) = TcpStream::connect(&e.addr) {
            let _ = s.write_all(b"GET /metr");
            idle.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let start = Instant::now();
        let a = e.get("/metrics");
        assert_eq!(a.status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
    drop(idle);
    assert_eq!(e.get("/metrics").status, 200);
}

/// A Redis that answers one byte at a time (never tripping the per-read timeout) keeps the
/// first sample from finishing: the exporter still starts serving, and says it has no node
/// up and how old its (empty) sample is.
#[test]
fn a_trickling_redis_does_not_keep_the_exporter_from_serving() {
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = fake.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in fake.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let reply = format!("${}\r\n{}\r\n", 1000, "x".repeat(1000));
                for b in reply.bytes() {
                    if c.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    let start = Instant::now();
    let e = Exporter::start(
        &[
            "--redis",
            &format!("redis://127.0.0.1:{}", port),
            "--timeout-ms",
            "500",
        ],
        &[],
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let m = e.metrics();
    let node = format!("127.0.0.1:{}", port);
    assert_eq!(m.get("lottery_up", &[("node", &node)]), Some(0.0));
    assert!(m.get("lottery_exporter_sample_age_seconds", &[]).unwrap() >= 1.0);
}
