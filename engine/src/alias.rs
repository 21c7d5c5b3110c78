//! Exact-odds integer alias table (Vose's method, done in integers).
//!
//! Entries `0..n` have integer weights `w_i` (u32); `W = sum(w_i)`. The table has `n` columns;
//! each column holds a total mass of `W`, split between the column's own entry (`keep[c]`) and
//! one alias (`W - keep[c]` for `alias[c]`). A draw picks a column uniformly in `0..n` and a
//! number uniformly in `0..W`; below `keep[c]` it is the column's entry, otherwise the alias.
//! Entry `i` then gets exactly `w_i * n` of the `n * W` equally likely (column, number) pairs:
//! probability `w_i / W`, with no floating point anywhere.
//!
//! Building is O(n); drawing is O(1). The table is rebuilt only when weights change (a new
//! prize table, a prize selling out), never per draw.

/// Something that yields unbiased uniform integers in `0..n` (n >= 1).
pub trait Uniform {
    fn below(&mut self, n: u64) -> u64;
}

impl<R: rand::RngCore> Uniform for R {
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        use rand::Rng;
        // rand's integer ranges are unbiased (widening multiply with rejection).
        self.random_range(0..n.max(1))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasTable {
    /// Mass (out of `total`) kept by the column's own entry.
    keep: Vec<u64>,
    /// Entry that gets the rest of the column's mass.
    alias: Vec<u32>,
    /// Sum of all weights. 0 means an empty table: nothing can be drawn.
    total: u64,
}

impl AliasTable {
    /// Builds the table. `weights.len()` must fit in u32 (callers cap prize counts far below).
    pub fn new(weights: &[u32]) -> AliasTable {
        let n = weights.len();
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if n == 0 || total == 0 || u32::try_from(n).is_err() {
            return AliasTable::default();
        }
        // Scaled mass of each entry: w_i * n, compared against the column capacity W.
        // w_i < 2^32 and n < 2^32, so the product fits in u64.
        let n64 = n as u64;
        let mut mass: Vec<u64> = weights.iter().map(|&w| u64::from(w) * n64).collect();
        let mut keep = vec![total; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut small: Vec<u32> = Vec::with_capacity(n);
        let mut large: Vec<u32> = Vec::with_capacity(n);
        for (i, &m) in mass.iter().enumerate() {
            if m < total {
                small.push(i as u32);
            } else {
                large.push(i as u32);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            let (su, lu) = (s as usize, l as usize);
            keep[su] = mass[su];
            alias[su] = l;
            // The large entry gives the small column what it lacks: W - mass[s] (> 0).
            mass[lu] -= total - mass[su];
            if mass[lu] < total {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left holds exactly W (integer arithmetic leaves no rounding residue):
        // those columns keep their whole mass, as initialised.
        AliasTable { keep, alias, total }
    }

    /// Sum of the weights the table was built from.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Draws one entry index, or None for an empty table. Two uniform numbers, O(1).
    #[inline]
    pub fn pick<U: Uniform + ?Sized>(&self, rng: &mut U) -> Option<u32> {
        if self.total == 0 || self.keep.is_empty() {
            return None;
        }
        let col = rng.below(self.keep.len() as u64) as usize;
        let r = rng.below(self.total);
        let keep = *self.keep.get(col)?;
        if r < keep {
            Some(col as u32)
        } else {
            self.alias.get(col).copied()
        }
    }

    /// Exact integer mass of each entry over all `n * W` equally likely (column, number) pairs.
    /// Entry i's probability is `mass[i] / (n * W)`. For tests and diagnostics.
    pub fn mass(&self) -> Vec<u128> {
        let n = self.keep.len();
        let mut out = vec![0u128; n];
        for c in 0..n {
            out[c] += u128::from(self.keep[c]);
            let a = self.alias[c] as usize;
            out[a] += u128::from(self.total - self.keep[c]);
        }
        out
    }

    /// Heap bytes, for MEMORY USAGE.
    pub fn mem_bytes(&self) -> usize {
        self.keep.capacity() * 8 + self.alias.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_exact(weights: &[u32]) {
        let t = AliasTable::new(weights);
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        if total == 0 {
            assert!(t.is_empty());
            return;
        }
        let n = weights.len() as u128;
        let mass = t.mass();
        for (i, &w) in weights.iter().enumerate() {
            assert_eq!(mass[i], w as u128 * n, "entry {i} of {weights:?}");
        }
        assert_eq!(mass.iter().sum::<u128>(), n * total as u128);
        for (c, &k) in t.keep.iter().enumerate() {
            assert!(k <= total);
            // A zero-weight entry is never reachable, as column owner or alias.
            if k > 0 {
                assert!(weights[c] > 0, "zero-weight entry {c} keeps mass");
            }
            if k < total {
                assert!(weights[t.alias[c] as usize] > 0);
            }
        }
    }

    #[test]
    fn exact_mass_small_tables() {
        check_exact(&[1]);
        check_exact(&[0, 1]);
        check_exact(&[1, 2, 3, 4, 10]);
        check_exact(&[0, 0, 7]);
        check_exact(&[5, 5, 5, 5]);
        check_exact(&[u32::MAX, 1, u32::MAX, 0, 3]);
        check_exact(&[0, 0, 0]);
        check_exact(&[]);
    }

    #[test]
    fn exact_mass_random_tables() {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for round in 0..300 {
            let n = 1 + (next() % 200) as usize;
            let w: Vec<u32> = (0..n)
                .map(|_| match next() % 4 {
                    0 => 0,
                    1 => (next() % 10) as u32,
                    2 => next() as u32,
                    _ => (next() % 1_000_000) as u32,
                })
                .collect();
            check_exact(&w);
            let _ = round;
        }
        // A large table: 65,536 entries.
        let w: Vec<u32> = (0..65_536u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 1000)
            .collect();
        check_exact(&w);
    }

    /// A scripted "random" source that enumerates every (column, number) pair once.
    struct Enumerate {
        vals: Vec<u64>,
        pos: usize,
    }
    impl Uniform for Enumerate {
        fn below(&mut self, n: u64) -> u64 {
            let v = self.vals[self.pos];
            self.pos += 1;
            assert!(v < n);
            v
        }
    }

    #[test]
    fn pick_enumerated_gives_exact_counts() {
        let weights = [3u32, 0, 1, 4];
        let t = AliasTable::new(&weights);
        let total = t.total();
        let mut counts = [0u64; 4];
        for c in 0..weights.len() as u64 {
            for r in 0..total {
                let mut e = Enumerate {
                    vals: vec![c, r],
                    pos: 0,
                };
                counts[t.pick(&mut e).unwrap() as usize] += 1;
            }
        }
        for (i, &w) in weights.iter().enumerate() {
            assert_eq!(counts[i], w as u64 * weights.len() as u64);
        }
    }

    #[test]
    fn empty_table_picks_nothing() {
        let t = AliasTable::new(&[0, 0]);
        let mut e = Enumerate {
            vals: vec![],
            pos: 0,
        };
        assert_eq!(t.pick(&mut e), None);
    }
}
