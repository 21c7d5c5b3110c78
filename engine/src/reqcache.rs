//! REQID memory: the first WIN/LOSE reply for a (user, request id) pair, kept for a window.
//!
//! Entries live in a `SegMap` (bounded work per insert at any size) keyed by a 128-bit hash of
//! (user, request id), plus a FIFO of (made, expiry, key) in insertion order, in fixed-size
//! chunks so that neither structure ever reallocates proportionally to its size.
//!
//! An entry lives until the earlier of its own expiry (made + the window in force when it was
//! made) and made + the window in force now: lowering IDEMPOTENCY shortens the life of older
//! entries too, and IDEMPOTENCY 0 ends them all. Expired entries are evicted a few at a time
//! as draws go by (`evict`), oldest first; since an entry's end under the window in force
//! follows its insertion order, eviction never waits behind an entry made under a longer
//! window. A lookup ignores an expired entry that is not evicted yet, so memory is bounded by
//! the draws made inside one window.

use super::codec::{DResult, DecodeError, Reader, Writer};
use super::segmap::SegMap;
use std::collections::{HashMap, VecDeque};

/// Evictions done per call: more than one insert per call, so the cache always drains faster
/// than it fills, yet each call does a small bounded amount of work.
pub const EVICT_PER_CALL: usize = 64;
const CHUNK: usize = 4096;

/// A remembered DRAW reply, in compact form (see `campaign::DrawReply`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remembered {
    /// When the reply was remembered (the draw's time).
    pub made_ms: i64,
    /// `made_ms` + the IDEMPOTENCY window in force then.
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
    /// The code handed out by a remembered win of a code prize, by request key (only while
    /// the request is remembered).
    codes: HashMap<u128, Vec<u8>>,
    /// Chunks of (made, expiry, key) records, oldest first; `.0` is the chunk's next unread
    /// record.
    fifo: VecDeque<(usize, Vec<Rec>)>,
}

type Rec = (i64, i64, u128);

pub(crate) fn write_remembered(w: &mut Writer, m: &Remembered) {
    w.i64(m.expires_ms);
    w.u8(m.outcome);
    w.u32(m.prize);
    w.u64(m.win_ms);
    w.u64(m.win_seq);
    w.i64(m.chances_left);
    w.i64(m.wait_ms);
}

/// Reads a remembered reply made at `made_ms` (not part of this encoding: a draw's effect
/// has its `now`, a persisted record writes it before).
pub(crate) fn read_remembered(r: &mut Reader, made_ms: i64) -> DResult<Remembered> {
    let m = Remembered {
        made_ms,
        expires_ms: r.i64()?,
        outcome: r.u8()?,
        prize: r.u32()?,
        win_ms: r.u64()?,
        win_seq: r.u64()?,
        chances_left: r.i64()?,
        wait_ms: r.i64()?,
    };
    if m.outcome > 1 {
        return Err(DecodeError("bad remembered outcome"));
    }
    Ok(m)
}

impl Remembered {
    /// True when the entry has ended at `now` under the window in force (`window_ms`).
    pub fn expired(&self, now: i64, window_ms: u64) -> bool {
        let w = i64::try_from(window_ms).unwrap_or(i64::MAX);
        now >= self.expires_ms || now >= self.made_ms.saturating_add(w)
    }
}

impl ReqCache {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The remembered reply, if any and not expired at `now` under the window in force.
    pub fn get(&self, key: u128, now: i64, window_ms: u64) -> Option<Remembered> {
        self.map.get(key).filter(|r| !r.expired(now, window_ms))
    }

    pub fn insert(&mut self, key: u128, r: Remembered) {
        if !self.codes.is_empty() {
            self.codes.remove(&key);
        }
        self.map.insert(key, r);
        let rec = (r.made_ms, r.expires_ms, key);
        match self.fifo.back_mut() {
            Some((_, chunk)) if chunk.len() < CHUNK => chunk.push(rec),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(rec);
                self.fifo.push_back((0, chunk));
            }
        }
    }

    /// Drops up to `EVICT_PER_CALL` entries that have ended at `now` under the window in
    /// force (`window_ms`), oldest first. A chunk whose records are all read is freed.
    pub fn evict(&mut self, now: i64, window_ms: u64) {
        for _ in 0..EVICT_PER_CALL {
            let Some((head, chunk)) = self.fifo.front_mut() else {
                return;
            };
            let Some(&(made, exp, key)) = chunk.get(*head) else {
                self.fifo.pop_front();
                continue;
            };
            let rec = Remembered {
                made_ms: made,
                expires_ms: exp,
                ..Remembered::default()
            };
            if !rec.expired(now, window_ms) {
                return;
            }
            // Remove the map entry only if it is the one this record was made for: the same
            // (user, reqid) may have been remembered again since.
            if self
                .map
                .get(key)
                .is_some_and(|r| r.expires_ms == exp && r.made_ms == made)
            {
                self.map.remove(key);
                if !self.codes.is_empty() {
                    self.codes.remove(&key);
                }
            }
            *head += 1;
            if *head >= chunk.len() {
                self.fifo.pop_front();
            }
        }
    }

    /// Every record in FIFO order, with its remembered reply (for persistence).
    pub fn iter(&self) -> impl Iterator<Item = (u128, Remembered)> + '_ {
        self.fifo
            .iter()
            .flat_map(|(head, c)| c.get(*head..).unwrap_or(&[]).iter())
            .filter_map(move |&(made, exp, key)| {
                self.map
                    .get(key)
                    .filter(|r| r.expires_ms == exp && r.made_ms == made)
                    .map(|r| (key, r))
            })
    }

    /// Remembers the code a remembered win handed out (after `insert` for the same key).
    pub fn insert_code(&mut self, key: u128, code: Vec<u8>) {
        if self.map.get(key).is_some() {
            self.codes.insert(key, code);
        }
    }

    /// The code of a remembered win of a code prize.
    pub fn code(&self, key: u128) -> Option<&[u8]> {
        self.codes.get(&key).map(Vec::as_slice)
    }

    /// Every remembered code, by request key, in no particular order.
    pub fn iter_codes(&self) -> impl Iterator<Item = (u128, &[u8])> + '_ {
        self.codes.iter().map(|(k, c)| (*k, c.as_slice()))
    }

    pub fn mem_bytes(&self) -> usize {
        self.map.mem_bytes()
            + self.fifo.len() * (CHUNK * std::mem::size_of::<Rec>() + 24)
            + self.codes.values().map(|c| c.len() + 48).sum::<usize>()
    }
}
