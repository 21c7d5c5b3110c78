//! The cluster: its topology (masters sorted by node id, the owner of every slot) read from
//! `CLUSTER NODES`, and a redis-rs `ClusterConnection` for the commands.
//!
//! Routing: redis-rs 0.32 routes a command it does not know (every `LOTTERY.*` command) by its
//! first argument (`RouteBy::FirstKey` is its default), which is where the campaign key is, and
//! `EVAL` by its first key; it follows MOVED/ASK and refreshes its slot map on them. So every
//! campaign command here goes through [`Cluster::query`] with the shard key as argument 1, or
//! through [`Cluster::eval`].
//!
//! Topology changes: redis-rs refreshes its slot map only on MOVED, and after a connection
//! error it reconnects to the same address; a master that died (its replica promoted) would be
//! asked forever. So on any connection-class error [`Cluster::reconnect`] reads `CLUSTER NODES`
//! again from any node that answers (the seeds, then every node seen before, replicas
//! included) and builds a new cluster connection from a node that answered, which reads the
//! slot map (`CLUSTER SLOTS`) again and connects only to the masters that serve slots now.

use std::time::Duration;

use lottery_cluster::keyslot::key_slot;
use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::{Cmd, ConnectionLike, FromRedisValue, Value};

use crate::error::{is_auth_error, is_connection_error, Error, Result};

pub const SLOTS: usize = 16384;

/// A master that serves at least one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    pub id: String,
    /// `host:port`
    pub addr: String,
    /// Inclusive slot ranges.
    pub slots: Vec<(u16, u16)>,
}

/// The masters (sorted by node id) and, for each slot, the index of its master; and the
/// address of every node listed (to find the cluster again when the seeds are down).
#[derive(Debug, Clone)]
pub struct Topology {
    pub masters: Vec<Master>,
    owner: Vec<Option<usize>>,
    /// `host:port` of every node with an address: nodes not flagged failing first.
    pub nodes: Vec<String>,
}

impl Topology {
    /// Builds the topology from the text of `CLUSTER NODES`. Masters that are failing or serve
    /// no slot are left out (no key can be placed on them). `seed_host` replaces an empty host
    /// (a node that does not know its own address yet).
    pub fn from_cluster_nodes(text: &str, seed_host: &str) -> std::result::Result<Self, String> {
        let mut masters = Vec::new();
        let (mut live, mut failing) = (Vec::new(), Vec::new());
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 8 {
                return Err(format!("unreadable CLUSTER NODES line {line:?}"));
            }
            let flags: Vec<&str> = cols[2].split(',').collect();
            // ip:port@cport[,hostname]
            let addr = cols[1].split(['@', ',']).next().unwrap_or("");
            let addr = match addr.strip_prefix(':') {
                Some(port) => format!("{seed_host}:{port}"),
                None => addr.to_string(),
            };
            let bad = flags
                .iter()
                .any(|f| matches!(*f, "fail" | "fail?" | "noaddr" | "handshake"));
            if !flags.contains(&"noaddr")
                && addr.rsplit_once(':').is_some_and(|(h, _)| !h.is_empty())
            {
                if bad {
                    failing.push(addr.clone());
                } else {
                    live.push(addr.clone());
                }
            }
            if !flags.contains(&"master") || bad {
                continue;
            }
            let mut slots = Vec::new();
            for s in &cols[8..] {
                if s.starts_with('[') {
                    continue; // a slot being imported or migrated: still served by its owner
                }
                let (a, b) = match s.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (*s, *s),
                };
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) if a <= b && usize::from(b) < SLOTS => slots.push((a, b)),
                    _ => return Err(format!("bad slot range {s:?} in CLUSTER NODES")),
                }
            }
            if !slots.is_empty() {
                masters.push(Master {
                    id: cols[0].to_string(),
                    addr,
                    slots,
                });
            }
        }
        let mut t = Topology::new(masters);
        live.extend(failing);
        t.nodes = live;
        Ok(t)
    }

    pub fn new(mut masters: Vec<Master>) -> Self {
        masters.sort_by(|a, b| a.id.cmp(&b.id));
        let mut owner = vec![None; SLOTS];
        for (i, m) in masters.iter().enumerate() {
            for &(a, b) in &m.slots {
                for s in a..=b {
                    owner[usize::from(s)] = Some(i);
                }
            }
        }
        let nodes = masters.iter().map(|m| m.addr.clone()).collect();
        Topology {
            masters,
            owner,
            nodes,
        }
    }

    /// Index (into `masters`) of the master serving `slot`, if any.
    pub fn owner_of_slot(&self, slot: u16) -> Option<usize> {
        self.owner.get(usize::from(slot)).copied().flatten()
    }

    /// `host:port` of the master serving `key`, or `?` when no master serves its slot.
    pub fn node_of_key(&self, key: &str) -> String {
        self.owner_of_slot(key_slot(key.as_bytes()))
            .map(|i| self.masters[i].addr.clone())
            .unwrap_or_else(|| "?".to_string())
    }
}

