//! The code pools of a campaign's code prizes (`PRIZE id weight CODES`), by the prize's
//! interned name, so a pool outlives its prize's stay in the table: the codes a prize handed
//! out are remembered for the campaign's life, and never handed out again if the prize comes
//! back. Ordered by name, so saves and digests walk them in one order everywhere.
//!
//! Next to each pool, the keys of the codes a transfer moved out of it (LOTTERY.TRANSFER OUT
//! of a sharded campaign): such a code is no longer in the pool, and LOTTERY.CODES ADD of it
//! is skipped as for a code handed out, but unlike one it comes back when a transfer brings it
//! in again (IN), so a code moved out and back is not lost.

use super::codes::{AddResult, CodePool};
use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Default)]
pub struct CodePools {
    pools: BTreeMap<u32, CodePool>,
    /// Keys (the pool's `key`) of the codes moved out of each pool and not brought back.
    moved: BTreeMap<u32, HashSet<u128>>,
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

    /// Adds a code to the prize's pool (LOTTERY.CODES ADD): a code moved out of it is refused
    /// as one handed out is.
    pub fn add(&mut self, name: u32, seed: (u64, u64), code: &[u8]) -> AddResult {
        let pool = self
            .pools
            .entry(name)
            .or_insert_with(|| CodePool::new(pool_seed(seed, name)));
        if self
            .moved
            .get(&name)
            .is_some_and(|m| m.contains(&pool.key(code)))
        {
            return AddResult::AlreadyUsed;
        }
        pool.add(code)
    }

    /// Moves the `n` oldest unused codes out of the prize's pool (TRANSFER OUT): they leave
    /// the pool and are remembered as moved out. Returns them, oldest first.
    pub fn move_out(&mut self, name: u32, seed: (u64, u64), n: u64) -> Vec<Vec<u8>> {
        let pool = self
            .pools
            .entry(name)
            .or_insert_with(|| CodePool::new(pool_seed(seed, name)));
        let moved = self.moved.entry(name).or_default();
        let mut out = Vec::new();
        while (out.len() as u64) < n {
            let Some(code) = pool.peek().map(<[u8]>::to_vec) else {
                break;
            };
            pool.remove(&code);
            moved.insert(pool.key(&code));
            out.push(code);
        }
        out
    }

    /// Moves these codes out of the prize's pool, wherever they are in it (a replica or the
    /// AOF replaying an OUT).
    pub fn move_out_exact(&mut self, name: u32, seed: (u64, u64), codes: &[Vec<u8>]) {
        let pool = self
            .pools
            .entry(name)
            .or_insert_with(|| CodePool::new(pool_seed(seed, name)));
        let moved = self.moved.entry(name).or_default();
        for code in codes {
            if pool.remove(code) {
                moved.insert(pool.key(code));
            }
        }
    }

    /// Brings codes into the prize's pool (TRANSFER IN), in order: a code moved out of it
    /// before comes back; any other is added as by `add` (one the pool holds or handed out is
    /// skipped).
    pub fn bring_in(&mut self, name: u32, seed: (u64, u64), codes: &[&[u8]]) {
        let pool = self
            .pools
            .entry(name)
            .or_insert_with(|| CodePool::new(pool_seed(seed, name)));
        let moved = self.moved.entry(name).or_default();
        for code in codes {
            moved.remove(&pool.key(code));
            pool.add(code);
        }
        if moved.is_empty() {
            self.moved.remove(&name);
        }
    }

    /// Marks a key as moved out of the prize's pool (loading a save).
    pub fn insert_moved_key(&mut self, name: u32, key: u128) {
        self.moved.entry(name).or_default().insert(key);
    }

    /// The keys of the codes moved out of each pool, by interned name.
    pub fn iter_moved(&self) -> impl Iterator<Item = (u32, u128)> + '_ {
        self.moved
            .iter()
            .flat_map(|(n, m)| m.iter().map(move |k| (*n, *k)))
    }

    /// Codes moved out of the prize's pool and not brought back.
    pub fn moved(&self, name: u32) -> u64 {
        self.moved.get(&name).map_or(0, |m| m.len() as u64)
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
        self.pools.values().map(CodePool::mem_bytes).sum::<usize>()
            + self
                .moved
                .values()
                .map(|m| m.capacity() * 24)
                .sum::<usize>()
    }
}
