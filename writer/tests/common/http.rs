//! A real HTTP/1.1 server for the award tests (std TcpListener, one thread per connection),
//! scripted per request, recording every request it got and what it answered.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Act {
    /// Answer this status (with this Retry-After, and this body), after a delay.
    Status(u16, Option<u64>, &'static str, Duration),
    /// Read the request, then sleep this long and close without answering.
    Hang(Duration),
    /// Read the request, then reset the connection (RST).
    Reset,
}

pub const OK: Act = Act::Status(200, None, "ok", Duration::ZERO);

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// When it was answered (or given up).
    pub done: Instant,
    /// The status answered (None: no answer).
    pub answered: Option<u16>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn key(&self) -> String {
        self.header("idempotency-key").unwrap_or("").to_string()
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Act>,
    /// When the script is empty.
    default: Option<Act>,
    requests: Vec<Request>,
}

pub struct Server {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn reset(s: &TcpStream) {
    use std::os::unix::io::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
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
}

/// Method, path, headers (lower-case names), body.
type Parsed = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(s: &mut TcpStream) -> Option<Parsed> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, body))
}

fn handle(mut s: TcpStream, state: Arc<Mutex<State>>) {
    let Some((method, path, headers, body)) = read_request(&mut s) else {
        return;
    };
    let at = Instant::now();
    let act = {
        let mut st = state.lock().unwrap();
        st.script
            .pop_front()
            .or_else(|| st.default.clone())
            .unwrap_or(OK)
    };
    // When the answer went out (before the write: a client can go on only after it, so a
    // busy machine delaying this thread never makes requests seem to overlap).
    let mut done = None;
    let answered = match &act {
        Act::Status(code, retry_after, text, delay) => {
            std::thread::sleep(*delay);
            let mut r = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                code,
                text.len()
            );
            if let Some(ra) = retry_after {
                r.push_str(&format!("Retry-After: {}\r\n", ra));
            }
            r.push_str("\r\n");
            r.push_str(text);
            done = Some(Instant::now());
            s.write_all(r.as_bytes()).ok().map(|_| *code)
        }
        Act::Hang(d) => {
            std::thread::sleep(*d);
            None
        }
        Act::Reset => {
            reset(&s);
            None
        }
    };
    state.lock().unwrap().requests.push(Request {
        method,
        path,
        headers,
        body,
        at,
        done: done.unwrap_or_else(Instant::now),
        answered,
    });
}

impl Server {
    pub fn start() -> Server {
        Self::listen(0, Arc::new(Mutex::new(State::default()))).expect("bind the test HTTP server")
    }

    fn listen(port: u16, state: Arc<Mutex<State>>) -> std::io::Result<Server> {
        let l = TcpListener::bind(("127.0.0.1", port))?;
        let port = l.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            move || {
                for c in l.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = c {
                        let state = Arc::clone(&state);
                        std::thread::spawn(move || handle(c, state));
                    }
                }
            }
        });
        Ok(Server {
            port,
            state,
            stop,
            thread: Some(thread),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Stops listening (connections are refused) until `restart`.
    pub fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Listens again on the same port, same state.
    pub fn up(&mut self) {
        let mut last = None;
        for _ in 0..100 {
            match Self::listen(self.port, Arc::clone(&self.state)) {
                Ok(mut s) => {
                    self.stop = Arc::clone(&s.stop);
                    self.thread = s.thread.take();
                    return;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("could not listen on {} again: {:?}", self.port, last);
    }

    pub fn script(&self, acts: &[Act]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(acts.iter().cloned());
    }

    pub fn set_default(&self, act: Act) {
        self.state.lock().unwrap().default = Some(act);
    }

    /// Every request so far, in the order they arrived (each is recorded once answered).
    pub fn requests(&self) -> Vec<Request> {
        let mut r = self.state.lock().unwrap().requests.clone();
        r.sort_by_key(|r| r.at);
        r
    }

    /// Requests answered 2xx.
    pub fn delivered(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.down();
        }
    }
}
