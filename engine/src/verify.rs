//! Verifiable draws: the words a draw's randomness comes from, when the campaign is
//! VERIFIABLE (see docs/verifiable.md for the construction, which this file implements
//! exactly).
//!
//! - The seed: 32 bytes from the OS; its commitment is `hex(SHA-256(seed))`, published in the
//!   wins stream before the seed decides any draw, the seed itself revealed later.
//! - The words of draw `s` of the campaign at key `K`: `w_k` = the first 8 bytes, big-endian,
//!   of `HMAC-SHA256(seed, "redis-lottery/v1" 0x00 K 0x00 decimal(s) 0x00 decimal(k))`,
//!   k = 0, 1, 2, ...
//! - "Uniform below n": the next word `w` with `w < floor(2^64 / n) * n`, then `w mod n`
//!   (`Words` is a `Uniform`, so every pick of the engine can take it).
//! - The table pick: `x` uniform below the table's total `W`, then the first entry whose
//!   prefix sum exceeds `x` (`prefix_pick`).
//!
//! Plain Rust over `sha2`; HMAC is written out (RFC 2104) with its two padded key states
//! computed once per draw.

use super::alias::Uniform;
use super::codec::{DResult, DecodeError, Reader, Writer};
use sha2::{Digest, Sha256};

/// Seed length in bytes.
pub const SEED_LEN: usize = 32;
/// The domain separation prefix of every word's message.
pub const DOMAIN: &[u8] = b"redis-lottery/v1";

/// Which draws get a `draw` entry in the wins stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedLog {
    /// Every win (after its win entry).
    Wins,
    /// Every draw that passed the checks.
    All,
}

impl SeedLog {
    pub fn name(self) -> &'static str {
        match self {
            SeedLog::Wins => "WINS",
            SeedLog::All => "ALL",
        }
    }

    fn code(self) -> u8 {
        match self {
            SeedLog::Wins => 0,
            SeedLog::All => 1,
        }
    }

    fn from_code(v: u8) -> Option<SeedLog> {
        match v {
            0 => Some(SeedLog::Wins),
            1 => Some(SeedLog::All),
            _ => None,
        }
    }
}

/// A VERIFIABLE campaign's state: persisted (meta record) and replicated (`Effect::Seed`),
/// so a replica holds the same seed and a failover continues the same epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verifiable {
    pub log: SeedLog,
    /// The current epoch's number (1 for the first).
    pub epoch: u64,
    pub seed: [u8; SEED_LEN],
    /// The first draw number the seed decides.
    pub from_draw: u64,
    /// Whether the seed was revealed (LOTTERY.SEED REVEAL): a draw then starts a new epoch
    /// first, so a revealed seed never decides another draw.
    pub revealed: bool,
}

impl Verifiable {
    /// The commitment to the seed: lowercase hex of SHA-256(seed).
    pub fn commitment(&self) -> [u8; 64] {
        commitment(&self.seed)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.log.code());
        w.u64(self.epoch);
        w.bytes(&self.seed);
        w.u64(self.from_draw);
        w.bool(self.revealed);
    }

    pub(crate) fn decode(r: &mut Reader) -> DResult<Verifiable> {
        let log = SeedLog::from_code(r.u8()?).ok_or(DecodeError("bad seed log"))?;
        let epoch = r.u64()?;
        let seed: [u8; SEED_LEN] = r
            .bytes(SEED_LEN)?
            .try_into()
            .map_err(|_| DecodeError("bad seed"))?;
        let (from_draw, revealed) = (r.u64()?, r.bool()?);
        if epoch == 0 || epoch > super::limits::MAX_EPOCH || from_draw == 0 {
            return Err(DecodeError("bad epoch"));
        }
        Ok(Verifiable {
            log,
            epoch,
            seed,
            from_draw,
            revealed,
        })
    }

    /// The optional state as the meta record and the effect hold it.
    pub(crate) fn encode_opt(v: Option<&Verifiable>, w: &mut Writer) {
        match v {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.encode(w);
            }
        }
    }

    pub(crate) fn decode_opt(r: &mut Reader) -> DResult<Option<Verifiable>> {
        match r.u8()? {
            0 => Ok(None),
            1 => Verifiable::decode(r).map(Some),
            _ => Err(DecodeError("bad tag")),
        }
    }
}

/// Lowercase hex of `b` into `out` (twice `b`'s length).
pub fn hex_into(b: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (x, o) in b.iter().zip(out.chunks_exact_mut(2)) {
        o[0] = DIGITS[usize::from(x >> 4)];
        o[1] = DIGITS[usize::from(x & 15)];
    }
}

/// A seed as lowercase hex (64 bytes).
pub fn seed_hex(seed: &[u8; SEED_LEN]) -> [u8; 64] {
    let mut out = [0; 64];
    hex_into(seed, &mut out);
    out
}

/// Parses lowercase or uppercase hex of exactly `N` bytes.
pub fn parse_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0; N];
    for (o, p) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = digit(p[0])? << 4 | digit(p[1])?;
    }
    Some(out)
}

