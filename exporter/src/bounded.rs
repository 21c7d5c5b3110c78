//! Reading the newest stream entries with bounded memory. Redis cannot return part of a
//! stream entry, and a win's user id may be of any length (hundreds of MB): read through
//! redis-rs, 20 such entries would be held whole at every sample. Here `XREVRANGE` goes over
//! a connection of its own, and its replies are parsed as they arrive: each string keeps its
//! first [`MAX_STRING`] bytes (the rest is read and dropped), each array its first
//! [`MAX_ITEMS`] items, nesting stops at [`MAX_DEPTH`], and everything must arrive within one
//! deadline. Memory is bounded whatever the entries; time by the deadline.

use redis::{ConnectionAddr, ConnectionInfo, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// Bytes kept of each string (a win's user, prize and code are cut to 512 anyway).
pub const MAX_STRING: usize = 4096;
/// Items kept of each array (an entry's fields; the entries asked for are fewer).
pub const MAX_ITEMS: usize = 64;
pub const MAX_DEPTH: usize = 4;
/// Longest line kept of a simple reply, error or length.
const MAX_LINE: usize = 4096;

trait Stream: Read + Write {
    fn timeout(&self, d: Duration) -> std::io::Result<()>;
}

impl Stream for std::net::TcpStream {
    fn timeout(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Stream for std::os::unix::net::UnixStream {
    fn timeout(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

fn err(what: &str) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

pub struct Reader {
    r: BufReader<Box<dyn Stream + Send>>,
    deadline: Instant,
    /// The error replies read (their place in the replies is Nil).
    pub errors: Vec<String>,
}

impl Reader {
    /// Connects to the node of `info` (with its user, password and database); everything,
    /// connecting included, must be done within `timeout`.
    pub fn connect(info: &ConnectionInfo, timeout: Duration) -> std::io::Result<Reader> {
        let deadline = Instant::now() + timeout;
        let s: Box<dyn Stream + Send> = match &info.addr {
            ConnectionAddr::Tcp(h, p) => {
                let addr = std::net::ToSocketAddrs::to_socket_addrs(&(h.as_str(), *p))?
                    .next()
                    .ok_or_else(|| err("address resolves to nothing"))?;
                Box::new(std::net::TcpStream::connect_timeout(&addr, timeout)?)
            }
            ConnectionAddr::Unix(path) => Box::new(std::os::unix::net::UnixStream::connect(path)?),
            _ => return Err(err("TLS is not supported")),
        };
        let mut r = Reader {
            r: BufReader::new(s),
            deadline,
            errors: Vec::new(),
        };
        let mut setup = Vec::new();
        if let Some(pw) = &info.redis.password {
            let mut auth = vec![b"AUTH".to_vec()];
            if let Some(u) = &info.redis.username {
                auth.push(u.as_bytes().to_vec());
            }
            auth.push(pw.as_bytes().to_vec());
            setup.push(auth);
        }
        if info.redis.db != 0 {
            setup.push(vec![
                b"SELECT".to_vec(),
                info.redis.db.to_string().into_bytes(),
            ]);
        }
        r.run(&setup)?;
        if let Some(e) = r.errors.pop() {
            return Err(err(&e));
        }
        Ok(r)
    }

    /// Sends `cmds` pipelined and reads one bounded reply for each.
    pub fn run(&mut self, cmds: &[Vec<Vec<u8>>]) -> std::io::Result<Vec<Value>> {
        let mut out = Vec::new();
        for c in cmds {
            out.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
            for a in c {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.arm()?;
        self.r.get_mut().write_all(&out)?;
        cmds.iter().map(|_| self.value(0)).collect()
    }

    /// Sets the socket's timeouts to what is left of the deadline.
    fn arm(&mut self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.r.get_ref().timeout(left)
    }

    /// One line without its CRLF; at most [`MAX_LINE`] bytes kept.
    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            self.arm()?;
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let (n, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&buf[..n.min(room)]);
            self.r.consume(n);
            if done {
                while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
        }
    }

    fn len(line: &[u8]) -> std::io::Result<i64> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| err("bad length in reply"))
    }

    /// Reads `n` bytes, keeping the first `keep`.
    fn bytes(&mut self, n: usize, keep: usize) -> std::io::Result<Vec<u8>> {
        let mut kept = Vec::with_capacity(keep.min(n));
        let mut left = n;
        while left > 0 {
            self.arm()?;
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let k = buf.len().min(left);
            let room = keep.saturating_sub(kept.len()).min(k);
            kept.extend_from_slice(&buf[..room]);
            self.r.consume(k);
            left -= k;
        }
        Ok(kept)
    }

    fn value(&mut self, depth: usize) -> std::io::Result<Value> {
        let line = self.line()?;
        let (&kind, rest) = line.split_first().ok_or_else(|| err("empty reply line"))?;
        Ok(match kind {
            b'+' => Value::SimpleString(String::from_utf8_lossy(rest).into_owned()),
            b'-' => {
                // An error reply: Nil in its place, the text kept in `errors`.
                self.errors.push(String::from_utf8_lossy(rest).into_owned());
                Value::Nil
            }
            b':' => Value::Int(Self::len(rest)?),
            b'$' => match Self::len(rest)? {
                n if n < 0 => Value::Nil,
                n => {
                    let n = usize::try_from(n).map_err(|_| err("bad length"))?;
                    let b = self.bytes(n, MAX_STRING)?;
                    self.bytes(2, 0)?; // CRLF
                    Value::BulkString(b)
                }
            },
            b'*' => match Self::len(rest)? {
                n if n < 0 => Value::Nil,
                n => {
                    if depth >= MAX_DEPTH {
                        return Err(err("reply nested too deep"));
                    }
                    let mut items = Vec::new();
                    for i in 0..n {
                        let v = self.value(depth + 1)?;
                        if (i as usize) < MAX_ITEMS {
                            items.push(v);
                        }
                    }
                    Value::Array(items)
                }
            },
            _ => return Err(err("reply not understood")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn reader(input: &[u8]) -> Reader {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(input).unwrap();
        drop(b);
        Reader {
            r: BufReader::new(Box::new(a)),
            deadline: Instant::now() + Duration::from_secs(2),
            errors: Vec::new(),
        }
    }

    #[test]
    fn replies_are_cut_while_read() {
        let big = "x".repeat(100_000);
        let input = format!(
            "*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$4\r\nuser\r\n${}\r\n{}\r\n$4\r\ncode\r\n$-1\r\n-ERR odd\r\n:7\r\n",
            big.len(),
            big
        );
        let mut r = reader(input.as_bytes());
        let v = r.value(0).unwrap();
        let Value::Array(entries) = v else { panic!() };
        let Value::Array(e) = &entries[0] else {
            panic!()
        };
        let Value::Array(f) = &e[1] else { panic!() };
        assert_eq!(f[1], Value::BulkString(vec![b'x'; MAX_STRING]));
        assert_eq!(f[3], Value::Nil);
        assert_eq!(entries[1], Value::Nil);
        assert_eq!(r.errors, vec!["ERR odd".to_string()]);
        assert_eq!(r.value(0).unwrap(), Value::Int(7));
        // Too many items: the first MAX_ITEMS kept.
        let many = format!("*1000\r\n{}", ":1\r\n".repeat(1000));
        let Value::Array(a) = reader(many.as_bytes()).value(0).unwrap() else {
            panic!()
        };
        assert_eq!(a.len(), MAX_ITEMS);
        // Too deep, truncated, garbage: errors, not panics.
        assert!(reader(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n")
            .value(0)
            .is_err());
        assert!(reader(b"$10\r\nabc").value(0).is_err());
        assert!(reader(b"$-99999999999999999999\r\n").value(0).is_err());
        assert!(reader(b"?\r\n").value(0).is_err());
        assert!(reader(b"").value(0).is_err());
    }

    #[test]
    fn any_bytes_without_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..500 {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(match x % 10 {
                    0 => b'*',
                    1 => b'$',
                    2 => b'\r',
                    3 => b'\n',
                    4 => b'-',
                    5 => b':',
                    6 => b'1',
                    _ => (x >> 8) as u8,
                });
            }
            let mut r = reader(&buf);
            while r.value(0).is_ok() {}
        }
    }
}
