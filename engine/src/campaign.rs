//! A campaign: prize table, rules, counters and every user's state, with the draw itself.
//!
//! Nothing here touches Redis. Time (`now`, Unix ms) and randomness (`Uniform`) come in as
//! arguments, so every rule is unit-tested, and so a replica can apply a draw's effects
//! without ever reading a clock or a random generator.
//!
//! Every mutation returns an `Effect` carrying absolute new values; `Campaign::apply` turns
//! an effect into the same state on a replica or while loading the AOF.

use super::alias::{AliasTable, Uniform};
use super::effect::{DrawEffect, Effect, PrizeDelta, COUNT_REPLAYS};
use super::gate::{self, ClientState, Gate, Rate, Swept, PPM, SWEEP_MAX, SWEEP_SLOTS};
use super::keyslot;
use super::reqcache::{Remembered, ReqCache};
use super::segmap::{Cursor, SegMap};
use super::transfer::Transfers;
use super::users::Users;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::HashMap;
use std::hash::Hasher;

pub const MAX_PRIZES: usize = 65_536;
/// Distinct prize ids a campaign may use over its life (every one is kept, interned, so a
/// user's last prize stays nameable): four full tables. CONFIGURE refuses a table that would
/// go past it and the loader refuses a record that does, so whatever is saved loads. It also
/// bounds the retired prizes and a DRAIN batch (each is a name), and with them the meta
/// record a CONFIGURE replicates: under 150 MB even with every id at `MAX_ID_LEN`.
pub const MAX_NAMES: usize = 4 * MAX_PRIZES;
pub const MAX_ID_LEN: usize = 256;
pub const MAX_REQID_LEN: usize = 128;
/// The longest campaign key CONFIGURE creates and COPY copies to, and the longest STREAM key.
pub const MAX_KEY_LEN: usize = 4096;
/// The longest wins stream name a campaign can hold, so the longest the loader accepts: an
/// explicit STREAM key, or the default stream of the longest campaign key.
pub const MAX_STREAM_KEY_LEN: usize = MAX_KEY_LEN + keyslot::DEFAULT_STREAM_EXTRA;
pub const MAX_IDEMPOTENCY_MS: u64 = 86_400_000;
pub const MAX_DAYOFFSET_MIN: i32 = 1440;
pub const DAY_MS: i64 = 86_400_000;
pub const DEFAULT_IDEMPOTENCY_MS: u64 = 600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Win = 0,
    Lose = 1,
    Cooldown = 2,
    Quota = 3,
    AlreadyWon = 4,
    NotStarted = 5,
    Ended = 6,
    Paused = 7,
    Banned = 8,
    Busy = 9,
    Retry = 10,
    Limited = 11,
}

/// Rejection outcomes (every outcome but WIN and LOSE).
pub const REJECTION_COUNT: usize = 10;

