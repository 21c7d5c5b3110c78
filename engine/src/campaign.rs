//! A campaign: its state as a whole (`Campaign`) and the core types every part of the engine
//! shares: outcomes, rules, prizes, counters, the draw's reply and plan.
//!
//! Nothing here touches Redis. What a campaign does lives over this file, one concept per
//! file: `configure` (CONFIGURE), `draw` (the draw), `flow_state` (flow-control state),
//! `admin` (GRANT, RESTOCK, PAUSE, BAN, DRAIN...), `transfer` (LOTTERY.TRANSFER), `views`
//! (reads); `apply` replays effects and `persist` encodes the whole state.

use super::alias::AliasTable;
use super::code_pools::CodePools;
use super::codec::{DResult, Reader, Writer};
use super::flow::{self, ClientState, Gate, Rate};
use super::ledger::Transfers;
use super::reqcache::ReqCache;
use super::segmap::{Cursor, SegMap};
use super::users::{UserDay, UserLife, Users, Winners};
use super::verify::{Hmac, SeedLog, Verifiable, SEED_LEN};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::HashMap;
use std::hash::Hasher;

pub use super::period::{day_of, Period, DAY_MS};
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
    /// TOTAL spent: replied as `QUOTA` (with wait -1), counted apart (`rejected_total`).
    QuotaTotal = 12,
}

/// Rejection outcomes (every outcome but WIN and LOSE).
pub const REJECTION_COUNT: usize = 11;

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
        Outcome::QuotaTotal,
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
            Outcome::QuotaTotal => "QUOTA",
        }
    }

    /// The name of the outcome's statistics counter, after `rejected_`.
    pub fn stat_name(self) -> &'static str {
        match self {
            Outcome::QuotaTotal => "total",
            Outcome::Cooldown => "cooldown",
            Outcome::Quota => "quota",
            Outcome::AlreadyWon => "already_won",
            Outcome::NotStarted => "not_started",
            Outcome::Ended => "ended",
            Outcome::Paused => "paused",
            Outcome::Banned => "banned",
            Outcome::Busy => "busy",
            Outcome::Retry => "retry",
            Outcome::Limited => "limited",
            Outcome::Win => "win",
            Outcome::Lose => "lose",
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
            12 => Outcome::QuotaTotal,
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
    /// GUARANTEE n [PRIZES ...].
    pub guarantee: Option<Guarantee>,
    /// TOTAL: chances per user over the campaign; None = unlimited.
    pub total: Option<u32>,
    /// What DAILY counts.
    pub period: Period,
    /// TIER tables, in the order they were first defined.
    pub tiers: Vec<Tier>,
}

/// GUARANTEE n [PRIZES count id ...].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guarantee {
    /// The n-th draw in a row without a win is guaranteed (n >= 2).
    pub n: u32,
    /// The prizes a guaranteed draw may give; empty = every prize.
    pub prizes: Vec<Vec<u8>>,
}

/// TIER name [PRIZE-WEIGHT id w]... [NOTHING w]: overrides of the base weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: Vec<u8>,
    /// (prize id, weight), ids unique.
    pub weights: Vec<(Vec<u8>, u32)>,
    pub nothing: Option<u32>,
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
            guarantee: None,
            total: None,
            period: Period::Day,
            tiers: Vec::new(),
        }
    }

    /// Whether users' lifetime counts are needed by the rules alone (AFTER is a prize's).
    pub fn needs_lifetime(&self) -> bool {
        self.guarantee.is_some() || self.total.is_some()
    }

    /// The tier named `name`, by index.
    pub fn tier_index(&self, name: &[u8]) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrizeSpec {
    pub id: Vec<u8>,
    pub weight: u32,
    /// None = INF (or CODES).
    pub stock: Option<u64>,
    /// AFTER n (0: none).
    pub after: u32,
    /// CODES: the stock is the prize's pool of unused codes.
    pub codes: bool,
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
    /// Some(None): GUARANTEE OFF.
    pub guarantee: Option<Option<Guarantee>>,
    /// Some(None): TOTAL INF.
    pub total: Option<Option<u32>>,
    pub period: Option<Period>,
    /// TIER clauses in order: a definition, or None for `TIER name OFF`.
    pub tiers: Vec<(Vec<u8>, Option<Tier>)>,
    /// VERIFIABLE [LOG WINS|ALL] (the inner None: no LOG given): on a campaign not yet
    /// verifiable the command layer then starts its first epoch (`start_epoch`, with a seed
    /// from the OS; LOG WINS unless given); on one that is, only a given LOG changes.
    pub verifiable: Option<Option<SeedLog>>,
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
    /// AFTER n: winnable from the user's n-th chance-consuming draw on (0 or 1: always).
    pub after: u32,
    /// CODES: `stock` is the number of unused codes in the prize's pool.
    pub codes: bool,
}

