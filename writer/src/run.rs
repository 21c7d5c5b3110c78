//! Running the writers: one in this thread, or one thread per shard.

use crate::award::Award;
use crate::consumer::Writer;
use crate::counts::Counts;
use crate::{log, EXIT_FATAL};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs `writers` until they stop; the exit code. `sharded`: one thread per shard and a last
/// `stopped` line with the totals.
/// `award`: the delivery thread, stopped (and waited for) once the writers stopped.
pub fn run(
    mut writers: Vec<Writer>,
    sharded: bool,
    stop: &Arc<AtomicBool>,
    mut award: Option<Award>,
) -> i32 {
    // Publishes until it is dropped, when this function returns.
    let _status = crate::status::spawn(&writers, award.as_ref().map(|a| a.stats.clone()), stop);
    if !sharded {
        let mut w = writers.pop().expect("one campaign");
        let code = w.run();
        if let Some(a) = award.as_mut() {
            a.finish(stop);
        }
        w.summary("stopped");
        return code;
    }

    // One thread per shard; they share the stop flag (the signals stay blocked in them:
    // the mask is inherited from this thread).
    let n = writers.len();
    let mut handles = Vec::new();
    for mut w in writers {
        let key = w.campaign.clone();
        let h = std::thread::Builder::new()
            .name(format!("shard-{}", handles.len()))
            .spawn({
                let stop = Arc::clone(stop);
                move || {
                    log::set_shard(Some(&key));
                    let code = w.run();
                    if code != 0 && code != crate::signals::EXIT_SIGNALLED_TWICE {
                        // One shard cannot go on: stop the others too (cleanly).
                        stop.store(true, Ordering::SeqCst);
                    }
                    w.summary("stopped");
                    (w.counts, code)
                }
            });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                log!("error", "startup_failed", what = "thread", error = e);
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    let mut total = Counts::default();
    let mut code = 0;
    let spawned = handles.len();
    for h in handles {
        match h.join() {
            // The first failure's code wins over the others' (which only stopped).
            Ok((c, shard_code)) => {
                total.add(&c);
                if code == 0 || (code == crate::signals::EXIT_SIGNALLED_TWICE && shard_code != 0) {
                    code = shard_code;
                }
            }
            Err(_) => {
                log!("error", "shard_panicked");
                code = EXIT_FATAL;
            }
        }
    }
    if spawned < n {
        code = EXIT_FATAL;
    }
    let mut fields = vec![("shards", n.to_string())];
    fields.extend(total.fields());
    if let Some(a) = award.as_mut() {
        a.finish(stop);
        fields.extend(a.stats.log_fields());
    }
    log::line("info", "stopped", &fields);
    code
}