impl Outcome {
    pub const REJECTIONS: [Outcome; REJECTION_COUNT] = [
        Outcome::Cooldown,
        Outcome::Quota,
        Outcome::AlreadyWon,
        Outcome::NotStarted,
        Outcome::Ended,
        Outcome::Paused,
        Outcome::Banned,
        Outcome::Busy,
        Outcome::Retry,
        Outcome::Limited,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Win => "WIN",
            Outcome::Lose => "LOSE",
            Outcome::Cooldown => "COOLDOWN",
            Outcome::Quota => "QUOTA",
            Outcome::AlreadyWon => "ALREADY_WON",
            Outcome::NotStarted => "NOT_STARTED",
            Outcome::Ended => "ENDED",
            Outcome::Paused => "PAUSED",
            Outcome::Banned => "BANNED",
            Outcome::Busy => "BUSY",
            Outcome::Retry => "RETRY",
            Outcome::Limited => "LIMITED",
        }
    }

    pub fn from_u8(v: u8) -> Option<Outcome> {
        Some(match v {
            0 => Outcome::Win,
            1 => Outcome::Lose,
            2 => Outcome::Cooldown,
            3 => Outcome::Quota,
            4 => Outcome::AlreadyWon,
            5 => Outcome::NotStarted,
            6 => Outcome::Ended,
            7 => Outcome::Paused,
            8 => Outcome::Banned,
            9 => Outcome::Busy,
            10 => Outcome::Retry,
            11 => Outcome::Limited,
            _ => return None,
        })
    }

    /// Index into `Counters::rejected` for a rejection outcome.
    pub fn rejection_index(self) -> Option<usize> {
        (self as usize)
            .checked_sub(2)
            .filter(|&i| i < REJECTION_COUNT)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoldOut {
    Lose,
    Redraw,
    Fallback,
}

impl SoldOut {
    pub fn name(self) -> &'static str {
        match self {
            SoldOut::Lose => "LOSE",
            SoldOut::Redraw => "REDRAW",
            SoldOut::Fallback => "FALLBACK",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub nothing: u32,
    pub cooldown_ms: u64,
    /// Free chances per day; None = unlimited.
    pub daily: Option<u32>,
    /// Wins per user; None = unlimited.
    pub maxwins: Option<u32>,
    pub dayoffset_min: i32,
    /// [start, end) in Unix ms.
    pub window: Option<(i64, i64)>,
    pub soldout: SoldOut,
    pub fallback: Option<Vec<u8>>,
    pub stream: Vec<u8>,
    /// True while `stream` is the key's default (not set with STREAM): a campaign renamed by
    /// RESTORE or COPY then follows its new key's default stream.
    pub stream_default: bool,
    pub idempotency_ms: u64,
    /// RATE per-second [BURST n].
    pub rate: Option<Rate>,
    /// ADMIT p1 p2, in parts per million.
    pub admit: Option<(u32, u32)>,
    /// CLIENTLIMIT n window-ms.
    pub client_limit: Option<(u32, u64)>,
    /// PENALTY ms (0: none).
    pub penalty_ms: u64,
}

impl Rules {
    pub fn defaults(stream: Vec<u8>) -> Rules {
        Rules {
            nothing: 0,
            cooldown_ms: 0,
            daily: None,
            maxwins: Some(1),
            dayoffset_min: 0,
            window: None,
            soldout: SoldOut::Lose,
            fallback: None,
            stream,
            stream_default: true,
            idempotency_ms: DEFAULT_IDEMPOTENCY_MS,
            rate: None,
            admit: None,
            client_limit: None,
            penalty_ms: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrizeSpec {
    pub id: Vec<u8>,
    pub weight: u32,
    /// None = INF.
    pub stock: Option<u64>,
}

/// A parsed CONFIGURE: `None` = option not given (keeps its value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChange {
    pub prizes: Option<Vec<PrizeSpec>>,
    pub nothing: Option<u32>,
    pub cooldown_ms: Option<u64>,
    pub daily: Option<Option<u32>>,
    pub maxwins: Option<Option<u32>>,
    pub dayoffset_min: Option<i32>,
    pub window: Option<(i64, i64)>,
    pub soldout: Option<(SoldOut, Option<Vec<u8>>)>,
    pub stream: Option<Vec<u8>>,
    pub idempotency_ms: Option<u64>,
    /// Some(None): RATE OFF.
    pub rate: Option<Option<Rate>>,
    pub admit: Option<Option<(u32, u32)>>,
    pub client_limit: Option<Option<(u32, u64)>>,
    pub penalty_ms: Option<u64>,
    /// PACE prize LINEAR (true) | NONE (false), in order.
    pub pace: Vec<(Vec<u8>, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prize {
    pub id: Vec<u8>,
    /// Interned name (index into `Campaign::names`) + 1.
    pub name: u32,
    pub weight: u32,
    /// Remaining stock; None = INF.
    pub stock: Option<u64>,
    pub sold: u64,
    /// Sold since the last DRAIN.
    pub pending: u64,
    /// PACE LINEAR: units released evenly over the campaign's WINDOW.
    pub paced: bool,
}

impl Prize {
    pub fn in_stock(&self) -> bool {
        self.stock != Some(0)
    }

    /// In stock, and (when paced) not ahead of its pace at `now`.
    fn available(&self, window: Option<(i64, i64)>, now: i64) -> bool {
        match (self.stock, self.paced, window) {
            (Some(0), _, _) => false,
            (Some(stock), true, Some(w)) => {
                self.sold < gate::paced_allowance(stock.saturating_add(self.sold), w, now)
            }
            _ => true,
        }
    }
}

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Draws that passed every check (also the draw sequence number of the latest one).
    pub draws: u64,
    pub wins: u64,
    pub losses: u64,
    pub replays: u64,
    /// Indexed by `Outcome::rejection_index`.
    pub rejected: [u64; REJECTION_COUNT],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

/// The five values of a DRAW reply, in compact form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrawReply {
    pub outcome: Outcome,
    /// Interned prize name + 1; 0 = nil.
    pub prize: u32,
    pub win_id: Option<StreamId>,
    pub chances_left: i64,
    pub wait_ms: i64,
}

/// What a draw will do, decided before anything changes (the command layer may still fail,
/// e.g. on a stream key of the wrong type, and must then change nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// A REQID retry inside the window: this reply again, nothing consumed.
    Replay(DrawReply),
    /// A check failed: this reply, no chance consumed; `gate`: what the check changed (a
    /// client's window, a penalty, the user turned away by ADMIT).
    Reject(DrawReply, Gate),
    /// All checks passed: `prize` is the index of the prize won, None for a loss; `seq` the
    /// draw's sequence number; `day` the user's state as read for the checks (handed back to
    /// `commit_draw`, so the user is looked up once); `gate` the flow-control state to store.
    Pass {
        prize: Option<usize>,
        seq: u64,
        day: UserDay,
        gate: Gate,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NeedPrize,
    AllWeightsZero,
    TooManyPrizes,
    /// The table would take the campaign past `MAX_NAMES` distinct prize ids.
    TooManyNames,
    DuplicatePrize(Vec<u8>),
    UnknownFallback(Vec<u8>),
    /// PACE names a prize that is not in the resulting table, or one with INF stock.
    BadPace(Vec<u8>, &'static str),
    PaceNeedsWindow,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NeedPrize => write!(f, "a new campaign needs at least one PRIZE"),
            ConfigError::AllWeightsZero => {
                write!(
                    f,
                    "all weights are zero: at least one PRIZE or NOTHING weight must be positive"
                )
            }
            ConfigError::TooManyPrizes => write!(f, "too many prizes (at most {MAX_PRIZES})"),
            ConfigError::TooManyNames => write!(
                f,
                "too many distinct prize ids over the campaign's life (at most {MAX_NAMES}, \
                 every id ever configured is kept): reuse ids or start a new campaign"
            ),
            ConfigError::DuplicatePrize(id) => {
                write!(f, "duplicate prize '{}'", crate::parse::shown(id))
            }
            ConfigError::UnknownFallback(id) => write!(
                f,
                "FALLBACK prize '{}' is not in the prize table",
                crate::parse::shown(id)
            ),
            ConfigError::BadPace(id, why) => {
                write!(f, "PACE prize '{}' {why}", crate::parse::shown(id))
            }
            ConfigError::PaceNeedsWindow => {
                write!(
                    f,
                    "PACE needs a WINDOW (the span the stock is released over)"
                )
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpError {
    NoSuchPrize(Vec<u8>),
    InfStock(Vec<u8>),
    BelowZero,
    Overflow,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::NoSuchPrize(id) => {
                write!(f, "no such prize '{}'", crate::parse::shown(id))
            }
            OpError::InfStock(id) => {
                write!(f, "prize '{}' has INF stock", crate::parse::shown(id))
            }
            OpError::BelowZero => write!(f, "stock would go below zero"),
            OpError::Overflow => write!(f, "stock would exceed 9223372036854775807"),
        }
    }
}

/// The campaign's state as a whole. Fields are public to the engine (persistence, effects).
/// The prize table and the names are indexed by id: they change through `configure` (or a
/// decoder, which then calls `reindex`), never by pushing to them directly.
#[derive(Clone)]
pub struct Campaign {
    /// SipHash keys for user ids, chosen at creation; part of the persisted state.
    pub seed: (u64, u64),
    pub rules: Rules,
    pub prizes: Vec<Prize>,
    /// Every prize id the campaign has ever had (so a user's last prize stays nameable).
    pub names: Vec<Vec<u8>>,
    /// Prizes dropped from the table: their sold and undrained counts, by id.
    pub retired: Vec<Prize>,
    pub paused: bool,
    pub counters: Counters,
    pub drain_seq: u64,
    pub last_batch: Vec<(Vec<u8>, u64)>,
    pub users: Users,
    pub winners: SegMap<UserWins>,
    /// Ban end (Unix ms) by user.
    pub bans: SegMap<i64>,
    pub reqs: ReqCache,
    /// LOTTERY.TRANSFER records (sharded campaigns), oldest first.
    pub transfers: Transfers,
    /// RATE: the rate limiter's theoretical arrival time (ns).
    pub tat_ns: u64,
    /// CLIENTLIMIT / PENALTY state by client key.
    pub clients: SegMap<ClientState>,
    /// ADMIT: users turned away, waiting for their next try (value: when, Unix ms).
    pub waiting: SegMap<i64>,
    /// Where the sweeps of `clients` and `waiting` go on (the master's own; replicas apply
    /// the keys a sweep removed, carried in the effect, and never walk the maps).
    client_sweep: Cursor,
    waiting_sweep: Cursor,
    table: AliasTable,
    table_dirty: bool,
    /// Under SOLDOUT REDRAW with paced prizes: which paced prizes were available when the
    /// table was built (a change rebuilds it).
    table_paced: Vec<bool>,
    /// Lookups by prize id, derived from `names` and `prizes` (never persisted).
    ids: IdIndex,
}

/// Not in the prize table (`IdEntry::slot`).
const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct IdEntry {
    /// Interned name (1-based).
    name: u32,
    /// Index in `Campaign::prizes`, or `NO_SLOT`.
    slot: u32,
}

/// Every prize id the campaign has had, with its interned name and its place in the table:
/// lookups by id are O(1) whatever the table's size.
#[derive(Clone, Debug, Default)]
struct IdIndex {
    by_id: HashMap<Vec<u8>, IdEntry>,
    /// Indices of the paced prizes, in table order.
    paced: Vec<u32>,
}

/// Day number of `ms` for a day starting at UTC midnight shifted by `offset_min` minutes.
pub fn day_of(ms: i64, offset_min: i32) -> i64 {
    ms.saturating_add(i64::from(offset_min) * 60_000)
        .div_euclid(DAY_MS)
}

/// Milliseconds from `ms` to the start of the next day.
pub fn ms_to_next_day(ms: i64, offset_min: i32) -> i64 {
    let shifted = ms.saturating_add(i64::from(offset_min) * 60_000);
    DAY_MS - shifted.rem_euclid(DAY_MS)
}

impl Campaign {
    /// An empty campaign with these rules; prizes come from `configure`.
    fn empty(seed: (u64, u64), rules: Rules) -> Campaign {
        Campaign {
            seed,
            rules,
            prizes: Vec::new(),
            names: Vec::new(),
            retired: Vec::new(),
            paused: false,
            counters: Counters::default(),
            drain_seq: 0,
            last_batch: Vec::new(),
            users: Users::new(),
            winners: SegMap::new(),
            bans: SegMap::new(),
            reqs: ReqCache::default(),
            transfers: Transfers::default(),
            tat_ns: 0,
            clients: SegMap::new(),
            waiting: SegMap::new(),
            client_sweep: Cursor::default(),
            waiting_sweep: Cursor::default(),
            table: AliasTable::default(),
            table_dirty: true,
            table_paced: Vec::new(),
            ids: IdIndex::default(),
        }
    }

    /// Creates a campaign (CONFIGURE on a missing key). `default_stream` is used unless the
    /// change names one.
    pub fn create(
        change: &ConfigChange,
        seed: (u64, u64),
        default_stream: Vec<u8>,
    ) -> Result<Campaign, ConfigError> {
        if change.prizes.as_ref().is_none_or(|p| p.is_empty()) {
            return Err(ConfigError::NeedPrize);
        }
        let mut c = Campaign::empty(seed, Rules::defaults(default_stream));
        c.configure(change)?;
        Ok(c)
    }

    /// Changes the campaign atomically: validates everything first, then applies.
    pub fn configure(&mut self, change: &ConfigChange) -> Result<(), ConfigError> {
        let mut rules = self.rules.clone();
        if let Some(v) = change.nothing {
            rules.nothing = v;
        }
        if let Some(v) = change.cooldown_ms {
            rules.cooldown_ms = v;
        }
        if let Some(v) = change.daily {
            rules.daily = v;
        }
        if let Some(v) = change.maxwins {
            rules.maxwins = v;
        }
        if let Some(v) = change.dayoffset_min {
            rules.dayoffset_min = v;
        }
        if let Some(v) = change.window {
            rules.window = Some(v);
        }
        if let Some((p, f)) = &change.soldout {
            rules.soldout = *p;
            rules.fallback = f.clone();
        }
        if let Some(v) = &change.stream {
            rules.stream = v.clone();
            rules.stream_default = false;
        }
        if let Some(v) = change.idempotency_ms {
            rules.idempotency_ms = v;
        }
        if let Some(v) = change.rate {
            rules.rate = v;
        }
        if let Some(v) = change.admit {
            rules.admit = v;
        }
        if let Some(v) = change.client_limit {
            rules.client_limit = v;
        }
        if let Some(v) = change.penalty_ms {
            rules.penalty_ms = v;
        }
        // The prize table the change leads to: a new one, or the current one (valid as it
        // is: ids unique and indexed).
        let table = change.prizes.as_deref();
        let len = table.map_or(self.prizes.len(), |p| p.len());
        if len == 0 {
            return Err(ConfigError::NeedPrize);
        }
        if len > MAX_PRIZES {
            return Err(ConfigError::TooManyPrizes);
        }
        let mut seen: HashMap<&[u8], usize> = HashMap::new();
        if let Some(p) = table {
            seen.reserve(p.len());
            for (i, s) in p.iter().enumerate() {
                if seen.insert(&s.id, i).is_some() {
                    return Err(ConfigError::DuplicatePrize(s.id.clone()));
                }
            }
        }
        // Position of a prize id in the resulting table, and whether that prize has INF stock.
        let position = |id: &[u8]| match table {
            Some(_) => seen.get(id).copied(),
            None => self.prize_index(id),
        };
        let inf = |i: usize| match table {
            Some(p) => p[i].stock.is_none(),
            None => self.prizes[i].stock.is_none(),
        };
        let weights: u64 = match table {
            Some(p) => p.iter().map(|s| u64::from(s.weight)).sum(),
            None => self.prizes.iter().map(|p| u64::from(p.weight)).sum(),
        };
        if weights + u64::from(rules.nothing) == 0 {
            return Err(ConfigError::AllWeightsZero);
        }
        if rules.soldout == SoldOut::Fallback {
            match &rules.fallback {
                Some(f) if position(f).is_some() => {}
                Some(f) => return Err(ConfigError::UnknownFallback(f.clone())),
                None => return Err(ConfigError::UnknownFallback(Vec::new())),
            }
        }
        for (id, on) in &change.pace {
            match position(id) {
                None => {
                    return Err(ConfigError::BadPace(
                        id.clone(),
                        "is not in the prize table",
                    ))
                }
                Some(i) if *on && inf(i) => {
                    return Err(ConfigError::BadPace(id.clone(), "has INF stock"))
                }
                _ => {}
            }
        }
        // Paced after the change: a prize given PACE LINEAR (the last clause for a prize
        // wins), or a paced prize staying in the table without a PACE clause.
        let pace: HashMap<&[u8], bool> = change
            .pace
            .iter()
            .map(|(id, on)| (id.as_slice(), *on))
            .collect();
        let paced_after = pace.values().any(|&on| on)
            || self.ids.paced.iter().any(|&i| {
                let id = self.prizes[i as usize].id.as_slice();
                !pace.contains_key(id) && position(id).is_some()
            });
        if paced_after && rules.window.is_none() {
            return Err(ConfigError::PaceNeedsWindow);
        }
        // Each id the campaign never had takes a name for good (counted only near the limit).
        if let Some(p) = table {
            if self.names.len() + p.len() > MAX_NAMES {
                let fresh = p
                    .iter()
                    .filter(|s| !self.ids.by_id.contains_key(s.id.as_slice()))
                    .count();
                if self.names.len() + fresh > MAX_NAMES {
                    return Err(ConfigError::TooManyNames);
                }
            }
        }
        drop(seen);
        drop(pace);
        // Valid: apply.
        if let Some(p) = &change.prizes {
            self.replace_prizes(p);
        }
        for (id, on) in &change.pace {
            if let Some(i) = self.prize_index(id) {
                self.prizes[i].paced = *on;
            }
        }
        self.index_paced();

        self.rules = rules;
        self.table_dirty = true;
        Ok(())
    }

    /// Installs a new prize table (validated, within `MAX_NAMES`). Prizes keep their counters
    /// and pacing by id; prizes dropped from the table are retired with their counters (DRAIN
    /// still owes the pending sales; a prize that comes back keeps its sold count). O(old +
    /// new table) hash lookups, plus one pass over the retired prizes when some come back or
    /// leave (and a binary search among them for each id of the table the campaign had before
    /// but not in its current table).
    fn replace_prizes(&mut self, specs: &[PrizeSpec]) {
        let mut old = std::mem::take(&mut self.prizes);
        let mut kept = vec![false; old.len()];
        // Retired prizes coming back, by index in `retired`.
        let mut back: Vec<usize> = Vec::new();
        let mut prizes = Vec::with_capacity(specs.len());
        // Ids are unique in `specs`: each entry is read (its old slot) and moved to its new
        // slot once; the entries of prizes leaving the table are cleared after.
        let mut grown = false;
        for (i, s) in specs.iter().enumerate() {
            let slot = i as u32;
            let mut id = None;
            let (name, sold, pending, paced) = match self.ids.by_id.get_mut(s.id.as_slice()) {
                Some(e) if e.slot != NO_SLOT => {
                    let o = e.slot as usize;
                    e.slot = slot;
                    kept[o] = true;
                    let p = &mut old[o];
                    // The kept prize's id moves over (it is not needed in `old` any more).
                    id = Some(std::mem::take(&mut p.id));
                    (e.name, p.sold, p.pending, p.paced)
                }
                Some(e) => {
                    e.slot = slot;
                    let name = e.name;
                    match self.retired_index(&s.id) {
                        Some(r) => {
                            back.push(r);
                            let p = &self.retired[r];
                            (name, p.sold, p.pending, false)
                        }
                        None => (name, 0, 0, false),
                    }
                }
                None => {
                    if !grown {
                        // Room for the rest of the table at once, rather than growing (and
                        // rehashing) step by step through a table of new ids.
                        grown = true;
                        self.ids.by_id.reserve(specs.len() - i);
                        self.names.reserve(specs.len() - i);
                    }
                    self.names.push(s.id.clone());
                    let name = self.names.len() as u32;
                    self.ids.by_id.insert(s.id.clone(), IdEntry { name, slot });
                    (name, 0, 0, false)
                }
            };
            prizes.push(Prize {
                id: id.unwrap_or_else(|| s.id.clone()),
                name,
                weight: s.weight,
                stock: s.stock,
                sold,
                pending,
                paced: paced && s.stock.is_some(),
            });
        }
        for (p, _) in old.iter().zip(&kept).filter(|(_, k)| !**k) {
            if let Some(e) = self.ids.by_id.get_mut(p.id.as_slice()) {
                e.slot = NO_SLOT;
            }
        }
        self.prizes = prizes;
        let mut leaving: Vec<Prize> = old
            .into_iter()
            .zip(kept)
            .filter(|(_, k)| !k)
            .map(|(p, _)| Prize {
                weight: 0,
                stock: Some(0),
                paced: false,
                ..p
            })
            .collect();
        if !back.is_empty() {
            back.sort_unstable();
            let mut next = back.iter().copied().peekable();
            let mut at = 0;
            self.retired.retain(|_| {
                let stays = next.next_if_eq(&at).is_none();
                at += 1;
                stays
            });
        }
        if !leaving.is_empty() {
            // `retired` stays sorted by id: merge the two sorted runs.
            leaving.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            let stay = std::mem::take(&mut self.retired);
            let mut merged = Vec::with_capacity(stay.len() + leaving.len());
            let mut a = stay.into_iter().peekable();
            let mut b = leaving.into_iter().peekable();
            loop {
                let from_a = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => x.id < y.id,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                merged.extend(if from_a { a.next() } else { b.next() });
            }
            self.retired = merged;
        }
    }

    /// Index in `retired` (sorted by id) of a retired prize.
    fn retired_index(&self, id: &[u8]) -> Option<usize> {
        self.retired
            .binary_search_by(|p| p.id.as_slice().cmp(id))
            .ok()
    }

    /// Rebuilds the list of paced prizes (after the table or a prize's pacing changed).
    fn index_paced(&mut self) {
        self.ids.paced.clear();
        self.ids.paced.extend(
            self.prizes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.paced)
                .map(|(i, _)| i as u32),
        );
    }

    /// Rebuilds the lookups by id from `names`, `prizes` and `retired` as a decoder filled
    /// them, checking what they rely on: names unique, every prize and retired prize named by
    /// its own id, no id both in the table and retired. Sorts `retired` by id if needed.
    pub(crate) fn reindex(&mut self) -> Result<(), &'static str> {
        if self.names.len() > MAX_NAMES {
            return Err("too many prize names");
        }
        let mut by_id = HashMap::with_capacity(self.names.len());
        for (i, n) in self.names.iter().enumerate() {
            let e = IdEntry {
                name: i as u32 + 1,
                slot: NO_SLOT,
            };
            if by_id.insert(n.clone(), e).is_some() {
                return Err("duplicate prize name");
            }
        }
        for (i, p) in self.prizes.iter().enumerate() {
            match by_id.get_mut(p.id.as_slice()) {
                Some(e) if e.name == p.name && e.slot == NO_SLOT => e.slot = i as u32,
                Some(e) if e.name == p.name => return Err("duplicate prize id"),
                _ => return Err("prize name mismatch"),
            }
        }
        if !self.retired.is_sorted_by(|a, b| a.id < b.id) {
            self.retired.sort_by(|a, b| a.id.cmp(&b.id));
        }
        for (i, p) in self.retired.iter().enumerate() {
            match by_id.get(p.id.as_slice()) {
                Some(e) if e.name == p.name && e.slot == NO_SLOT => {}
                Some(e) if e.name == p.name => return Err("duplicate prize id"),
                _ => return Err("prize name mismatch"),
            }
            if i > 0 && self.retired[i - 1].id == p.id {
                return Err("duplicate prize id");
            }
        }
        self.ids.by_id = by_id;
        self.index_paced();
        self.table_dirty = true;
        Ok(())
    }

    // ---- identities -------------------------------------------------------------------

    /// The 128-bit key of a user id (SipHash-1-3, keyed per campaign). Never 0.
    pub fn user_key(&self, user: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.seed.0, self.seed.1);
        h.write(user);
        h.finish128().as_u128().max(1)
    }

    /// The key of a (user, request id) pair in the REQID memory.
    pub fn request_key(&self, user_key: u128, reqid: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.seed.1, self.seed.0);
        h.write(&user_key.to_le_bytes());
        h.write(reqid);
        h.finish128().as_u128().max(1)
    }

    /// The prize id for an interned name (1-based), if any.
    pub fn name(&self, name: u32) -> Option<&[u8]> {
        let i = usize::try_from(name.checked_sub(1)?).ok()?;
        self.names.get(i).map(|v| v.as_slice())
    }

    /// Index in `prizes` of the prize with this id (O(1)).
    pub fn prize_index(&self, id: &[u8]) -> Option<usize> {
        let e = self.ids.by_id.get(id)?;
        (e.slot != NO_SLOT).then_some(e.slot as usize)
    }

    /// The interned name (1-based) of a prize id the campaign has had, if any (O(1)).
    pub fn name_of(&self, id: &[u8]) -> Option<u32> {
        self.ids.by_id.get(id).map(|e| e.name)
    }

    // ---- the draw ---------------------------------------------------------------------

    /// Builds the alias table if the prizes changed. Under SOLDOUT REDRAW, prizes that cannot
    /// be won (sold out, or paced and ahead of their pace at `now`) get weight 0, so a draw
    /// picks among the others with exactly their relative odds.
    fn ensure_table(&mut self, now: i64) {
        let redraw = self.rules.soldout == SoldOut::Redraw;
        if redraw && !self.ids.paced.is_empty() {
            let w = self.rules.window;
            let prizes = &self.prizes;
            let avail = self
                .ids
                .paced
                .iter()
                .map(|&i| prizes[i as usize].available(w, now));
            if !avail.eq(self.table_paced.iter().copied()) {
                self.table_dirty = true;
            }
        }
        if !self.table_dirty {
            return;
        }
        let window = self.rules.window;
        let mut w: Vec<u32> = self
            .prizes
            .iter()
            .map(|p| {
                if redraw && !p.available(window, now) {
                    0
                } else {
                    p.weight
                }
            })
            .collect();
        w.push(self.rules.nothing);
        self.table = AliasTable::new(&w);
        let prizes = &self.prizes;
        self.table_paced = self
            .ids
            .paced
            .iter()
            .map(|&i| prizes[i as usize].available(window, now))
            .collect();
        self.table_dirty = false;
    }

    fn chances_left(&self, day: &UserDay, today: i64) -> i64 {
        match self.rules.daily {
            None => -1,
            Some(d) => {
                let used = if day.last_draw_ms != 0
                    && day_of(day.last_draw_ms, self.rules.dayoffset_min) == today
                {
                    day.draws_today
                } else {
                    0
                };
                i64::from(d.saturating_sub(used)) + i64::from(day.bonus)
            }
        }
    }

    /// The user's day state as of `now` (draws_today reset on a new day).
    fn day_state(&self, key: u128, now: i64) -> UserDay {
        let mut d = self.users.get(key).unwrap_or_default();
        if d.last_draw_ms != 0
            && day_of(d.last_draw_ms, self.rules.dayoffset_min)
                != day_of(now, self.rules.dayoffset_min)
        {
            d.draws_today = 0;
        }
        d
    }

    fn reject(
        &self,
        outcome: Outcome,
        day: &UserDay,
        today: i64,
        wait_ms: i64,
        gate: Gate,
    ) -> Plan {
        Plan::Reject(
            DrawReply {
                outcome,
                prize: 0,
                win_id: None,
                chances_left: self.chances_left(day, today),
                wait_ms,
            },
            gate,
        )
    }

    /// The 128-bit key of a client id (CLIENT), keyed per campaign like users but never equal
    /// to a user's key for the same bytes. Never 0.
    pub fn client_key(&self, client: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.seed.1, self.seed.0);
        h.write(b"client\0");
        h.write(client);
        h.finish128().as_u128().max(1)
    }

    /// Decides a draw without changing anything observable (`plan_draw_from` without CLIENT).
    pub fn plan_draw<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        now: i64,
        rng: &mut U,
    ) -> Plan {
        self.plan_draw_from(user, request, None, now, rng)
    }

    /// Decides a draw by `user` (from `client`, a client key, if given) without changing
    /// anything observable. Check order: REQID replay, window, pause, client (penalty,
    /// CLIENTLIMIT), ban, MAXWINS, cooldown, daily chances, ADMIT, RATE; then the pick, with
    /// paced prizes held back while they are ahead of their pace.
    pub fn plan_draw_from<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        now: i64,
        rng: &mut U,
    ) -> Plan {
        if let Some(rk) = request {
            if let Some(r) = self.reqs.get(rk, now, self.rules.idempotency_ms) {
                return Plan::Replay(DrawReply {
                    outcome: if r.outcome == 0 {
                        Outcome::Win
                    } else {
                        Outcome::Lose
                    },
                    prize: r.prize,
                    win_id: (r.outcome == 0).then_some(StreamId {
                        ms: r.win_ms,
                        seq: r.win_seq,
                    }),
                    chances_left: r.chances_left,
                    wait_ms: r.wait_ms,
                });
            }
        }
        let today = day_of(now, self.rules.dayoffset_min);
        let day = self.day_state(user, now);
        let mut gate = Gate {
            user,
            ..Gate::default()
        };
        if let Some((start, end)) = self.rules.window {
            if now < start {
                let wait = start.saturating_sub(now);
                return self.reject(Outcome::NotStarted, &day, today, wait, gate);
            }
            if now >= end {
                return self.reject(Outcome::Ended, &day, today, 0, gate);
            }
        }
        if self.paused {
            return self.reject(Outcome::Paused, &day, today, 0, gate);
        }
        if let Some(ck) = client {
            let old = self.clients.get(ck).unwrap_or_default();
            let (st, refused) =
                gate::client_check(old, self.rules.client_limit, self.rules.penalty_ms, now);
            if st != old {
                gate.client = Some((ck, st));
            }
            if let Some(wait) = refused {
                let until = st.banned_until;
                if until > now && old.banned_until <= now {
                    // Just put in the penalty box: the user too.
                    if self.bans.get(user).is_none_or(|b| b < until) {
                        gate.user_ban = Some(until);
                    }
                }
                return self.reject(Outcome::Limited, &day, today, wait, gate);
            }
        }
        if let Some(until) = self.bans.get(user) {
            if until > now {
                let wait = until.saturating_sub(now);
                return self.reject(Outcome::Banned, &day, today, wait, gate);
            }
        }
        if let Some(max) = self.rules.maxwins {
            let wins = self.winners.get(user).map_or(0, |w| w.wins);
            if wins >= max {
                return self.reject(Outcome::AlreadyWon, &day, today, 0, gate);
            }
        }
        if day.last_draw_ms != 0 && self.rules.cooldown_ms > 0 {
            let cd = i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX);
            let ready = day.last_draw_ms.saturating_add(cd);
            if now < ready {
                let wait = ready.saturating_sub(now);
                return self.reject(Outcome::Cooldown, &day, today, wait, gate);
            }
        }
        if let Some(d) = self.rules.daily {
            if day.draws_today >= d && day.bonus == 0 {
                let wait = if d == 0 {
                    -1
                } else {
                    ms_to_next_day(now, self.rules.dayoffset_min)
                };
                return self.reject(Outcome::Quota, &day, today, wait, gate);
            }
        }
        if let Some((p1, p2)) = self.rules.admit {
            let was_waiting = self.admit_waiting(user, now);
            let p = if was_waiting { p2 } else { p1 };
            if p < PPM && rng.below(u64::from(PPM)) >= u64::from(p) {
                if !was_waiting {
                    gate.waiting = Some(true);
                }
                return self.reject(Outcome::Retry, &day, today, 0, gate);
            }
            if was_waiting {
                gate.waiting = Some(false);
            }
        } else if !self.waiting.is_empty() && self.waiting.get(user).is_some() {
            gate.waiting = Some(false);
        }
        if let Some(rate) = self.rules.rate {
            match rate.admit(self.tat_ns, now) {
                Ok(tat) => gate.tat_ns = Some(tat),
                Err(wait) => {
                    // Admitted by ADMIT but over the rate: still waiting, as it was.
                    if gate.waiting == Some(false) {
                        gate.waiting = None;
                    }
                    return self.reject(Outcome::Busy, &day, today, wait, gate);
                }
            }
        }
        self.ensure_table(now);
        let prize = match self.table.pick(rng) {
            Some(i) => self.resolve(i as usize, now),
            None => None,
        };
        Plan::Pass {
            prize,
            seq: self.counters.draws.saturating_add(1),
            day,
            gate,
        }
    }

    /// The prize a table entry gives under the sold-out policy (None: a loss).
    fn resolve(&self, entry: usize, now: i64) -> Option<usize> {
        let p = self.prizes.get(entry)?; // the last entry (NOTHING) is not a prize
        let w = self.rules.window;
        if p.available(w, now) {
            return Some(entry);
        }
        match self.rules.soldout {
            SoldOut::Lose | SoldOut::Redraw => None,
            SoldOut::Fallback => {
                let f = self.rules.fallback.as_deref()?;
                let i = self.prize_index(f)?;
                self.prizes
                    .get(i)
                    .filter(|p| p.available(w, now))
                    .map(|_| i)
            }
        }
    }

    /// Applies a passed draw: consumes a chance, starts the cooldown, sells the prize (if
    /// any), remembers the reply for REQID, evicts expired REQIDs. Returns the reply and the
    /// effect to replicate. `plan` is what `plan_draw` just returned for this user at this
    /// time; a `Replay` or `Reject` plan is only counted (as `count` does).
    pub fn commit_draw(
        &mut self,
        user: u128,
        request: Option<u128>,
        now: i64,
        plan: &Plan,
        win_id: Option<StreamId>,
    ) -> (DrawReply, Effect) {
        let today = day_of(now, self.rules.dayoffset_min);
        let (prize, mut day, gate) = match *plan {
            Plan::Pass {
                prize, day, gate, ..
            } => (prize, day, gate),
            Plan::Replay(r) | Plan::Reject(r, _) => return (r, self.count(plan, now)),
        };
        self.apply_gate(&gate, now);
        let free = match self.rules.daily {
            None => true,
            Some(d) => day.draws_today < d,
        };
        if !free {
            day.bonus = day.bonus.saturating_sub(1);
        }
        day.draws_today = day.draws_today.saturating_add(1);
        day.last_draw_ms = now;
        self.users.insert(user, day);
        self.counters.draws = self.counters.draws.saturating_add(1);

        let mut eff = DrawEffect {
            now,
            user,
            day,
            wins: None,
            prize: None,
            total_draws: self.counters.draws,
            total_wins: 0,
            total_losses: 0,
            request: None,
            gate: gate.without_user(),
            swept: Swept::default(),
        };
        let mut reply = DrawReply {
            outcome: Outcome::Lose,
            prize: 0,
            win_id: None,
            chances_left: self.chances_left(&day, today),
            wait_ms: i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX),
        };
        let won = prize.and_then(|i| {
            let p = self.prizes.get_mut(i)?;
            if let Some(s) = p.stock.as_mut() {
                *s = s.checked_sub(1)?;
            }
            p.sold = p.sold.saturating_add(1);
            p.pending = p.pending.saturating_add(1);
            Some((i, p.name, p.stock, p.sold, p.pending))
        });
        if let Some((i, name, stock, sold, pending)) = won {
            if stock == Some(0) && self.rules.soldout == SoldOut::Redraw {
                self.table_dirty = true;
            }
            let mut w = self.winners.get(user).unwrap_or_default();
            w.wins = w.wins.saturating_add(1);
            w.last_prize = name;
            self.winners.insert(user, w);
            self.counters.wins = self.counters.wins.saturating_add(1);
            reply.outcome = Outcome::Win;
            reply.prize = name;
            reply.win_id = win_id;
            eff.wins = Some(w);
            eff.prize = Some(PrizeDelta {
                index: i as u32,
                stock,
                sold,
                pending,
            });
        } else {
            self.counters.losses = self.counters.losses.saturating_add(1);
        }
        eff.total_wins = self.counters.wins;
        eff.total_losses = self.counters.losses;
        if let Some(rk) = request {
            if self.rules.idempotency_ms > 0 {
                let idem = i64::try_from(self.rules.idempotency_ms).unwrap_or(i64::MAX);
                let rem = Remembered {
                    made_ms: now,
                    expires_ms: now.saturating_add(idem),
                    outcome: if reply.outcome == Outcome::Win { 0 } else { 1 },
                    prize: reply.prize,
                    win_ms: reply.win_id.map_or(0, |w| w.ms),
                    win_seq: reply.win_id.map_or(0, |w| w.seq),
                    chances_left: reply.chances_left,
                    wait_ms: reply.wait_ms,
                };
                self.reqs.insert(rk, rem);
                eff.request = Some((rk, rem));
            }
        }
        self.reqs.evict(now, self.rules.idempotency_ms);
        eff.swept = self.sweep(now);
        (reply, Effect::Draw(Box::new(eff)))
    }

    /// Counts a rejection or a replay (both consume nothing else).
    pub fn count(&mut self, plan: &Plan, now: i64) -> Effect {
        let (which, value) = match plan {
            Plan::Replay(_) => {
                self.counters.replays = self.counters.replays.saturating_add(1);
                (COUNT_REPLAYS, self.counters.replays)
            }
            Plan::Reject(r, gate) => {
                self.apply_gate(gate, now);
                let v = match r
                    .outcome
                    .rejection_index()
                    .and_then(|i| self.counters.rejected.get_mut(i))
                {
                    Some(c) => {
                        *c = c.saturating_add(1);
                        *c
                    }
                    None => 0,
                };
                (r.outcome as u8, v)
            }
            // Not a count: callers commit passed draws. Keep the state as it is.
            Plan::Pass { .. } => (COUNT_REPLAYS, self.counters.replays),
        };
        self.reqs.evict(now, self.rules.idempotency_ms);
        let gate = match plan {
            Plan::Reject(_, g) if !g.is_empty() => Some(g.without_user()),
            _ => None,
        };
        Effect::Count {
            now,
            which,
            value,
            gate,
            swept: self.sweep(now),
        }
    }

    /// The bounded expiry step every draw and refusal takes on the master: walks a few slots
    /// of the client map and of the ADMIT map from where the last step stopped, and removes
    /// the client records that carry nothing any more (`ClientState::idle`) and the users
    /// ADMIT no longer remembers (`ADMIT_MEMORY_MS` after their refusal, or all of them
    /// under ADMIT OFF). The keys removed go into the effect (`apply_swept`).
    fn sweep(&mut self, now: i64) -> Swept {
        let mut out = Swept::default();
        if !self.clients.is_empty() {
            let limit = self.rules.client_limit;
            self.clients.sweep(
                &mut self.client_sweep,
                SWEEP_SLOTS,
                SWEEP_MAX,
                |_, s| s.idle(limit, now),
                |k| out.clients.push(k),
            );
        }
        if !self.waiting.is_empty() {
            let admit = self.rules.admit.is_some();
            self.waiting.sweep(
                &mut self.waiting_sweep,
                SWEEP_SLOTS,
                SWEEP_MAX,
                |_, since| !admit || !gate::admit_remembers(since, now),
                |k| out.waiting.push(k),
            );
        }
        out
    }

    /// Removes what a master's sweep removed (replicas, AOF loading).
    pub(crate) fn apply_swept(&mut self, s: &Swept) {
        for &k in &s.clients {
            self.clients.remove(k);
        }
        for &k in &s.waiting {
            self.waiting.remove(k);
        }
    }

    /// Whether ADMIT remembers `user` as turned away at `now`.
    fn admit_waiting(&self, user: u128, now: i64) -> bool {
        !self.waiting.is_empty()
            && self
                .waiting
                .get(user)
                .is_some_and(|since| gate::admit_remembers(since, now))
    }

    /// Stores what the flow-control checks of a draw changed (on the master when committing
    /// a plan, on replicas when applying its effect).
    pub(crate) fn apply_gate(&mut self, g: &Gate, now: i64) {
        if let Some(t) = g.tat_ns {
            self.tat_ns = t;
        }
        if let Some((k, st)) = g.client {
            self.clients.insert(k, st);
        }
        match g.waiting {
            Some(true) => self.waiting.insert(g.user, now),
            Some(false) => {
                self.waiting.remove(g.user);
            }
            None => {}
        }
        if let Some(until) = g.user_ban {
            self.set_ban(g.user, until);
        }
    }

    // ---- administration ---------------------------------------------------------------

    pub fn grant(&mut self, user: u128, n: u32, cap: Option<u32>) -> (u32, Effect) {
        let mut d = self.users.get(user).unwrap_or_default();
        let raised = d.bonus.saturating_add(n);
        d.bonus = match cap {
            Some(m) => raised.min(m.max(d.bonus)),
            None => raised,
        };
        self.users.insert(user, d);
        (d.bonus, Effect::User { user, day: d })
    }

    pub fn restock(&mut self, id: &[u8], delta: i64) -> Result<(u64, Effect), OpError> {
        let i = self
            .prize_index(id)
            .ok_or_else(|| OpError::NoSuchPrize(id.to_vec()))?;
        let cur = self.prizes[i]
            .stock
            .ok_or_else(|| OpError::InfStock(id.to_vec()))?;
        let new = i128::from(cur) + i128::from(delta);
        if new < 0 {
            return Err(OpError::BelowZero);
        }
        let new = u64::try_from(new).map_err(|_| OpError::Overflow)?;
        if new > i64::MAX as u64 {
            return Err(OpError::Overflow);
        }
        self.set_stock(i, new);
        Ok((
            new,
            Effect::Stock {
                index: i as u32,
                stock: new,
            },
        ))
    }

    /// Sets a finite prize's remaining stock; the alias table is rebuilt when the prize goes
    /// in or out of stock.
    pub(crate) fn set_stock(&mut self, i: usize, new: u64) {
        let p = &mut self.prizes[i];
        if p.stock.is_some_and(|cur| (cur == 0) != (new == 0)) {
            self.table_dirty = true;
        }
        p.stock = Some(new);
    }

    pub fn set_paused(&mut self, paused: bool) -> Effect {
        self.paused = paused;
        Effect::Paused(paused)
    }

    /// Bans a user until `until` (Unix ms). A banned user counts among the campaign's users.
    pub fn ban(&mut self, user: u128, until: i64) -> Effect {
        self.set_ban(user, until);
        Effect::Ban { user, until }
    }

    pub(crate) fn set_ban(&mut self, user: u128, until: i64) {
        self.bans.insert(user, until);
        if self.users.get(user).is_none() {
            self.users.insert(user, UserDay::default());
        }
    }

    /// Lifts a ban; true if one was active at `now`. The effect is None when the user had no
    /// ban record (nothing changed).
    pub fn unban(&mut self, user: u128, now: i64) -> (bool, Option<Effect>) {
        let removed = self.bans.remove(user);
        (
            removed.is_some_and(|until| until > now),
            removed.map(|_| Effect::Unban { user }),
        )
    }

    /// Puts a client in the penalty box until `until` (Unix ms).
    pub fn ban_client(&mut self, client: u128, until: i64) -> Effect {
        let mut st = self.clients.get(client).unwrap_or_default();
        st.banned_until = until;
        self.clients.insert(client, st);
        Effect::Client {
            key: client,
            state: st,
        }
    }

    /// Lifts a client's penalty and empties its CLIENTLIMIT window (its record goes); true
    /// if a penalty was active at `now`. The effect is None when the client has no state.
    pub fn unban_client(&mut self, client: u128, now: i64) -> (bool, Option<Effect>) {
        let Some(st) = self.clients.remove(client) else {
            return (false, None);
        };
        let until = st.banned_until;
        (
            until > now,
            Some(Effect::Client {
                key: client,
                state: ClientState::default(),
            }),
        )
    }

    /// Clients in the penalty box at `now`.
    pub fn penalized_clients(&self, now: i64) -> usize {
        self.clients
            .iter()
            .filter(|(_, s)| {
                let until = s.banned_until;
                until > now
            })
            .count()
    }

    /// A client's penalty end (Unix ms) if it is in the penalty box at `now`, else 0.
    pub fn client_banned_until(&self, client: u128, now: i64) -> i64 {
        self.clients
            .get(client)
            .map(|s| s.banned_until)
            .filter(|&u| u > now)
            .unwrap_or(0)
    }

    /// Hands out the pending sold counts: (seq, batch).
    pub fn drain(&mut self) -> (u64, Vec<(Vec<u8>, u64)>, Effect) {
        let mut batch = Vec::new();
        for p in self.prizes.iter_mut().chain(self.retired.iter_mut()) {
            if p.pending > 0 {
                batch.push((p.id.clone(), p.pending));
                p.pending = 0;
            }
        }
        self.drain_seq = self.drain_seq.saturating_add(1);
        self.last_batch = batch.clone();
        let eff = Effect::Drain {
            seq: self.drain_seq,
            batch: batch.clone(),
        };
        (self.drain_seq, batch, eff)
    }

    // ---- reads ------------------------------------------------------------------------

    pub fn state_name(&self, now: i64) -> &'static str {
        if let Some((start, end)) = self.rules.window {
            if now < start {
                return "not_started";
            }
            if now >= end {
                return "ended";
            }
        }
        if self.paused {
            "paused"
        } else {
            "active"
        }
    }

    /// LOTTERY.USER values: draws_today, chances_left, bonus, wins, last_prize (interned),
    /// last_draw_ms, cooldown_left_ms, banned_until_ms.
    pub fn user_view(&self, user: u128, now: i64) -> UserView {
        let today = day_of(now, self.rules.dayoffset_min);
        let day = self.day_state(user, now);
        let w = self.winners.get(user).unwrap_or_default();
        let cooldown_left = if day.last_draw_ms != 0 {
            let cd = i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX);
            day.last_draw_ms
                .saturating_add(cd)
                .saturating_sub(now)
                .max(0)
        } else {
            0
        };
        let banned_until = self.bans.get(user).filter(|&u| u > now).unwrap_or(0);
        UserView {
            draws_today: day.draws_today,
            chances_left: self.chances_left(&day, today),
            bonus: day.bonus,
            wins: w.wins,
            last_prize: w.last_prize,
            last_draw_ms: day.last_draw_ms,
            cooldown_left_ms: cooldown_left,
            banned_until_ms: banned_until,
            admit_waiting: self.admit_waiting(user, now),
        }
    }

    /// Heap bytes, for MEMORY USAGE.
    pub fn mem_bytes(&self) -> usize {
        let prizes: usize = self
            .prizes
            .iter()
            .chain(self.retired.iter())
            .map(|p| std::mem::size_of::<Prize>() + p.id.capacity())
            .sum();
        // Each name is held twice: in `names` and as a key of the lookup by id.
        let names: usize = self
            .names
            .iter()
            .map(|n| 2 * (n.capacity() + 24) + std::mem::size_of::<IdEntry>() + 8)
            .sum::<usize>()
            + self.ids.paced.capacity() * 4;
        std::mem::size_of::<Campaign>()
            + prizes
            + names
            + self.users.mem_bytes()
            + self.winners.mem_bytes()
            + self.bans.mem_bytes()
            + self.reqs.mem_bytes()
            + self.table.mem_bytes()
            + self.transfers.mem_bytes()
            + self.clients.mem_bytes()
            + self.waiting.mem_bytes()
            + self.rules.stream.capacity()
    }

    /// COPY to `key`: a campaign on its key's default wins stream gets the new key's default
    /// stream (two live campaigns should not share one). Returns true if the stream changed.
    pub fn follow_key(&mut self, key: &[u8]) -> bool {
        self.rules.stream_default && self.use_default_stream(key)
    }

    /// Loading under `key` in a cluster: a wins stream in another slot than the key (a DUMP
    /// restored under another name) falls back to the key's default stream, so the campaign
    /// never writes outside its slot. Returns true if the stream changed.
    pub fn fix_slot(&mut self, key: &[u8]) -> bool {
        self.needs_slot_fix(key) && self.use_default_stream(key)
    }

    /// True if the wins stream is in another slot than `key`.
    pub fn needs_slot_fix(&self, key: &[u8]) -> bool {
        keyslot::key_slot(&self.rules.stream) != keyslot::key_slot(key)
    }

    fn use_default_stream(&mut self, key: &[u8]) -> bool {
        let default = keyslot::default_stream(key);
        if self.rules.stream == default || keyslot::key_slot(&default) != keyslot::key_slot(key) {
            return false;
        }
        self.rules.stream = default;
        self.rules.stream_default = true;
        true
    }

    /// Marks the alias table for a rebuild (after state was replaced wholesale).
    pub fn invalidate_table(&mut self) {
        self.table_dirty = true;
    }

    /// A blank campaign for decoders to fill.
    pub(crate) fn blank(seed: (u64, u64), rules: Rules) -> Campaign {
        Campaign::empty(seed, rules)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserView {
    pub draws_today: u32,
    pub chances_left: i64,
    pub bonus: u32,
    pub wins: u32,
    pub last_prize: u32,
    pub last_draw_ms: i64,
    pub cooldown_left_ms: i64,
    pub banned_until_ms: i64,
    /// Turned away by ADMIT, waiting for the next try (which passes with p2).
    pub admit_waiting: bool,
}
