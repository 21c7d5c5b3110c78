//! Process-wide counters for `INFO lottery` (also in `INFO modules` and `INFO everything`).
//!
//! - `campaigns`: campaign values alive in this instance, all databases. Kept by the data type
//!   callbacks (every value Redis frees goes through `datatype::free`; every value it gets
//!   comes from `rdb_load` (RDB, RESTORE, DEBUG RELOAD, a replica's full sync), `copy` (COPY)
//!   or `Key::set_campaign` in CONFIGURE / LOTTERY.APPLY), so DEL, FLUSHALL, expiry, RESTORE, RENAME
//!   and COPY keep it right. A value freed in the background (UNLINK / FLUSHALL ASYNC of a large
//!   campaign) leaves the count when its free runs.
//! - `internal_errors`: panics caught at the boundary with Redis (`entry::guard`); each
//!   refused its command or callback and was logged. Anything but 0 is a bug to report.
//! - `draws`, `wins`, `losses`, `replays`, `rejected_<outcome>`: the draws this instance served
//!   since it started (a replica serves none: it applies effects). `draws` = `wins` + `losses`,
//!   as in LOTTERY.STATS. The rejection fields follow `Outcome::REJECTIONS`, so an outcome added
//!   there gets its field without a change here.
//!
//! Relaxed atomics: each is one uncontended add on the command thread.

use crate::engine::campaign::Outcome;
use crate::ffi::info::Info;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

static CAMPAIGNS: AtomicI64 = AtomicI64::new(0);
static DRAWS: AtomicU64 = AtomicU64::new(0);
static WINS: AtomicU64 = AtomicU64::new(0);
static LOSSES: AtomicU64 = AtomicU64::new(0);
static REPLAYS: AtomicU64 = AtomicU64::new(0);
static INTERNAL_ERRORS: AtomicU64 = AtomicU64::new(0);

const N_REJECTIONS: usize = Outcome::REJECTIONS.len();
static REJECTED: [AtomicU64; N_REJECTIONS] = [const { AtomicU64::new(0) }; N_REJECTIONS];

/// A campaign value came to exist (load, copy, create).
pub fn campaign_created() {
    CAMPAIGNS.fetch_add(1, Relaxed);
}

/// A campaign value was freed.
pub fn campaign_freed() {
    CAMPAIGNS.fetch_sub(1, Relaxed);
}

/// A panic was caught at the boundary with Redis (`entry::guard`).
pub fn internal_error() {
    INTERNAL_ERRORS.fetch_add(1, Relaxed);
}

pub fn campaigns() -> u64 {
    u64::try_from(CAMPAIGNS.load(Relaxed)).unwrap_or(0)
}

/// One LOTTERY.DRAW reply served (call once per successful draw, after it committed).
/// `replay`: the reply came from the REQID memory (then only `replays` counts it).
pub fn record(outcome: Outcome, replay: bool) {
    if replay {
        REPLAYS.fetch_add(1, Relaxed);
        return;
    }
    match outcome {
        Outcome::Win => {
            WINS.fetch_add(1, Relaxed);
            DRAWS.fetch_add(1, Relaxed);
        }
        Outcome::Lose => {
            LOSSES.fetch_add(1, Relaxed);
            DRAWS.fetch_add(1, Relaxed);
        }
        other => {
            if let Some(i) = Outcome::REJECTIONS.iter().position(|&o| o == other) {
                if let Some(c) = REJECTED.get(i) {
                    c.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// The `INFO lottery` fields, in order (names without the `lottery_` prefix Redis adds).
pub fn fields() -> Vec<(String, Field)> {
    let mut v = vec![
        ("generator".to_string(), Field::Text(generator())),
        ("campaigns".to_string(), Field::Num(campaigns())),
        ("draws".to_string(), Field::Num(DRAWS.load(Relaxed))),
        ("wins".to_string(), Field::Num(WINS.load(Relaxed))),
        ("losses".to_string(), Field::Num(LOSSES.load(Relaxed))),
    ];
    for (o, n) in Outcome::REJECTIONS.iter().zip(REJECTED.iter()) {
        v.push((
            format!("rejected_{}", o.stat_name()),
            Field::Num(n.load(Relaxed)),
        ));
    }
    v.push(("replays".to_string(), Field::Num(REPLAYS.load(Relaxed))));
    v.push((
        "internal_errors".to_string(),
        Field::Num(INTERNAL_ERRORS.load(Relaxed)),
    ));
    v
}

/// The `rng` load option: `chacha` (ChaCha12, the default) or `xoshiro` (xoshiro256++).
fn generator() -> &'static str {
    // try_lock: INFO may run in a crash report; never wait on a lock there.
    match crate::rng::RNG_KIND.try_lock().map(|k| k.clone()) {
        Ok(crate::rng::RngKind::xoshiro) => "xoshiro",
        Ok(crate::rng::RngKind::chacha) => "chacha",
        Err(_) => "unknown",
    }
}

pub enum Field {
    Text(&'static str),
    Num(u64),
}

/// The `INFO lottery` section: one section named after the module (fields `lottery_<name>`),
/// written by the INFO callback (`crate::ffi::info`).
pub fn add_fields(info: &Info) {
    if !info.section() {
        return; // the section was not asked for
    }
    for (name, value) in fields() {
        match value {
            Field::Text(t) => info.text(&name, t),
            Field::Num(x) => info.number(&name, x),
        }
    }
}

/// Registers the INFO callback (replacing the generic one the module macro installs).
pub fn register_info(ctx: &redis_module::Context) {
    if !crate::ffi::info::register(ctx) {
        crate::entry::log(
            ctx.ctx,
            crate::entry::Level::Warning,
            "lottery: could not register the INFO callback (INFO lottery is empty)",
        );
    }
}
