//! Connections to the Redis nodes: one per node, with connect/read/write timeouts; in cluster
//! mode the masters are found with `CLUSTER SLOTS` on the seeds at every sample.

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Commands sent in one pipeline write (and replies read back before the next batch).
pub const PIPELINE_BATCH: usize = 512;

pub struct Nodes {
    seeds: Vec<ConnectionInfo>,
    cluster: bool,
    timeout: Duration,
    cons: HashMap<String, redis::Connection>,
}

/// The node's label: `host:port`, with `/db` when the database is not 0 (two databases of
/// one server are two nodes, each with its own connection).
pub fn addr_of(info: &ConnectionInfo) -> String {
    let db = match info.redis.db {
        0 => String::new(),
        n => format!("/{}", n),
    };
    let addr = match &info.addr {
        ConnectionAddr::Tcp(h, p)
        | ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => {
            if h.contains(':') {
                format!("[{}]:{}", h, p)
            } else {
                format!("{}:{}", h, p)
            }
        }
        ConnectionAddr::Unix(path) => format!("unix:{}", path.display()),
    };
    addr + &db
}

impl Nodes {
    pub fn new(urls: &[String], cluster: bool, timeout: Duration) -> Result<Nodes, String> {
        let mut seeds = Vec::new();
        for u in urls {
            let info = u
                .as_str()
                .into_connection_info()
                .map_err(|e| format!("bad --redis URL: {}", e.detail().unwrap_or("invalid")))?;
            if let Some(same) = seeds.iter().find(|s| addr_of(s) == addr_of(&info)) {
                return Err(format!(
                    "two --redis URLs name the same node {} (give each server and database once)",
                    addr_of(same)
                ));
            }
            seeds.push(info);
        }
        if seeds.is_empty() {
            return Err("no --redis URL given".into());
        }
        Ok(Nodes {
            seeds,
            cluster,
            timeout,
            cons: HashMap::new(),
        })
    }

    /// The timeout of every connect, read and write.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The labels of the `--redis` nodes.
    pub fn seed_addrs(&self) -> Vec<String> {
        self.seeds.iter().map(addr_of).collect()
    }

    /// The nodes to sample now: the seeds, or (cluster) every master the seeds' slot map
    /// names, credentials from the first seed. Errors are returned alongside.
    pub fn targets(&mut self, errors: &mut Vec<String>) -> Vec<(String, ConnectionInfo)> {
        let plain: Vec<_> = self.seeds.iter().map(|s| (addr_of(s), s.clone())).collect();
        if !self.cluster {
            return plain;
        }
        for (addr, info) in &plain {
            let reply = self
                .con(addr, info)
                .and_then(|c| redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(c));
            match reply {
                Ok(v) => {
                    let mut out: Vec<(String, ConnectionInfo)> = Vec::new();
                    for range in crate::model::array(&v).unwrap_or(&[]) {
                        let Some([_, _, master, ..]) = crate::model::array(range) else {
                            continue;
                        };
                        let Some([host, port, ..]) = crate::model::array(master) else {
                            continue;
                        };
                        let host = crate::model::lossy(crate::model::bytes(host).unwrap_or(b""));
                        let Some(port) =
                            crate::model::int(port).and_then(|p| u16::try_from(p).ok())
                        else {
                            continue;
                        };
                        let host = if host.is_empty() || host == "?" {
                            match &info.addr {
                                ConnectionAddr::Tcp(h, _) => h.clone(),
                                ConnectionAddr::TcpTls { host, .. } => host.clone(),
                                ConnectionAddr::Unix(_) => continue,
                            }
                        } else {
                            host
                        };
                        let mut ni = info.clone();
                        ni.addr = match &info.addr {
                            ConnectionAddr::TcpTls {
                                insecure,
                                tls_params,
                                ..
                            } => ConnectionAddr::TcpTls {
                                host,
                                port,
                                insecure: *insecure,
                                tls_params: tls_params.clone(),
                            },
                            _ => ConnectionAddr::Tcp(host, port),
                        };
                        let a = addr_of(&ni);
                        if !out.iter().any(|(x, _)| *x == a) {
                            out.push((a, ni));
                        }
                    }
                    if !out.is_empty() {
                        return out;
                    }
                    errors.push(format!("{}: CLUSTER SLOTS gave no masters", addr));
                }
                Err(e) => {
                    self.cons.remove(addr);
                    errors.push(format!("{}: CLUSTER SLOTS: {}", addr, e));
                }
            }
        }
        plain
    }

    /// The connection to `addr` (opened if needed, with the timeouts).
    pub fn con(
        &mut self,
        addr: &str,
        info: &ConnectionInfo,
    ) -> redis::RedisResult<&mut redis::Connection> {
        if !self.cons.contains_key(addr) {
            let c = redis::Client::open(info.clone())?.get_connection_with_timeout(self.timeout)?;
            c.set_read_timeout(Some(self.timeout))?;
            c.set_write_timeout(Some(self.timeout))?;
            self.cons.insert(addr.to_string(), c);
        }
        Ok(self.cons.get_mut(addr).expect("inserted above"))
    }

    /// Forgets the connection to `addr` (after an I/O error or timeout: the stream may be
    /// out of step).
    pub fn drop_con(&mut self, addr: &str) {
        self.cons.remove(addr);
    }

    /// Forgets connections to nodes no longer sampled.
    pub fn retain(&mut self, addrs: &[String]) {
        self.cons.retain(|a, _| addrs.contains(a));
    }
}

/// Runs `cmds` pipelined (in batches of [`PIPELINE_BATCH`]); each reply is the command's
/// value or its `Value::ServerError`. An `Err` is a connection problem.
pub fn pipeline(
    con: &mut redis::Connection,
    cmds: &[redis::Cmd],
) -> redis::RedisResult<Vec<Value>> {
    use redis::ConnectionLike;
    let mut out = Vec::with_capacity(cmds.len());
    for batch in cmds.chunks(PIPELINE_BATCH) {
        let mut packed = Vec::new();
        for c in batch {
            c.write_packed_command(&mut packed);
        }
        out.extend(con.req_packed_commands(&packed, 0, batch.len())?);
    }
    Ok(out)
}
