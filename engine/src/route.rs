//! Routing a user to one shard of a sharded campaign.
//!
//! A sharded campaign splits one prize draw over `N` ordinary campaigns, one per
//! shard, each on its own Redis Cluster slot. Every client that draws must send a given user to
//! the same shard, whatever language it is written in, so the mapping is a small fixed
//! algorithm with shared test vectors (`routing/vectors.tsv`, checked here and by the Python
//! helper `routing/lottery_route.py`). Its name, stored in each campaign's descriptor, is
//! [`ROUTE_NAME`]; a different algorithm would get a different name.

/// The name of the algorithm of [`shard_index`], as stored in a descriptor's `route` field.
pub const ROUTE_NAME: &str = "fnv1a64-splitmix-mul/1";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The shard (`0..shards`) that `user` belongs to in a campaign of `shards` shards.
///
/// Algorithm (all arithmetic on 64-bit unsigned integers, wrapping mod 2^64):
///
/// 1. FNV-1a 64 of the user id's bytes: `h = 0xcbf29ce484222325`; for each byte `b`:
///    `h ^= b; h *= 0x100000001b3`.
/// 2. The splitmix64 finaliser, so that ids differing only in their last bytes spread over
///    all 64 bits: `h ^= h >> 30; h *= 0xbf58476d1ce4e5b9; h ^= h >> 27;
///    h *= 0x94d049bb133111eb; h ^= h >> 31`.
/// 3. Multiply-shift onto the range: `index = (h * shards) >> 64`, with the full 128-bit
///    product (Lemire's reduction: no modulo bias worth speaking of, no division).
///
/// The result is always `< shards`. `shards == 0` has no valid shard; this returns 0 for it
/// rather than panicking (callers validate the shard count, which is at least 1).
pub fn shard_index(user: &[u8], shards: u32) -> u32 {
    let mut h = FNV_OFFSET;
    for &b in user {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // h < 2^64 and shards < 2^32, so the product is < 2^96 and the shifted value < shards.
    ((u128::from(h) * u128::from(shards)) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../routing/vectors.tsv");

    fn unhex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn route_shared_vectors() {
        let mut lines = VECTORS.lines();
        assert_eq!(lines.next(), Some("user_hex\tshards\tindex"));
        let mut rows = 0;
        for line in lines.filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 3, "bad row {line:?}");
            let user = unhex(cols[0]);
            let shards: u32 = cols[1].parse().expect("shards");
            let index: u32 = cols[2].parse().expect("index");
            assert_eq!(shard_index(&user, shards), index, "row {line:?}");
            assert!(index < shards);
            rows += 1;
        }
        assert!(rows >= 30, "only {rows} vector rows");
    }

    #[test]
    fn route_zero_shards_is_zero() {
        assert_eq!(shard_index(b"user:1", 0), 0);
        assert_eq!(shard_index(b"", 0), 0);
    }

    #[test]
    fn route_one_shard_is_zero() {
        for n in 0..1000u32 {
            assert_eq!(shard_index(format!("user:{n}").as_bytes(), 1), 0);
        }
    }

    #[test]
    fn route_max_shards_in_range() {
        for n in 0..1000u32 {
            assert!(shard_index(format!("u{n}").as_bytes(), u32::MAX) < u32::MAX);
        }
    }

    #[test]
    fn route_distribution_is_even() {
        let users = 100_000u32;
        for shards in [3u32, 7, 16] {
            let mut counts = vec![0u32; shards as usize];
            for n in 0..users {
                counts[shard_index(format!("user:{n}").as_bytes(), shards) as usize] += 1;
            }
            let even = f64::from(users) / f64::from(shards);
            for (i, &c) in counts.iter().enumerate() {
                let dev = (f64::from(c) - even).abs() / even;
                // The binomial standard deviation is under 1.2% of the mean for these shard
                // counts; 5% is more than four of them.
                assert!(
                    dev < 0.05,
                    "{shards} shards: shard {i} has {c}, even is {even}"
                );
            }
        }
    }
}
