//! SIGTERM / SIGINT: the signals are blocked in every thread but one that waits for them
//! with sigwait, so they never interrupt a socket read or a database call in the worker.
//! The first one asks for a clean stop; a second one exits at once with code 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` lives in this closure; sigwait only reads it.
            let rc = unsafe { libc::sigwait(&set, &mut sig) };
            if rc != 0 {
                continue;
            }
            if stop.swap(true, Ordering::SeqCst) {
                crate::log!("warn", "second_signal_exit", signal = sig);
                std::process::exit(130);
            }
            crate::log!("info", "stop_requested", signal = sig);
        })
        .map(|_| ())
        .map_err(|e| format!("signal thread: {}", e))
}
