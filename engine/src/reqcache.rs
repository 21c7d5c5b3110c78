//! REQID memory: the first WIN/LOSE reply for a (user, request id) pair, kept for a window.
//!
//! Entries live in a `SegMap` (bounded work per insert at any size) keyed by a 128-bit hash of
//! (user, request id), plus a FIFO of (expiry, key) in fixed-size chunks so that neither
//! structure ever reallocates proportionally to its size. Expired entries are evicted a few at
//! a time as draws go by (`evict`), and a lookup ignores an entry past its expiry, so memory is
//! bounded by the draws made inside one window.

use super::segmap::SegMap;
use std::collections::VecDeque;

/// Evictions done per call: more than one insert per call, so the cache always drains faster
/// than it fills, yet each call does a small bounded amount of work.
pub const EVICT_PER_CALL: usize = 64;
const CHUNK: usize = 4096;

/// A remembered DRAW reply, in compact form (see `campaign::DrawReply`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remembered {
    pub expires_ms: i64,
    /// 0 = WIN, 1 = LOSE.
    pub outcome: u8,
    /// Interned prize id + 1, 0 = none.
    pub prize: u32,
    pub win_ms: u64,
    pub win_seq: u64,
    pub chances_left: i64,
    pub wait_ms: i64,
}

#[derive(Clone, Default)]
pub struct ReqCache {
    map: SegMap<Remembered>,
    /// Chunks of (expiry, key) records, oldest first; `.0` is the chunk's next unread record.
    fifo: VecDeque<(usize, Vec<(i64, u128)>)>,
}

impl ReqCache {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The remembered reply, if any and not expired at `now`.
    pub fn get(&self, key: u128, now: i64) -> Option<Remembered> {
        self.map.get(key).filter(|r| now < r.expires_ms)
    }

    pub fn insert(&mut self, key: u128, r: Remembered) {
        self.map.insert(key, r);
        match self.fifo.back_mut() {
            Some((_, chunk)) if chunk.len() < CHUNK => chunk.push((r.expires_ms, key)),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push((r.expires_ms, key));
                self.fifo.push_back((0, chunk));
            }
        }
    }

    /// Drops up to `EVICT_PER_CALL` entries whose expiry is <= now, oldest first.
    pub fn evict(&mut self, now: i64) {
        for _ in 0..EVICT_PER_CALL {
            let Some((head, chunk)) = self.fifo.front_mut() else {
                return;
            };
            let Some(&(exp, key)) = chunk.get(*head) else {
                self.fifo.pop_front();
                continue;
            };
            if exp > now {
                return;
            }
            // Remove the map entry only if it is the one this record was made for: the same
            // (user, reqid) may have been remembered again since, with a later expiry.
            if self.map.get(key).is_some_and(|r| r.expires_ms == exp) {
                self.map.remove(key);
            }
            *head += 1;
            if *head >= chunk.len() && chunk.len() >= CHUNK {
                self.fifo.pop_front();
            }
        }
    }

    /// Every record in FIFO order, with its remembered reply (for persistence).
    pub fn iter(&self) -> impl Iterator<Item = (u128, Remembered)> + '_ {
        self.fifo
            .iter()
            .flat_map(|(head, c)| c.get(*head..).unwrap_or(&[]).iter())
            .filter_map(move |&(exp, key)| {
                self.map
                    .get(key)
                    .filter(|r| r.expires_ms == exp)
                    .map(|r| (key, r))
            })
    }

    pub fn mem_bytes(&self) -> usize {
        self.map.mem_bytes() + self.fifo.len() * (CHUNK * 32 + 24)
    }
}
