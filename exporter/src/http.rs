//! A minimal HTTP/1.1 server for three read-only pages. Hand-written rather than a crate:
//! it needs one request per connection (`Connection: close`), GET/HEAD only, no body, and
//! every bound chosen here: the head at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] lines,
//! read within [`HEAD_TIMEOUT`] in total (a client sending one byte at a time is cut off),
//! the answer written within [`WRITE_TIMEOUT`] in total,
//! [`WORKERS`] threads and at most [`QUEUE`] connections waiting (more are closed at once).
//! A request is parsed as bytes; nothing in it can panic the server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAX_HEAD: usize = 8192;
pub const MAX_HEADERS: usize = 64;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Total time to write an answer (a client reading slowly is cut off).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After answering, unread input is read and dropped for at most this long / this many bytes
/// before the close (closing with unread input would reset the connection and could lose
/// the answer).
pub const LINGER: Duration = Duration::from_millis(200);
pub const LINGER_BYTES: usize = 64 * 1024;
pub const WORKERS: usize = 4;
pub const QUEUE: usize = 64;

pub struct Request<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub query: &'a [u8],
    pub authorization: Option<&'a [u8]>,
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Reads the request head (up to the blank line). Err: the status to answer with, or None
/// to close without answering (the client went away).
fn read_head(s: &mut TcpStream) -> Result<Vec<u8>, Option<u16>> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut n = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Some(408));
        }
        if s.set_read_timeout(Some(left)).is_err() {
            return Err(None);
        }
        match s.read(&mut buf[n..]) {
            Ok(0) => return Err(None),
            Ok(k) => {
                let from = n.saturating_sub(3);
                n += k;
                if let Some(end) = buf[from..n].windows(4).position(|w| w == b"\r\n\r\n") {
                    buf.truncate(from + end);
                    return Ok(buf);
                }
                if let Some(end) = buf[from..n].windows(2).position(|w| w == b"\n\n") {
                    buf.truncate(from + end);
                    return Ok(buf);
                }
                if n == MAX_HEAD {
                    return Err(Some(431));
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err(Some(408))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(None),
        }
    }
}

fn parse(head: &[u8]) -> Result<Request<'_>, u16> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().ok_or(400u16)?;
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase()) {
        return Err(400);
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(if version.starts_with(b"HTTP/") {
            505
        } else {
            400
        });
    }
    if !target.starts_with(b"/") {
        return Err(400);
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    let mut authorization = None;
    let mut count = 0;
    for l in lines {
        count += 1;
        if count > MAX_HEADERS {
            return Err(431);
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return Err(400);
        };
        if l[..colon].eq_ignore_ascii_case(b"authorization") {
            authorization = Some(l[colon + 1..].trim_ascii());
        }
    }
    Ok(Request {
        method,
        path,
        query,
        authorization,
    })
}

fn write_response(s: &mut TcpStream, r: &Response, head_only: bool) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&r.body);
    }
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_write_timeout(Some(left)).is_err() {
            return;
        }
        match s.write(&rest[..rest.len().min(64 * 1024)]) {
            Ok(0) => return,
            Ok(k) => rest = &rest[k..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let _ = s.flush();
}

/// Half-closes, then reads and drops what the client still sends, within [`LINGER`] and
/// [`LINGER_BYTES`].
fn linger(s: &mut TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.read(&mut sink) {
            Ok(k) if k > 0 => total += k,
            _ => return,
        }
    }
}

fn serve_one(mut s: TcpStream, handler: &(dyn Fn(&Request) -> Response + Sync)) {
    let (resp, head_only) = match read_head(&mut s) {
        Ok(head) => match parse(&head) {
            Ok(req) => (handler(&req), req.method == b"HEAD"),
            Err(status) => (Response::text(status, reason(status)), false),
        },
        Err(Some(status)) => (Response::text(status, reason(status)), false),
        Err(None) => return,
    };
    write_response(&mut s, &resp, head_only);
    linger(&mut s);
}

fn worker(
    rx: Arc<Mutex<Receiver<TcpStream>>>,
    handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>,
) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(s) = next else { return };
        let h = handler.clone();
        // A panic in a handler must not take the worker down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve_one(s, &*h)));
    }
}

/// Serves `listener` forever with `handler`.
pub fn serve(listener: TcpListener, handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>) {
    let (tx, rx): (SyncSender<TcpStream>, _) = sync_channel(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..WORKERS {
        let (rx, h) = (rx.clone(), handler.clone());
        std::thread::spawn(move || worker(rx, h));
    }
    for conn in listener.incoming() {
        match conn {
            Ok(s) => match tx.try_send(s) {
                Ok(()) => {}
                Err(TrySendError::Full(s)) => drop(s), // busy: close at once
                Err(TrySendError::Disconnected(_)) => return,
            },
            // EMFILE and the like: wait a little rather than spin.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_any_bytes_without_panic() {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        for len in 0..2000 {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly the bytes that matter to the parser.
                buf.push(match x % 8 {
                    0 => b' ',
                    1 => b'\n',
                    2 => b'\r',
                    3 => b':',
                    4 => b'/',
                    5 => b'?',
                    _ => (x >> 8) as u8,
                });
            }
            let _ = parse(&buf);
        }
    }

    #[test]
    fn parse_request() {
        let r =
            parse(b"GET /api/status?token=x&a=b HTTP/1.1\r\nHost: h\r\nAUTHORIZATION:  Bearer t ")
                .ok()
                .unwrap();
        assert_eq!(r.method, b"GET");
        assert_eq!(r.path, b"/api/status");
        assert_eq!(r.query, b"token=x&a=b");
        assert_eq!(r.authorization, Some(&b"Bearer t"[..]));
        assert_eq!(parse(b"GET / HTTP/3").err(), Some(505));
        assert_eq!(parse(b"GET  / HTTP/1.1").err(), Some(400));
        let many = format!("GET / HTTP/1.1\r\n{}", "a: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse(many.as_bytes()).err(), Some(431));
    }
}