pub struct Cluster {
    conn: ClusterConnection,
    seeds: Vec<String>,
    pub topology: Topology,
}

/// `redis://host:port` (or `host:port`) -> `redis://host:port`, checked.
pub fn normalise_seed(s: &str) -> Result<String> {
    let s = s.trim();
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("redis://{s}")
    };
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or_else(|| {
            Error::Usage(format!(
                "bad --cluster address {s:?}: expected redis://HOST:PORT"
            ))
        })?;
    let hostport = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(url),
        _ => Err(Error::Usage(format!(
            "bad --cluster address {s:?}: expected redis://HOST:PORT"
        ))),
    }
}

fn seed_host(url: &str) -> String {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let hostport = rest.rsplit('@').next().unwrap_or(rest);
    hostport
        .rsplit_once(':')
        .map(|x| x.0)
        .unwrap_or(hostport)
        .to_string()
}

/// The URL of node `addr` (host:port) with the seed's scheme and credentials.
fn node_url(seed: &str, addr: &str) -> String {
    let (scheme, rest) = seed.split_once("://").unwrap_or(("redis", seed));
    match rest.rsplit_once('@') {
        Some((cred, _)) => format!("{scheme}://{cred}@{addr}"),
        None => format!("{scheme}://{addr}"),
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// redis-rs's retries of one command (its default, 16 with waits growing to minutes on
/// CLUSTERDOWN/TRYAGAIN, would stall a round far longer than a failover takes); a command that
/// still fails makes [`Cluster::query`] find the cluster again.
const RETRIES: u32 = 2;

impl Cluster {
    /// Connects through any of `seeds` (`redis://HOST:PORT`) and reads the topology.
    pub fn connect(seeds: &[String]) -> Result<Cluster> {
        if seeds.is_empty() {
            return Err(Error::Usage(
                "no cluster given: use --cluster redis://HOST:PORT or set LOTTERY_CLUSTER".into(),
            ));
        }
        let (topology, via) = read_topology(seeds, &[])?;
        let conn = cluster_connection(seeds, &via, &topology)?;
        Ok(Cluster {
            conn,
            seeds: seeds.to_vec(),
            topology,
        })
    }

    /// Reads the topology again (after a failover or resharding), from the seeds or any node
    /// seen before.
    pub fn refresh_topology(&mut self) -> Result<()> {
        self.topology = read_topology(&self.seeds, &self.topology.nodes)?.0;
        Ok(())
    }

    /// Finds the cluster again after a connection error: reads the topology from any node that
    /// answers and replaces the cluster connection (a fresh slot map; connections to nodes that
    /// no longer serve slots are dropped).
    pub fn reconnect(&mut self) -> Result<()> {
        let (topology, via) = read_topology(&self.seeds, &self.topology.nodes)?;
        self.conn = cluster_connection(&self.seeds, &via, &topology)?;
        self.topology = topology;
        Ok(())
    }

    /// Sends `cmd`, routed by its argument 1 (the key). After a connection-class error, finds
    /// the cluster again ([`Cluster::reconnect`]) and sends it once more (every command sent
    /// this way is idempotent; redis-rs itself resends them after a broken connection).
    pub fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T> {
        let v = match self.conn.req_command(cmd) {
            Err(e) if is_connection_error(&e) => {
                self.reconnect()
                    .map_err(|r| r.context(format!("after {e}")))?;
                self.conn.req_command(cmd)?
            }
            r => r?,
        };
        if let Value::ServerError(e) = v {
            return Err(Error::from(redis::RedisError::from(e)));
        }
        T::from_redis_value(&v).map_err(|e| Error::Campaign(format!("unexpected reply: {e}")))
    }

    /// Sends `cmd` (whose key is `key`) at most once, for commands that must not run twice
    /// (`LOTTERY.RESTOCK`, `HINCRBY`): redis-rs's cluster connection resends a command after a
    /// broken connection, when the first one may have run. Here only MOVED/ASK (which say the
    /// command did not run) are followed; a connection that breaks after sending is an error
    /// saying the outcome is unknown.
    pub fn query_once<T: FromRedisValue>(&mut self, key: &str, cmd: &Cmd) -> Result<T> {
        self.send_once(key, cmd, false)
    }

    /// [`Cluster::query_once`], then waits until the master's replicas have the write
    /// (`WAIT` on the same connection, for every connected replica, at least one required
    /// when it has any). For the transfer steps: the next step must not start while a
    /// failover could still drop this one (an OUT lost after its IN would create units; an IN
    /// lost after its SETTLE would lose them). A step not acknowledged in time is an error;
    /// it is idempotent, so the next run redoes it.
    pub fn query_durable<T: FromRedisValue>(&mut self, key: &str, cmd: &Cmd) -> Result<T> {
        self.send_once(key, cmd, true)
    }

    fn send_once<T: FromRedisValue>(&mut self, key: &str, cmd: &Cmd, durable: bool) -> Result<T> {
        // After an ASK redirect: the node to send ASKING + the command to, once.
        let mut ask: Option<String> = None;
        let mut last = String::new();
        for attempt in 0..5 {
            if attempt > 0 && ask.is_none() {
                // A failover in progress: give the cluster a moment to elect the new master.
                std::thread::sleep(Duration::from_millis(200));
            }
            let (addr, asking) = match ask.take() {
                Some(a) => (a, true),
                None => match self.topology.owner_of_slot(key_slot(key.as_bytes())) {
                    Some(i) => (self.topology.masters[i].addr.clone(), false),
                    None => {
                        last = format!("no master serves {key}'s slot");
                        self.refresh_topology()?;
                        continue;
                    }
                },
            };
            let url = node_url(&self.seeds[0], &addr);
            let conn = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(CONNECT_TIMEOUT));
            let mut conn = match conn {
                Ok(c) => c,
                // Not sent: safe to find the slot's master again and send it there.
                Err(e) if is_connection_error(&e) && !is_auth_error(&e) => {
                    last = format!("cannot connect to {addr}: {e}");
                    self.refresh_topology()?;
                    continue;
                }
                Err(e) => return Err(Error::from(e).context(format!("connecting to {addr}"))),
            };
            conn.set_read_timeout(Some(RESPONSE_TIMEOUT))
                .map_err(|e| Error::Cluster(format!("{addr}: {e}")))?;
            let r: redis::RedisResult<Value> = if asking {
                redis::pipe()
                    .cmd("ASKING")
                    .ignore()
                    .add_command(cmd.clone())
                    .query::<Vec<Value>>(&mut conn)
                    .map(|mut v| v.pop().unwrap_or(Value::Nil))
            } else {
                cmd.query(&mut conn)
            };
            match r {
                // Refused before running (a node that became a replica, a slot without a
                // master yet): find the slot's master again.
                Ok(Value::ServerError(e))
                    if matches!(
                        e.code(),
                        "READONLY" | "CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN" | "LOADING"
                    ) =>
                {
                    last = format!("{addr}: {} {}", e.code(), e.details().unwrap_or(""));
                    self.refresh_topology()?;
                }
                Ok(Value::ServerError(e)) => return Err(Error::from(redis::RedisError::from(e))),
                Ok(v) => {
                    if durable {
                        wait_replicas(&mut conn, &addr, key)?;
                    }
                    return T::from_redis_value(&v)
                        .map_err(|e| Error::Campaign(format!("unexpected reply: {e}")));
                }
                Err(e) if e.kind() == redis::ErrorKind::Moved => {
                    last = format!("MOVED from {addr}");
                    self.refresh_topology()?;
                }
                Err(e) if e.kind() == redis::ErrorKind::Ask => {
                    ask = e.redirect_node().map(|(a, _)| a.to_string());
                }
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                    return Err(Error::Cluster(format!(
                        "{addr}: connection lost after sending {key}'s command, which may or \
                         may not have run: look at `lottery-shards stats` before running it \
                         again ({e})"
                    )))
                }
                Err(e) => return Err(Error::from(e)),
            }
        }
        Err(Error::Cluster(format!(
            "{key}: no master took the command after 5 tries (failover or resharding in \
             progress?), it was not run: try again ({last})"
        )))
    }

    /// `EVAL script 1 key args...`, routed by `key`.
    pub fn eval<T: FromRedisValue>(
        &mut self,
        script: &str,
        key: &str,
        args: &[String],
    ) -> Result<T> {
        let mut c = redis::cmd("EVAL");
        c.arg(script).arg(1).arg(key);
        for a in args {
            c.arg(a);
        }
        self.query(&c)
    }
}

