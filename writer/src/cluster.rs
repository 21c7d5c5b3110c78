//! Redis Cluster routing, done here rather than with redis-rs's `ClusterConnection`.
//!
//! Why not `ClusterConnection` (redis 0.32, sync): on an I/O error or a read timeout it
//! reconnects and sends the command again by itself (up to 16 times, sleeping in between, deaf
//! to the stop flag). For `XREADGROUP ... >` that resend is harmful: entries the first attempt
//! delivered are pending on this consumer and would not be read again until the next recovery.
//! The writer wants every failure to reach its own loop (backoff, then recovery from the
//! pending list), so it routes itself:
//!
//! - the slot map comes from `CLUSTER SLOTS` (asked of the known nodes, then of the seeds);
//! - a command goes to the master owning its key's slot (`lottery_cluster::keyslot::key_slot`),
//!   over one plain connection per node;
//! - `MOVED`: the slot map is refreshed and the command is sent to the new owner (a `MOVED`
//!   reply means the command did not run, so resending is safe); `ASK`: `ASKING` + the command
//!   on the importing node, once;
//! - a connection error, a timeout, `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN` or `READONLY`
//!   drops that connection and the slot map and is returned to the caller, which backs off and
//!   recovers (its next command rediscovers the topology).

use lottery_cluster::keyslot::key_slot;
use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisResult, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Redirects followed for one command before giving up (the caller retries later).
const MAX_REDIRECTS: usize = 5;

pub struct Cluster {
    /// Credentials and protocol of the first seed, used for every node.
    template: ConnectionInfo,
    /// Seed nodes as `host:port`.
    seeds: Vec<String>,
    /// Every node seen in a slot map (masters and replicas), asked first on a refresh.
    known: Vec<String>,
    /// `(first slot, last slot, master host:port)`.
    slots: Vec<(u16, u16, String)>,
    cons: HashMap<String, redis::Connection>,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
}

fn host_port(addr: &str) -> Option<(String, u16)> {
    let (h, p) = addr.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Some((h.to_string(), p.parse().ok()?))
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{}]:{}", host, port)
    } else {
        format!("{}:{}", host, port)
    }
}

fn io_err(msg: String) -> redis::RedisError {
    redis::RedisError::from((ErrorKind::IoError, "cluster", msg))
}