impl Prize {
    pub fn in_stock(&self) -> bool {
        self.stock != Some(0)
    }

    /// In stock, and (when paced) not ahead of its pace at `now`.
    pub(crate) fn available(&self, window: Option<(i64, i64)>, now: i64) -> bool {
        match (self.stock, self.paced, window) {
            (Some(0), _, _) => false,
            (Some(stock), true, Some(w)) => {
                self.sold < flow::paced_allowance(stock.saturating_add(self.sold), w, now)
            }
            _ => true,
        }
    }
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
        /// The user's lifetime counts before the draw (0 unless kept).
        life: UserLife,
        gate: Gate,
    },
}

pub(crate) fn write_counters(w: &mut Writer, c: &Counters) {
    w.u64(c.draws);
    w.u64(c.wins);
    w.u64(c.losses);
    w.u64(c.replays);
    for r in c.rejected {
        w.u64(r);
    }
}

/// Reads counters with `rejections` rejection counts (7 before encoding version 3, 10 before
/// version 5).
pub(crate) fn read_counters(r: &mut Reader, rejections: usize) -> DResult<Counters> {
    let mut c = Counters {
        draws: r.u64()?,
        wins: r.u64()?,
        losses: r.u64()?,
        replays: r.u64()?,
        rejected: [0; REJECTION_COUNT],
    };
    for x in c.rejected.iter_mut().take(rejections) {
        *x = r.u64()?;
    }
    Ok(c)
}

