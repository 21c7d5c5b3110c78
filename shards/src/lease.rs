//! The mover lease: a plain string key `lottery:shards:NAME:mover` naming who moves or sets
//! stock right now, so `configure`/`restock` (which set or add stock) do not run while a
//! `rebalance` has transfers in flight.
//!
//! - `rebalance` sets it to its run id with `PX <lease>` at start, overwriting a mover's lease
//!   (a restarted mover takes over from a crashed one at once), but waiting while
//!   `configure-<pid>` / `restock-<pid>` / `codes-<pid>` holds it; it refreshes it before every round and every
//!   transfer (only its own: compare-and-PEXPIRE; a lease that expired meanwhile is taken
//!   again) and deletes it at exit (compare-and-DEL).
//! - `configure` / `restock` / `codes add` take it only when it is free (or already theirs), refuse otherwise
//!   (unless `--force`), and delete it at the end.
//!
//! Every script reads the key with GET first, so a key of another type (a campaign named
//! `NAME:mover` has its descriptor there) is an error, never overwritten.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use lottery_cluster::descriptor::descriptor_key;

/// Lease length of a one-shot `rebalance`, of `configure` and `restock`, and the least one of a
/// looping `rebalance`.
pub const MIN_LEASE_MS: u64 = 10_000;

/// How often a starting `rebalance` looks again while `configure`/`restock` holds the lease.
pub const POLL: Duration = Duration::from_millis(100);

pub fn lease_key(name: &str) -> String {
    format!("{}:mover", descriptor_key(name))
}

/// max(3 * every-ms, 10000) for a looping mover, 10000 for a one-shot run.
pub fn lease_ms(every_ms: Option<u64>) -> u64 {
    every_ms.map_or(MIN_LEASE_MS, |ms| ms.saturating_mul(3).max(MIN_LEASE_MS))
}

/// The holder id of `configure` / `restock` / `codes add` (`configure-<pid>`, `codes-<pid>`).
pub fn tool_id(tool: &str) -> String {
    format!("{tool}-{}", std::process::id())
}

/// Whether a lease holder is a `configure`, `restock` or `codes add` (a starting mover waits
/// for those).
pub fn is_tool(holder: &str) -> bool {
    holder.starts_with("configure-")
        || holder.starts_with("restock-")
        || holder.starts_with("codes-")
}

/// ARGV: id, ms. Takes the lease unless `configure`/`restock`/`codes add` holds it; returns
/// {'taken', previous holder or '', its PTTL} or {'busy', holder, PTTL}.
const TAKE_FOR_MOVER: &str = "local h = redis.call('GET', KEYS[1]) \
     local t = redis.call('PTTL', KEYS[1]) \
     if h and h ~= ARGV[1] and (string.sub(h, 1, 10) == 'configure-' \
        or string.sub(h, 1, 8) == 'restock-' or string.sub(h, 1, 6) == 'codes-') then \
        return {'busy', h, t} end \
     redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
     return {'taken', h or '', t}";

/// ARGV: id, ms. Extends the lease when it is ours, takes it when nobody holds it; returns
/// {'kept'|'taken', id, ms} or {'other', holder, PTTL}.
const KEEP: &str = "local h = redis.call('GET', KEYS[1]) \
     if h == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
        return {'kept', h, tonumber(ARGV[2])} end \
     if not h then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
        return {'taken', ARGV[1], tonumber(ARGV[2])} end \
     return {'other', h, redis.call('PTTL', KEYS[1])}";

/// ARGV: id. Deletes the lease when it is ours.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) end return 0";

/// What a lease script found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// We hold it now (`previous`: the holder we took it from, with its PTTL, if any).
    Ours { previous: Option<(String, i64)> },
    /// Someone else holds it.
    Other { holder: String, pttl: i64 },
}

/// Reads a script's {status, holder, pttl} reply.
pub fn parse_reply(status: &str, holder: String, pttl: i64) -> Result<Found> {
    match status {
        "taken" | "kept" => Ok(Found::Ours {
            previous: (status == "taken" && !holder.is_empty()).then_some((holder, pttl)),
        }),
        "busy" | "other" => Ok(Found::Other { holder, pttl }),
        s => Err(Error::Campaign(format!(
            "unexpected lease script reply {s:?}"
        ))),
    }
}

/// "lease 5230 ms left", or "lease without expiry" for a key set without one by hand.
pub fn left(pttl: i64) -> String {
    if pttl >= 0 {
        format!("lease {pttl} ms left")
    } else {
        "lease without expiry".to_string()
    }
}

/// Who holds the lease, for `configure`/`restock`: "a rebalance is running (run <id>, lease
/// <n> ms left)".
pub fn busy_what(holder: &str, pttl: i64) -> String {
    if holder.starts_with("codes-") {
        format!("a codes add is running ({holder}, {})", left(pttl))
    } else if is_tool(holder) {
        format!(
            "another configure or restock is running ({holder}, {})",
            left(pttl)
        )
    } else {
        format!("a rebalance is running (run {holder}, {})", left(pttl))
    }
}

/// The refusal of `configure`/`restock` while `holder` holds the lease.
pub fn busy_message(holder: &str, pttl: i64) -> String {
    let what = if is_tool(holder) {
        "wait for it"
    } else {
        "stop it first"
    };
    format!("{}: {what}, or pass --force", busy_what(holder, pttl))
}

fn script(c: &mut Cluster, src: &str, key: &str, args: &[String]) -> Result<Found> {
    let (status, holder, pttl): (String, String, i64) = c.eval(src, key, args)?;
    parse_reply(&status, holder, pttl)
}

