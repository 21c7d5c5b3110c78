//! `CodePool`: the codes of one prize (gift cards, recharge codes, single-use coupons), handed
//! out one per win, oldest first, never to two winners.
//!
//! A pool holds two sets: the **unused** codes, in the order they were added, and the
//! **used** ones (handed out). Only the 128-bit key of a used code is kept, so adding it again
//! is refused without keeping its bytes. A removed code leaves no trace: it may be added again.
//!
//! # Design
//!
//! * **Keys.** A code's key is its SipHash-1-3 (128-bit, keyed by the pool's seed), never 0.
//!   Two codes are the same code when their keys are equal; with a secret 128-bit key nobody
//!   can make two codes collide, and by chance it takes about 2^64 codes.
//! * **Arena.** Unused code bytes live in chunks of at most `CHUNK` (16 KiB) bytes, each a
//!   run of records `[header: u16 LE][code bytes]`. The header holds the code's length (1 to
//!   `MAX_CODE_LEN`) and a `DEAD` flag. A record never straddles two chunks. Chunks form a
//!   doubly linked list, oldest first, over a slab of chunk slots (freed slots are reused), so
//!   a chunk keeps its handle (its slot) while chunks before it come and go; only `tidy`
//!   moves a chunk to another slot, to keep the slab small.
//! * **Index.** A `SegMap<u64>` maps each code's key to its position, `handle << 32 | offset`
//!   within the chunk, or to `USED`. It gives O(1) dedupe on add, and O(1) lookup for
//!   `remove` and `take_exact`.
//! * **Order.** Codes are appended to the last chunk (the *tail*), which grows by doubling up
//!   to `CHUNK` and is then *sealed* and followed by a new one. `take` hands out the first
//!   live record of the first chunk (the *head*): each chunk keeps `first`, the offset before
//!   which everything is consumed, and the head's `first` always points at a live record. A
//!   removed code is marked `DEAD` where it is (a tombstone); when it reaches the head it is
//!   skipped once, so `take` is amortised O(1) however long a run of tombstones.
//! * **Compaction.** Tombstones are reclaimed by rebuilding chunks, which moves their live
//!   records into a new buffer just big enough and points the moved keys at their new
//!   positions (each moved code is hashed again). After a tombstone lands in a chunk:
//!   - a chunk left with no live record is freed (the tail is emptied in place, keeping its
//!     buffer);
//!   - otherwise the tail is left as it is (it holds at most one chunk of bytes);
//!   - a chunk whose live bytes, added to a neighbour's, come to at most `CHUNK / 2` is merged
//!     with that neighbour (never the tail), at most once on each side;
//!   - otherwise a chunk whose dead bytes exceed its live bytes is compacted on its own.
//!
//!   The same check runs on a chunk when it is sealed. Order is kept: a merge puts the
//!   earlier chunk's records first. A `take` only moves the head's `first` (the head is one
//!   chunk, dropped once it is used up). When the pool has no unused code left, the whole
//!   arena is freed.
//!
//! # Bounds
//!
//! Memory: apart from the head and the tail, every chunk has at most as many dead bytes as
//! live ones, and any two adjacent chunks between them hold more than `CHUNK / 2` live bytes.
//! So a pool with `L` live record bytes has at most `4 L / CHUNK + 3` chunks, and its arena
//! takes at most `2.5 L` bytes (`2 L`, rounded up to the allocator's size classes) plus two
//! chunks plus 530 bytes of slack per chunk: removing all but one code per chunk cannot grow
//! it relative to the unused codes. The index keeps one entry per code, unused or used
//! (about 30 bytes). The chunk slab holds at most twice the chunks in use plus `SLAB_SLACK`
//! slots of 40 bytes: when freed chunks leave it emptier than that, the chunk in its last
//! slot moves down to a free one (`tidy`).
//!
//! Work: every operation is O(code length) amortised. The tail is never rebuilt, so each chunk
//! is sealed only after it took in `CHUNK - 514` bytes of new codes, and a merge frees a
//! chunk: merges are at most the seals, moving at most `CHUNK / 2` bytes each. A compaction
//! moves fewer bytes than the tombstones it reclaims. A slab move takes one slot off the
//! slab's end for good, and a slot is only added when a chunk is opened (the first one, or
//! one at a seal), so moves are at most the seals plus one, moving at most `CHUNK` bytes
//! each. Moving a byte costs a copy and a share of one SipHash and one index insert per
//! record: all told, at most about 1.5 times the bytes added plus the bytes removed (the
//! tests check twice plus once). A single change does at most two merges or one compaction,
//! then at most four slab moves (two per chunk it freed): it moves at most `5 * CHUNK` bytes,
//! whatever the pool's size (each index insert being bounded as `SegMap` says); a `take`
//! moves nothing but slab moves, and those only after it emptied the head chunk into a slab
//! past its bound.
//!
//! Nothing here panics on any input, and there is no `unsafe`.

use super::limits::{MAX_CODES, MAX_CODE_LEN};
use super::segmap::SegMap;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;
use std::mem::size_of;

/// Largest chunk, in bytes. Big enough that a chunk's header and its unfilled end are noise
/// (40 bytes a chunk, and at most 514 unused at its end: 16,384 is 910 records of 16-byte
/// codes and 4 bytes over), small enough that an operation's rebuilds stay short: a merge
/// moves at most `CHUNK / 2` bytes and hashes each moved code again, about 0.3 ms for 8 KiB
/// of 3-byte codes, measured in `speed_and_worst_operation` (64 KiB chunks took over 1 ms).
const CHUNK: usize = 16 * 1024;
/// Two adjacent chunks (neither the tail) whose live bytes come to at most this are merged.
const MERGE_AT: usize = CHUNK / 2;
/// Bytes of a record's header.
const HDR: usize = 2;
/// The header's flag for a removed (or handed out in place) record.
const DEAD: u16 = 0x8000;
/// The header's length bits: 10 bits hold up to 1023 >= `MAX_CODE_LEN`.
const LEN_MASK: u16 = 0x03FF;
/// First capacity of a tail chunk, so a pool of a few codes stays small.
const MIN_TAIL: usize = 128;
// What the code relies on: a tail's growth can always reach a record's need, and a code's
// length fits the header's length bits.
const _: () = assert!(MIN_TAIL < CHUNK && MAX_CODE_LEN <= LEN_MASK as usize);
/// The jemalloc size class that serves an `n`-byte buffer (jemalloc serves Redis module
/// allocations): 8, 16, then multiples of 16 up to 128, then four classes per doubling
/// (`4, 5, 6, 7 << k`). Buffers are asked for at that size, so the capacity `mem_bytes`
/// counts is what the allocator hands out. Saturates near `usize::MAX`.
fn size_class(n: usize) -> usize {
    if n <= 16 {
        return n.div_ceil(8) * 8;
    }
    // 2^k < n <= 2^(k + 1), with k >= 4.
    let k = usize::BITS - 1 - (n - 1).leading_zeros();
    let step = (1usize << (k - 2)).max(16);
    n.div_ceil(step).saturating_mul(step)
}

/// Index value of a code handed out.
const USED: u64 = u64::MAX;
/// No chunk.
const NIL: u32 = u32::MAX;
/// `prev` and `next` of a free slot. Handles stay below it.
const FREE: u32 = u32::MAX - 1;
/// The slab may hold this many slots over twice the chunks in use before `tidy` moves the
/// last chunk down: 2.5 KB of slots, so small pools never pay for a move. Tests use 2, so
/// that every test moves chunks.
#[cfg(not(test))]
const SLAB_SLACK: usize = 64;
#[cfg(test)]
const SLAB_SLACK: usize = 2;

