//! Per-user records (`UserDay`, `UserWins`) and the map that keeps both for every participant
//! (`Users`), in 12 bytes a user so that a map slot is 28 bytes with its 128-bit key, winner
//! or not.
//!
//! # Layout
//!
//! A user's record is one `Packed` value: a u64 holding the last draw time in its low 48
//! bits (two's complement), the wins count in the next 4 and the last prize (interned name
//! + 1) in the top 12, then the two day counts as u16:
//!
//! ```text
//! bits 0..48   last_draw_ms   -2^47 <= t < 2^47 (0 = never)
//! bits 48..52  wins           0 = no wins record; 1..=14 = wins; 15 = SPILLED
//! bits 52..64  last_prize     0..=4095
//! u16          draws_today    0..=65535
//! u16          bonus          0..=65535
//! ```
//!
//! A record whose values do not all fit (a time before -2^47 or from 2^47 on, a count past
//! 65,535, more than 14 wins, a last prize past 4095), and the two shapes the layout has no
//! room for (a wins record without day state, a wins record of 0 wins; only a loaded chunk
//! or an applied effect makes them), is marked `SPILLED` and kept exactly, whole, in a side
//! map. Nothing is ever truncated. The side map holds a key only while the main map's record
//! for it is marked, so it is bounded by the main map; a record that fits again is stored in
//! place and its side entry goes.
//!
//! `Users` answers for two sets: the users with day state (`len`, `get`, `iter`: the users
//! section of the encoding) and the users with a wins record (`Winners`: the winners
//! section). Both counts are kept as records change, so neither is ever counted by a walk.

use super::codec::{DResult, Reader, Writer};
use super::segmap::{Cursor, SegMap};

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

const TIME_MASK: u64 = (1 << 48) - 1;
const WINS_SHIFT: u32 = 48;
const WINS_MASK: u64 = 0xF;
const PRIZE_SHIFT: u32 = 52;
/// The wins field at this value: the exact record is in the side map.
const SPILLED: u64 = WINS_MASK;
/// The most wins kept in place (the field's values below `SPILLED`, less 0 = none).
pub const PACKED_MAX_WINS: u32 = SPILLED as u32 - 1;
/// The largest last prize kept in place.
pub const PACKED_MAX_PRIZE: u32 = 0xFFF;
/// The last draw times kept in place: 48-bit two's complement.
pub const PACKED_MIN_TIME: i64 = -(1 << 47);
pub const PACKED_MAX_TIME: i64 = (1 << 47) - 1;

/// Per-user lifetime counts, kept only by campaigns with a rule that needs them (GUARANTEE,
/// AFTER, TOTAL): see `Users::set_lifetime`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserLife {
    /// Chances the user consumed in the campaign (since the counts are kept).
    pub draws: u32,
    /// Chance-consuming draws since the user's last win.
    pub since_win: u32,
}

/// How a record is laid out in the users map: `Packed` (12 bytes) for campaigns without
/// lifetime counts, `Lifetime` (16 bytes) for those with.
trait Layout: Copy + Default {
    /// The value of a record kept whole in the side map.
    const MARK: Self;
    fn spilled(self) -> bool;
    /// The record of a value that is not marked.
    fn unpack(self) -> Record;
    /// The record in place, or None when it does not fit.
    fn pack(r: &Record) -> Option<Self>;
}

#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Packed {
    /// Time, wins and last prize (see the module docs).
    tw: u64,
    draws_today: u16,
    bonus: u16,
}

impl Layout for Packed {
    const MARK: Packed = Packed {
        tw: SPILLED << WINS_SHIFT,
        draws_today: 0,
        bonus: 0,
    };

    fn spilled(self) -> bool {
        (self.tw >> WINS_SHIFT) & WINS_MASK == SPILLED
    }

    fn unpack(self) -> Record {
        let tw = self.tw;
        let wins = ((tw >> WINS_SHIFT) & WINS_MASK) as u32;
        Record {
            day: Some(UserDay {
                last_draw_ms: ((tw << 16) as i64) >> 16,
                draws_today: u32::from(self.draws_today),
                bonus: u32::from(self.bonus),
            }),
            wins: (wins != 0).then_some(UserWins {
                wins,
                last_prize: (tw >> PRIZE_SHIFT) as u32,
            }),
            life: UserLife::default(),
        }
    }

    /// Lifetime counts have no room here: a record with any is kept whole (only a forged
    /// effect gives one to a campaign that does not keep them).
    fn pack(r: &Record) -> Option<Packed> {
        if r.life != UserLife::default() {
            return None;
        }
        let d = r.day?;
        let t = d.last_draw_ms;
        if !(PACKED_MIN_TIME..=PACKED_MAX_TIME).contains(&t) {
            return None;
        }
        let t = t as u64 & TIME_MASK;
        let draws_today = u16::try_from(d.draws_today).ok()?;
        let bonus = u16::try_from(d.bonus).ok()?;
        let (wins, prize) = match r.wins {
            None => (0, 0),
            Some(w)
                if (1..=PACKED_MAX_WINS).contains(&w.wins) && w.last_prize <= PACKED_MAX_PRIZE =>
            {
                (u64::from(w.wins), u64::from(w.last_prize))
            }
            Some(_) => return None,
        };
        Some(Packed {
            tw: t | (wins << WINS_SHIFT) | (prize << PRIZE_SHIFT),
            draws_today,
            bonus,
        })
    }
}

