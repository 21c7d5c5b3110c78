//! The verifiable draw construction, written from its specification (docs/commands.md,
//! "Verifiable draws") and independently of the module's engine: a verifier that shares the
//! engine's code would share its mistakes.
//!
//! - `w_k` = the first 8 bytes, big-endian, of HMAC-SHA256(key = seed, message =
//!   `redis-lottery/v1` 0x00 campaign-key 0x00 decimal(draw) 0x00 decimal(k)), k = 0, 1, ...
//! - "uniform below n": the next word `w` with `w < floor(2^64 / n) * n`, as `w mod n`.
//! - the table pick: x = the first uniform below W (the sum of the weights); the first entry
//!   whose prefix sum exceeds x.

use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104) with a key of at most one block (a seed is 32 bytes).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The lowercase hex of SHA-256(seed): the commitment an epoch entry publishes.
pub fn commitment(seed: &[u8]) -> String {
    hex(&Sha256::digest(seed))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

/// 64 lowercase hex digits as 32 bytes.
pub fn parse_seed(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The word sequence of one draw.
pub struct Words<'a> {
    seed: &'a [u8],
    /// `redis-lottery/v1` 0x00 key 0x00 decimal(draw) 0x00: the message before `k`.
    prefix: Vec<u8>,
    k: u64,
}

impl<'a> Words<'a> {
    pub fn new(seed: &'a [u8], campaign: &[u8], draw: u64) -> Self {
        let mut prefix = Vec::with_capacity(campaign.len() + 48);
        prefix.extend_from_slice(b"redis-lottery/v1\0");
        prefix.extend_from_slice(campaign);
        prefix.push(0);
        prefix.extend_from_slice(draw.to_string().as_bytes());
        prefix.push(0);
        Words { seed, prefix, k: 0 }
    }

    pub fn next_word(&mut self) -> u64 {
        let mut msg = self.prefix.clone();
        msg.extend_from_slice(self.k.to_string().as_bytes());
        self.k += 1;
        let mac = hmac_sha256(self.seed, &msg);
        u64::from_be_bytes(mac[..8].try_into().expect("8 bytes"))
    }

    /// "uniform below n" (n >= 1). None only for n = 0, or after `MAX_REJECTIONS` words
    /// rejected in a row (probability below 2^-1000).
    pub fn uniform(&mut self, n: u64) -> Option<u64> {
        if n == 0 {
            return None;
        }
        // floor(2^64 / n) * n, in u128: 2^64 itself for a power of two (every word accepted).
        let limit = ((1u128 << 64) / n as u128) * n as u128;
        for _ in 0..MAX_REJECTIONS {
            let w = self.next_word();
            if (w as u128) < limit {
                return Some(w % n);
            }
        }
        None
    }
}

/// Each word is rejected with probability below 1/2.
const MAX_REJECTIONS: usize = 1000;

/// The table pick of `x`: the first entry i with x < w_1 + ... + w_i (None if x >= the sum).
pub fn pick_index(weights: &[u64], x: u64) -> Option<usize> {
    let mut sum = 0u128;
    let prefix: Vec<u128> = weights
        .iter()
        .map(|&w| {
            sum += w as u128;
            sum
        })
        .collect();
    let i = prefix.partition_point(|&p| p <= x as u128);
    (i < weights.len()).then_some(i)
}

/// The sum of the weights, None when it does not fit in 64 bits (no table the module takes).
pub fn total(weights: &[u64]) -> Option<u64> {
    weights.iter().try_fold(0u64, |a, &w| a.checked_add(w))
}

/// The table pick of a draw: (x, the entry's index); None when W is 0 or beyond 64 bits.
pub fn draw_pick(seed: &[u8], campaign: &[u8], draw: u64, weights: &[u64]) -> Option<(u64, usize)> {
    let w = total(weights)?;
    let x = Words::new(seed, campaign, draw).uniform(w)?;
    Some((x, pick_index(weights, x)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn picks_skip_zero_weights() {
        assert_eq!(pick_index(&[0, 0, 5], 0), Some(2));
        assert_eq!(pick_index(&[3, 0, 1, 4], 3), Some(2));
        assert_eq!(pick_index(&[3, 0, 1, 4], 8), None);
        assert_eq!(total(&[u64::MAX, 1]), None);
        assert!(parse_seed(&[b'A'; 64]).is_none());
        assert!(parse_seed(b"00").is_none());
    }
}