/// The campaign's state as a whole. Fields are the engine's own (read from outside through
/// the accessors below).
/// The prize table and the names are indexed by id: they change through `configure` (or a
/// decoder, which then calls `reindex`), never by pushing to them directly.
#[derive(Clone)]
pub struct Campaign {
    /// SipHash keys for user ids, chosen at creation; part of the persisted state.
    pub(crate) seed: (u64, u64),
    pub(crate) rules: Rules,
    pub(crate) prizes: Vec<Prize>,
    /// Every prize id the campaign has ever had (so a user's last prize stays nameable).
    pub(crate) names: Vec<Vec<u8>>,
    /// Prizes dropped from the table: their sold and undrained counts, by id.
    pub(crate) retired: Vec<Prize>,
    pub(crate) paused: bool,
    pub(crate) counters: Counters,
    pub(crate) drain_seq: u64,
    pub(crate) last_batch: Vec<(Vec<u8>, u64)>,
    /// Every user's day state and wins record.
    pub(crate) users: Users,
    /// Ban end (Unix ms) by user.
    pub(crate) bans: SegMap<i64>,
    pub(crate) reqs: ReqCache,
    /// LOTTERY.TRANSFER records (sharded campaigns), oldest first.
    pub(crate) transfers: Transfers,
    /// RATE: the rate limiter's theoretical arrival time (ns).
    pub(crate) tat_ns: u64,
    /// CLIENTLIMIT / PENALTY state by client key.
    pub(crate) clients: SegMap<ClientState>,
    /// ADMIT: users turned away, waiting for their next try (value: when, Unix ms).
    pub(crate) waiting: SegMap<i64>,
    /// Where the sweeps of `clients` and `waiting` go on (the master's own; replicas apply
    /// the keys a sweep removed, carried in the effect, and never walk the maps).
    pub(crate) client_sweep: Cursor,
    pub(crate) waiting_sweep: Cursor,
    pub(crate) table: AliasTable,
    /// The weights `table` was built from (prizes then NOTHING; 0 for a prize REDRAW took
    /// out).
    pub(crate) table_weights: Vec<u32>,
    pub(crate) table_dirty: bool,
    /// Under SOLDOUT REDRAW with paced prizes: which paced prizes were available when the
    /// table was built (a change rebuilds it).
    pub(crate) table_paced: Vec<bool>,
    /// Each tier's table and its weights (prizes then NOTHING), as `rules.tiers` orders
    /// them; None until a draw needs it (dropped with the base table).
    pub(crate) tier_tables: Vec<Option<(AliasTable, Vec<u32>)>>,
    /// The code prizes' pools.
    pub(crate) codes: CodePools,
    /// VERIFIABLE: the epoch's seed and the log (None: draws use the module's generator).
    pub(crate) verify: Option<Verifiable>,
    /// While verifiable: the prefix sums of `table_weights` and the table's fingerprint
    /// (`draw::table_fingerprint`), built with the table.
    pub(crate) table_verify: (Vec<u64>, u128),
    /// The same for each tier's table, as `tier_tables` holds them.
    pub(crate) tier_verify: Vec<Option<(Vec<u64>, u128)>>,
    /// The command layer's bookkeeping of the last table it published in the wins stream
    /// for each tier name (empty: the base table), by fingerprint. Never persisted,
    /// replicated or compared: empty after a load, so the first draw publishes again.
    pub(crate) published: Vec<(Vec<u8>, u128)>,
    /// The HMAC states of the seed that last decided a draw, with that seed (derived, never
    /// persisted: made again when the seed changes).
    pub(crate) seed_mac: Option<Box<([u8; SEED_LEN], Hmac)>>,
    /// Lookups by prize id, derived from `names` and `prizes` (never persisted).
    pub(crate) ids: IdIndex,
    /// The command layer's notes on this campaign (see `HostNotes`).
    pub host: HostNotes,
}

/// What the command layer keeps with a campaign for its own bookkeeping: hints and tags that
/// are never persisted, replicated or compared, and that no outcome depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostNotes {
    /// The ID of the last wins stream entry this campaign appended (a hint for the next
    /// entry's explicit ID; a wrong hint only costs a retry).
    pub last_entry: Option<StreamId>,
    /// Nonzero while statistics counted by `count_statistic` have not been replicated yet:
    /// the command layer's flush round in which it last scheduled them.
    pub stats_round: u64,
    /// Where the command layer listed the campaign in that round (an index of its own).
    pub stats_slot: usize,
    /// What `count_statistic` added to each statistics counter (`replays` last) since the
    /// counter was last sent (by `stats_effect`, or by `count` for that counter).
    pub unsent: [u64; REJECTION_COUNT + 1],
}

/// Not in the prize table (`IdEntry::slot`).
pub(crate) const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub(crate) struct IdEntry {
    /// Interned name (1-based).
    pub(crate) name: u32,
    /// Index in `Campaign::prizes`, or `NO_SLOT`.
    pub(crate) slot: u32,
}

/// Every prize id the campaign has had, with its interned name and its place in the table:
/// lookups by id are O(1) whatever the table's size.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdIndex {
    pub(crate) by_id: HashMap<Vec<u8>, IdEntry>,
    /// Indices of the paced prizes, in table order.
    pub(crate) paced: Vec<u32>,
}