/// The lifetime layout, 14 bytes: `Packed`'s time, wins and last prize, then four 12-bit
/// counts: draws_today, bonus, the lifetime draws and draws since the last win (0..=4095 each;
/// a larger count spills like the rest). A 30-byte slot.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(2))]
struct Lifetime {
    tw: u64,
    counts: [u16; 3],
}

const COUNT_BITS: u32 = 12;
/// The largest count the lifetime layout keeps in place.
pub const LIFETIME_MAX_COUNT: u32 = (1 << COUNT_BITS) - 1;

impl Layout for Lifetime {
    const MARK: Lifetime = Lifetime {
        tw: Packed::MARK.tw,
        counts: [0; 3],
    };

    fn spilled(self) -> bool {
        (self.tw >> WINS_SHIFT) & WINS_MASK == SPILLED
    }

    fn unpack(self) -> Record {
        let c = self.counts;
        let all = u64::from(c[0]) | (u64::from(c[1]) << 16) | (u64::from(c[2]) << 32);
        let field = |i: u32| ((all >> (i * COUNT_BITS)) as u32) & LIFETIME_MAX_COUNT;
        let mut r = Packed {
            tw: self.tw,
            draws_today: 0,
            bonus: 0,
        }
        .unpack();
        if let Some(d) = r.day.as_mut() {
            d.draws_today = field(0);
            d.bonus = field(1);
        }
        r.life = UserLife {
            draws: field(2),
            since_win: field(3),
        };
        r
    }

    fn pack(r: &Record) -> Option<Lifetime> {
        let d = r.day?;
        let base = Packed::pack(&Record {
            life: UserLife::default(),
            ..*r
        })?;
        let mut all = 0u64;
        for (i, v) in [d.draws_today, d.bonus, r.life.draws, r.life.since_win]
            .into_iter()
            .enumerate()
        {
            if v > LIFETIME_MAX_COUNT {
                return None;
            }
            all |= u64::from(v) << (i as u32 * COUNT_BITS);
        }
        Some(Lifetime {
            tw: base.tw,
            counts: [all as u16, (all >> 16) as u16, (all >> 32) as u16],
        })
    }
}

/// A user's whole record: day state, wins record, either or both, and the lifetime counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Record {
    day: Option<UserDay>,
    wins: Option<UserWins>,
    life: UserLife,
}

/// The users map in one of the two layouts.
#[derive(Clone)]
enum Map {
    Plain(SegMap<Packed>),
    Life(SegMap<Lifetime>),
}

impl Default for Map {
    fn default() -> Self {
        Map::Plain(SegMap::new())
    }
}

/// Runs `$body` with `$m` bound to the map whatever its layout.
macro_rules! with_map {
    ($map:expr, $m:ident => $body:expr) => {
        match $map {
            Map::Plain($m) => $body,
            Map::Life($m) => $body,
        }
    };
}

#[inline]
fn expand<L: Layout>(spill: &SegMap<Record>, key: u128, p: L) -> Record {
    if p.spilled() {
        spill.get(key).unwrap_or_default()
    } else {
        p.unpack()
    }
}

/// One write of a record, with one probe of the map (see `Users::update`).
#[inline]
fn update_in<L: Layout, T: Default>(
    map: &mut SegMap<L>,
    spill: &mut SegMap<Record>,
    counts: (&mut usize, &mut usize),
    key: u128,
    f: impl FnOnce(&mut Record) -> T,
) -> T {
    let (days, wins) = counts;
    let mut out = None;
    map.upsert(key, |old| {
        let (mut r, was_spilled) = match old {
            None => (Record::default(), false),
            Some(p) if p.spilled() => (spill.get(key).unwrap_or_default(), true),
            Some(p) => (p.unpack(), false),
        };
        let before = r;
        out = Some(f(&mut r));
        debug_assert!(r.day.is_some() || r.wins.is_some());
        match (before.day.is_some(), r.day.is_some()) {
            (false, true) => *days += 1,
            (true, false) => *days -= 1,
            _ => {}
        }
        match (before.wins.is_some(), r.wins.is_some()) {
            (false, true) => *wins += 1,
            (true, false) => *wins -= 1,
            _ => {}
        }
        match L::pack(&r) {
            Some(p) => {
                if was_spilled {
                    spill.remove(key);
                }
                p
            }
            None => {
                spill.insert(key, r);
                L::MARK
            }
        }
    });
    // `upsert` calls the closure exactly once.
    out.unwrap_or_default()
}

#[derive(Clone, Default)]
pub struct Users {
    /// The records, in the campaign's layout.
    map: Map,
    /// Maps of earlier layouts that `set_lifetime` left behind, being emptied into `map`:
    /// each write moves its own user and up to `MOVE_STEP` others. A user is in exactly one
    /// map. Records there read with no lifetime counts (a switch to the lifetime layout starts
    /// them at 0; a switch away drops them). Empty for a campaign that never switched.
    old: Vec<Map>,
    /// Where the emptying of the last map in `old` goes on.
    cursor: Cursor,
    /// The exact records of the users marked `SPILLED` in `map` (or in `old`).
    spill: SegMap<Record>,
    /// Users with day state.
    days: usize,
    /// Users with a wins record.
    wins: usize,
}

