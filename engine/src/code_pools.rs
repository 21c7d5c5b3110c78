//! The code pools of a campaign's code prizes (`PRIZE id weight CODES`), by the prize's
//! interned name, so a pool outlives its prize's stay in the table: the codes a prize handed
//! out are remembered for the campaign's life, and never handed out again if the prize comes
//! back. Ordered by name, so saves and digests walk them in one order everywhere.

use super::codes::CodePool;
use std::collections::BTreeMap;

#[derive(Clone, Default)]
pub struct CodePools {
    pools: BTreeMap<u32, CodePool>,
}

/// The hash keys of a prize's pool: the campaign's, mixed with the prize's name, so the same
/// code has another key in another prize's pool.
pub fn pool_seed(seed: (u64, u64), name: u32) -> (u64, u64) {
    (
        seed.0 ^ u64::from(name).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        seed.1.rotate_left(13) ^ 0x636f_6465_7300_0000,
    )
}

impl CodePools {
    /// Unused codes of the prize with this interned name (0 without a pool).
    pub fn unused(&self, name: u32) -> u64 {
        self.pools.get(&name).map_or(0, CodePool::unused)
    }

    pub fn get(&self, name: u32) -> Option<&CodePool> {
        self.pools.get(&name)
    }

    /// The prize's pool, made empty on first use.
    pub fn pool_mut(&mut self, name: u32, seed: (u64, u64)) -> &mut CodePool {
        self.pools
            .entry(name)
            .or_insert_with(|| CodePool::new(pool_seed(seed, name)))
    }

    /// Every pool, by interned name.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &CodePool)> {
        self.pools.iter().map(|(n, p)| (*n, p))
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// Codes in every pool, unused and handed out.
    pub fn total(&self) -> u64 {
        self.pools
            .values()
            .map(|p| p.unused().saturating_add(p.used()))
            .sum()
    }

    pub fn mem_bytes(&self) -> usize {
        self.pools.values().map(CodePool::mem_bytes).sum()
    }
}
