//! The client against a real TCP peer that answers badly: malformed heads, slow drips,
//! interim and redirect statuses, late answers, resets. Nothing but a complete 2xx head counts
//! as delivered, and every call returns within its one deadline.

use super::*;
use crate::award_deliver::delivered;
use std::net::TcpListener;
use std::sync::Arc;

/// What the peer does after reading the request.
enum Step {
    Send(&'static [u8]),
    SendOwned(Vec<u8>),
    /// Each byte on its own, this far apart.
    Drip(&'static [u8], Duration),
    Sleep(Duration),
    Reset,
}

/// A one-connection peer; joins to the request it read.
fn peer(steps: Vec<Step>) -> (Endpoint, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.set_nodelay(true);
        let mut req = Vec::new();
        let mut chunk = [0u8; 4096];
        // The head, then Content-Length bytes.
        loop {
            if let Some(e) = head_end(&req) {
                let head = String::from_utf8_lossy(&req[..e]).to_ascii_lowercase();
                let len: usize = head
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if req.len() >= e + len {
                    break;
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return req,
                Ok(n) => req.extend_from_slice(&chunk[..n]),
            }
        }
        for st in steps {
            let r = match st {
                Step::Send(b) => s.write_all(b),
                Step::SendOwned(b) => s.write_all(&b),
                Step::Drip(b, d) => b.iter().try_for_each(|x| {
                    std::thread::sleep(d);
                    s.write_all(&[*x])
                }),
                Step::Sleep(d) => {
                    std::thread::sleep(d);
                    Ok(())
                }
                Step::Reset => {
                    let l = libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    };
                    use std::os::unix::io::AsRawFd;
                    // SAFETY: setsockopt on a socket we own, with a properly sized struct.
                    unsafe {
                        libc::setsockopt(
                            s.as_raw_fd(),
                            libc::SOL_SOCKET,
                            libc::SO_LINGER,
                            &l as *const libc::linger as *const libc::c_void,
                            std::mem::size_of::<libc::linger>() as libc::socklen_t,
                        );
                    }
                    return req;
                }
            };
            if r.is_err() {
                break;
            }
        }
        req
    });
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{}/hook?a=1#frag", port)).unwrap();
    (ep, t)
}

const T: Duration = Duration::from_millis(600);

/// Posts to a peer running `steps`: the result, how long it took, the request sent.
fn run(steps: Vec<Step>) -> (Result<Reply, String>, Duration, Vec<u8>) {
    let (ep, t) = peer(steps);
    let start = Instant::now();
    let r = post(&ep, &[("Idempotency-Key", "c:1-0")], b"{}", T);
    let took = start.elapsed();
    (r, took, t.join().unwrap())
}

fn not_delivered(steps: Vec<Step>, what: &str) {
    let (r, took, _) = run(steps);
    assert!(!delivered(&r), "{}: {:?}", what, r);
    assert!(
        took < T + Duration::from_millis(300),
        "{}: {:?}",
        what,
        took
    );
}

