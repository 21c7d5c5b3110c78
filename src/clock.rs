//! The module clock: Unix milliseconds from Redis (`RedisModule_Milliseconds`), unless a test
//! pinned it with `LOTTERY.DEBUG CLOCK` (only possible with the `debug-clock yes` load option).
//! Only the master reads it: replicas get the time inside each replicated effect.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The `debug-clock` load option (module config `lottery.debug-clock`, immutable).
pub static DEBUG_CLOCK: AtomicBool = AtomicBool::new(false);
/// Pinned time in ms; 0 = real clock.
static PINNED: AtomicI64 = AtomicI64::new(0);

pub fn now_ms() -> i64 {
    let p = PINNED.load(Ordering::Relaxed);
    if p > 0 {
        return p;
    }
    crate::ffi::server::milliseconds()
}

pub fn pin(ms: Option<i64>) {
    PINNED.store(ms.unwrap_or(0), Ordering::Relaxed);
}

pub fn debug_enabled() -> bool {
    DEBUG_CLOCK.load(Ordering::Relaxed)
}
