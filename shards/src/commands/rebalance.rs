//! `rebalance`: holds the mover lease and evens out the stock, once or every `--every-ms`.
//!
//! The loop survives topology changes and refuses configuration changes loudly:
//! - every round reads the descriptor again; one deleted, made invalid or listing other shard
//!   keys stops the loop with a descriptor error (exit 4), as does a shard key that holds no
//!   campaign;
//! - a round that fails on reaching the servers (a node down, a failover) finds the cluster
//!   again ([`Cluster::reconnect`]: topology and slot map read from any node that answers)
//!   and the next round starts with recovery, which finishes the interrupted transfer on
//!   whichever node is the shard's master by then (every step is idempotent by its id);
//! - refused credentials stop it (exit 5); other server refusals are printed and retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lottery_cluster::descriptor::{descriptor_key, Descriptor};
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{Error, Result};
use lottery_shards::lease::{self, Lease};
use lottery_shards::rebalance::{self, Step};

use super::{load, read_descriptor};
use crate::args::CrashAfter;

pub struct RebalanceArgs {
    pub every_ms: Option<u64>,
    pub min_move: u64,
    pub crash_after: Option<CrashAfter>,
    pub lease_ms: Option<u64>,
}

pub fn rebalance_cmd(
    c: &mut Cluster,
    name: &str,
    a: RebalanceArgs,
    stop: Arc<AtomicBool>,
) -> Result<u8> {
    let d = load(c, name)?;
    let opts = rebalance::Options {
        min_move: a.min_move,
        crash_after: a.crash_after.map(|s| match s {
            CrashAfter::Out => Step::Out,
            CrashAfter::In => Step::In,
        }),
    };
    let run = rebalance::run_id();
    let mut seq = 0u64;
    // Seen between transfers, so a transfer is never cut by the first signal and the lease is
    // released on the way out (a second signal exits at once: see main.rs).
    let stopped = || stop.load(Ordering::SeqCst);
    let mut l = Lease::new(
        name,
        &run,
        a.lease_ms.unwrap_or_else(|| lease::lease_ms(a.every_ms)),
    );
    if !l.take_for_mover(c, &stopped)? {
        return Ok(0);
    }
    let r = rebalance_loop(
        c, name, d, &run, &mut seq, &opts, a.every_ms, &mut l, &stopped,
    );
    l.release(c);
    if stopped() {
        eprintln!("lottery-shards: stopped by a signal between transfers; lease released");
    }
    r
}

/// The descriptor for the next round: read again, refused when it vanished, became invalid or
/// lists other shard keys than the run started with (only `create` writes shard keys; a
/// changed list means the campaign was changed by hand under the mover). Stock totals may
/// change (`restock --force`, `configure --force`).
fn reread(c: &mut Cluster, name: &str, first: &Descriptor) -> Result<Descriptor> {
    let key = descriptor_key(name);
    let d = read_descriptor(c, name)
        .map_err(|e| match e {
            Error::Descriptor(m) => {
                Error::Descriptor(format!("{m} (changed under the running rebalance)"))
            }
            other => other,
        })?
        .ok_or_else(|| {
            Error::Descriptor(format!(
                "the descriptor {key} was deleted under the running rebalance: stopping"
            ))
        })?;
    if d.keys != first.keys {
        return Err(Error::Descriptor(format!(
            "the shard keys of {key} changed under the running rebalance ({} shards: {} -> \
             {} shards: {}): stopping",
            first.shards,
            first.keys.join(" "),
            d.shards,
            d.keys.join(" ")
        )));
    }
    Ok(d)
}

#[allow(clippy::too_many_arguments)]
fn rebalance_loop(
    c: &mut Cluster,
    name: &str,
    first: Descriptor,
    run: &str,
    seq: &mut u64,
    opts: &rebalance::Options,
    every_ms: Option<u64>,
    l: &mut Lease,
    stopped: &dyn Fn() -> bool,
) -> Result<u8> {
    let mut d = first.clone();
    let mut rounds = 0u64;
    loop {
        l.keep(c);
        let r = (|| {
            if rounds > 0 {
                d = reread(c, name, &first)?;
            }
            rebalance::round(
                c,
                &d,
                run,
                seq,
                opts,
                &mut |line| println!("{line}"),
                &mut |c: &mut Cluster| {
                    if stopped() {
                        return true;
                    }
                    l.keep(c);
                    false
                },
            )
        })();
        rounds += 1;
        match (r, every_ms) {
            (Ok(_), None) => return Ok(0),
            (Err(e), None) => return Err(e),
            (Ok(_), Some(_)) => {}
            // A campaign changed by hand, credentials refused: going on would be wrong or
            // useless.
            (Err(e @ (Error::Descriptor(_) | Error::Auth(_) | Error::Usage(_))), Some(_)) => {
                return Err(e)
            }
            (Err(e @ Error::Cluster(_)), Some(_)) => {
                eprintln!("lottery-shards: {e} (finding the cluster again; next round)");
                if let Err(r) = c.reconnect() {
                    eprintln!("lottery-shards: {r} (trying again next round)");
                }
            }
            (Err(e), Some(_)) => {
                eprintln!("lottery-shards: {e} (trying again next round)");
            }
        }
        let until = Instant::now() + Duration::from_millis(every_ms.unwrap_or(0));
        while !stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        if stopped() {
            return Ok(0);
        }
    }
}