/// Reads `CLUSTER NODES` from the first node that answers: the seeds, then `known` (nodes
/// seen before). Returns the topology and the URL of the node that answered. An
/// authentication error from every node that refused is [`Error::Auth`].
fn read_topology(seeds: &[String], known: &[String]) -> Result<(Topology, String)> {
    let mut tried: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut auth: Option<String> = None;
    let candidates = seeds
        .iter()
        .cloned()
        .chain(known.iter().map(|a| node_url(&seeds[0], a)));
    for url in candidates {
        if tried.contains(&url) {
            continue;
        }
        tried.push(url.clone());
        let text: redis::RedisResult<String> = (|| {
            let client = redis::Client::open(url.as_str())?;
            let mut c = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            c.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
            redis::cmd("CLUSTER").arg("NODES").query(&mut c)
        })();
        let shown = redact(&url);
        match text {
            Ok(text) => {
                let t = Topology::from_cluster_nodes(&text, &seed_host(&url))
                    .map_err(|e| Error::Cluster(format!("{shown}: {e}")))?;
                if t.masters.is_empty() {
                    errors.push(format!("{shown}: no master serves any slot"));
                    continue;
                }
                return Ok((t, url));
            }
            Err(e) if is_auth_error(&e) => {
                auth.get_or_insert_with(|| format!("{shown}: {e}"));
            }
            Err(e) => errors.push(format!("{shown}: {e}")),
        }
    }
    if let Some(a) = auth {
        return Err(Error::Auth(format!(
            "authentication refused ({a}): check the user and password in --cluster / \
             LOTTERY_CLUSTER"
        )));
    }
    Err(Error::Cluster(format!(
        "cluster unreachable: no node answers CLUSTER NODES ({})",
        errors.join("; ")
    )))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A redis-rs cluster connection started from `via` (a node that just answered), the other
/// seeds and every known node as fallbacks.
fn cluster_connection(seeds: &[String], via: &str, t: &Topology) -> Result<ClusterConnection> {
    let mut nodes = vec![via.to_string()];
    for u in seeds
        .iter()
        .cloned()
        .chain(t.nodes.iter().map(|a| node_url(&seeds[0], a)))
    {
        if !nodes.contains(&u) {
            nodes.push(u);
        }
    }
    let client = ClusterClientBuilder::new(nodes)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(RETRIES)
        .build()
        .map_err(|e| Error::Usage(format!("bad --cluster addresses: {e}")))?;
    client.get_connection().map_err(|e| {
        if is_auth_error(&e) {
            Error::Auth(format!("authentication refused: {e}"))
        } else {
            Error::Cluster(format!(
                "cannot connect to the cluster ({}): {e}",
                redact(via)
            ))
        }
    })
}

/// How long a transfer step may wait for its replicas.
const WAIT_MS: u64 = 5000;

/// `WAIT n` for the `n` replicas connected to the master behind `conn`, after a write on it.
fn wait_replicas(conn: &mut redis::Connection, addr: &str, key: &str) -> Result<()> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(conn)
        .map_err(|e| Error::Cluster(format!("{addr}: INFO replication: {e}")))?;
    let replicas: i64 = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("connected_slaves:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if replicas <= 0 {
        return Ok(());
    }
    let acked: i64 = redis::cmd("WAIT")
        .arg(replicas)
        .arg(WAIT_MS)
        .query(conn)
        .map_err(|e| Error::Cluster(format!("{addr}: WAIT: {e}")))?;
    if acked < 1 {
        return Err(Error::Cluster(format!(
            "{addr}: no replica acknowledged {key}'s transfer step within {WAIT_MS} ms; \
             it is recorded and the next run finishes it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [100->-abc]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :30001@31001 myself,master - 0 0 1 connected 0-5460
aaaa8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30009@31009 master - 0 1426238318243 3 connected
bbbb8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30010@31010 master,fail - 0 1426238318243 3 connected 7
";

    #[test]
    fn parses_cluster_nodes() {
        let t = Topology::from_cluster_nodes(NODES, "10.0.0.1").unwrap();
        let ids: Vec<&str> = t.masters.iter().map(|m| &m.id[..4]).collect();
        assert_eq!(ids, ["292f", "67ed", "e7d1"]);
        assert_eq!(t.masters[2].addr, "10.0.0.1:30001");
        assert_eq!(t.owner_of_slot(0), Some(2));
        assert_eq!(t.owner_of_slot(5461), Some(1));
        assert_eq!(t.owner_of_slot(16383), Some(0));
        assert_eq!(t.node_of_key("foo"), "127.0.0.1:30003"); // slot 12182
                                                             // Every node with an address, replicas too, to find the cluster again; failing last.
        assert_eq!(
            t.nodes,
            [
                "127.0.0.1:30004",
                "127.0.0.1:30002",
                "127.0.0.1:30003",
                "10.0.0.1:30001",
                "127.0.0.1:30009",
                "127.0.0.1:30010"
            ]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(Topology::from_cluster_nodes("abc def", "h").is_err());
        assert!(Topology::from_cluster_nodes(
            "x 1.2.3.4:1@2 master - 0 0 1 connected 5-99999",
            "h"
        )
        .is_err());
    }

    #[test]
    fn seeds() {
        assert_eq!(
            normalise_seed("127.0.0.1:7101").unwrap(),
            "redis://127.0.0.1:7101"
        );
        assert_eq!(normalise_seed("redis://h:1").unwrap(), "redis://h:1");
        assert!(normalise_seed("redis://h").is_err());
        assert!(normalise_seed("http://h:1").is_err());
        assert_eq!(seed_host("redis://user:pw@host:7101"), "host");
        assert_eq!(node_url("redis://u:p@h:1", "n:2"), "redis://u:p@n:2");
        assert_eq!(node_url("redis://h:1", "n:2"), "redis://n:2");
        assert_eq!(redact("redis://u:p@h:1"), "redis://***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