/// `v` in decimal (ASCII, no sign, no leading zeros), written at the start of `buf`.
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut tmp = [0u8; 20];
    let mut n = 0;
    loop {
        tmp[19 - n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[..n].copy_from_slice(&tmp[20 - n..]);
    &buf[..n]
}

/// The commitment to a seed: lowercase hex of SHA-256(seed).
pub fn commitment(seed: &[u8; SEED_LEN]) -> [u8; 64] {
    let d: [u8; 32] = Sha256::digest(seed).into();
    let mut out = [0; 64];
    hex_into(&d, &mut out);
    out
}

/// HMAC-SHA256 with its key's two padded states ready (RFC 2104): made once per seed, each
/// word then costs two SHA-256 compressions (for messages up to 55 bytes) instead of four.
#[derive(Clone)]
pub struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    pub fn new(key: &[u8]) -> Hmac {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            let d: [u8; 32] = Sha256::digest(key).into();
            k[..32].copy_from_slice(&d);
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |b: u8| {
            let mut p = k;
            p.iter_mut().for_each(|x| *x ^= b);
            let mut h = Sha256::new();
            h.update(p);
            h
        };
        Hmac {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// The MAC of the message made of `parts`, in order.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut i = self.inner.clone();
        for p in parts {
            i.update(p);
        }
        let mut o = self.outer.clone();
        o.update(i.finalize());
        o.finalize().into()
    }
}

/// HMAC-SHA256(key, message), for tests and tools.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    Hmac::new(key).mac(&[message])
}

/// The words of one draw: `w_0, w_1, ...` in order (`next_word`), and uniform integers
/// taken from them (`Uniform::below`).
pub struct Words<'a> {
    mac: Hmac,
    key: &'a [u8],
    draw_len: usize,
    draw_text: [u8; 20],
    k: u64,
}

impl<'a> Words<'a> {
    /// The words of draw number `draw` of the campaign at key `key`, with `seed`.
    pub fn new(seed: &[u8; SEED_LEN], key: &'a [u8], draw: u64) -> Words<'a> {
        Words::with_mac(&Hmac::new(seed), key, draw)
    }

    /// `new` with the seed's HMAC states made already (`Hmac::new(seed)`).
    pub fn with_mac(mac: &Hmac, key: &'a [u8], draw: u64) -> Words<'a> {
        let mut text = [0u8; 20];
        let draw_len = decimal(draw, &mut text).len();
        Words {
            mac: mac.clone(),
            key,
            draw_len,
            draw_text: text,
            k: 0,
        }
    }

    /// Word `k` (whatever the words taken so far).
    pub fn word(&self, k: u64) -> u64 {
        let mut kb = [0u8; 20];
        let m = self.mac.mac(&[
            DOMAIN,
            b"\0",
            self.key,
            b"\0",
            &self.draw_text[..self.draw_len],
            b"\0",
            decimal(k, &mut kb),
        ]);
        let mut w = [0u8; 8];
        w.copy_from_slice(&m[..8]);
        u64::from_be_bytes(w)
    }

    /// The next word.
    pub fn next_word(&mut self) -> u64 {
        let w = self.word(self.k);
        self.k = self.k.saturating_add(1);
        w
    }

    /// How many words were taken.
    pub fn taken(&self) -> u64 {
        self.k
    }
}

impl std::fmt::Debug for Words<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Words").field("k", &self.k).finish()
    }
}

/// Whether word `w` is accepted for "uniform below n": `w < floor(2^64 / n) * n` (every word
/// when n is a power of two, 1 included).
#[inline]
pub fn accepted(w: u64, n: u64) -> bool {
    let n = u128::from(n.max(1));
    let limit = ((1u128 << 64) / n) * n;
    u128::from(w) < limit
}

impl Uniform for Words<'_> {
    /// The next accepted word mod `n` (n = 0 is taken as 1).
    fn below(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        loop {
            let w = self.next_word();
            if accepted(w, n) {
                return w % n;
            }
        }
    }
}

/// The inclusive prefix sums of `weights` (their last is the total `W`).
pub fn prefix_sums(weights: &[u32]) -> Vec<u64> {
    let mut s = 0u64;
    weights
        .iter()
        .map(|&w| {
            s += u64::from(w);
            s
        })
        .collect()
}

/// The entry `x` falls in: the first `i` with `x < prefix[i]` (a zero weight is never
/// picked). None when `x` is not below the total.
#[inline]
pub fn prefix_pick(prefix: &[u64], x: u64) -> Option<usize> {
    let i = prefix.partition_point(|&p| p <= x);
    (i < prefix.len()).then_some(i)
}

/// One table pick with prefix sums: `x` uniform below the total, then its entry. None for
/// an empty table (total 0), which takes no word.
pub fn table_pick<U: Uniform + ?Sized>(prefix: &[u64], rng: &mut U) -> Option<usize> {
    let total = prefix.last().copied().unwrap_or(0);
    if total == 0 {
        return None;
    }
    prefix_pick(prefix, rng.below(total))
}

#[cfg(test)]
mod tests;
