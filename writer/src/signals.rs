//! SIGTERM / SIGINT: the signals are blocked in every thread but one that waits for them
//! with sigwait, so they never interrupt a socket read or a database call in the worker.
//!
//! - The first one asks for a clean stop (the `stop` flag): the batch in hand is stored and
//!   acknowledged, a last drain is recorded, then the writer exits.
//! - Another one less than a second after the first is the same request (`timeout` and
//!   process supervisors often signal both the process and its group).
//! - A second one later asks to hurry (`HURRY`): the transaction in hand is still finished and
//!   acknowledged, but the final drain is skipped (its units stay counted in the campaign and
//!   are drained by the next run); exit code 130.
//! - A third one exits at once with code 130: whatever was in hand and not yet committed stays
//!   pending (nothing is acknowledged before its commit) and is read again on the next start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set by a second signal: finish the transaction in hand, then exit without a final drain.
pub static HURRY: AtomicBool = AtomicBool::new(false);

/// Exit code after a second or third signal.
pub const EXIT_SIGNALLED_TWICE: i32 = 130;

pub fn hurry() -> bool {
    HURRY.load(Ordering::SeqCst)
}

pub fn spawn(stop: Arc<AtomicBool>) -> Result<(), String> {
    // SAFETY: plain libc calls on a local sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(format!("pthread_sigmask: error {}", rc));
        }
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` lives in this closure; sigwait only reads it.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc != 0 {
                    continue;
                }
                match first {
                    None => {
                        first = Some(Instant::now());
                        stop.store(true, Ordering::SeqCst);
                        crate::log!("info", "stop_requested", signal = sig);
                    }
                    Some(t) if t.elapsed() < Duration::from_secs(1) => {
                        crate::log!("info", "signal_repeated", signal = sig);
                    }
                    Some(_) if !HURRY.swap(true, Ordering::SeqCst) => {
                        crate::log!("warn", "second_signal_hurry", signal = sig);
                    }
                    Some(_) => {
                        crate::log!("warn", "third_signal_exit", signal = sig);
                        std::process::exit(EXIT_SIGNALLED_TWICE);
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("signal thread: {}", e))
}
