//! A minimal HTTP/1.1 server for three read-only pages. Hand-written rather than a crate:
//! it needs one request per connection (`Connection: close`), GET/HEAD only, no body, and
//! every bound chosen here: the head at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] lines,
//! read within [`HEAD_TIMEOUT`] in total (a client sending one byte at a time is cut off),
//! the answer written within [`WRITE_TIMEOUT`] in total,
//! one thread per connection and at most [`MAX_CONNECTIONS`] of them. When all are taken, a
//! new connection evicts the oldest one still sending its head (closed without an answer), so
//! clients that open connections and send nothing cannot starve a scrape: a real request
//! sends its head within milliseconds and is answered. (With a fixed pool and a queue, a
//! few dozen idle connections kept every scrape waiting or closed.)
//! A request is parsed as bytes; nothing in it can panic the server.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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
/// Connections served at once (one thread each).
pub const MAX_CONNECTIONS: usize = 256;
/// When every connection is taken and none is reading its head, one answering and open for
/// longer than this may be evicted for a new one.
pub const BUSY_EVICT: Duration = Duration::from_secs(2);
/// Stack of a connection thread (rendering needs little: the sample is on the heap).
const THREAD_STACK: usize = 256 * 1024;

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
    /// The body, in parts written one after the other (parts rendered once per sample are
    /// shared by every connection rather than copied into each).
    pub body: Vec<Arc<[u8]>>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: vec![Arc::from(body.as_bytes())],
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
        r.body.iter().map(|p| p.len()).sum::<usize>()
    );
    for (k, v) in &r.headers {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let head = Arc::from(out.into_bytes());
    let body = if head_only { &[][..] } else { &r.body[..] };
    let deadline = Instant::now() + WRITE_TIMEOUT;
    for part in std::iter::once(&head).chain(body) {
        let mut rest = &part[..];
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

/// The connections being served: id -> (accepted at, still reading its head, a handle to
/// close it).
#[derive(Default)]
struct Conns {
    next: u64,
    open: HashMap<u64, (Instant, bool, TcpStream)>,
}

type SharedConns = Arc<Mutex<Conns>>;

fn lock(c: &SharedConns) -> std::sync::MutexGuard<'_, Conns> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a new connection. If all [`MAX_CONNECTIONS`] are taken, evicts the oldest one
/// still reading its head, or else the oldest one answering and open for more than
/// [`BUSY_EVICT`] (a client reading its answer slowly). None: no connection may be evicted (drop the new one).
fn admit(conns: &SharedConns, s: &TcpStream) -> Option<u64> {
    let mut c = lock(conns);
    if c.open.len() >= MAX_CONNECTIONS {
        let oldest = |reading: bool| {
            c.open
                .iter()
                .filter(|(_, (_, r, _))| *r == reading)
                .min_by_key(|(_, (at, _, _))| *at)
                .map(|(id, (at, _, _))| (*id, *at))
        };
        let oldest = oldest(true)
            .or_else(|| oldest(false).filter(|(_, at)| at.elapsed() >= BUSY_EVICT))
            .map(|(id, _)| id)?;
        if let Some((_, _, victim)) = c.open.remove(&oldest) {
            let _ = victim.shutdown(std::net::Shutdown::Both);
        }
    }
    let handle = s.try_clone().ok()?;
    let id = c.next;
    c.next += 1;
    c.open.insert(id, (Instant::now(), true, handle));
    Some(id)
}

fn serve_one(
    mut s: TcpStream,
    handler: &(dyn Fn(&Request) -> Response + Sync),
    conns: &SharedConns,
    id: u64,
) {
    let head = read_head(&mut s);
    // From here on the connection is answered, not evicted (unless it was already).
    match lock(conns).open.get_mut(&id) {
        Some(e) => e.1 = false,
        None => return,
    }
    let (resp, head_only) = match head {
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

/// Serves `listener` forever with `handler`.
pub fn serve(listener: TcpListener, handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>) {
    let conns: SharedConns = Default::default();
    for conn in listener.incoming() {
        let s = match conn {
            Ok(s) => s,
            // EMFILE and the like: wait a little rather than spin.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(id) = admit(&conns, &s) else {
            continue; // all busy answering: close at once
        };
        let (h, c) = (handler.clone(), conns.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || {
                // A panic in a handler must not leave its connection registered.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    serve_one(s, &*h, &c, id)
                }));
                lock(&c).open.remove(&id);
            });
        if spawned.is_err() {
            lock(&conns).open.remove(&id);
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