/// What `add` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddResult {
    /// Appended: the newest unused code.
    Added,
    /// Already among the unused codes: nothing changed.
    Duplicate,
    /// Handed out before: never added again.
    AlreadyUsed,
    /// The pool holds `MAX_CODES` codes, unused and used.
    Full,
    /// Empty, or longer than `MAX_CODE_LEN`.
    Invalid,
}

/// One chunk of the arena, a node of the chunk list.
#[derive(Clone)]
struct Chunk {
    /// Records, at most `CHUNK` bytes.
    data: Vec<u8>,
    /// Everything before this offset is consumed (handed out, or a tombstone skipped).
    /// Only the head's is ever past 0.
    first: u32,
    /// Bytes of the live records (headers included).
    live: u32,
    prev: u32,
    next: u32,
}

impl Chunk {
    /// A new tail after `prev`.
    fn empty(prev: u32) -> Chunk {
        Chunk {
            data: Vec::new(),
            first: 0,
            live: 0,
            prev,
            next: NIL,
        }
    }

    /// What a free slot holds.
    fn freed() -> Chunk {
        Chunk {
            data: Vec::new(),
            first: 0,
            live: 0,
            prev: FREE,
            next: FREE,
        }
    }

    fn is_free(&self) -> bool {
        self.prev == FREE
    }

    fn live(&self) -> usize {
        self.live as usize
    }

    /// Tombstone bytes at or after `first`.
    fn dead(&self) -> usize {
        self.data
            .len()
            .saturating_sub(self.first as usize)
            .saturating_sub(self.live())
    }
}

/// The codes of one prize; see the module docs.
#[derive(Clone)]
pub struct CodePool {
    seed: (u64, u64),
    /// Key of every code, unused (its position) or used (`USED`).
    index: SegMap<u64>,
    /// Slab of chunk slots. Every free slot is listed in `free`, which may also hold stale
    /// entries (slots since reused or cut off): they are skipped when popped.
    chunks: Vec<Chunk>,
    free: Vec<u32>,
    /// Chunks in the list (slots in use).
    in_use: usize,
    /// Chunks freed since the last `tidy`.
    freed_now: usize,
    head: u32,
    tail: u32,
    /// Sum of the chunks' buffer capacities, which keeps `mem_bytes` O(1).
    arena_cap: usize,
    unused: u64,
    used: u64,
    /// Bytes copied by rebuilds, to check that compaction work stays amortised.
    #[cfg(test)]
    moved: usize,
}

/// Whether a code may be stored: 1 to `MAX_CODE_LEN` bytes.
fn valid(code: &[u8]) -> bool {
    (1..=MAX_CODE_LEN).contains(&code.len())
}

/// The index value of the record at `off` in chunk `h`. Never `USED`: `off < CHUNK`.
fn pos(h: u32, off: usize) -> u64 {
    (u64::from(h) << 32) | off as u64
}

/// The chunk and offset of an index value other than `USED`.
fn unpos(v: u64) -> (u32, usize) {
    ((v >> 32) as u32, (v & 0xFFFF_FFFF) as usize)
}

/// The record at `off`: whether it is dead, and its code's length. None when no whole record
/// starts there (the end of the chunk, or bytes no writer made).
fn record(data: &[u8], off: usize) -> Option<(bool, usize)> {
    let end = off.checked_add(HDR)?;
    let h: [u8; HDR] = data.get(off..end)?.try_into().ok()?;
    let w = u16::from_le_bytes(h);
    let len = usize::from(w & LEN_MASK);
    if len == 0 || len > MAX_CODE_LEN || end.checked_add(len)? > data.len() {
        return None;
    }
    Some((w & DEAD != 0, len))
}

/// The code of the record at `off` whose length is `len`.
fn code_at(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    let start = off.checked_add(HDR)?;
    data.get(start..start.checked_add(len)?)
}

impl CodePool {
    /// An empty pool whose keys are SipHash-1-3 under `seed`. Allocates nothing.
    pub fn new(seed: (u64, u64)) -> CodePool {
        CodePool {
            seed,
            index: SegMap::new(),
            chunks: Vec::new(),
            free: Vec::new(),
            in_use: 0,
            freed_now: 0,
            head: NIL,
            tail: NIL,
            arena_cap: 0,
            unused: 0,
            used: 0,
            #[cfg(test)]
            moved: 0,
        }
    }

