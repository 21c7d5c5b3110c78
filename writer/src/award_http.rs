//! A minimal HTTP/1.1 client for the award webhook: one POST per connection
//! (`Connection: close`), plain TCP (no TLS), every step under one deadline.
//!
//! Hand-written rather than a crate: the writer needs exactly one request shape, a hard
//! deadline over name resolution, connect, send and the response head, a bounded read of the
//! response (head at most `MAX_HEAD` bytes, body at most `MAX_ERROR_BODY` bytes, read only
//! for a failure's error text), and nothing else (no redirects, no pooling, no TLS stack).

use base64::Engine as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest response head (status line and headers, 1xx heads included) read.
pub const MAX_HEAD: usize = 16 * 1024;
/// How much of a failure's response body is kept for its error text.
pub const MAX_ERROR_BODY: usize = 256;
/// How long to wait for a failure's body after its head (within the deadline).
const ERROR_BODY_WAIT: Duration = Duration::from_millis(500);
/// Name resolutions left running after their deadline (getaddrinfo cannot be cancelled):
/// beyond this many, a resolution fails at once instead of starting one more thread.
/// Resolutions still within their deadline do not count (there are at most
/// `--award-concurrency` of those).
const MAX_STUCK_RESOLVERS: usize = 4;

/// Resolutions given up by their caller and still running.
static STUCK: AtomicUsize = AtomicUsize::new(0);

/// Where the awards go.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// Path and query, as given (at least `/`).
    pub path: String,
    /// `Authorization: Basic ...` from the URL's user:password, if any.
    auth: Option<String>,
    /// The URL without its password, for the logs.
    pub display: String,
}

fn valid_url_char(b: u8) -> bool {
    b.is_ascii_graphic()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl Endpoint {
    /// `http://[user[:password]@]host[:port][/path][?query]` (a `#fragment` is dropped).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(
                "--award-url: https is not supported (no TLS in the writer); use http://, e.g. \
                 to a TLS-terminating proxy on the same host or network"
                    .into(),
            );
        }
        if !lower.starts_with("http://") {
            return Err("--award-url must start with http://".into());
        }
        let rest = &url[7..];
        if !rest.bytes().all(valid_url_char) {
            return Err(
                "--award-url: only visible ASCII characters (percent-encode the others)".into(),
            );
        }
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let end = r.find(']').ok_or("--award-url: unclosed [ in the host")?;
            let host = &r[..end];
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| "--award-url: bad IPv6 address")?;
            let port = match &r[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("--award-url: bad port")?),
            };
            (host.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err("--award-url: no host".into());
        }
        let port = match port {
            None | Some("") => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("--award-url: bad port")?,
        };
        let auth = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let mut raw = percent_decode(user);
            raw.push(b':');
            raw.extend(percent_decode(pass));
            base64::engine::general_purpose::STANDARD.encode(raw)
        });
        let shown_user = userinfo
            .map(|u| format!("{}:***@", u.split(':').next().unwrap_or("")))
            .unwrap_or_default();
        let host_shown = if host.contains(':') {
            format!("[{}]", host)
        } else {
            host.clone()
        };
        Ok(Endpoint {
            display: format!("http://{}{}:{}{}", shown_user, host_shown, port, path),
            host,
            port,
            path,
            auth,
        })
    }

    fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            h
        } else {
            format!("{}:{}", h, self.port)
        }
    }
}

/// The response to a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After` in its delta-seconds form (an HTTP-date is ignored).
    pub retry_after: Option<Duration>,
    /// A failure's first body bytes (empty for 2xx).
    pub body: Vec<u8>,
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let r = deadline.saturating_duration_since(Instant::now());
    if r < Duration::from_millis(1) {
        Err("timed out".into())
    } else {
        Ok(r)
    }
}

fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if STUCK.load(Ordering::SeqCst) >= MAX_STUCK_RESOLVERS {
        return Err(format!(
            "resolving {}: earlier resolutions still hang",
            host
        ));
    }
    // RUNNING until the resolution ends (DONE) or its caller gives up (ABANDONED, counted in
    // STUCK until it ends): resolutions merely in progress never refuse another.
    const RUNNING: u8 = 0;
    const ABANDONED: u8 = 1;
    const DONE: u8 = 2;
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (tx, rx) = std::sync::mpsc::channel();
    let name = format!("{}:{}", host, port);
    let theirs = Arc::clone(&state);
    std::thread::Builder::new()
        .name("award-resolve".into())
        .spawn(move || {
            let r = name
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            if theirs.swap(DONE, Ordering::SeqCst) == ABANDONED {
                STUCK.fetch_sub(1, Ordering::SeqCst);
            }
            let _ = tx.send(r);
        })
        .map_err(|e| format!("resolving {}: {}", host, e))?;
    let give_up = || {
        // Counted first, so that the resolver's decrement never comes before it.
        STUCK.fetch_add(1, Ordering::SeqCst);
        if state
            .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            STUCK.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let left = match remaining(deadline) {
        Ok(l) => l,
        Err(e) => {
            give_up();
            return Err(e);
        }
    };
    match rx.recv_timeout(left) {
        Ok(Ok(a)) if !a.is_empty() => Ok(a),
        Ok(Ok(_)) => Err(format!("resolving {}: no address", host)),
        Ok(Err(e)) => Err(format!("resolving {}: {}", host, e)),
        Err(_) => {
            give_up();
            Err(format!("resolving {}: timed out", host))
        }
    }
}