#[test]
fn malformed_heads_are_not_deliveries() {
    for (bytes, what) in [
        (&b"hello\r\n\r\n"[..], "no status line"),
        (b"HTTP/1.1 099 x\r\n\r\n", "099"),
        (b"HTTP/1.1 99 x\r\n\r\n", "99"),
        (b"HTTP/1.1 600 x\r\n\r\n", "600"),
        (b"HTTP/1.1 2000 x\r\n\r\n", "2000"),
        (b"HTTP/1.1 2OO OK\r\n\r\n", "2OO"),
        (b"HTTP/1.1 +20 OK\r\n\r\n", "+20"),
        (b"HTTP/2 200\r\n\r\n", "HTTP/2"),
        (b"HTTP/1.1 200 OK\n\n", "bare LF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2", "head never ends"),
        (b"HTTP/1.1 100 Continue\r\n\r\n", "only a 1xx, then close"),
        (b"", "closed at once"),
    ] {
        not_delivered(vec![Step::Send(bytes)], what);
    }
    not_delivered(vec![Step::Reset], "reset before any answer");
    // Larger than MAX_HEAD: refused without waiting for the end.
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    while huge.len() <= MAX_HEAD {
        huge.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    huge.extend_from_slice(b"\r\n");
    not_delivered(vec![Step::SendOwned(huge), Step::Sleep(T * 2)], "huge head");
    // Headers without end, arriving fast, then held open.
    let endless = b"HTTP/1.1 200 OK\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b"X: y\r\n".iter().copied(), 5000).flatten());
    not_delivered(
        vec![Step::SendOwned(endless.collect()), Step::Sleep(T * 2)],
        "endless headers",
    );
}

#[test]
fn redirects_are_not_deliveries() {
    for code in ["301", "302", "303", "307", "308"] {
        let head = format!(
            "HTTP/1.1 {} Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
            code
        );
        let (r, _, _) = run(vec![Step::SendOwned(head.into_bytes())]);
        assert_eq!(r.as_ref().map(|r| r.status), Ok(code.parse().unwrap()));
        assert!(!delivered(&r), "{}", code);
    }
}

#[test]
fn interim_then_final_and_bodies_of_any_framing() {
    let (r, _, _) = run(vec![Step::Send(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 P\r\nX: y\r\n\r\nHTTP/1.1 204 No\r\n\r\n",
    )]);
    assert_eq!(r.unwrap().status, 204);
    // HTTP/1.0 without a length, body then close; chunked; a 2xx whose body never ends.
    let (r, _, _) = run(vec![Step::Send(b"HTTP/1.0 200 OK\r\n\r\nfine")]);
    assert!(delivered(&r));
    let (r, _, _) = run(vec![Step::Send(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n0\r\n\r\n",
    )]);
    assert!(delivered(&r));
    let (r, took, _) = run(vec![
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nab"),
        Step::Sleep(T * 2),
    ]);
    assert!(delivered(&r) && took < T, "{:?} {:?}", r, took);
    // A 5xx whose body never ends: its error text is cut, in bounded time.
    let (r, took, _) = run(vec![
        Step::Send(b"HTTP/1.1 503 x\r\nContent-Length: 100000\r\nRetry-After: -5\r\n\r\nbusy"),
        Step::Sleep(T * 2),
    ]);
    let r = r.unwrap();
    assert_eq!(
        (r.status, r.retry_after, &r.body[..]),
        (503, None, &b"busy"[..])
    );
    assert!(took < T + Duration::from_millis(100), "{:?}", took);
}

#[test]
fn one_deadline_over_slow_drips_and_late_answers() {
    // Byte by byte, 20 ms apart: each read is quick, the whole head is not.
    not_delivered(
        vec![Step::Drip(
            b"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            Duration::from_millis(20),
        )],
        "drip",
    );
    not_delivered(
        vec![
            Step::Sleep(T + Duration::from_millis(200)),
            Step::Send(b"HTTP/1.1 200 OK\r\n\r\n"),
        ],
        "200 after the deadline",
    );
    // Retry-After values of any form are bounded or ignored.
    for (v, want) in [
        ("99999999999999999999999", None),
        ("18446744073709551615", Some(86_400)),
        ("-1", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("3", Some(3)),
    ] {
        let head = format!("HTTP/1.1 429 x\r\nRetry-After: {}\r\n\r\n", v);
        let (r, _, _) = run(vec![Step::SendOwned(head.into_bytes())]);
        assert_eq!(
            r.unwrap().retry_after,
            want.map(Duration::from_secs),
            "{}",
            v
        );
    }
}

#[test]
fn the_request_head_cannot_be_injected_into() {
    // Bytes a URL could smuggle are refused at parse time; the key is percent-encoded.
    for bad in [
        "http://h/a\r\nX-Evil: 1",
        "http://h/a\nX",
        "http://h\r\n/",
        "http://h/a b",
        "http://h/\u{85}",
    ] {
        assert!(Endpoint::parse(bad).is_err(), "{:?}", bad);
    }
    let (ep, t) = peer(vec![Step::Send(b"HTTP/1.1 200 OK\r\n\r\n")]);
    let key = crate::award_body::idempotency_key("c\r\nX-Evil: 1\u{e9}".as_bytes(), "1-0");
    let r = post(&ep, &[("Idempotency-Key", &key)], b"{}", T);
    assert!(delivered(&r));
    let req = t.join().unwrap();
    let text = String::from_utf8(req).unwrap();
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    assert!(head.starts_with("POST /hook?a=1 HTTP/1.1\r\n"), "{}", head);
    assert!(!head.contains("\r\nX-Evil"), "{}", head);
    assert_eq!(head.split("\r\n").count(), 7, "{}", head);
    assert!(
        head.contains("\r\nIdempotency-Key: c%0D%0AX-Evil:%201%C3%A9:1-0"),
        "{}",
        head
    );
}

#[test]
fn names_that_do_not_resolve_fail_within_the_deadline() {
    let ep = Endpoint::parse("http://award-no-such-host.invalid:8080/").unwrap();
    let start = Instant::now();
    assert!(post(&ep, &[], b"{}", T).is_err());
    assert!(start.elapsed() < T + Duration::from_millis(100));
}

#[test]
fn concurrent_resolutions_of_a_good_name_all_succeed() {
    // More requests at once than resolutions allowed to hang: none of these hangs, so none
    // may be refused as if earlier ones did.
    for _ in 0..30 {
        let b = Arc::new(std::sync::Barrier::new(16));
        let ts: Vec<_> = (0..16)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    b.wait();
                    resolve("localhost", 80, Instant::now() + Duration::from_secs(5))
                })
            })
            .collect();
        for t in ts {
            let r = t.join().unwrap();
            assert!(r.is_ok(), "{:?}", r);
        }
    }
}