    /// The 128-bit key of a code (SipHash-1-3 under the pool's seed). Never 0.
    pub fn key(&self, code: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.seed.0, self.seed.1);
        h.write(code);
        h.finish128().as_u128().max(1)
    }

    /// Unused codes (the prize's stock).
    pub fn unused(&self) -> u64 {
        self.unused
    }

    /// Codes handed out.
    pub fn used(&self) -> u64 {
        self.used
    }

    fn total(&self) -> u64 {
        self.unused.saturating_add(self.used)
    }

    /// Appends `code` as the newest unused code. A code already unused, or handed out before,
    /// is refused, as is any code once the pool holds `MAX_CODES` codes.
    pub fn add(&mut self, code: &[u8]) -> AddResult {
        if !valid(code) {
            return AddResult::Invalid;
        }
        let key = self.key(code);
        match self.index.get(key) {
            Some(USED) => return AddResult::AlreadyUsed,
            Some(_) => return AddResult::Duplicate,
            None => {}
        }
        if self.total() >= MAX_CODES {
            return AddResult::Full;
        }
        let Some((h, off)) = self.append(code) else {
            return AddResult::Full;
        };
        self.index.insert(key, pos(h, off));
        self.unused += 1;
        self.tidy();
        AddResult::Added
    }

    /// Removes an unused code. False when it is not unused (absent, or handed out: a code
    /// handed out cannot be taken back).
    pub fn remove(&mut self, code: &[u8]) -> bool {
        self.kill(code, false)
    }

    /// Hands out this unused code wherever it is in the order (a replica or the AOF replaying
    /// the code a win handed out). False when it is not unused.
    pub fn take_exact(&mut self, code: &[u8]) -> bool {
        self.kill(code, true)
    }

    /// The code `take` would hand out next. O(1).
    pub fn peek(&self) -> Option<&[u8]> {
        let c = self.chunks.get(self.head as usize)?;
        let off = c.first as usize;
        let (dead, len) = record(&c.data, off)?;
        if dead {
            return None;
        }
        code_at(&c.data, off, len)
    }

    /// Hands out the oldest unused code: it becomes used. Amortised O(code length).
    pub fn take(&mut self) -> Option<Vec<u8>> {
        // Settled after every change already; this only guards the invariant.
        self.settle_head();
        let h = self.head;
        let c = self.chunks.get_mut(h as usize)?;
        let off = c.first as usize;
        // The head's `first` is settled on a live record (see `settle_head`).
        let (dead, len) = record(&c.data, off)?;
        if dead {
            return None;
        }
        let code = code_at(&c.data, off, len)?.to_vec();
        let rec = HDR + len;
        c.first = u32::try_from(off + rec).ok()?;
        c.live = c.live.saturating_sub(rec as u32);
        let key = self.key(&code);
        self.index.insert(key, USED);
        self.unused = self.unused.saturating_sub(1);
        self.used = self.used.saturating_add(1);
        self.after_kill(h, false);
        Some(code)
    }

    /// The unused codes, oldest first. Adding them in this order to an empty pool gives the
    /// same order back.
    pub fn iter_unused(&self) -> impl Iterator<Item = &[u8]> + '_ {
        Unused {
            pool: self,
            h: self.head,
            off: self
                .chunks
                .get(self.head as usize)
                .map_or(0, |c| c.first as usize),
        }
    }

    /// The keys of the codes handed out, in an order unrelated to the hash (see
    /// `SegMap::iter_scattered`), so that loading them back is fast.
    pub fn iter_used_keys(&self) -> impl Iterator<Item = u128> + '_ {
        self.index
            .iter_scattered()
            .filter(|&(_, v)| v == USED)
            .map(|(k, _)| k)
    }

    /// Records a code handed out, by its key (loading). False for key 0, for a key the pool
    /// already has (unused or used), or when the pool is full.
    pub fn insert_used_key(&mut self, key: u128) -> bool {
        if key == 0 || self.total() >= MAX_CODES || self.index.get(key).is_some() {
            return false;
        }
        self.index.insert(key, USED);
        self.used += 1;
        true
    }

    /// Prepares an empty pool for about `n` codes, unused and used, arriving from a load
    /// (see `SegMap::reserve_for_load`).
    pub fn reserve_for_load(&mut self, n: usize) {
        self.index.reserve_for_load(n);
    }

    /// Heap bytes owned: the index, the chunk buffers and the chunk slab. O(1).
    pub fn mem_bytes(&self) -> usize {
        self.index.mem_bytes()
            + self.arena_cap
            + self.chunks.capacity() * size_of::<Chunk>()
            + self.free.capacity() * size_of::<u32>()
    }

    // ---- internals ----------------------------------------------------------------------

    /// Marks an unused code dead, used (`to_used`) or forgotten, then reclaims what that
    /// allows.
    fn kill(&mut self, code: &[u8], to_used: bool) -> bool {
        if !valid(code) {
            return false;
        }
        let key = self.key(code);
        let Some(v) = self.index.get(key) else {
            return false;
        };
        if v == USED {
            return false;
        }
        let (h, off) = unpos(v);
        let Some(c) = self.chunks.get_mut(h as usize) else {
            return false;
        };
        match record(&c.data, off) {
            Some((false, len)) if off >= c.first as usize => {
                // Equal keys but other bytes would be a 128-bit collision: not this code.
                if code_at(&c.data, off, len) != Some(code) {
                    return false;
                }
                let Some(hdr) = c.data.get_mut(off..off + HDR) else {
                    return false;
                };
                // `record` read `len` from these two bytes, so `len | DEAD` is the header.
                hdr.copy_from_slice(&(len as u16 | DEAD).to_le_bytes());
                c.live = c.live.saturating_sub((HDR + len) as u32);
            }
            _ => return false,
        }
        if to_used {
            self.index.insert(key, USED);
            self.used = self.used.saturating_add(1);
        } else {
            self.index.remove(key);
        }
        self.unused = self.unused.saturating_sub(1);
        self.after_kill(h, true);
        true
    }

    /// After chunk `h` lost a live record, as a tombstone (`remove`, `take_exact`) or by
    /// `take` moving the head's `first`: reclaim what that allows, and settle the head on a
    /// live record. A take leaves the head as it is (it is one chunk, and will be dropped).
    fn after_kill(&mut self, h: u32, tombstone: bool) {
        if self.unused == 0 {
            self.release_all();
            return;
        }
        if tombstone {
            self.maintain(h);
        }
        self.settle_head();
        self.tidy();
    }

    /// Moves the head's `first` past tombstones (each is skipped once), dropping a head left
    /// with nothing live.
    fn settle_head(&mut self) {
        loop {
            let h = self.head;
            let Some(c) = self.chunks.get_mut(h as usize) else {
                return;
            };
            let mut off = c.first as usize;
            while let Some((true, len)) = record(&c.data, off) {
                off += HDR + len;
            }
            // `off` is at most `data.len()` <= `CHUNK`, so it fits.
            c.first = u32::try_from(off).unwrap_or(u32::MAX);
            if record(&c.data, off).is_some() {
                return;
            }
            // Nothing live is left in this chunk (or its bytes are not records).
            if h == self.tail {
                self.reset_tail();
                return;
            }
            c.live = 0;
            self.unlink_free(h);
        }
    }

    /// Appends a record for `code` to the tail, sealing it first if the record does not fit.
    /// None only when no chunk slot is left (more than 2^32 chunks).
    fn append(&mut self, code: &[u8]) -> Option<(u32, usize)> {
        let rec = HDR + code.len();
        let fits = self
            .chunks
            .get(self.tail as usize)
            .is_some_and(|c| c.data.len() + rec <= CHUNK);
        if !fits {
            let old = self.tail;
            let t = self.alloc(Chunk::empty(old))?;
            match self.chunks.get_mut(old as usize) {
                Some(o) => o.next = t,
                None => self.head = t,
            }
            self.tail = t;
            if old != NIL {
                // The old tail is sealed: from now on it is kept like any other chunk.
                self.maintain(old);
            }
        }
        let t = self.tail;
        let c = self.chunks.get_mut(t as usize)?;
        let len = c.data.len();
        let need = len + rec;
        let old_cap = c.data.capacity();
        if need > old_cap {
            // `need <= CHUNK` (checked above) and `CHUNK` is a size class, so `want >= need`.
            let want = size_class(need.max(old_cap.saturating_mul(2)).max(MIN_TAIL)).min(CHUNK);
            c.data.reserve_exact(want.saturating_sub(len));
        }
        let grown = c.data.capacity().saturating_sub(old_cap);
        // `code.len() <= MAX_CODE_LEN < 1024`, so it fits the length bits.
        c.data.extend_from_slice(&(code.len() as u16).to_le_bytes());
        c.data.extend_from_slice(code);
        c.live += rec as u32;
        self.arena_cap += grown;
        Some((t, len))
    }

    /// Takes a free slot (or a new one) for `chunk`.
    fn alloc(&mut self, chunk: Chunk) -> Option<u32> {
        while let Some(h) = self.free.pop() {
            if let Some(slot) = self.chunks.get_mut(h as usize).filter(|s| s.is_free()) {
                *slot = chunk;
                self.in_use += 1;
                return Some(h);
            }
        }
        let h = u32::try_from(self.chunks.len())
            .ok()
            .filter(|&h| h < FREE)?;
        self.chunks.push(chunk);
        self.in_use += 1;
        Some(h)
    }

    /// Unlinks chunk `h`, which holds nothing live, and frees its slot.
    fn unlink_free(&mut self, h: u32) {
        let Some(c) = self.chunks.get_mut(h as usize) else {
            return;
        };
        let (p, n) = (c.prev, c.next);
        let cap = c.data.capacity();
        *c = Chunk::freed();
        self.arena_cap = self.arena_cap.saturating_sub(cap);
        self.in_use = self.in_use.saturating_sub(1);
        self.freed_now += 1;
        self.free.push(h);
        match self.chunks.get_mut(p as usize) {
            Some(pc) => pc.next = n,
            None => self.head = n,
        }
        match self.chunks.get_mut(n as usize) {
            Some(nc) => nc.prev = p,
            None => self.tail = p,
        }
    }

    /// Empties the tail in place, keeping its buffer for the next codes.
    fn reset_tail(&mut self) {
        if let Some(c) = self.chunks.get_mut(self.tail as usize) {
            c.data.clear();
            c.first = 0;
            c.live = 0;
        }
    }

    /// Frees the whole arena (no unused code is left, so nothing points into it).
    fn release_all(&mut self) {
        self.chunks = Vec::new();
        self.free = Vec::new();
        self.in_use = 0;
        self.freed_now = 0;
        self.head = NIL;
        self.tail = NIL;
        self.arena_cap = 0;
    }

    /// Keeps the slab within twice the chunks in use plus `SLAB_SLACK`, at the end of every
    /// change (so no handle a caller holds moves under it): cuts free slots off its end, and
    /// while it is past that, moves the chunk in its last slot to a free one below, at most
    /// two for each chunk this change freed (a change frees at most two), or one. That keeps
    /// the bound after every change: each free adds one free slot and takes one chunk in use
    /// away, and each move takes at least one free slot off the end. Stale free-list entries
    /// are dropped once they outnumber the slots (amortised O(1)).
    fn tidy(&mut self) {
        self.cut_free_tail();
        for _ in 0..(2 * self.freed_now).max(1) {
            if self.chunks.len() <= 2 * self.in_use + SLAB_SLACK {
                break;
            }
            self.move_last_down();
            self.cut_free_tail();
        }
        self.freed_now = 0;
        if self.free.len() > self.chunks.len() + SLAB_SLACK {
            let slots = &self.chunks;
            self.free = (0..slots.len())
                .filter(|&h| slots.get(h).is_some_and(Chunk::is_free))
                .filter_map(|h| u32::try_from(h).ok())
                .collect();
        }
        // Give back what the slab and the list no longer use (amortised: only once they use
        // under half of it).
        if self.chunks.capacity() > 2 * self.chunks.len() + SLAB_SLACK {
            self.chunks
                .shrink_to(self.chunks.len() + self.chunks.len() / 2);
        }
        if self.free.capacity() > 2 * self.free.len() + SLAB_SLACK {
            self.free.shrink_to(self.free.len() + self.free.len() / 2);
        }
    }

    /// Drops the free slots at the end of the slab.
    fn cut_free_tail(&mut self) {
        while self.chunks.last().is_some_and(Chunk::is_free) {
            self.chunks.pop();
        }
    }

    /// Moves the chunk in the last slot (in use: `cut_free_tail` ran) to a free slot below
    /// it, re-pointing its neighbours and its codes' keys.
    fn move_last_down(&mut self) {
        let Some(last) = self.chunks.len().checked_sub(1) else {
            return;
        };
        let to = loop {
            // Every free slot below `last` is listed, so this finds one if there is any.
            let Some(h) = self.free.pop() else {
                return;
            };
            if (h as usize) < last && self.chunks.get(h as usize).is_some_and(Chunk::is_free) {
                break h;
            }
        };
        let Some(slot) = self.chunks.get_mut(last) else {
            return;
        };
        let c = std::mem::replace(slot, Chunk::freed());
        let mut off = c.first as usize;
        while let Some((dead, len)) = record(&c.data, off) {
            if !dead {
                if let Some(code) = code_at(&c.data, off, len) {
                    let key = self.key(code);
                    self.index.insert(key, pos(to, off));
                }
            }
            off += HDR + len;
        }
        #[cfg(test)]
        {
            self.moved += c.data.len();
        }
        let (p, n) = (c.prev, c.next);
        if let Some(slot) = self.chunks.get_mut(to as usize) {
            *slot = c;
        }
        match self.chunks.get_mut(p as usize) {
            Some(pc) => pc.next = to,
            None => self.head = to,
        }
        match self.chunks.get_mut(n as usize) {
            Some(nc) => nc.prev = to,
            None => self.tail = to,
        }
    }

    /// Reclaims what chunk `x` (just sealed, or just given a tombstone) allows: see the
    /// module docs. The tail is only ever emptied in place.
    fn maintain(&mut self, x: u32) {
        let Some(c) = self.chunks.get(x as usize) else {
            return;
        };
        if c.live == 0 {
            if x == self.tail {
                self.reset_tail();
            } else {
                self.unlink_free(x);
            }
            return;
        }
        if x == self.tail {
            return;
        }
        let mut x = x;
        let mut merged = false;
        let p = c.prev;
        if self.mergeable(p, x) {
            self.rebuild(p, Some(x));
            x = p;
            merged = true;
        }
        if let Some(n) = self.chunks.get(x as usize).map(|c| c.next) {
            if self.mergeable(x, n) {
                self.rebuild(x, Some(n));
                merged = true;
            }
        }
        if !merged
            && self
                .chunks
                .get(x as usize)
                .is_some_and(|c| c.dead() > c.live())
        {
            self.rebuild(x, None);
        }
    }

    /// Whether chunks `a` and `b` (adjacent) should become one: neither is the tail and their
    /// live bytes fit in half a chunk.
    fn mergeable(&self, a: u32, b: u32) -> bool {
        if a == self.tail || b == self.tail {
            return false;
        }
        match (self.chunks.get(a as usize), self.chunks.get(b as usize)) {
            (Some(ca), Some(cb)) => ca.live() + cb.live() <= MERGE_AT,
            _ => false,
        }
    }

    /// Rewrites chunk `a` to hold only its live records, followed by those of `b` (the next
    /// chunk, which is then freed), in a buffer just big enough, and points every moved key at
    /// its new position. O(bytes of the two chunks).
    fn rebuild(&mut self, a: u32, b: Option<u32>) {
        let Some(ca) = self.chunks.get(a as usize) else {
            return;
        };
        let cb = b.and_then(|b| self.chunks.get(b as usize));
        let size = ca.live() + cb.map_or(0, Chunk::live);
        let mut data = Vec::with_capacity(size_class(size));
        copy_live(ca, &mut data);
        if let Some(cb) = cb {
            copy_live(cb, &mut data);
        }
        #[cfg(test)]
        {
            self.moved += data.len();
        }
        // Re-point the moved keys.
        let mut off = 0;
        while let Some((_, len)) = record(&data, off) {
            if let Some(code) = code_at(&data, off, len) {
                let key = self.key(code);
                self.index.insert(key, pos(a, off));
            }
            off += HDR + len;
        }
        if let Some(b) = b {
            if let Some(cb) = self.chunks.get_mut(b as usize) {
                cb.live = 0;
            }
            self.unlink_free(b);
        }
        let Some(ca) = self.chunks.get_mut(a as usize) else {
            return;
        };
        let old_cap = ca.data.capacity();
        ca.live = u32::try_from(data.len()).unwrap_or(u32::MAX);
        ca.first = 0;
        ca.data = data;
        let new_cap = ca.data.capacity();
        self.arena_cap = self.arena_cap.saturating_sub(old_cap) + new_cap;
    }
}