/// A map's records as (key, record), in its order or scattered; `old`: a map of an earlier
/// layout, whose records read without lifetime counts.
fn records_of<'a>(
    m: &'a Map,
    spill: &'a SegMap<Record>,
    scattered: bool,
    old: bool,
) -> Box<dyn Iterator<Item = (u128, Record)> + 'a> {
    let fix = move |k: u128, mut r: Record| {
        if old {
            r.life = UserLife::default();
        }
        (k, r)
    };
    with_map!(m, m => {
        if scattered {
            Box::new(m.iter_scattered().map(move |(k, p)| fix(k, expand(spill, k, p))))
        } else {
            Box::new(m.iter().map(move |(k, p)| fix(k, expand(spill, k, p))))
        }
    })
}

/// Records moved out of the maps of an earlier layout by each write while there are any.
const MOVE_STEP: usize = 16;

/// Stores a record moved from another map in `map`, as is (the counts of users with day
/// state and wins do not change).
fn store_moved<L: Layout>(map: &mut SegMap<L>, spill: &mut SegMap<Record>, key: u128, r: Record) {
    match L::pack(&r) {
        Some(p) => map.insert(key, p),
        None => {
            spill.insert(key, r);
            map.insert(key, L::MARK);
        }
    }
}

impl Users {
    pub fn new() -> Users {
        Users::default()
    }

    /// Users with day state.
    pub fn len(&self) -> usize {
        self.days
    }

    pub fn is_empty(&self) -> bool {
        self.days == 0
    }

    /// Records kept whole in the side map (their values do not fit in place).
    pub fn spilled(&self) -> usize {
        self.spill.len()
    }

    /// Whether the records keep lifetime counts.
    pub fn keeps_lifetime(&self) -> bool {
        matches!(self.map, Map::Life(_))
    }

    /// Users whose record is still in a map of an earlier layout (see `set_lifetime`).
    pub fn moving(&self) -> usize {
        self.old.iter().map(|m| with_map!(m, m => m.len())).sum()
    }

    /// Switches the layout: with `on`, records keep lifetime counts, starting at 0; without,
    /// the counts are dropped. O(1): the records of the other layout stay where they are and
    /// move over as writes come (`MOVE_STEP` a write, and the written user's own).
    pub fn set_lifetime(&mut self, on: bool) {
        if on == self.keeps_lifetime() {
            return;
        }
        let fresh = if on {
            Map::Life(SegMap::new())
        } else {
            Map::Plain(SegMap::new())
        };
        let prev = std::mem::replace(&mut self.map, fresh);
        if with_map!(&prev, m => m.len()) > 0 {
            if self.old.is_empty() {
                self.cursor = Cursor::default();
            }
            self.old.insert(0, prev);
        }
    }

    /// Moves `key`'s record, if it is in a map of an earlier layout, into `map`, and up to
    /// `MOVE_STEP` other records of the last such map.
    fn move_over(&mut self, key: u128) {
        let Users {
            map,
            old,
            cursor,
            spill,
            ..
        } = self;
        let take = |m: &mut Map, spill: &mut SegMap<Record>, k: u128| -> Option<Record> {
            let r = with_map!(m, m => {
                let p = m.remove(k)?;
                if p.spilled() {
                    spill.remove(k).unwrap_or_default()
                } else {
                    p.unpack()
                }
            });
            Some(Record {
                life: UserLife::default(),
                ..r
            })
        };
        for m in old.iter_mut() {
            if let Some(r) = take(m, spill, key) {
                with_map!(map, m => store_moved(m, spill, key, r));
                break;
            }
        }
        let Some(last) = old.last_mut() else {
            return;
        };
        let mut moved = [(0u128, Record::default()); MOVE_STEP];
        let mut n = 0;
        with_map!(last, m => {
            m.sweep(
                cursor,
                4 * MOVE_STEP,
                MOVE_STEP,
                |k, p| match moved.get_mut(n) {
                    Some(slot) => {
                        *slot = (k, expand(spill, k, p));
                        n += 1;
                        true
                    }
                    None => false,
                },
                |_| {},
            );
        });
        for &(k, r) in moved.iter().take(n) {
            spill.remove(k);
            let r = Record {
                life: UserLife::default(),
                ..r
            };
            with_map!(map, m => store_moved(m, spill, k, r));
        }
        if with_map!(&*last, m => m.len()) == 0 {
            old.pop();
            *cursor = Cursor::default();
        }
    }

    #[inline]
    fn record(&self, key: u128) -> Record {
        let r = with_map!(&self.map, m => m.get(key).map(|p| expand(&self.spill, key, p)));
        match r {
            Some(r) => r,
            None if self.old.is_empty() => Record::default(),
            None => self.old_record(key).unwrap_or_default(),
        }
    }

    /// A record still in a map of an earlier layout: without lifetime counts.
    fn old_record(&self, key: u128) -> Option<Record> {
        self.old.iter().find_map(|m| {
            let r = with_map!(m, m => m.get(key).map(|p| expand(&self.spill, key, p)))?;
            Some(Record {
                life: UserLife::default(),
                ..r
            })
        })
    }

    pub fn get(&self, key: u128) -> Option<UserDay> {
        self.record(key).day
    }

    /// The user's wins record, if any.
    pub fn get_wins(&self, key: u128) -> Option<UserWins> {
        self.record(key).wins
    }