/// One holder's lease on one campaign.
pub struct Lease {
    pub key: String,
    pub id: String,
    pub ms: u64,
    /// The last other holder a refresh warned about (one warning per holder, not per call).
    warned: Option<String>,
}

impl Lease {
    pub fn new(name: &str, id: &str, ms: u64) -> Lease {
        Lease {
            key: lease_key(name),
            id: id.to_string(),
            ms,
            warned: None,
        }
    }

    fn args(&self) -> Vec<String> {
        vec![self.id.clone(), self.ms.to_string()]
    }

    /// `rebalance` at start: waits (polling every [`POLL`]) while `configure`/`restock` holds
    /// the lease, until it is released or expires or `stopped()`, then takes it, overwriting a
    /// mover's. Returns false when stopped while waiting.
    pub fn take_for_mover(&mut self, c: &mut Cluster, stopped: &dyn Fn() -> bool) -> Result<bool> {
        let mut said = false;
        loop {
            match script(c, TAKE_FOR_MOVER, &self.key, &self.args())? {
                Found::Ours { previous } => {
                    if let Some((h, pttl)) = previous.filter(|(h, _)| *h != self.id) {
                        eprintln!(
                            "lottery-shards: taking over the mover lease of run {h} ({}): \
                             a mover that crashed, or one still running (both are safe)",
                            left(pttl)
                        );
                    }
                    return Ok(true);
                }
                Found::Other { holder, pttl } => {
                    if pttl < 0 {
                        // Set by hand without an expiry: it would never go away.
                        return Err(Error::Campaign(format!(
                            "{} holds the mover lease {} without expiry: delete it",
                            holder, self.key
                        )));
                    }
                    if !said {
                        eprintln!(
                            "lottery-shards: waiting for {holder} to finish ({})",
                            left(pttl)
                        );
                        said = true;
                    }
                    if stopped() {
                        return Ok(false);
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    /// `configure`/`restock` at start: takes the lease when free. When someone else holds
    /// it: an error naming them, or with `force` a warning, going on without the lease.
    pub fn take_for_tool(&mut self, c: &mut Cluster, force: bool) -> Result<()> {
        match script(c, KEEP, &self.key, &self.args())? {
            Found::Ours { .. } => Ok(()),
            Found::Other { holder, pttl } => {
                if force {
                    eprintln!(
                        "lottery-shards: warning: {}; going on (--force)",
                        busy_what(&holder, pttl)
                    );
                    self.warned = Some(holder);
                    Ok(())
                } else {
                    Err(Error::Campaign(busy_message(&holder, pttl)))
                }
            }
        }
    }

    /// Extends our lease (takes it again if it expired); when someone else holds it, warns
    /// once per holder and goes on. Errors reaching the key are warnings too: the work that
    /// follows reports them if they last.
    pub fn keep(&mut self, c: &mut Cluster) {
        match script(c, KEEP, &self.key, &self.args()) {
            Ok(Found::Ours { .. }) => self.warned = None,
            Ok(Found::Other { holder, pttl }) => {
                if self.warned.as_deref() != Some(holder.as_str()) {
                    eprintln!(
                        "lottery-shards: warning: the mover lease {} is held by {holder} ({}), \
                         not by {}: going on (every transfer step is idempotent)",
                        self.key,
                        left(pttl),
                        self.id
                    );
                    self.warned = Some(holder);
                }
            }
            Err(e) => eprintln!(
                "lottery-shards: warning: cannot refresh the mover lease {}: {e}",
                self.key
            ),
        }
    }

    /// Deletes the lease if it is still ours.
    pub fn release(&self, c: &mut Cluster) {
        if let Err(e) = c.eval::<i64>(RELEASE, &self.key, std::slice::from_ref(&self.id)) {
            eprintln!(
                "lottery-shards: warning: cannot release the mover lease {} (it expires in {} ms): {e}",
                self.key, self.ms
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(lease_ms(None), 10_000);
        assert_eq!(lease_ms(Some(20)), 10_000);
        assert_eq!(lease_ms(Some(3_334)), 10_002);
        assert_eq!(lease_ms(Some(60_000)), 180_000);
        assert_eq!(lease_ms(Some(u64::MAX)), u64::MAX);
    }

    #[test]
    fn keys_and_holders() {
        assert_eq!(lease_key("spring"), "lottery:shards:spring:mover");
        assert!(is_tool("configure-12") && is_tool("restock-7") && is_tool("codes-3"));
        assert!(!is_tool("1700000000000-12") && !is_tool("configure") && !is_tool(""));
        assert!(tool_id("restock").starts_with("restock-"));
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply("taken", String::new(), -2).unwrap(),
            Found::Ours { previous: None }
        );
        assert_eq!(
            parse_reply("taken", "17-3".into(), 900).unwrap(),
            Found::Ours {
                previous: Some(("17-3".into(), 900))
            }
        );
        assert_eq!(
            parse_reply("kept", "me".into(), 10_000).unwrap(),
            Found::Ours { previous: None }
        );
        assert_eq!(
            parse_reply("busy", "configure-9".into(), 50).unwrap(),
            Found::Other {
                holder: "configure-9".into(),
                pttl: 50
            }
        );
        assert!(parse_reply("huh", String::new(), 0).is_err());
    }

    #[test]
    fn messages() {
        assert_eq!(
            busy_message("17-3", 4200),
            "a rebalance is running (run 17-3, lease 4200 ms left): stop it first, or pass --force"
        );
        assert!(busy_message("restock-5", 10).starts_with("another configure or restock"));
        assert_eq!(
            busy_message("codes-8", 10),
            "a codes add is running (codes-8, lease 10 ms left): wait for it, or pass --force"
        );
        assert!(busy_message("x", -1).contains("lease without expiry"));
    }
}
