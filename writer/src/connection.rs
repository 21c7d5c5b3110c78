//! The connection to Redis: one server, or a Redis Cluster (routing in cluster.rs).

use crate::cluster;
use redis::Value;
use std::time::Duration;

/// Where the commands go: one server (one connection), or a cluster (the master owning each
/// command's key; see cluster.rs).
pub enum Redis {
    Single {
        client: redis::Client,
        con: Option<redis::Connection>,
        connect_timeout: Duration,
        read_timeout: Duration,
        write_timeout: Duration,
    },
    Cluster(cluster::Cluster),
}

impl Redis {
    pub fn connected(&self) -> bool {
        match self {
            Redis::Single { con, .. } => con.is_some(),
            Redis::Cluster(_) => true,
        }
    }

    /// Single: opens the connection. Cluster: reads the slot map (connections are opened
    /// per node as commands need them).
    pub fn connect(&mut self) -> redis::RedisResult<()> {
        match self {
            Redis::Single {
                client,
                con,
                connect_timeout,
                read_timeout,
                write_timeout,
            } => {
                let c = client.get_connection_with_timeout(*connect_timeout)?;
                c.set_read_timeout(Some(*read_timeout))?;
                c.set_write_timeout(Some(*write_timeout))?;
                *con = Some(c);
                Ok(())
            }
            Redis::Cluster(cl) => cl.refresh(),
        }
    }

    /// Runs `c`, whose key is `key` (the key routes it in a cluster). A connection error
    /// drops the connection: the next command reconnects.
    pub fn query(&mut self, key: &str, c: &redis::Cmd) -> redis::RedisResult<Value> {
        match self {
            Redis::Single { .. } => {
                if !self.connected() {
                    self.connect()?;
                }
                let Redis::Single { con: Some(con), .. } = self else {
                    unreachable!("connected above");
                };
                let r = c.query::<Value>(con);
                if let Err(e) = &r {
                    if e.is_io_error()
                        || e.is_timeout()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error()
                    {
                        self.reset();
                    }
                }
                r
            }
            Redis::Cluster(cl) => cl.query(key.as_bytes(), c),
        }
    }

    pub fn reset(&mut self) {
        match self {
            Redis::Single { con, .. } => *con = None,
            Redis::Cluster(cl) => cl.reset(),
        }
    }

    /// A new handle on the same server or cluster, with its own connections.
    pub fn fresh(&self, read_timeout: Duration) -> Redis {
        match self {
            Redis::Single {
                client,
                connect_timeout,
                write_timeout,
                ..
            } => Redis::Single {
                client: client.clone(),
                con: None,
                connect_timeout: *connect_timeout,
                read_timeout,
                write_timeout: *write_timeout,
            },
            Redis::Cluster(cl) => Redis::Cluster(cl.fresh(read_timeout)),
        }
    }
}

pub fn redis_err(what: &str, e: redis::RedisError) -> String {
    format!("Redis {}: {}", what, e)
}

pub fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}

/// Wrong password or user, or a password needed and not given: a configuration error.
pub fn is_auth(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(
            e.code(),
            Some("WRONGPASS") | Some("NOAUTH") | Some("NOPERM")
        )
}