    /// Day state and wins record with one lookup.
    pub fn get_both(&self, key: u128) -> (Option<UserDay>, Option<UserWins>) {
        let r = self.record(key);
        (r.day, r.wins)
    }

    /// Day state, wins record and lifetime counts (0 when not kept) with one lookup.
    #[inline]
    pub fn get_all(&self, key: u128) -> (Option<UserDay>, Option<UserWins>, UserLife) {
        let r = self.record(key);
        (r.day, r.wins, r.life)
    }

    /// Changes a user's record with one probe of the map: `f` gets the record (empty for a
    /// new user) and must leave day state or a wins record in it.
    #[inline]
    fn update<T: Default>(&mut self, key: u128, f: impl FnOnce(&mut Record) -> T) -> T {
        if !self.old.is_empty() {
            self.move_over(key);
        }
        let Users {
            map,
            spill,
            days,
            wins,
            ..
        } = self;
        with_map!(map, m => update_in(m, spill, (days, wins), key, f))
    }

    /// Sets a user's day state (a wins record is kept).
    pub fn insert(&mut self, key: u128, d: UserDay) {
        self.update(key, |r| r.day = Some(d));
    }

    /// Sets a user's wins record (day state is kept).
    pub fn insert_wins(&mut self, key: u128, w: UserWins) {
        self.update(key, |r| r.wins = Some(w));
    }

    /// Sets the day state and, when given, the wins record, with one lookup.
    pub fn insert_both(&mut self, key: u128, d: UserDay, w: Option<UserWins>) {
        self.update(key, |r| {
            r.day = Some(d);
            if w.is_some() {
                r.wins = w;
            }
        });
    }

    /// Sets the day state, the wins record when given, and the lifetime counts when the
    /// records keep them (an applied effect).
    pub fn insert_all(&mut self, key: u128, d: UserDay, w: Option<UserWins>, life: UserLife) {
        let keep = self.keeps_lifetime();
        self.update(key, |r| {
            r.day = Some(d);
            if w.is_some() {
                r.wins = w;
            }
            if keep {
                r.life = life;
            }
        });
    }

    /// Sets a user's lifetime counts (a loaded chunk); ignored unless the records keep them.
    /// A user without a record gets all-zero day state.
    pub fn insert_life(&mut self, key: u128, life: UserLife) {
        if !self.keeps_lifetime() {
            return;
        }
        self.update(key, |r| {
            if r.day.is_none() && r.wins.is_none() {
                r.day = Some(UserDay::default());
            }
            r.life = life;
        });
    }

    /// A draw's write, with one lookup: the day state, and when the draw won `prize`
    /// (interned name + 1), one more win with `prize` as the last prize. Returns the wins
    /// record after a win.
    #[inline]
    pub fn commit_draw(&mut self, key: u128, d: UserDay, prize: Option<u32>) -> Option<UserWins> {
        self.update(key, |r| {
            r.day = Some(d);
            let name = prize?;
            let mut w = r.wins.unwrap_or_default();
            w.wins = w.wins.saturating_add(1);
            w.last_prize = name;
            r.wins = Some(w);
            Some(w)
        })
    }

    /// `commit_draw` that also sets the lifetime counts (campaigns that keep them).
    pub fn commit_draw_life(
        &mut self,
        key: u128,
        d: UserDay,
        prize: Option<u32>,
        life: UserLife,
    ) -> Option<UserWins> {
        self.update(key, |r| {
            r.day = Some(d);
            r.life = life;
            let name = prize?;
            let mut w = r.wins.unwrap_or_default();
            w.wins = w.wins.saturating_add(1);
            w.last_prize = name;
            r.wins = Some(w);
            Some(w)
        })
    }

    /// Gives a user day state (all zero) if it has none.
    pub fn ensure_day(&mut self, key: u128) {
        self.update(key, |r| {
            if r.day.is_none() {
                r.day = Some(UserDay::default());
            }
        });
    }

    /// Every record as (key, record), in the maps' order or scattered (the records of maps
    /// of an earlier layout without lifetime counts).
    fn records(&self, scattered: bool) -> Box<dyn Iterator<Item = (u128, Record)> + '_> {
        let mut it = records_of(&self.map, &self.spill, scattered, false);
        for m in &self.old {
            it = Box::new(it.chain(records_of(m, &self.spill, scattered, true)));
        }
        it
    }

    /// Users with day state, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, UserDay)> + '_ {
        self.records(false).filter_map(|(k, r)| Some((k, r.day?)))
    }

    /// See `SegMap::iter_scattered`: the order to save in.
    pub fn iter_scattered(&self) -> impl Iterator<Item = (u128, UserDay)> + '_ {
        self.records(true).filter_map(|(k, r)| Some((k, r.day?)))
    }

    /// Users with nonzero lifetime counts (none unless the records keep them), scattered.
    pub fn iter_life(&self) -> impl Iterator<Item = (u128, UserLife)> + '_ {
        let keep = self.keeps_lifetime();
        self.records(true)
            .take_while(move |_| keep)
            .filter(|(_, r)| r.life != UserLife::default())
            .map(|(k, r)| (k, r.life))
    }

    /// The users with a wins record.
    pub fn winners(&self) -> Winners<'_> {
        Winners(self)
    }

    pub fn mem_bytes(&self) -> usize {
        let maps: usize = std::iter::once(&self.map)
            .chain(&self.old)
            .map(|m| with_map!(m, m => m.mem_bytes()))
            .sum();
        maps + self.spill.mem_bytes() + self.old.capacity() * std::mem::size_of::<Map>()
    }

    /// See `SegMap::reserve_for_load`.
    pub fn reserve_for_load(&mut self, n: usize) {
        with_map!(&mut self.map, m => m.reserve_for_load(n));
    }
}