/// Appends the live records of `c` (from its `first`) to `out`.
fn copy_live(c: &Chunk, out: &mut Vec<u8>) {
    let mut off = c.first as usize;
    while let Some((dead, len)) = record(&c.data, off) {
        let end = off + HDR + len;
        if !dead {
            if let Some(r) = c.data.get(off..end) {
                out.extend_from_slice(r);
            }
        }
        off = end;
    }
}

/// `iter_unused`: walks the chunk list from the head's `first`, skipping tombstones.
struct Unused<'a> {
    pool: &'a CodePool,
    h: u32,
    off: usize,
}

impl<'a> Iterator for Unused<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let c = self.pool.chunks.get(self.h as usize)?;
            match record(&c.data, self.off) {
                Some((dead, len)) => {
                    let off = self.off;
                    self.off += HDR + len;
                    if !dead {
                        return code_at(&c.data, off, len);
                    }
                }
                None => {
                    self.h = c.next;
                    self.off = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    /// splitmix64: a small deterministic PRNG.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    const SEED: (u64, u64) = (0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210);

    /// A 16-byte code numbered `i`, as a coupon batch would print them.
    fn code16(i: u64) -> Vec<u8> {
        format!("GIFT-{i:011}").into_bytes()
    }

    struct Stats {
        chunks: usize,
        live: usize,
    }

    impl CodePool {
        /// Checks every invariant the module docs state, and returns the chunk count and the
        /// live record bytes.
        fn check(&self) -> Stats {
            let mut chunks = 0;
            let mut live_total = 0;
            let mut records = 0u64;
            let mut cap = 0;
            let mut prev = NIL;
            let mut h = self.head;
            let mut prev_live: Option<usize> = None;
            while h != NIL {
                let c = &self.chunks[h as usize];
                assert_eq!(c.prev, prev);
                assert!(c.data.len() <= CHUNK);
                assert!(h == self.head || c.first == 0);
                let mut off = c.first as usize;
                let mut live = 0;
                let mut first_live = None;
                while off < c.data.len() {
                    let (dead, len) = record(&c.data, off).expect("whole records");
                    if !dead {
                        first_live.get_or_insert(off);
                        live += HDR + len;
                        records += 1;
                        let code = code_at(&c.data, off, len).unwrap();
                        assert_eq!(self.index.get(self.key(code)), Some(pos(h, off)));
                    }
                    off += HDR + len;
                }
                assert_eq!(off, c.data.len());
                assert_eq!(live, c.live());
                assert!(live > 0 || h == self.tail, "an empty chunk is freed");
                if h == self.head && live > 0 {
                    assert_eq!(first_live, Some(c.first as usize), "head settled");
                }
                let middle = h != self.head && h != self.tail;
                if middle {
                    assert!(c.dead() <= c.live(), "dead {} live {}", c.dead(), live);
                    let cap = c.data.capacity();
                    assert!(cap <= size_class(c.data.len()).max(c.data.len() + HDR + MAX_CODE_LEN));
                    if let Some(pl) = prev_live {
                        assert!(pl + live > MERGE_AT, "{pl} + {live}");
                    }
                    prev_live = Some(live);
                } else {
                    prev_live = None;
                }
                cap += c.data.capacity();
                live_total += live;
                chunks += 1;
                prev = h;
                h = c.next;
            }
            assert_eq!(prev, self.tail);
            assert_eq!(records, self.unused);
            assert_eq!(cap, self.arena_cap);
            assert_eq!(chunks, self.in_use);
            assert!(
                self.chunks.len() <= 2 * chunks + SLAB_SLACK,
                "{} slots",
                self.chunks.len()
            );
            assert!(self.chunks.last().is_none_or(|c| !c.is_free()));
            let listed: HashSet<u32> = self.free.iter().copied().collect();
            for (i, c) in self.chunks.iter().enumerate() {
                assert!(
                    !c.is_free() || listed.contains(&(i as u32)),
                    "free slot {i} listed"
                );
            }
            assert_eq!(
                self.chunks.iter().filter(|c| c.is_free()).count(),
                self.chunks.len() - chunks
            );
            let used = self.index.iter().filter(|&(_, v)| v == USED).count() as u64;
            assert_eq!(used, self.used);
            assert_eq!(self.index.len() as u64, self.unused + self.used);
            if self.unused == 0 {
                assert_eq!(self.arena_cap, 0);
                assert!(self.chunks.is_empty());
            }
            // The memory bound of the module docs.
            assert!(chunks <= 4 * live_total / CHUNK + 3, "{chunks} chunks");
            assert!(
                self.arena_cap
                    <= 5 * live_total / 2 + 2 * CHUNK + chunks * (16 + HDR + MAX_CODE_LEN),
                "arena {} for {live_total} live bytes",
                self.arena_cap
            );
            Stats {
                chunks,
                live: live_total,
            }
        }

        fn unused_vec(&self) -> Vec<Vec<u8>> {
            self.iter_unused().map(<[u8]>::to_vec).collect()
        }
    }

    #[test]
    fn size_classes() {
        let classes: Vec<usize> = (0..=1024).map(size_class).collect();
        let mut distinct = classes.clone();
        distinct.dedup();
        assert_eq!(
            distinct,
            [
                0, 8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
                640, 768, 896, 1024
            ]
        );
        for n in 0..70_000 {
            let c = size_class(n);
            assert!(c >= n && c <= n + n / 4 + 16, "{n} -> {c}");
        }
        assert_eq!(size_class(CHUNK), CHUNK);
        assert_eq!(size_class(CHUNK - 1), CHUNK);
        assert_eq!(size_class(MIN_TAIL), MIN_TAIL);
        assert!(size_class(usize::MAX) >= usize::MAX - 1);
    }

    #[test]
    fn fifo_order() {
        let mut p = CodePool::new(SEED);
        assert_eq!(p.take(), None);
        assert_eq!(p.peek(), None);
        for i in 0..10_000 {
            assert_eq!(p.add(&code16(i)), AddResult::Added);
        }
        assert_eq!(p.unused(), 10_000);
        assert!(p.check().chunks > 1);
        let all: Vec<Vec<u8>> = (0..10_000).map(code16).collect();
        assert_eq!(p.unused_vec(), all);
        for i in 0..10_000 {
            assert_eq!(p.peek(), Some(&code16(i)[..]));
            assert_eq!(p.take(), Some(code16(i)));
            if i % 997 == 0 {
                p.check();
            }
        }
        assert_eq!(p.take(), None);
        assert_eq!((p.unused(), p.used()), (0, 10_000));
        p.check();
        assert_eq!(p.mem_bytes(), p.index.mem_bytes());
    }

    #[test]
    fn dedupe_and_used_codes_are_refused() {
        let mut p = CodePool::new(SEED);
        assert_eq!(p.add(b"A"), AddResult::Added);
        assert_eq!(p.add(b"B"), AddResult::Added);
        assert_eq!(p.add(b"A"), AddResult::Duplicate);
        assert_eq!(p.unused(), 2);
        assert_eq!(p.take(), Some(b"A".to_vec()));
        assert_eq!(p.add(b"A"), AddResult::AlreadyUsed);
        assert!(!p.remove(b"A"));
        assert!(!p.take_exact(b"A"));
        assert!(p.take_exact(b"B"));
        assert_eq!(p.add(b"B"), AddResult::AlreadyUsed);
        assert_eq!((p.unused(), p.used()), (0, 2));
        // A removed code is forgotten: it may come back.
        assert_eq!(p.add(b"C"), AddResult::Added);
        assert!(p.remove(b"C"));
        assert!(!p.remove(b"C"));
        assert_eq!(p.add(b"C"), AddResult::Added);
        assert_eq!(p.take(), Some(b"C".to_vec()));
        p.check();
        // Keys: never 0, seeded.
        assert_ne!(p.key(b""), 0);
        assert_ne!(p.key(b"A"), CodePool::new((1, 2)).key(b"A"));
        assert!(!p.insert_used_key(0));
        assert!(!p.insert_used_key(p.key(b"A")));
        assert!(p.insert_used_key(p.key(b"D")));
        assert_eq!(p.add(b"D"), AddResult::AlreadyUsed);
    }

    #[test]
    fn bad_lengths_are_refused_without_panic() {
        let mut p = CodePool::new(SEED);
        let long = vec![b'x'; MAX_CODE_LEN + 1];
        for bad in [&b""[..], &long[..], &vec![0; 70_000][..]] {
            assert_eq!(p.add(bad), AddResult::Invalid);
            assert!(!p.remove(bad));
            assert!(!p.take_exact(bad));
        }
        assert_eq!(p.add(&long[..MAX_CODE_LEN]), AddResult::Added);
        assert_eq!(p.unused(), 1);
        p.check();
    }

    #[test]
    fn full_pool_refuses() {
        let mut p = CodePool::new(SEED);
        assert_eq!(p.add(b"old"), AddResult::Added);
        // Pretend the pool has handed out all but two of `MAX_CODES` (one is unused).
        p.used = MAX_CODES - 2;
        assert_eq!(p.add(b"one"), AddResult::Added);
        assert_eq!(p.add(b"two"), AddResult::Full);
        assert!(!p.insert_used_key(p.key(b"two")));
        assert_eq!(p.add(b"one"), AddResult::Duplicate);
        assert!(p.take_exact(b"old"));
        assert_eq!(p.add(b"old"), AddResult::AlreadyUsed);
        assert_eq!(p.add(b"two"), AddResult::Full);
        // Removing makes room.
        assert!(p.remove(b"one"));
        assert_eq!(p.add(b"two"), AddResult::Added);
    }

    #[test]
    fn remove_and_take_exact_in_the_middle() {
        let mut p = CodePool::new(SEED);
        let n = 20_000u64;
        for i in 0..n {
            p.add(&code16(i));
        }
        let mut model: Vec<u64> = (0..n).collect();
        // Every third code removed, every seventh handed out in place.
        for i in (0..n).rev() {
            if i % 3 == 1 {
                assert!(p.remove(&code16(i)));
                assert!(!p.remove(&code16(i)));
            } else if i % 7 == 2 {
                assert!(p.take_exact(&code16(i)));
                assert!(!p.take_exact(&code16(i)));
            } else {
                continue;
            }
            model.retain(|&m| m != i);
            if i % 1000 == 0 {
                p.check();
            }
        }
        p.check();
        let want: Vec<Vec<u8>> = model.iter().map(|&i| code16(i)).collect();
        assert_eq!(p.unused_vec(), want);
        assert_eq!(p.unused(), model.len() as u64);
        for w in &want {
            assert_eq!(p.take().as_ref(), Some(w));
        }
        assert_eq!(p.take(), None);
        p.check();
    }

    #[test]
    fn take_skips_long_runs_of_tombstones() {
        let mut p = CodePool::new(SEED);
        let n = 50_000u64;
        for i in 0..n {
            p.add(&code16(i));
        }
        // Remove the first 49,000 but every 10,000th, from the back, so the head holds a
        // long run of tombstones before each survivor until it is settled.
        for i in (1..49_000).rev() {
            if i % 10_000 != 0 {
                assert!(p.remove(&code16(i)));
            }
        }
        p.check();
        let before = p.moved;
        for want in [0, 10_000, 20_000, 30_000, 40_000] {
            assert_eq!(p.take(), Some(code16(want)));
        }
        for i in 49_000..n {
            assert_eq!(p.take(), Some(code16(i)));
        }
        assert_eq!(p.take(), None);
        assert_eq!(p.moved, before, "take never rebuilds");
        p.check();

        // Tombstones at the head itself: take_exact of the next codes in order.
        for i in 0..1_000 {
            p.add(&code16(n + i));
        }
        for i in 0..999 {
            assert!(p.take_exact(&code16(n + i)));
        }
        assert_eq!(p.peek(), Some(&code16(n + 999)[..]));
        assert_eq!(p.take(), Some(code16(n + 999)));
        p.check();
    }

    #[test]
    fn every_length_and_byte() {
        let mut p = CodePool::new(SEED);
        let mut codes = Vec::new();
        for len in 1..=MAX_CODE_LEN {
            // Bytes cycling through 0..=255 from a different start for each length.
            let code: Vec<u8> = (0..len).map(|j| ((len * 7 + j) % 256) as u8).collect();
            codes.push(code);
        }
        for b in 0..=255u8 {
            codes.push(vec![b]);
            codes.push(vec![0, b, 0]);
        }
        codes.push(vec![0xFF, 0xFE, 0x80, 0xC0]); // not UTF-8
        codes.push(vec![0; MAX_CODE_LEN]);
        codes.push(vec![0xFF; MAX_CODE_LEN]);
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        for c in &codes {
            let r = p.add(c);
            if seen.insert(c.clone()) {
                assert_eq!(r, AddResult::Added, "{c:?}");
                order.push(c.clone());
            } else {
                assert_eq!(r, AddResult::Duplicate);
            }
        }
        p.check();
        assert_eq!(p.unused_vec(), order);
        // Remove the odd ones, hand out the rest.
        for (i, c) in order.iter().enumerate() {
            if i % 2 == 1 {
                assert!(p.remove(c));
            }
        }
        p.check();
        for c in order.iter().step_by(2) {
            assert_eq!(p.take().as_ref(), Some(c));
        }
        assert_eq!(p.take(), None);
        for (i, c) in order.iter().enumerate() {
            let want = if i % 2 == 1 {
                AddResult::Added
            } else {
                AddResult::AlreadyUsed
            };
            assert_eq!(p.add(c), want);
        }
        p.check();
    }

    #[test]
    fn sparse_survivors_are_merged() {
        // One code in every 900 survives: about one per chunk (910 16-byte codes).
        let mut p = CodePool::new(SEED);
        let n = 400_000u64;
        for i in 0..n {
            p.add(&code16(i));
        }
        let full = p.check();
        for i in 0..n {
            if i % 900 != 7 && i < n - 10 {
                assert!(p.remove(&code16(i)));
            }
        }
        let s = p.check();
        println!(
            "sparse: {} chunks for {} codes before, {} chunks, arena {} bytes for {} live bytes after",
            full.chunks,
            n,
            s.chunks,
            p.arena_cap,
            s.live
        );
        assert!(s.chunks <= 3, "{} chunks", s.chunks);
        assert!(p.arena_cap <= 2 * s.live + 2 * CHUNK);
        let want: Vec<Vec<u8>> = (0..n)
            .filter(|i| i % 900 == 7 || *i >= n - 10)
            .map(code16)
            .collect();
        assert_eq!(p.unused_vec(), want);
        // Compaction work stays within the bytes added and removed.
        assert!(p.moved <= (n as usize) * 18 * 3, "moved {}", p.moved);
    }

    #[test]
    fn slab_follows_the_chunks_in_use() {
        // Keep one code in the head chunk and the codes of the newest chunks: the chunks in
        // the highest slots (the tail among them) move down as the others go.
        let mut p = CodePool::new(SEED);
        let n = 300_000u64;
        for i in 0..n {
            p.add(&code16(i));
        }
        let before = p.check();
        let keep = |i: u64| i == 5 || i >= n - 3_000;
        for i in 0..n {
            if !keep(i) {
                assert!(p.remove(&code16(i)));
            }
            if i % 20_000 == 0 {
                p.check();
            }
        }
        let s = p.check();
        println!(
            "slab: {} slots for {} chunks before, {} slots (capacity {}) for {} chunks after",
            before.chunks,
            before.chunks,
            p.chunks.len(),
            p.chunks.capacity(),
            s.chunks
        );
        assert!(p.chunks.capacity() <= 4 * s.chunks + 2 * SLAB_SLACK + 8);
        let want: Vec<Vec<u8>> = (0..n).filter(|&i| keep(i)).map(code16).collect();
        assert_eq!(p.unused_vec(), want);
        // Adds and takes go on as before.
        for i in n..n + 5_000 {
            assert_eq!(p.add(&code16(i)), AddResult::Added);
        }
        for w in want
            .iter()
            .chain((n..n + 5_000).map(code16).collect::<Vec<_>>().iter())
        {
            assert_eq!(p.take().as_ref(), Some(w));
        }
        assert_eq!(p.take(), None);
        p.check();
    }

    #[test]
    fn churn_behind_an_old_code_stays_bounded() {
        // The oldest code never leaves while codes come and go behind it: chunks are freed
        // and their slots reused.
        let mut p = CodePool::new(SEED);
        p.add(b"oldest");
        let mut r = Rng(9);
        let mut live: Vec<Vec<u8>> = Vec::new();
        let mut peak_slots = 0;
        for round in 0..300_000u64 {
            let len = 1 + r.below(40) as usize;
            let c = r.bytes(len);
            if p.add(&c) == AddResult::Added {
                live.push(c);
            }
            while live.len() > 500 {
                let i = r.below(live.len() as u64) as usize;
                let c = live.swap_remove(i);
                assert!(p.remove(&c));
            }
            peak_slots = peak_slots.max(p.chunks.len());
            if round % 50_000 == 0 {
                p.check();
            }
        }
        let s = p.check();
        assert!(s.chunks <= 3);
        assert!(peak_slots <= 4, "{peak_slots} slots");
        assert_eq!(p.peek(), Some(&b"oldest"[..]));
    }

    /// The model: unused codes by add sequence, their sequence numbers, used codes.
    #[derive(Default)]
    struct Model {
        order: BTreeMap<u64, Vec<u8>>,
        seq_of: HashMap<Vec<u8>, u64>,
        used: HashSet<Vec<u8>>,
        next: u64,
    }

    impl Model {
        fn add(&mut self, c: &[u8]) -> AddResult {
            if self.used.contains(c) {
                AddResult::AlreadyUsed
            } else if self.seq_of.contains_key(c) {
                AddResult::Duplicate
            } else {
                self.order.insert(self.next, c.to_vec());
                self.seq_of.insert(c.to_vec(), self.next);
                self.next += 1;
                AddResult::Added
            }
        }

        fn kill(&mut self, c: &[u8], to_used: bool) -> bool {
            let Some(s) = self.seq_of.remove(c) else {
                return false;
            };
            self.order.remove(&s);
            if to_used {
                self.used.insert(c.to_vec());
            }
            true
        }

        /// An unused code picked about uniformly in add order.
        fn any_unused(&self, r: &mut Rng) -> Option<Vec<u8>> {
            let lo = *self.order.first_key_value()?.0;
            let s = lo + r.below(self.next - lo);
            self.order.range(s..).next().map(|(_, c)| c.clone())
        }

        fn take(&mut self) -> Option<Vec<u8>> {
            let (_, c) = self.order.pop_first()?;
            self.seq_of.remove(&c);
            self.used.insert(c.clone());
            Some(c)
        }
    }

    fn random_code(r: &mut Rng) -> Vec<u8> {
        random_code_in(r, Lengths::Mixed)
    }

    #[derive(Clone, Copy)]
    enum Lengths {
        /// Mostly short, a fifth 100 to 512 bytes.
        Mixed,
        /// 1 to 4 bytes: thousands of records a chunk.
        Short,
        /// 400 to 512 bytes: about 35 records a chunk, and chunk ends left unfilled.
        Long,
    }

    fn random_code_in(r: &mut Rng, lengths: Lengths) -> Vec<u8> {
        let len = match lengths {
            Lengths::Mixed if r.below(5) == 0 => 100 + r.below(413) as usize,
            Lengths::Mixed => 1 + r.below(24) as usize,
            Lengths::Short => 1 + r.below(4) as usize,
            Lengths::Long => 400 + r.below(113) as usize,
        };
        if len <= 2 {
            // Short codes from a small alphabet, so some come back.
            (0..len).map(|_| r.below(4) as u8).collect()
        } else {
            r.bytes(len)
        }
    }

    #[test]
    fn randomized_against_a_model() {
        run_model(0xC0DE);
    }

    /// More seeds of the model test (release builds only, as they take a while).
    #[test]
    #[cfg_attr(debug_assertions, ignore)]
    fn randomized_against_a_model_more_seeds() {
        for seed in 1..=16 {
            run_model(seed);
        }
    }

    fn run_model(seed: u64) {
        let lengths = [Lengths::Mixed, Lengths::Short, Lengths::Long][(seed % 3) as usize];
        let random_code = |r: &mut Rng| random_code_in(r, lengths);
        let mut r = Rng(seed);
        let mut p = CodePool::new(SEED);
        let mut m = Model::default();
        let mut history: Vec<Vec<u8>> = Vec::new();
        let (mut added_bytes, mut killed_bytes) = (0usize, 0usize);
        // Phases: fill, churn, drain by removes, drain by takes, refill.
        // Phases: fill, churn, thin out by removes (down to a few codes a chunk, so chunks
        // merge and compact), drain by takes, refill, thin out again.
        let phases: [(u32, [u64; 5]); 6] = [
            (40_000, [80, 5, 5, 5, 5]),
            (40_000, [40, 10, 25, 10, 15]),
            (30_000, [30, 2, 60, 6, 2]),
            (20_000, [20, 5, 10, 10, 55]),
            (40_000, [70, 5, 10, 5, 10]),
            (30_000, [27, 1, 62, 8, 2]),
        ];
        let mut ops = 0;
        for (n, mix) in phases {
            for _ in 0..n {
                let roll = r.below(100);
                let code = |r: &mut Rng, history: &Vec<Vec<u8>>| {
                    if history.is_empty() || r.below(3) == 0 {
                        random_code(r)
                    } else {
                        history[r.below(history.len() as u64) as usize].clone()
                    }
                };
                if roll < mix[0] {
                    let c = code(&mut r, &history);
                    let got = p.add(&c);
                    assert_eq!(got, m.add(&c));
                    if got == AddResult::Added {
                        added_bytes += HDR + c.len();
                        history.push(c);
                    }
                } else if roll < mix[0] + mix[1] {
                    let c = if r.below(2) == 0 {
                        random_code(&mut r)
                    } else {
                        code(&mut r, &history)
                    };
                    assert_eq!(p.add(&c), m.add(&c));
                } else if roll < mix[0] + mix[1] + mix[2] {
                    let c = match r.below(2) {
                        0 => m.any_unused(&mut r).unwrap_or_default(),
                        _ => code(&mut r, &history),
                    };
                    let got = p.remove(&c);
                    assert_eq!(got, m.kill(&c, false));
                    killed_bytes += if got { HDR + c.len() } else { 0 };
                } else if roll < mix[0] + mix[1] + mix[2] + mix[3] {
                    let c = match r.below(2) {
                        0 => m.any_unused(&mut r).unwrap_or_default(),
                        _ => code(&mut r, &history),
                    };
                    let got = p.take_exact(&c);
                    assert_eq!(got, m.kill(&c, true));
                    killed_bytes += if got { HDR + c.len() } else { 0 };
                } else {
                    assert_eq!(
                        p.peek().map(<[u8]>::to_vec),
                        m.order.first_key_value().map(|(_, c)| c.clone())
                    );
                    assert_eq!(p.take(), m.take());
                }
                assert_eq!(p.unused(), m.order.len() as u64);
                assert_eq!(p.used(), m.used.len() as u64);
                ops += 1;
                if ops % 2_000 == 0 {
                    let s = p.check();
                    let want: Vec<Vec<u8>> = m.order.values().cloned().collect();
                    assert_eq!(p.unused_vec(), want);
                    if ops % 10_000 == 0 {
                        println!(
                            "op {ops}: {} unused, {} chunks, {} live bytes, arena {}, moved {}",
                            p.unused(),
                            s.chunks,
                            s.live,
                            p.arena_cap,
                            p.moved
                        );
                    }
                    let bound = 3 * s.live + 4 * CHUNK;
                    let arena = p.mem_bytes() - p.index.mem_bytes();
                    assert!(arena <= bound, "arena {arena} > {bound} at op {ops}");
                }
            }
        }
        assert_eq!(ops, 200_000);
        p.check();
        println!(
            "model: {} unused, {} used, {} bytes moved by rebuilds for {} added and {} removed",
            p.unused(),
            p.used(),
            p.moved,
            added_bytes,
            killed_bytes
        );
        assert!(p.moved <= 2 * added_bytes + killed_bytes);
        // Drain: memory goes back to the index alone.
        while p.take().is_some() {}
        p.check();
        assert_eq!(p.mem_bytes(), p.index.mem_bytes());
    }

    /// Saves `p` the way a dump would (unused codes oldest first, then used keys) and loads
    /// it into a fresh pool.
    fn reload(p: &CodePool) -> CodePool {
        let mut q = CodePool::new(p.seed);
        q.reserve_for_load((p.unused() + p.used()) as usize);
        for c in p.iter_unused() {
            assert_eq!(q.add(c), AddResult::Added);
        }
        for k in p.iter_used_keys() {
            assert!(q.insert_used_key(k));
        }
        q
    }

    #[test]
    fn save_and_load_round_trip() {
        let mut r = Rng(77);
        let mut p = CodePool::new(SEED);
        let mut all = Vec::new();
        for _ in 0..30_000 {
            let c = random_code(&mut r);
            if p.add(&c) == AddResult::Added {
                all.push(c);
            }
        }
        for c in all.iter().step_by(5) {
            p.remove(c);
        }
        for c in all.iter().skip(1).step_by(7) {
            p.take_exact(c);
        }
        for _ in 0..2_000 {
            p.take();
        }
        p.check();
        let mut q = reload(&p);
        q.check();
        assert_eq!((q.unused(), q.used()), (p.unused(), p.used()));
        assert_eq!(q.unused_vec(), p.unused_vec());
        let mut pk: Vec<u128> = p.iter_used_keys().collect();
        let mut qk: Vec<u128> = q.iter_used_keys().collect();
        pk.sort_unstable();
        qk.sort_unstable();
        assert_eq!(pk, qk);
        // Same behaviour afterwards, on every code ever seen and some new ones.
        for (i, c) in all.iter().enumerate() {
            assert_eq!(p.add(c), q.add(c));
            if i % 3 == 0 {
                assert_eq!(p.remove(c), q.remove(c));
            }
            if i % 11 == 0 {
                assert_eq!(p.take(), q.take());
            }
        }
        for _ in 0..1_000 {
            let c = random_code(&mut r);
            assert_eq!(p.add(&c), q.add(&c));
        }
        assert_eq!(q.unused_vec(), p.unused_vec());
        while let Some(c) = p.take() {
            assert_eq!(q.take(), Some(c));
        }
        assert_eq!(q.take(), None);
        // And a clone is independent.
        let mut a = reload(&q);
        let b = a.clone();
        assert_eq!(a.add(b"fresh"), AddResult::Added);
        assert_eq!(b.unused(), 0);
        b.check();
        a.check();
    }

    #[test]
    fn one_million_16_byte_codes() {
        let n = 1_000_000u64;
        let mut p = CodePool::new(SEED);
        for i in 0..n {
            assert_eq!(p.add(&code16(i)), AddResult::Added);
        }
        let s = p.check();
        let per = p.mem_bytes() as f64 / n as f64;
        println!(
            "1M 16-byte codes: {} bytes, {:.2} bytes/code (index {:.2}, arena {:.2}, {} chunks)",
            p.mem_bytes(),
            per,
            p.index.mem_bytes() as f64 / n as f64,
            p.arena_cap as f64 / n as f64,
            s.chunks
        );
        assert!(per < 60.0, "{per} bytes/code");
        for i in 0..n / 2 {
            assert_eq!(p.take(), Some(code16(i)));
        }
        p.check();
        println!(
            "half handed out: {:.2} bytes/code (index {:.2} per code, arena {:.2} per unused)",
            p.mem_bytes() as f64 / n as f64,
            p.index.mem_bytes() as f64 / n as f64,
            p.arena_cap as f64 / (n / 2) as f64
        );
        assert!(p.arena_cap <= (n as usize / 2) * 18 + 2 * CHUNK);
    }

    /// Timing at scale, and the worst single operation. Release builds only.
    #[test]
    #[cfg_attr(debug_assertions, ignore)]
    fn speed_and_worst_operation() {
        use std::time::{Duration, Instant};
        for (name, len) in [("3-byte", 3usize), ("16-byte", 16)] {
            let n = 1_000_000u64;
            let codes: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let b = i.to_le_bytes();
                    let mut c = code16(i);
                    c.truncate(len);
                    if len == 3 {
                        c.copy_from_slice(&b[..3]);
                    }
                    c
                })
                .collect();
            let mut p = CodePool::new(SEED);
            let t = Instant::now();
            for c in &codes {
                p.add(c);
            }
            let add = t.elapsed().as_nanos() as f64 / n as f64;
            // Thin out to one code in 64, in an order that keeps merging chunks, timing
            // each remove.
            let (mut worst, mut worst_moving) = (Duration::ZERO, Duration::ZERO);
            let t = Instant::now();
            let mut removes = 0;
            for (i, c) in codes.iter().enumerate() {
                if i % 64 != 0 {
                    let m0 = p.moved;
                    let t1 = Instant::now();
                    assert!(p.remove(c));
                    let e = t1.elapsed();
                    worst = worst.max(e);
                    // The slowest remove that moved records; the others can only be slow
                    // through the index (a shrinking rehash) or the machine.
                    if p.moved > m0 {
                        worst_moving = worst_moving.max(e);
                    }
                    removes += 1;
                }
            }
            let rm = t.elapsed().as_nanos() as f64 / removes as f64;
            let t = Instant::now();
            let mut taken = 0;
            while p.take().is_some() {
                taken += 1;
            }
            let take = t.elapsed().as_nanos() as f64 / taken as f64;
            println!(
                "{name} codes, 1M: add {add:.0} ns, remove {rm:.0} ns (worst {worst:?}, worst moving records {worst_moving:?}, {} bytes moved), take {take:.0} ns",
                p.moved
            );
        }
    }
}
