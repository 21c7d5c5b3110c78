//! The campaign's Redis data type (`lottery-1`... exactly 9 characters: `lottery01`): what
//! RDB save/load, AOF rewrite, MEMORY USAGE, DEBUG DIGEST-VALUE, COPY and lazy free do, as
//! safe functions. The callbacks Redis calls (raw pointers in, each inside the panic guard)
//! are in `crate::ffi::datatype`.
//!
//! RDB layout (encoding version 1): the meta record as one string buffer, then for each
//! chunk of per-user records the unsigned 1 followed by the chunk buffer, then unsigned 0.
//! Loading validates every record and refuses (None) anything malformed or newer than this
//! build understands; Redis then refuses the RDB or the RESTORE.

use crate::engine::campaign::Campaign;
use crate::engine::effect::Effect;
use crate::engine::limits::MAX_KEY_LEN;
use crate::engine::persist;
use crate::ffi::datatype::{RdbIn, RdbOut};
use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::ffi::datatype::LOTTERY_TYPE;

/// Whether the server runs in cluster mode (set at load; fixed for the process's life).
pub static CLUSTER_MODE: AtomicBool = AtomicBool::new(false);

/// The RDB encoding version this build writes (Redis passes it back as `encver`).
pub const RDB_ENCVER: i32 = 1;

/// Loads a campaign written with encoding `encver`.
pub fn load(rdb: &RdbIn, encver: i32) -> Option<Campaign> {
    if !(1..=RDB_ENCVER).contains(&encver) {
        return None;
    }
    let mut c = persist::decode_meta(&rdb.buffer()?).ok()?;
    loop {
        match rdb.unsigned()? {
            0 => break,
            1 => persist::load_chunk(&mut c, &rdb.buffer()?).ok()?,
            _ => return None,
        }
    }
    // In a cluster, a DUMP restored under a name in another slot must not keep writing to
    // a stream outside its slot. (Standalone, the value keeps its stream, as with RENAME.)
    // A key too long for a default stream (only RENAME makes one) keeps its stream: the
    // RESTORE is refused rather than writing outside the slot.
    if CLUSTER_MODE.load(Ordering::Relaxed) {
        if let Some(key) = rdb.key_name() {
            if c.needs_slot_fix(key) {
                if key.len() > MAX_KEY_LEN {
                    return None;
                }
                c.fix_slot(key);
            }
        }
    }
    Some(c)
}

pub fn save(rdb: &RdbOut, c: &Campaign) {
    rdb.buffer(&persist::encode_meta(c));
    persist::for_each_chunk(c, |chunk| {
        rdb.unsigned(1);
        rdb.buffer(chunk);
    });
    rdb.unsigned(0);
}

/// The AOF rewrite of a campaign: the blobs of `LOTTERY.APPLY key <config>` then one
/// `LOTTERY.APPLY key <chunk>` per chunk.
pub fn rewrite(c: &Campaign, mut emit: impl FnMut(&[u8])) {
    emit(&Effect::Config(persist::encode_meta(c)).encode());
    persist::for_each_chunk(c, |chunk| emit(&Effect::Chunk(chunk.to_vec()).encode()));
}

/// Large campaigns are freed in a background thread (Redis's lazyfree threshold is 64).
pub fn free_effort(c: &Campaign) -> usize {
    let maps = c.users().len() + c.winners().len() + c.bans().len() + c.reqs().len();
    // Every prize name, tier weight and GUARANTEE prize is an allocation of its own too.
    let rules = c.rules();
    let ids = c.names().len()
        + rules.tiers.iter().map(|t| t.weights.len()).sum::<usize>()
        + rules.guarantee.as_ref().map_or(0, |g| g.prizes.len());
    1 + (maps + c.clients().len() + c.waiting().len() + ids) / 1024
}

/// COPY: a deep copy, with the statistics counters replicas hold (COPY runs again on them,
/// on their copy). A campaign using its key's default wins stream gets the new key's default
/// stream (see `Campaign::follow_key`). A target key longer than `MAX_KEY_LEN` is
/// refused, as CONFIGURE refuses it (Redis replies that the copy failed). A VERIFIABLE
/// campaign's copy never uses nor shows the original's seed (`Campaign::detach_seed`).
pub fn copy(c: &Campaign, to: &[u8]) -> Option<Campaign> {
    if to.len() > MAX_KEY_LEN {
        return None;
    }
    let mut n = c.clone_as_sent();
    n.follow_key(to);
    n.detach_seed(to);
    n.invalidate_table();
    Some(n)
}