fn connect(ep: &Endpoint, deadline: Instant) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for a in resolve(&ep.host, ep.port, deadline)? {
        match TcpStream::connect_timeout(&a, remaining(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect {}: {}", a, e),
        }
    }
    Err(last)
}

/// The end of the head in `buf` (the index after the blank line), if there.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Status code and headers of one head (`HTTP/1.x NNN reason`).
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            status_line.chars().take(80).collect::<String>()
        ));
    }
    let status: u16 = code.parse().map_err(|_| "bad status")?;
    if !(100..=599).contains(&status) {
        return Err(format!("bad HTTP status {}", status));
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

fn read_some(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
) -> Result<usize, String> {
    s.set_read_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut chunk = [0u8; 4096];
    let want = cap.saturating_sub(buf.len()).min(chunk.len());
    if want == 0 {
        return Ok(0);
    }
    match s.read(&mut chunk[..want]) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err("timed out".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// POSTs `body` with the given extra headers. Err: no response (connection refused or reset,
/// timed out, not HTTP): the request may or may not have been received.
pub fn post(
    ep: &Endpoint,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Reply, String> {
    let deadline = Instant::now() + timeout;
    let mut s = connect(ep, deadline)?;
    let _ = s.set_nodelay(true);
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lottery-writer/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        ep.path,
        ep.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Some(a) = &ep.auth {
        req.push_str(&format!("Authorization: Basic {}\r\n", a));
    }
    for (k, v) in headers {
        req.push_str(&format!("{}: {}\r\n", k, v));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    s.set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    s.write_all(&out).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => format!("send: {}", e),
    })?;

    // The head (skipping 1xx interim responses), all within MAX_HEAD bytes.
    let mut buf = Vec::new();
    let mut start = 0;
    loop {
        let end = loop {
            if let Some(e) = head_end(&buf[start..]) {
                break start + e;
            }
            if buf.len() >= MAX_HEAD {
                return Err(format!("response head larger than {} bytes", MAX_HEAD));
            }
            if read_some(&mut s, &mut buf, MAX_HEAD, deadline)
                .map_err(|e| format!("reading the response: {}", e))?
                == 0
            {
                return Err("connection closed before a complete response head".into());
            }
        };
        let (status, hdrs) = parse_head(&buf[start..end])?;
        if (100..200).contains(&status) && status != 101 {
            start = end;
            continue;
        }
        let retry_after = hdrs
            .iter()
            .find(|(k, _)| k == "retry-after")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(86_400)));
        let mut reply = Reply {
            status,
            retry_after,
            body: Vec::new(),
        };
        if !(200..300).contains(&status) {
            // The error text: what is there already, plus a short wait for more.
            let len = hdrs
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(MAX_ERROR_BODY)
                .min(MAX_ERROR_BODY);
            let mut body = buf[end..].to_vec();
            let short = deadline.min(Instant::now() + ERROR_BODY_WAIT);
            while body.len() < len {
                match read_some(&mut s, &mut body, len, short) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            body.truncate(len);
            reply.body = body;
        }
        return Ok(reply);
    }
}

#[cfg(test)]
mod hostile;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 8080, "/a/b?x=1")
        );
        assert!(e.auth.is_none());
        let e = Endpoint::parse("http://u%40x:p%3Aw@h").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("h", 80, "/"));
        assert_eq!(
            e.auth.as_deref(),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode("u@x:p:w")
                    .as_str()
            )
        );
        assert!(!e.display.contains("p%3Aw"), "{}", e.display);
        let e = Endpoint::parse("http://[::1]:9/x").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.host_header().as_str()),
            ("::1", 9, "[::1]:9")
        );
        let e = Endpoint::parse("HTTP://h?q").unwrap();
        assert_eq!(e.path, "/?q");
        for bad in [
            "https://h/",
            "ftp://h",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://h/a b",
            "http://h/\u{e9}",
            "http://[::1/",
            "",
            "h",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{:?}", bad);
        }
        assert!(Endpoint::parse("https://h")
            .unwrap_err()
            .contains("https is not supported"));
    }

    #[test]
    fn heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().0, 200);
        let (s, h) = parse_head(b"HTTP/1.0 503 x y\r\nRetry-After:  7 \r\n\r\n").unwrap();
        assert_eq!(s, 503);
        assert_eq!(h, vec![("retry-after".to_string(), "7".to_string())]);
        for bad in [
            &b"HTTP/2 200\r\n"[..],
            b"HTTP/1.1 20 OK",
            b"SSH-2.0",
            b"HTTP/1.1 999 x",
            b"\xff\xfe",
        ] {
            assert!(parse_head(bad).is_err());
        }
        assert_eq!(percent_decode("a%41%4"), b"aA%4");
        assert_eq!(percent_decode("%zz%"), b"%zz%");
    }
}
