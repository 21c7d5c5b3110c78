//! Errors and exit codes: 0 ok, 1 check failed / usage, 2 cluster unreachable, 3 campaign error.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad command line (exit 1).
    Usage(String),
    /// No node answers, the cluster is down or a connection broke (exit 2).
    Cluster(String),
    /// The campaign or a server refused something (exit 3).
    Campaign(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 1,
            Error::Cluster(_) => 2,
            Error::Campaign(_) => 3,
        }
    }

    /// Adds what was being done in front of the message, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Error {
        match self {
            Error::Usage(m) => Error::Usage(format!("{what}: {m}")),
            Error::Cluster(m) => Error::Cluster(format!("{what}: {m}")),
            Error::Campaign(m) => Error::Campaign(format!("{what}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Cluster(m) | Error::Campaign(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// A server's error reply is a campaign error; anything about reaching the servers is a
/// cluster error.
impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Error {
        use redis::ErrorKind as K;
        let unreachable = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_cluster_error()
            || matches!(
                e.kind(),
                K::ClusterDown | K::MasterDown | K::TryAgain | K::ClusterConnectionNotFound
            );
        if unreachable {
            Error::Cluster(format!("cluster unreachable: {e}"))
        } else {
            Error::Campaign(server_message(&e))
        }
    }
}

/// The server's own words for an error reply (`ERR no such prize 'x'`), else redis-rs's text.
fn server_message(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;
