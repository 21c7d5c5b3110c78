//! Keyspace notifications, so application caches can reload a campaign when it changes.
//!
//! Events (class `d`, module key events: enable with `notify-keyspace-events Kd` for
//! `__keyspace@<db>__:<key>` messages, `Ed` for `__keyevent@<db>__:<event>` messages, or both
//! `KEd`; `A` includes `d`):
//! - `lottery.configure`: LOTTERY.CONFIGURE created or changed the campaign;
//! - `lottery.restock`: LOTTERY.RESTOCK, or a TRANSFER OUT/IN step that moved stock;
//! - `lottery.pause` / `lottery.resume`;
//! - `lottery.soldout`: a prize's remaining stock went from above 0 to 0 (a win, RESTOCK or
//!   TRANSFER OUT). It follows the step's own event.
//!
//! As with Redis's own commands, a replica raises the same events when it applies the effects
//! (LOTTERY.APPLY from its master), so a cache may subscribe to any node. Nothing is raised
//! while an AOF is loaded.

use crate::engine::campaign::Campaign;
use crate::ffi::{server, Str};
use redis_module::{raw, Context};
use std::ffi::CStr;

pub const CONFIGURE: &CStr = c"lottery.configure";
pub const RESTOCK: &CStr = c"lottery.restock";
pub const PAUSE: &CStr = c"lottery.pause";
pub const RESUME: &CStr = c"lottery.resume";
pub const SOLDOUT: &CStr = c"lottery.soldout";

/// Raises `event` (class `d`) on `key`. A failure is ignored: the event is advisory.
pub fn event(ctx: &Context, event: &CStr, key: Str<'_>) {
    server::notify(ctx, raw::REDISMODULE_NOTIFY_MODULE, event, key);
}

/// `lottery.soldout` on `key`.
pub fn soldout(ctx: &Context, key: Str<'_>) {
    event(ctx, SOLDOUT, key);
}

/// The remaining stock of prize `i` (None: no such prize, or INF).
pub fn stock_of(c: &Campaign, i: usize) -> Option<u64> {
    c.prizes().get(i).and_then(|p| p.stock)
}

/// After a draw committed: `won` is the index of the prize it gave (the prize had stock
/// before), so stock 0 now means this win sold it out.
pub fn soldout_if_empty(ctx: &Context, key: Str<'_>, c: &Campaign, won: Option<usize>) {
    if let Some(i) = won {
        if stock_of(c, i) == Some(0) {
            soldout(ctx, key);
        }
    }
}

/// After a RESTOCK (or its effect) set a prize's stock from `before` to `after`:
/// `lottery.restock`, then `lottery.soldout` if it went from above 0 to 0.
pub fn restocked(ctx: &Context, key: Str<'_>, before: Option<u64>, after: Option<u64>) {
    event(ctx, RESTOCK, key);
    if after == Some(0) && before.is_some_and(|b| b > 0) {
        soldout(ctx, key);
    }
}

/// After a transfer step: as `restocked`, but only when the stock changed.
pub fn transferred(ctx: &Context, key: Str<'_>, before: Option<u64>, after: Option<u64>) {
    if before != after {
        restocked(ctx, key, before, after);
    }
}