/// The users with a wins record: a view of `Users`, which keeps the wins in each user's
/// record.
#[derive(Clone, Copy)]
pub struct Winners<'a>(&'a Users);

impl<'a> Winners<'a> {
    /// Users with a wins record.
    pub fn len(&self) -> usize {
        self.0.wins
    }

    pub fn is_empty(&self) -> bool {
        self.0.wins == 0
    }

    pub fn get(&self, key: u128) -> Option<UserWins> {
        self.0.get_wins(key)
    }

    /// In no particular order. Walks the users map (not at all when there are no winners).
    pub fn iter(&self) -> impl Iterator<Item = (u128, UserWins)> + 'a {
        let u = self.0;
        let any = u.wins > 0;
        u.records(false)
            .take_while(move |_| any)
            .filter_map(|(k, r)| Some((k, r.wins?)))
    }

    /// In the users map's scattered order (see `SegMap::iter_scattered`): the order to save
    /// in. Walks the users map (not at all when there are no winners).
    pub fn iter_scattered(&self) -> impl Iterator<Item = (u128, UserWins)> + 'a {
        let u = self.0;
        let any = u.wins > 0;
        u.records(true)
            .take_while(move |_| any)
            .filter_map(|(k, r)| Some((k, r.wins?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_NAMES;

    fn plain(u: &Users) -> &SegMap<Packed> {
        match &u.map {
            Map::Plain(m) => m,
            Map::Life(_) => panic!("not the plain layout"),
        }
    }

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

    /// The invariants every operation keeps: the counts match the records, a key is in the
    /// side map exactly when its record is marked, and only records that do not fit are.
    fn check(u: &Users) {
        let (mut days, mut wins) = (0, 0);
        for (k, p) in plain(u).iter() {
            let r = expand(&u.spill, k, p);
            assert!(r.day.is_some() || r.wins.is_some());
            days += usize::from(r.day.is_some());
            wins += usize::from(r.wins.is_some());
            if p.spilled() {
                assert_eq!(u.spill.get(k), Some(r));
                assert!(Packed::pack(&r).is_none(), "{r:?} fits but is spilled");
            } else {
                assert_eq!(u.spill.get(k), None);
                assert_eq!(Packed::pack(&r).map(Packed::unpack), Some(r));
            }
        }
        assert_eq!(days, u.len());
        assert_eq!(wins, u.winners().len());
        assert_eq!(u.iter().count(), u.len());
        assert_eq!(u.iter_scattered().count(), u.len());
        assert_eq!(u.winners().iter().count(), u.winners().len());
        assert_eq!(u.winners().iter_scattered().count(), u.winners().len());
        for (k, _) in u.spill.iter() {
            assert!(plain(u).get(k).is_some_and(Packed::spilled));
        }
    }

    const TIMES: [i64; 13] = [
        i64::MIN,
        PACKED_MIN_TIME - 1,
        PACKED_MIN_TIME,
        -1,
        0,
        1,
        1_700_000_000_000,
        PACKED_MAX_TIME,
        PACKED_MAX_TIME + 1,
        (1 << 48) - 1,
        1 << 48,
        i64::MAX - 1,
        i64::MAX,
    ];
    const COUNTS: [u32; 7] = [0, 1, 65_534, 65_535, 65_536, 1 << 20, u32::MAX];
    const PRIZES: [u32; 10] = [
        0,
        1,
        4094,
        4095,
        4096,
        4097,
        MAX_NAMES as u32 - 1,
        MAX_NAMES as u32,
        MAX_NAMES as u32 + 1,
        u32::MAX,
    ];

    fn wins_values() -> Vec<u32> {
        (0..=16)
            .chain([17, 255, 65_535, u32::MAX - 1, u32::MAX])
            .collect()
    }

    /// Whether a record is expected to fit in place.
    fn fits(day: Option<UserDay>, w: Option<UserWins>) -> bool {
        let Some(d) = day else { return false };
        (-(1i64 << 47)..(1i64 << 47)).contains(&d.last_draw_ms)
            && d.draws_today <= 65_535
            && d.bonus <= 65_535
            && w.is_none_or(|w| (1..=14).contains(&w.wins) && w.last_prize < 4096)
    }

    fn every_record() -> Vec<(Option<UserDay>, Option<UserWins>)> {
        let mut days = vec![None];
        for t in TIMES {
            for d in COUNTS {
                for b in COUNTS {
                    days.push(Some(UserDay {
                        last_draw_ms: t,
                        draws_today: d,
                        bonus: b,
                    }));
                }
            }
        }
        let mut wins = vec![None];
        for w in wins_values() {
            for p in PRIZES {
                wins.push(Some(UserWins {
                    wins: w,
                    last_prize: p,
                }));
            }
        }
        let mut out = Vec::new();
        for d in &days {
            for w in &wins {
                if d.is_some() || w.is_some() {
                    out.push((*d, *w));
                }
            }
        }
        out
    }

    #[test]
    fn the_layout() {
        assert_eq!(std::mem::size_of::<Packed>(), 12);
        assert_eq!(PACKED_MAX_WINS, 14);
        assert_eq!(PACKED_MAX_PRIZE, 4095);
        assert_eq!(PACKED_MIN_TIME, -(1 << 47));
        assert_eq!(PACKED_MAX_TIME, (1 << 47) - 1);
        // A typical winner: the time, one win, a low prize: in place.
        let r = Record {
            day: Some(UserDay {
                last_draw_ms: 1_700_000_000_123,
                draws_today: 1,
                bonus: 0,
            }),
            wins: Some(UserWins {
                wins: 1,
                last_prize: 3,
            }),
            life: UserLife::default(),
        };
        let p = Packed::pack(&r).unwrap();
        assert!(!p.spilled());
        let tw = p.tw;
        assert_eq!(tw & TIME_MASK, 1_700_000_000_123);
        assert_eq!((tw >> WINS_SHIFT) & WINS_MASK, 1);
        assert_eq!(tw >> PRIZE_SHIFT, 3);
        assert_eq!(p.unpack(), r);
        assert!(Packed::MARK.spilled());
    }

    /// Every combination of the boundary values, each on its own key then written over
    /// another key's record: exact, spilled exactly when it does not fit.
    #[test]
    fn every_boundary_record_is_exact() {
        let all = every_record();
        let mut u = Users::new();
        for (i, &(d, w)) in all.iter().enumerate() {
            let k = i as u128 + 2;
            match (d, w) {
                (Some(d), None) => u.insert(k, d),
                (None, Some(w)) => u.insert_wins(k, w),
                (Some(d), Some(w)) => u.insert_both(k, d, Some(w)),
                (None, None) => unreachable!(),
            }
            assert_eq!(u.get_both(k), (d, w), "{d:?} {w:?}");
            assert_eq!(u.get(k), d);
            assert_eq!(u.get_wins(k), w);
            assert_eq!(u.winners().get(k), w);
            let spilled = plain(&u).get(k).unwrap().spilled();
            assert_eq!(spilled, !fits(d, w), "{d:?} {w:?}");
        }
        check(&u);
        let fit = all.iter().filter(|(d, w)| fits(*d, *w)).count();
        assert_eq!(u.spilled(), all.len() - fit);
        // Every record written over one of every other kind, on a single key.
        let mut v = Users::new();
        let mut want = (None, None);
        for (i, &(d, w)) in all.iter().enumerate().step_by(7) {
            let &(d2, w2) = &all[(i * 31 + 5) % all.len()];
            for (d, w) in [(d, w), (d2, w2)] {
                if let Some(d) = d {
                    v.insert(9, d);
                    want.0 = Some(d);
                }
                if let Some(w) = w {
                    v.insert_wins(9, w);
                    want.1 = Some(w);
                }
                assert_eq!(v.get_both(9), want);
                assert_eq!(v.spilled(), usize::from(!fits(want.0, want.1)));
            }
        }
        check(&v);
    }

    #[test]
    fn spill_and_unspill() {
        let mut u = Users::new();
        let day = |t: i64, d: u32, b: u32| UserDay {
            last_draw_ms: t,
            draws_today: d,
            bonus: b,
        };
        // Wins one at a time: in place up to 14, spilled from 15.
        for n in 1..=20u32 {
            let w = u.commit_draw(5, day(n.into(), n, 0), Some(7)).unwrap();
            assert_eq!(
                w,
                UserWins {
                    wins: n,
                    last_prize: 7
                }
            );
            assert_eq!(u.spilled(), usize::from(n > 14), "{n} wins");
            check(&u);
        }
        // A loss keeps the wins.
        assert_eq!(u.commit_draw(5, day(30, 21, 0), None), None);
        assert_eq!(
            u.get_wins(5),
            Some(UserWins {
                wins: 20,
                last_prize: 7
            })
        );
        assert_eq!(u.winners().len(), 1);
        // Back to a record that fits (the wins record is set back by a load): in place.
        u.insert_wins(
            5,
            UserWins {
                wins: 14,
                last_prize: 4095,
            },
        );
        assert_eq!(u.spilled(), 0);
        u.insert_wins(
            5,
            UserWins {
                wins: 14,
                last_prize: 4096,
            },
        );
        assert_eq!(u.spilled(), 1);
        u.insert_wins(
            5,
            UserWins {
                wins: 1,
                last_prize: 0,
            },
        );
        assert_eq!(u.spilled(), 0);
        // Time out of range and back.
        for (t, spilled) in [
            (PACKED_MAX_TIME + 1, true),
            (PACKED_MAX_TIME, false),
            (PACKED_MIN_TIME - 1, true),
            (PACKED_MIN_TIME, false),
            (i64::MIN, true),
            (-1, false),
            (i64::MAX, true),
            (0, false),
        ] {
            u.insert(5, day(t, 3, 4));
            assert_eq!(u.get(5), Some(day(t, 3, 4)));
            assert_eq!(u.spilled(), usize::from(spilled), "time {t}");
            assert_eq!(
                u.get_wins(5),
                Some(UserWins {
                    wins: 1,
                    last_prize: 0
                })
            );
        }
        // Counts: 65,535 fits, 65,536 spills.
        for (d, b, spilled) in [
            (65_535, 65_535, false),
            (65_536, 0, true),
            (65_534, 65_535, false),
            (0, 65_536, true),
            (0, 0, false),
        ] {
            u.insert(5, day(1, d, b));
            assert_eq!(u.get(5), Some(day(1, d, b)));
            assert_eq!(u.spilled(), usize::from(spilled), "{d} {b}");
        }
        // A wins record alone (a winners chunk before the users chunk) is kept whole; day
        // state for it brings it in place. A ban gives it all-zero day state.
        u.insert_wins(
            6,
            UserWins {
                wins: 2,
                last_prize: 1,
            },
        );
        assert_eq!(
            u.get_both(6),
            (
                None,
                Some(UserWins {
                    wins: 2,
                    last_prize: 1
                })
            )
        );
        assert_eq!((u.len(), u.winners().len(), u.spilled()), (1, 2, 1));
        u.insert(6, day(10, 1, 0));
        assert_eq!((u.len(), u.winners().len(), u.spilled()), (2, 2, 0));
        u.insert_wins(
            7,
            UserWins {
                wins: 1,
                last_prize: 1,
            },
        );
        u.ensure_day(7);
        assert_eq!(u.get(7), Some(UserDay::default()));
        u.ensure_day(7);
        u.ensure_day(8);
        assert_eq!(u.get_both(8), (Some(UserDay::default()), None));
        // A wins record of 0 wins is kept as it is, whole.
        u.insert_wins(
            8,
            UserWins {
                wins: 0,
                last_prize: 0,
            },
        );
        assert_eq!(u.get_wins(8), Some(UserWins::default()));
        assert_eq!(u.spilled(), 1);
        check(&u);
    }

    /// Random writes of boundary values over a few thousand keys against a model.
    #[test]
    fn random_writes_match_a_model() {
        use std::collections::HashMap;
        let all = every_record();
        let mut u = Users::new();
        let mut model: HashMap<u128, (Option<UserDay>, Option<UserWins>)> = HashMap::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..200_000 {
            let k = u128::from(next() % 3000) + 2;
            let (d, w) = all[(next() % all.len() as u64) as usize];
            let e = model.entry(k).or_default();
            match next() % 5 {
                0 => {
                    if let Some(d) = d {
                        u.insert(k, d);
                        e.0 = Some(d);
                    }
                }
                1 => {
                    if let Some(w) = w {
                        u.insert_wins(k, w);
                        e.1 = Some(w);
                    }
                }
                2 => {
                    let d = d.unwrap_or_default();
                    u.insert_both(k, d, w);
                    e.0 = Some(d);
                    e.1 = w.or(e.1);
                }
                3 => {
                    let d = d.unwrap_or_default();
                    let prize = w.map(|w| w.last_prize);
                    let got = u.commit_draw(k, d, prize);
                    e.0 = Some(d);
                    if let Some(p) = prize {
                        let mut nw = e.1.unwrap_or_default();
                        nw.wins = nw.wins.saturating_add(1);
                        nw.last_prize = p;
                        e.1 = Some(nw);
                    }
                    assert_eq!(got, prize.and(e.1));
                }
                _ => {
                    u.ensure_day(k);
                    e.0 = e.0.or(Some(UserDay::default()));
                }
            }
            if e.0.is_none() && e.1.is_none() {
                model.remove(&k);
            }
            assert_eq!(u.get_both(k), model.get(&k).copied().unwrap_or_default());
            if step % 50_000 == 0 {
                check(&u);
            }
        }
        check(&u);
        for (k, v) in &model {
            assert_eq!(u.get_both(*k), *v);
        }
        assert_eq!(plain(&u).len(), model.len());
    }

    /// A flash sale's buyer (one win, small values) costs what a user who lost costs.
    #[test]
    fn a_winner_costs_what_a_loser_costs() {
        let n = 100_000u128;
        let (mut winners, mut losers) = (Users::new(), Users::new());
        for k in 1..=n {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            let d = UserDay {
                last_draw_ms: 1_700_000_000_000 + k as i64,
                draws_today: 1,
                bonus: 0,
            };
            winners.commit_draw(key, d, Some(1));
            losers.commit_draw(key, d, None);
        }
        assert_eq!(winners.mem_bytes(), losers.mem_bytes());
        assert_eq!(winners.spilled(), 0);
        assert_eq!(winners.spill.mem_bytes(), 0);
        assert_eq!(winners.winners().len(), 100_000);
        assert_eq!(losers.winners().len(), 0);
        assert_eq!(winners.len(), 100_000);
    }

    /// The lifetime layout: 16-byte records, counts exact past 16 bits (spilled), the switch
    /// both ways keeping every other value, and a dense map at scale.
    #[test]
    fn lifetime_layout() {
        assert_eq!(std::mem::size_of::<Lifetime>(), 14);
        let mut u = Users::new();
        let d = UserDay {
            last_draw_ms: 1_700_000_000_000,
            draws_today: 2,
            bonus: 1,
        };
        let w = UserWins {
            wins: 1,
            last_prize: 2,
        };
        u.insert_both(1, d, Some(w));
        u.insert(2, d);
        // Not kept: the counts are ignored.
        u.insert_life(
            1,
            UserLife {
                draws: 5,
                since_win: 1,
            },
        );
        assert_eq!(u.get_all(1), (Some(d), Some(w), UserLife::default()));
        u.set_lifetime(true);
        assert!(u.keeps_lifetime());
        assert_eq!(u.get_all(1), (Some(d), Some(w), UserLife::default()));
        let big = UserLife {
            draws: 70_000,
            since_win: u32::MAX,
        };
        u.insert_life(1, big);
        u.insert_life(
            3,
            UserLife {
                draws: 1,
                since_win: 1,
            },
        );
        assert_eq!(u.get_all(1), (Some(d), Some(w), big));
        assert_eq!(u.spilled(), 1);
        assert_eq!(
            u.get_all(3),
            (
                Some(UserDay::default()),
                None,
                UserLife {
                    draws: 1,
                    since_win: 1
                }
            )
        );
        let got = u.commit_draw_life(
            2,
            d,
            Some(4),
            UserLife {
                draws: 9,
                since_win: 0,
            },
        );
        assert_eq!(
            got,
            Some(UserWins {
                wins: 1,
                last_prize: 4
            })
        );
        let mut life: Vec<_> = u.iter_life().collect();
        life.sort_by_key(|e| e.0);
        assert_eq!(
            life,
            vec![
                (1, big),
                (
                    2,
                    UserLife {
                        draws: 9,
                        since_win: 0
                    }
                ),
                (
                    3,
                    UserLife {
                        draws: 1,
                        since_win: 1
                    }
                )
            ]
        );
        assert_eq!((u.len(), u.winners().len()), (3, 2));
        u.insert_life(
            1,
            UserLife {
                draws: 3,
                since_win: 3,
            },
        );
        assert_eq!(u.spilled(), 0);
        u.set_lifetime(false);
        assert_eq!(u.get_all(1), (Some(d), Some(w), UserLife::default()));
        assert_eq!(u.iter_life().count(), 0);
        assert_eq!((u.len(), u.winners().len(), u.spilled()), (3, 2, 0));

        let n = 300_000u128;
        let mut v = Users::new();
        v.set_lifetime(true);
        for k in 1..=n {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            v.commit_draw_life(
                key,
                d,
                None,
                UserLife {
                    draws: 3,
                    since_win: 3,
                },
            );
        }
        let per = v.mem_bytes() as f64 / n as f64;
        assert!(per < 40.0, "{per} bytes per user");
        assert_eq!(v.spilled(), 0);
    }

    /// A switch of layout moves nothing at once: records move over as writes come, reads see
    /// every record (without lifetime counts) wherever it is, switches back and forth while
    /// records are still moving lose none, and every map of an earlier layout empties.
    #[test]
    fn switching_layouts_moves_records_over_as_writes_come() {
        use std::collections::HashMap;
        let key = |k: u128| k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | 1;
        let mut u = Users::new();
        let mut model: HashMap<u128, (UserDay, Option<UserWins>, UserLife)> = HashMap::new();
        let n = 20_000u128;
        for k in 1..=n {
            let d = UserDay {
                last_draw_ms: k as i64,
                draws_today: (k % 70_000) as u32,
                bonus: 1,
            };
            let w = (k % 3 == 0).then_some(UserWins {
                wins: (k % 20) as u32 + 1,
                last_prize: 2,
            });
            u.insert_both(key(k), d, w);
            model.insert(key(k), (d, w, UserLife::default()));
        }
        let check = |u: &Users, model: &HashMap<u128, (UserDay, Option<UserWins>, UserLife)>| {
            assert_eq!(u.len(), model.len());
            assert_eq!(
                u.winners().len(),
                model.values().filter(|v| v.1.is_some()).count()
            );
            let mut seen = 0;
            for (k, r) in u.records(true) {
                let (d, w, l) = model[&k];
                assert_eq!((r.day, r.wins, r.life), (Some(d), w, l));
                seen += 1;
            }
            assert_eq!(seen, model.len());
            for (k, v) in model.iter().take(500) {
                assert_eq!(u.get_all(*k), (Some(v.0), v.1, v.2));
            }
        };
        let mut x = 7u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..6 {
            let on = round % 2 == 0;
            u.set_lifetime(on);
            assert_eq!(u.keeps_lifetime(), on);
            // Every count starts at 0 (on) or is dropped (off).
            for v in model.values_mut() {
                v.2 = UserLife::default();
            }
            check(&u, &model);
            // A few hundred writes: some records moved, not all (but for the last rounds).
            let writes = if round < 4 { 300 } else { 3_000 };
            for _ in 0..writes {
                let k = key(u128::from(next() % n as u64) + 1);
                let e = model.get_mut(&k).unwrap();
                e.0.draws_today = e.0.draws_today.wrapping_add(1) % 70_000;
                if on {
                    e.2.draws += 1;
                    u.commit_draw_life(k, e.0, None, e.2);
                } else {
                    u.commit_draw(k, e.0, None);
                }
            }
            check(&u, &model);
        }
        // Writes empty every earlier map.
        let mut i = 0u128;
        while u.moving() > 0 {
            i += 1;
            let k = key(i % n + 1);
            let d = model[&k].0;
            u.insert(k, d);
        }
        assert!(u.old.is_empty());
        check(&u, &model);
        assert!(i < n, "{i} writes to empty the earlier maps of {n} users");
    }
}
