//! Statistics sent in batches. A refused draw or a REQID replay that changes nothing but a
//! statistics counter (`Campaign::count_statistic`: `replays` and the `rejected_*` counts)
//! is not replicated by itself: the campaign is noted here, and when the event loop is about
//! to sleep (after the iteration's commands, before the AOF is written and before replies
//! and the replication stream go out) each noted campaign sends its counters once, as one
//! `Stats` effect of absolute values. Replicas and the AOF so hold the same counters as the
//! master after every iteration, at the cost of one replicated command per campaign and
//! iteration instead of one per refusal.
//!
//! Where the server has no event loop event, every refusal is replicated as it happens.
//!
//! While writes are paused (a failover under way) the counters wait; a master demoted before
//! it could send them takes them back. What is saved (RDB, AOF rewrite, DUMP), copied (COPY)
//! and digested is the campaign as replicas hold it (`Campaign::sent_counters`): a file
//! written between a refusal and its batch (SHUTDOWN, SAVE, a fork's BGSAVE, DEBUG RELOAD)
//! never holds a count the replication stream has not carried at that point. A campaign
//! renamed or moved after a refusal and before the iteration ends keeps its unsent counters;
//! they are sent with its next draw.

use crate::engine::campaign::Campaign;
use crate::ffi::{events, server, Key, OwnedString, Str};
use crate::replication;
use redis_module::{Context, ContextFlags};
use std::cell::{Cell, RefCell};

thread_local! {
    /// Whether batching is on (the server has the event loop event).
    static ON: Cell<bool> = const { Cell::new(false) };
    /// The current flush round (never 0: 0 means "nothing unsent" in a campaign).
    static ROUND: Cell<u64> = const { Cell::new(1) };
    /// The campaigns noted in this round: database and key name.
    static NOTED: RefCell<Vec<(i32, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

/// Turns batching on where the server can tell the module that its event loop is about to
/// sleep. Called once at load.
pub fn init(ctx: &Context) {
    ON.with(|on| on.set(events::on_before_sleep(ctx, flush)));
}

/// Whether a refusal's counters may wait for the end of the iteration.
pub fn batching() -> bool {
    ON.with(Cell::get)
}

/// Notes that campaign `c` at `key` (in the context's database) has unsent counters.
pub fn note(ctx: &Context, key: Str<'_>, c: &mut Campaign) {
    let round = ROUND.with(Cell::get);
    let db = server::selected_db(ctx);
    if c.host.stats_round == round {
        // Noted in this round already, unless it was noted under another name or database
        // (renamed, moved or swapped since, or a copy).
        let listed = NOTED.with(|n| {
            n.try_borrow().map_or(true, |n| {
                n.get(c.host.stats_slot)
                    .is_some_and(|(d, k)| *d == db && k.as_slice() == key.bytes())
            })
        });
        if listed {
            return;
        }
    }
    c.host.stats_round = round;
    NOTED.with(|n| {
        if let Ok(mut n) = n.try_borrow_mut() {
            c.host.stats_slot = n.len();
            n.push((db, key.bytes().to_vec()));
        }
    });
}

/// Notes `c` again if it has unsent counters from an earlier round (it was renamed, moved or
/// copied before they went out).
pub fn renote(ctx: &Context, key: Str<'_>, c: &mut Campaign) {
    if c.host.stats_round != 0 {
        note(ctx, key, c);
    }
}

/// Sends the counters of every noted campaign (the event loop is about to sleep). While
/// writes are paused (`CLIENT PAUSE`, `FAILOVER`, a cluster's manual failover) nothing may
/// enter the replication stream: the campaigns stay noted for a later iteration. A master
/// demoted meanwhile cannot send them any more: it takes the unsent counts back, so it holds
/// what its new master holds.
fn flush(ctx: &Context) {
    if NOTED.with(|n| n.try_borrow().map_or(true, |n| n.is_empty())) {
        return;
    }
    let master = ctx.get_flags().contains(ContextFlags::MASTER);
    if master && server::writes_paused() {
        return;
    }
    let noted = NOTED.with(|n| n.try_borrow_mut().map(|mut n| std::mem::take(&mut *n)));
    let Ok(noted) = noted else { return };
    ROUND.with(|r| r.set(r.get().wrapping_add(1).max(1)));
    let db0 = server::selected_db(ctx);
    for (db, name) in noted {
        if !server::select_db(ctx, db) {
            continue;
        }
        let Some(name) = OwnedString::new(ctx, &name) else {
            continue;
        };
        let mut key = Key::write(ctx, name.as_str());
        if let Ok(Some(c)) = key.campaign_mut() {
            let noted = c.host.stats_round != 0;
            c.host.stats_round = 0;
            if master {
                // A campaign at a noted name is sent even when it has no note: a value put
                // there in the same iteration (DEBUG RELOAD loads every campaign afresh) may
                // hold unsent counts without knowing it. The values are absolute, so sending
                // a campaign whose counters went out already changes nothing.
                replication::send(ctx, name.as_str(), &c.stats_effect());
            } else if noted {
                c.forget_unsent_statistics();
            }
        }
    }
    server::select_db(ctx, db0);
}