/// Errors after which the connection (or the slot map) is not to be trusted.
fn drops_connection(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

fn drops_slots(e: &redis::RedisError) -> bool {
    drops_connection(e)
        || matches!(
            e.kind(),
            ErrorKind::ClusterDown
                | ErrorKind::TryAgain
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
                | ErrorKind::Moved
        )
}

/// `(first slot, last slot, master, replicas)`, nodes as `host:port`.
type SlotRange = (u16, u16, String, Vec<String>);

/// Parses a `CLUSTER SLOTS` reply. `asked` is the node that answered: an empty host in the
/// reply means "the host you reached me on".
fn parse_slots(v: &Value, asked: &str) -> Option<Vec<SlotRange>> {
    let asked_host = host_port(asked).map(|(h, _)| h).unwrap_or_default();
    let mut out = Vec::new();
    for range in crate::stream::array(v)? {
        let r = crate::stream::array(range)?;
        if r.len() < 3 {
            return None;
        }
        let start = u16::try_from(crate::stream::int(&r[0])?).ok()?;
        let end = u16::try_from(crate::stream::int(&r[1])?).ok()?;
        let mut nodes = Vec::new();
        for n in &r[2..] {
            let n = crate::stream::array(n)?;
            if n.len() < 2 {
                return None;
            }
            let mut host = crate::stream::string(&n[0])?;
            if host.is_empty() || host == "?" {
                host = asked_host.clone();
            }
            let port = u16::try_from(crate::stream::int(&n[1])?).ok()?;
            nodes.push(join(&host, port));
        }
        let master = nodes.remove(0);
        out.push((start, end, master, nodes));
    }
    Some(out)
}

impl Cluster {
    /// `seeds`: redis:// URLs (each may hold several, comma-separated). Credentials are taken
    /// from the first; a database other than 0 is refused (a cluster has only database 0).
    pub fn new(
        seed_urls: &[String],
        connect_timeout: Duration,
        read_timeout: Duration,
        write_timeout: Duration,
    ) -> Result<Self, String> {
        let mut template = None;
        let mut seeds = Vec::new();
        for url in seed_urls.iter().flat_map(|u| u.split(',')) {
            let url = url.trim();
            if url.is_empty() {
                continue;
            }
            let info: ConnectionInfo = url
                .into_connection_info()
                .map_err(|e| format!("invalid --redis URL {:?}: {}", url, e))?;
            let addr = match &info.addr {
                ConnectionAddr::Tcp(h, p) => join(h, *p),
                _ => {
                    return Err(format!(
                        "--cluster needs redis://HOST:PORT seeds, not {:?}",
                        url
                    ))
                }
            };
            if info.redis.db != 0 {
                return Err(format!("{:?}: a cluster has only database 0", url));
            }
            if !seeds.contains(&addr) {
                seeds.push(addr);
            }
            template.get_or_insert(info);
        }
        let template = template.ok_or("no --redis seed given")?;
        Ok(Cluster {
            template,
            seeds,
            known: Vec::new(),
            slots: Vec::new(),
            cons: HashMap::new(),
            connect_timeout,
            read_timeout,
            write_timeout,
        })
    }

    /// A copy with the same seeds, known nodes and slot map, but no connections, whose
    /// connections get `read_timeout`.
    pub fn fresh(&self, read_timeout: Duration) -> Self {
        Cluster {
            template: self.template.clone(),
            seeds: self.seeds.clone(),
            known: self.known.clone(),
            slots: self.slots.clone(),
            cons: HashMap::new(),
            connect_timeout: self.connect_timeout,
            read_timeout,
            write_timeout: self.write_timeout,
        }
    }

    fn open(&self, addr: &str) -> RedisResult<redis::Connection> {
        let (host, port) =
            host_port(addr).ok_or_else(|| io_err(format!("bad node address {:?}", addr)))?;
        let mut info = self.template.clone();
        info.addr = ConnectionAddr::Tcp(host, port);
        let con = redis::Client::open(info)?.get_connection_with_timeout(self.connect_timeout)?;
        con.set_read_timeout(Some(self.read_timeout))?;
        con.set_write_timeout(Some(self.write_timeout))?;
        Ok(con)
    }

    fn con(&mut self, addr: &str) -> RedisResult<&mut redis::Connection> {
        if !self.cons.contains_key(addr) {
            let c = self.open(addr)?;
            self.cons.insert(addr.to_string(), c);
        }
        Ok(self.cons.get_mut(addr).expect("just inserted"))
    }

    /// Forgets every connection and the slot map (after a failure).
    pub fn reset(&mut self) {
        self.cons.clear();
        self.slots.clear();
    }

    /// Reads the slot map from the first node that answers (known nodes, then seeds).
    pub fn refresh(&mut self) -> RedisResult<()> {
        let mut candidates: Vec<String> = self.known.clone();
        for s in &self.seeds {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
        let mut last_err = None;
        for addr in candidates {
            let reply = match self.con(&addr) {
                Ok(c) => redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(c),
                Err(e) => Err(e),
            };
            match reply {
                Ok(v) => match parse_slots(&v, &addr) {
                    Some(map) if !map.is_empty() => {
                        let mut known = Vec::new();
                        let mut slots = Vec::new();
                        for (start, end, master, replicas) in map {
                            for n in std::iter::once(&master).chain(replicas.iter()) {
                                if !known.contains(n) {
                                    known.push(n.clone());
                                }
                            }
                            slots.push((start, end, master));
                        }
                        slots.sort();
                        self.slots = slots;
                        self.known = known;
                        return Ok(());
                    }
                    _ => {
                        last_err = Some(io_err(format!(
                            "{}: no usable CLUSTER SLOTS reply (is it a cluster node?)",
                            addr
                        )))
                    }
                },
                Err(e) => {
                    self.cons.remove(&addr);
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io_err("no cluster node to ask".into())))
    }

    fn owner(&self, slot: u16) -> Option<&str> {
        self.slots
            .iter()
            .find(|(s, e, _)| *s <= slot && slot <= *e)
            .map(|(_, _, a)| a.as_str())
    }

    /// The master that owns `key`'s slot (refreshing the slot map if needed).
    pub fn node_for(&mut self, key: &[u8]) -> RedisResult<String> {
        if self.slots.is_empty() {
            self.refresh()?;
        }
        let slot = key_slot(key);
        self.owner(slot)
            .map(str::to_string)
            .ok_or_else(|| io_err(format!("slot {} is not served by any master", slot)))
    }

    /// Runs `c` (whose key is `key`) on the master owning the key, following redirects.
    pub fn query(&mut self, key: &[u8], c: &redis::Cmd) -> RedisResult<Value> {
        let mut addr = self.node_for(key)?;
        let mut asking = false;
        for _ in 0..MAX_REDIRECTS {
            let reply = match self.con(&addr) {
                Ok(con) if asking => redis::pipe()
                    .cmd("ASKING")
                    .ignore()
                    .add_command(c.clone())
                    .query::<Vec<Value>>(con)
                    .map(|mut v| v.pop().unwrap_or(Value::Nil)),
                Ok(con) => c.query::<Value>(con),
                Err(e) => Err(e),
            };
            let e = match reply {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let redirect = e
                .redirect_node()
                .map(|(a, _)| a.to_string())
                .filter(|a| host_port(a).is_some_and(|(h, _)| !h.is_empty() && h != "?"));
            match e.kind() {
                ErrorKind::Moved => {
                    // The command did not run; the slot has a new owner.
                    let _ = self.refresh();
                    let from = std::mem::take(&mut addr);
                    addr = match redirect {
                        Some(a) => a,
                        None => self.node_for(key)?,
                    };
                    crate::log!(
                        "info",
                        "moved",
                        slot = key_slot(key),
                        from = from,
                        to = addr
                    );
                    asking = false;
                }
                ErrorKind::Ask if redirect.is_some() => {
                    addr = redirect.unwrap_or_default();
                    asking = true;
                }
                _ => {
                    if drops_connection(&e) {
                        self.cons.remove(&addr);
                    }
                    if drops_slots(&e) {
                        self.slots.clear();
                    }
                    return Err(e);
                }
            }
        }
        self.slots.clear();
        Err(io_err(format!(
            "more than {} MOVED/ASK redirects for one command",
            MAX_REDIRECTS
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn slots_reply_and_addresses() {
        let v = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(5460),
            Value::Array(vec![b(""), Value::Int(7000), b("id0")]),
            Value::Array(vec![b("10.0.0.2"), Value::Int(7003), b("id3")]),
        ])]);
        let m = parse_slots(&v, "127.0.0.1:7001").unwrap();
        assert_eq!(
            m,
            vec![(
                0,
                5460,
                "127.0.0.1:7000".to_string(),
                vec!["10.0.0.2:7003".to_string()]
            )]
        );
        assert_eq!(host_port("[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(join("::1", 7000), "[::1]:7000");
        assert!(Cluster::new(
            &["redis://a:1,redis://b:2".into(), "redis://a:1".into()],
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1)
        )
        .map(|c| c.seeds == vec!["a:1", "b:2"])
        .unwrap());
        assert!(Cluster::new(
            &["redis://a:1/2".into()],
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1)
        )
        .is_err());
    }
}