impl Campaign {
    /// An empty campaign with these rules; prizes come from `configure`.
    pub(crate) fn empty(seed: (u64, u64), rules: Rules) -> Campaign {
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
            bans: SegMap::new(),
            reqs: ReqCache::default(),
            transfers: Transfers::default(),
            tat_ns: 0,
            clients: SegMap::new(),
            waiting: SegMap::new(),
            client_sweep: Cursor::default(),
            waiting_sweep: Cursor::default(),
            table: AliasTable::default(),
            table_weights: Vec::new(),
            table_dirty: true,
            table_paced: Vec::new(),
            tier_tables: Vec::new(),
            codes: CodePools::default(),
            verify: None,
            table_verify: (Vec::new(), 0),
            tier_verify: Vec::new(),
            published: Vec::new(),
            seed_mac: None,
            ids: IdIndex::default(),
            host: HostNotes::default(),
        }
    }

    /// A blank campaign for decoders to fill.
    pub(crate) fn blank(seed: (u64, u64), rules: Rules) -> Campaign {
        Campaign::empty(seed, rules)
    }

    /// Whether the users' lifetime counts are kept: a rule needs them (GUARANTEE, TOTAL, a
    /// prize with AFTER).
    pub fn needs_lifetime(&self) -> bool {
        self.rules.needs_lifetime() || self.prizes.iter().any(|p| p.after > 1)
    }

    /// The code prizes' pools.
    pub fn codes(&self) -> &CodePools {
        &self.codes
    }

    /// Marks the alias table for a rebuild (after state was replaced wholesale).
    pub fn invalidate_table(&mut self) {
        self.table_dirty = true;
    }

    // ---- read access ------------------------------------------------------------------

    /// The SipHash keys of the campaign's user, request and client keys.
    pub fn seed(&self) -> (u64, u64) {
        self.seed
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The prize table, in CONFIGURE order.
    pub fn prizes(&self) -> &[Prize] {
        &self.prizes
    }

    /// Every prize id the campaign has had, in order: interned name `n` is `names()[n - 1]`.
    pub fn names(&self) -> &[Vec<u8>] {
        &self.names
    }

    /// Prizes dropped from the table, with their sold and undrained counts, by id.
    pub fn retired(&self) -> &[Prize] {
        &self.retired
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The sequence number of the last DRAIN.
    pub fn drain_seq(&self) -> u64 {
        self.drain_seq
    }

    /// The batch the last DRAIN handed out.
    pub fn last_batch(&self) -> &[(Vec<u8>, u64)] {
        &self.last_batch
    }

    pub fn users(&self) -> &Users {
        &self.users
    }

    /// The users with a wins record (kept in `users`, in each user's record).
    pub fn winners(&self) -> Winners<'_> {
        self.users.winners()
    }

    /// Ban end (Unix ms) by user.
    pub fn bans(&self) -> &SegMap<i64> {
        &self.bans
    }

    /// The REQID memory.
    pub fn reqs(&self) -> &ReqCache {
        &self.reqs
    }

    pub fn transfers(&self) -> &Transfers {
        &self.transfers
    }

    /// RATE: the rate limiter's theoretical arrival time (ns).
    pub fn tat_ns(&self) -> u64 {
        self.tat_ns
    }

    /// CLIENTLIMIT / PENALTY state by client key.
    pub fn clients(&self) -> &SegMap<ClientState> {
        &self.clients
    }

    /// Users ADMIT turned away, by when (Unix ms).
    pub fn waiting(&self) -> &SegMap<i64> {
        &self.waiting
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

    /// The 128-bit key of a client id (CLIENT), keyed per campaign like users but never equal
    /// to a user's key for the same bytes. Never 0.
    pub fn client_key(&self, client: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.seed.1, self.seed.0);
        h.write(b"client\0");
        h.write(client);
        h.finish128().as_u128().max(1)
    }
}

/// Raw mutable access for tests that forge states no command makes (a loader's input, counters
/// to carry through a change). Nothing is checked or reindexed: after changing the names,
/// only encode.
#[cfg(feature = "test-hooks")]
impl Campaign {
    pub fn seed_mut(&mut self) -> &mut (u64, u64) {
        &mut self.seed
    }

    pub fn prizes_mut(&mut self) -> &mut [Prize] {
        &mut self.prizes
    }

    pub fn retired_mut(&mut self) -> &mut [Prize] {
        &mut self.retired
    }

    /// The prize table then the retired prizes.
    pub fn all_prizes_mut(&mut self) -> impl Iterator<Item = &mut Prize> {
        self.prizes.iter_mut().chain(self.retired.iter_mut())
    }

    pub fn names_mut(&mut self) -> &mut Vec<Vec<u8>> {
        &mut self.names
    }
}
