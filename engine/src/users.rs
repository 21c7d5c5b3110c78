//! Per-user records (`UserDay`, `UserWins`) and every participant's day state (`UserDay`: last draw time, chances used today, bonus
//! chances), stored in 12 bytes a user so that a map slot is 28 bytes with its 128-bit key.
//!
//! The two counts are kept as u16 in the common case. A user whose count reaches 65,535 (a
//! bonus of 100,000 chances, say) is marked and keeps the exact u32 values in a side map, so
//! nothing is ever truncated: the side map holds only such rare users.

use super::codec::{DResult, Reader, Writer};
use super::segmap::SegMap;

/// Per-user state every participant has: 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserDay {
    /// Time of the last draw that consumed a chance; 0 = never.
    pub last_draw_ms: i64,
    /// Chances consumed on the day of `last_draw_ms`.
    pub draws_today: u32,
    /// Bonus chances (never expire).
    pub bonus: u32,
}

/// Per-user state only winners have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserWins {
    pub wins: u32,
    /// Interned name of the last prize won + 1; 0 = none.
    pub last_prize: u32,
}

pub(crate) fn write_day(w: &mut Writer, d: &UserDay) {
    w.i64(d.last_draw_ms);
    w.u32(d.draws_today);
    w.u32(d.bonus);
}

pub(crate) fn read_day(r: &mut Reader) -> DResult<UserDay> {
    Ok(UserDay {
        last_draw_ms: r.i64()?,
        draws_today: r.u32()?,
        bonus: r.u32()?,
    })
}

/// A u16 count at this value means: the exact counts are in the side map.
const SPILLED: u16 = u16::MAX;

#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Packed {
    last_draw_ms: i64,
    draws_today: u16,
    bonus: u16,
}

#[derive(Clone, Default)]
pub struct Users {
    map: SegMap<Packed>,
    /// Exact `[draws_today, bonus]` of the users whose counts do not fit in u16.
    spill: SegMap<[u32; 2]>,
}

impl Users {
    pub fn new() -> Users {
        Users::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn expand(&self, key: u128, p: Packed) -> UserDay {
        let (draws, bonus) = (p.draws_today, p.bonus);
        let (draws_today, bonus) = if draws == SPILLED || bonus == SPILLED {
            match self.spill.get(key) {
                Some([d, b]) => (d, b),
                None => (u32::from(draws), u32::from(bonus)),
            }
        } else {
            (u32::from(draws), u32::from(bonus))
        };
        UserDay {
            last_draw_ms: p.last_draw_ms,
            draws_today,
            bonus,
        }
    }

    pub fn get(&self, key: u128) -> Option<UserDay> {
        let p = self.map.get(key)?;
        Some(self.expand(key, p))
    }

    pub fn insert(&mut self, key: u128, d: UserDay) {
        let limit = u32::from(SPILLED);
        if d.draws_today < limit && d.bonus < limit {
            if !self.spill.is_empty() {
                self.spill.remove(key);
            }
            self.map.insert(
                key,
                Packed {
                    last_draw_ms: d.last_draw_ms,
                    draws_today: d.draws_today as u16,
                    bonus: d.bonus as u16,
                },
            );
        } else {
            self.spill.insert(key, [d.draws_today, d.bonus]);
            self.map.insert(
                key,
                Packed {
                    last_draw_ms: d.last_draw_ms,
                    draws_today: SPILLED,
                    bonus: SPILLED,
                },
            );
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u128, UserDay)> + '_ {
        self.map.iter().map(move |(k, p)| (k, self.expand(k, p)))
    }

    /// See `SegMap::iter_scattered`: the order to save in.
    pub fn iter_scattered(&self) -> impl Iterator<Item = (u128, UserDay)> + '_ {
        self.map
            .iter_scattered()
            .map(move |(k, p)| (k, self.expand(k, p)))
    }

    pub fn mem_bytes(&self) -> usize {
        self.map.mem_bytes() + self.spill.mem_bytes()
    }

    /// See `SegMap::reserve_for_load`.
    pub fn reserve_for_load(&mut self, n: usize) {
        self.map.reserve_for_load(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_never_truncate() {
        let mut u = Users::new();
        let big = UserDay {
            last_draw_ms: i64::MAX,
            draws_today: 70_000,
            bonus: u32::MAX,
        };
        let small = UserDay {
            last_draw_ms: -5,
            draws_today: 65_534,
            bonus: 1,
        };
        u.insert(1, big);
        u.insert(2, small);
        assert_eq!(u.get(1), Some(big));
        assert_eq!(u.get(2), Some(small));
        assert_eq!(u.spill.len(), 1);
        // Back under the limit: the side entry goes.
        u.insert(1, small);
        assert_eq!(u.get(1), Some(small));
        assert_eq!(u.spill.len(), 0);
        let edge = UserDay {
            last_draw_ms: 7,
            draws_today: 65_535,
            bonus: 0,
        };
        u.insert(3, edge);
        assert_eq!(u.get(3), Some(edge));
        let mut all: Vec<_> = u.iter().collect();
        all.sort_by_key(|e| e.0);
        assert_eq!(all, vec![(1, small), (2, small), (3, edge)]);
        assert_eq!(u.len(), 3);
        assert_eq!(std::mem::size_of::<Packed>(), 12);
    }

    #[test]
    fn dense_at_scale() {
        let mut u = Users::new();
        let n = 300_000u128;
        for k in 1..=n {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            u.insert(key, UserDay::default());
        }
        let per = u.mem_bytes() as f64 / n as f64;
        assert!(per < 38.0, "{per} bytes per user");
    }
}
