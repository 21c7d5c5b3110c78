//! `rebalance`: holds the mover lease and evens out the stock, once or every `--every-ms`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lottery_cluster::descriptor::Descriptor;
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{Error, Result};
use lottery_shards::lease::{self, Lease};
use lottery_shards::rebalance::{self, Step};

use super::load;
use crate::args::CrashAfter;

pub fn rebalance_cmd(
    c: &mut Cluster,
    name: &str,
    every_ms: Option<u64>,
    min_move: u64,
    crash_after: Option<CrashAfter>,
    lease_ms: Option<u64>,
) -> Result<u8> {
    let d = load(c, name)?;
    let opts = rebalance::Options {
        min_move,
        crash_after: crash_after.map(|s| match s {
            CrashAfter::Out => Step::Out,
            CrashAfter::In => Step::In,
        }),
    };
    let run = rebalance::run_id();
    let mut seq = 0u64;
    // Seen between transfers, so the lease is released on the way out.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::Usage(format!("cannot handle signals: {e}")))?;
    }
    let stopped = || stop.load(Ordering::Relaxed);
    let mut l = Lease::new(
        name,
        &run,
        lease_ms.unwrap_or_else(|| lease::lease_ms(every_ms)),
    );
    if !l.take_for_mover(c, &stopped)? {
        return Ok(0);
    }
    let r = rebalance_loop(c, &d, &run, &mut seq, &opts, every_ms, &mut l, &stopped);
    l.release(c);
    r
}

#[allow(clippy::too_many_arguments)]
fn rebalance_loop(
    c: &mut Cluster,
    d: &Descriptor,
    run: &str,
    seq: &mut u64,
    opts: &rebalance::Options,
    every_ms: Option<u64>,
    l: &mut Lease,
    stopped: &dyn Fn() -> bool,
) -> Result<u8> {
    loop {
        l.keep(c);
        let r = rebalance::round(
            c,
            d,
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
        );
        match (r, every_ms) {
            (Ok(_), None) => return Ok(0),
            (Err(e), None) => return Err(e),
            (Ok(_), Some(_)) => {}
            (Err(e), Some(_)) => {
                eprintln!("lottery-shards: {e} (trying again next round)");
                let _ = c.refresh_topology();
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
