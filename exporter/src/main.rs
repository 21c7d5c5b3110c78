//! lottery-exporter: Prometheus metrics (`/metrics`), a JSON status (`/api/status`) and a live
//! status page (`/`) for the campaigns of one Redis server, several, or a Redis Cluster.
//! Read-only: it sends only reading commands to Redis and answers only GET and HEAD.
//! See docs/operations.md, "Metrics and the status page".

mod api;
mod args;
mod bounded;
mod collect;
mod http;
mod model;
mod names;
mod node;
mod prom;
mod sampler;

use http::{Request, Response};
use std::sync::Arc;
use std::time::Duration;

const STATUS_PAGE: &str = include_str!("status_page.html");
/// Longest wait for the first sample before serving (at least twice `--timeout-ms`).
const FIRST_SAMPLE_WAIT: Duration = Duration::from_secs(3);

/// Equal without an early exit: the time depends on the expected token's length only.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ e);
    }
    diff == 0
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The `token` parameter of a query string, percent-decoded.
fn query_token(query: &[u8]) -> Option<Vec<u8>> {
    let v = query
        .split(|&b| b == b'&')
        .find_map(|p| p.strip_prefix(b"token="))?;
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match (
            v[i],
            v.get(i + 1).copied().and_then(hex),
            v.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn authorized(req: &Request, token: &[u8]) -> bool {
    let bearer = req.authorization.and_then(|a| {
        let (scheme, rest) = a.split_at(a.iter().position(|&b| b == b' ').unwrap_or(a.len()));
        scheme
            .eq_ignore_ascii_case(b"bearer")
            .then(|| rest.trim_ascii())
    });
    if bearer.is_some_and(|b| same_token(b, token)) {
        return true;
    }
    query_token(req.query).is_some_and(|q| same_token(&q, token))
}

fn handle(req: &Request, token: Option<&[u8]>, shared: &sampler::Shared) -> Response {
    if req.method != b"GET" && req.method != b"HEAD" {
        let mut r = Response::text(
            405,
            "method not allowed: this server is read-only (GET, HEAD)\n",
        );
        r.headers.push(("Allow", "GET, HEAD".into()));
        return r;
    }
    if let Some(t) = token {
        if !authorized(req, t) {
            let mut r = Response::text(
                401,
                "unauthorized: give Authorization: Bearer <token> or ?token=\n",
            );
            r.headers.push(("WWW-Authenticate", "Bearer".into()));
            return r;
        }
    }
    match req.path {
        b"/metrics" => {
            let st = sampler::lock(shared);
            let age = st.taken.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
            Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                headers: Vec::new(),
                body: vec![
                    st.metrics.0.clone(),
                    Arc::from(prom::age_line(age).into_bytes()),
                    st.metrics.1.clone(),
                ],
            }
        }
        b"/api/status" => Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: vec![sampler::lock(shared).api.clone()],
        },
        b"/" => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            headers: vec![
                (
                    "Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'".into(),
                ),
                // The page may carry ?token=: never send it elsewhere.
                ("Referrer-Policy", "no-referrer".into()),
                ("X-Frame-Options", "DENY".into()),
            ],
            body: vec![Arc::from(STATUS_PAGE.as_bytes())],
        },
        _ => Response::text(404, "not found: try /, /metrics or /api/status\n"),
    }
}

fn main() {
    let a = match args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lottery-exporter: {}", e);
            std::process::exit(2);
        }
    };
    let listener = match std::net::TcpListener::bind(a.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lottery-exporter: cannot listen on {}: {}", a.listen, e);
            std::process::exit(1);
        }
    };
    let nodes = match node::Nodes::new(&a.redis, a.cluster, Duration::from_millis(a.timeout_ms)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("lottery-exporter: {}", e);
            std::process::exit(2);
        }
    };
    let opts = collect::Options {
        campaigns: a.campaigns.clone(),
        max_campaigns: a.max_campaigns,
    };
    let shared: sampler::Shared = Default::default();
    sampler::placeholder(&shared, nodes.seed_addrs(), a.sample_ms);
    let s = sampler::Sampler::new(nodes, opts, Duration::from_millis(a.sample_ms));
    let (ready, first) = std::sync::mpsc::channel();
    let sh = shared.clone();
    std::thread::spawn(move || s.run(sh, ready));
    // Serve once the first sample is in (so the first scrape has data), or after a bound:
    // a Redis that answers a byte at a time never trips the per-read timeout, and must not
    // keep the exporter from serving (its sample age then grows).
    let _ = first.recv_timeout(FIRST_SAMPLE_WAIT.max(Duration::from_millis(a.timeout_ms) * 2));
    drop(first);
    let local = listener
        .local_addr()
        .map(|x| x.to_string())
        .unwrap_or_default();
    eprintln!(
        "lottery-exporter: listening on http://{} ({})",
        local,
        if a.token.is_some() {
            "token required"
        } else {
            "no token: loopback only"
        }
    );
    let token = a.token.map(String::into_bytes);
    http::serve(
        listener,
        Arc::new(move |req: &Request| handle(req, token.as_deref(), &shared)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same_token(b"abcdef", b"abcdef"));
        assert!(!same_token(b"abcdeg", b"abcdef"));
        assert!(!same_token(b"abcde", b"abcdef"));
        assert!(!same_token(b"abcdefg", b"abcdef"));
        assert!(!same_token(b"", b"abcdef"));
        assert!(!same_token(b"abc\0\0\0", b"abc"));
    }

    #[test]
    fn query_token_decoding() {
        assert_eq!(query_token(b"a=1&token=x%2By+z"), Some(b"x+y z".to_vec()));
        assert_eq!(query_token(b"token=%"), Some(b"%".to_vec()));
        assert_eq!(query_token(b"token=%4"), Some(b"%4".to_vec()));
        assert_eq!(query_token(b"token=%zz%41"), Some(b"%zzA".to_vec()));
        assert_eq!(query_token(b"xtoken=1"), None);
        assert_eq!(query_token(b""), None);
    }
}
