//! Errors and exit codes (documented in shards/README.md): 0 ok, 1 check failed / usage,
//! 2 cluster unreachable, 3 campaign error, 4 invalid descriptor or campaign changed under a
//! running tool, 5 authentication or permission refused. A second SIGTERM/SIGINT exits at
//! once with 128 + the signal's number.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad command line (exit 1).
    Usage(String),
    /// No node answers, the cluster is down or a connection broke (exit 2).
    Cluster(String),
    /// The campaign or a server refused something (exit 3).
    Campaign(String),
    /// The descriptor is not one `create` writes (hand-edited), or the campaign changed under
    /// a running tool: descriptor deleted or made invalid, shard keys deleted (exit 4).
    Descriptor(String),
    /// The servers refused the credentials or the user's permissions (exit 5): a
    /// configuration error, not an unreachable cluster.
    Auth(String),
}

/// Exit code of a clean stop after SIGTERM/SIGINT is 0; a second signal exits at once with
/// this plus the signal's number.
pub const SIGNAL_EXIT_BASE: i32 = 128;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 1,
            Error::Cluster(_) => 2,
            Error::Campaign(_) => 3,
            Error::Descriptor(_) => 4,
            Error::Auth(_) => 5,
        }
    }

    /// Adds what was being done in front of the message, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Error {
        match self {
            Error::Usage(m) => Error::Usage(format!("{what}: {m}")),
            Error::Cluster(m) => Error::Cluster(format!("{what}: {m}")),
            Error::Campaign(m) => Error::Campaign(format!("{what}: {m}")),
            Error::Descriptor(m) => Error::Descriptor(format!("{what}: {m}")),
            Error::Auth(m) => Error::Auth(format!("{what}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m)
            | Error::Cluster(m)
            | Error::Campaign(m)
            | Error::Descriptor(m)
            | Error::Auth(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Credentials or permissions refused: a wrong password (`WRONGPASS`, redis-rs's
/// `AuthenticationFailed`), none given (`NOAUTH`), an ACL that forbids a command (`NOPERM`).
pub fn is_auth_error(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

/// Errors about reaching the servers (a node down, a failover, a slot without a master), after
/// which the cluster is worth finding again.
pub fn is_connection_error(e: &redis::RedisError) -> bool {
    use redis::ErrorKind as K;
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            K::ClusterDown | K::MasterDown | K::TryAgain | K::ClusterConnectionNotFound
        )
        || matches!(e.code(), Some("READONLY" | "LOADING"))
}

/// A server's error reply is a campaign error; credentials refused are an auth error;
/// anything about reaching the servers is a cluster error.
impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Error {
        if is_auth_error(&e) {
            Error::Auth(format!("authentication refused: {}", server_message(&e)))
        } else if is_connection_error(&e) {
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

/// A shard key of the descriptor that holds no campaign (`ERR no such campaign`): deleted
/// under the tool, or never made. Never skipped: an [`Error::Descriptor`] naming the key.
pub fn shard_error(e: Error, key: &str) -> Error {
    match e {
        Error::Campaign(m) if m.contains("no such campaign") => Error::Descriptor(format!(
            "shard key {key} holds no campaign (deleted?): the descriptor names it; restore \
             the key or fix the campaign by hand ({m})"
        )),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ErrorKind as K;

    #[test]
    fn kinds_and_codes() {
        let auth =
            redis::RedisError::from((K::AuthenticationFailed, "Password authentication failed"));
        assert!(is_auth_error(&auth));
        assert_eq!(Error::from(auth).exit_code(), 5);
        let io =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_connection_error(&io) && !is_auth_error(&io));
        assert_eq!(Error::from(io).exit_code(), 2);
        let refused = redis::RedisError::from((K::ResponseError, "ERR", "no such prize".into()));
        assert_eq!(Error::from(refused).exit_code(), 3);
        let gone = shard_error(Error::Campaign("ERR no such campaign".into()), "{c.1}");
        assert_eq!(gone.exit_code(), 4);
        assert!(gone
            .to_string()
            .contains("shard key {c.1} holds no campaign"));
        assert_eq!(shard_error(Error::Campaign("x".into()), "k").exit_code(), 3);
    }
}
