//! Effects: what a write did, as absolute values, for replicas and the AOF.
//!
//! The master decides (clock, random pick, stream ID) and replicates an `Effect`; a replica
//! or the AOF loader applies it with `Campaign::apply`, which reads no clock and draws
//! nothing. Encoded as one binary argument of the internal `LOTTERY.APPLY` command.

use super::campaign::{
    Campaign, ConfigChange, Counters, Outcome, UserDay, UserWins, MAX_ID_LEN, MAX_NAMES,
    MAX_PRIZES, MAX_STREAM_KEY_LEN,
};
use super::codec::{DResult, DecodeError, Reader, Writer};
use super::gate::{read_client, write_client, ClientState, Gate, Swept};
use super::parse;
use super::persist;
use super::reqcache::Remembered;
use super::transfer::{read_transfer, write_transfer, Transfer};

/// Version of the effect encoding written; 1..=this are read (an AOF written by an older
/// build still loads), a newer one is refused, never guessed at. Version 2 added the
/// flow-control `Gate` to draws and counts; version 3 the keys their sweep removed
/// (`Swept`: idle client records, expired ADMIT memory) and `Configure`.
pub const EFFECT_VERSION: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrizeDelta {
    pub index: u32,
    pub stock: Option<u64>,
    pub sold: u64,
    pub pending: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawEffect {
    pub now: i64,
    pub user: u128,
    pub day: UserDay,
    pub wins: Option<UserWins>,
    pub prize: Option<PrizeDelta>,
    /// The campaign's draw, win and loss counters after this draw.
    pub total_draws: u64,
    pub total_wins: u64,
    pub total_losses: u64,
    pub request: Option<(u128, Remembered)>,
    /// Flow-control state the draw changed (RATE, CLIENT, ADMIT, PENALTY).
    pub gate: Gate,
    /// Idle client records and expired ADMIT memory the draw's sweep removed.
    pub swept: Swept,
}

/// `Effect::Count::which` for REQID replays (other values are rejection outcomes).
pub const COUNT_REPLAYS: u8 = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The whole campaign minus its per-user maps (the first record of an AOF rewrite; also
    /// what CONFIGURE replicated before `Configure`).
    Config(Vec<u8>),
    /// CONFIGURE: its options as the client gave them, applied again where the effect lands
    /// (configuring is deterministic), so the effect is the size of the command, never of
    /// the campaign's history. `created`: the hash keys and default wins stream chosen when
    /// the command created the campaign.
    Configure {
        created: Option<((u64, u64), Vec<u8>)>,
        args: Vec<Vec<u8>>,
    },
    /// Per-user records to merge in (AOF rewrite), in the persistence chunk format.
    Chunk(Vec<u8>),
    Draw(Box<DrawEffect>),
    /// A rejection (`which` = the outcome code) or a replay (`COUNT_REPLAYS`): the counter's
    /// new value, REQID eviction at `now`, and what its sweep removed.
    Count {
        now: i64,
        which: u8,
        value: u64,
        gate: Option<Gate>,
        swept: Swept,
    },
    User {
        user: u128,
        day: UserDay,
    },
    Stock {
        index: u32,
        stock: u64,
    },
    Paused(bool),
    Ban {
        user: u128,
        until: i64,
    },
    Unban {
        user: u128,
    },
    Drain {
        seq: u64,
        batch: Vec<(Vec<u8>, u64)>,
    },
    /// A transfer record (inserted or replaced by id) and, for OUT and IN, the prize's new
    /// remaining stock (index, stock).
    Transfer {
        record: Box<Transfer>,
        stock: Option<(u32, u64)>,
    },
    /// A client's state (BAN/UNBAN CLIENT). The default state (nothing held) removes the
    /// client's record: a record carrying nothing is never kept.
    Client {
        key: u128,
        state: ClientState,
    },
}

const T_CONFIG: u8 = 1;
const T_CHUNK: u8 = 2;
const T_DRAW: u8 = 3;
const T_COUNT: u8 = 4;
const T_USER: u8 = 5;
const T_STOCK: u8 = 6;
const T_PAUSED: u8 = 7;
const T_BAN: u8 = 8;
const T_UNBAN: u8 = 9;
const T_DRAIN: u8 = 10;
const T_TRANSFER: u8 = 11;
const T_CLIENT: u8 = 12;
const T_CONFIGURE: u8 = 13;

/// The most options a CONFIGURE effect carries: every prize's three values, plus the rules.
const MAX_CONFIGURE_ARGS: usize = 4 * MAX_PRIZES + 64;

pub(crate) fn write_counters(w: &mut Writer, c: &Counters) {
    w.u64(c.draws);
    w.u64(c.wins);
    w.u64(c.losses);
    w.u64(c.replays);
    for r in c.rejected {
        w.u64(r);
    }
}

/// Reads counters with `rejections` rejection counts (7 before encoding version 3).
pub(crate) fn read_counters(r: &mut Reader, rejections: usize) -> DResult<Counters> {
    let mut c = Counters {
        draws: r.u64()?,
        wins: r.u64()?,
        losses: r.u64()?,
        replays: r.u64()?,
        rejected: [0; super::campaign::REJECTION_COUNT],
    };
    for x in c.rejected.iter_mut().take(rejections) {
        *x = r.u64()?;
    }
    Ok(c)
}

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

impl Effect {
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.encode_into(&mut buf);
        buf
    }

    /// Encodes into `buf` (cleared first), so a caller can reuse one buffer.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.clear();
        let mut w = Writer {
            buf: std::mem::take(buf),
        };
        w.u8(EFFECT_VERSION);
        match self {
            Effect::Config(b) => {
                w.u8(T_CONFIG);
                w.buf.extend_from_slice(b);
            }
            Effect::Configure { created, args } => {
                w.u8(T_CONFIGURE);
                match created {
                    Some((seed, stream)) => {
                        w.u8(1);
                        w.u64(seed.0);
                        w.u64(seed.1);
                        w.bytes(stream);
                    }
                    None => w.u8(0),
                }
                w.u32(args.len() as u32);
                for a in args {
                    w.bytes(a);
                }
            }
            Effect::Chunk(b) => {
                w.u8(T_CHUNK);
                w.buf.extend_from_slice(b);
            }
            Effect::Draw(d) => {
                w.u8(T_DRAW);
                w.i64(d.now);
                w.u128(d.user);
                write_day(&mut w, &d.day);
                match d.wins {
                    None => w.u8(0),
                    Some(x) => {
                        w.u8(1);
                        w.u32(x.wins);
                        w.u32(x.last_prize);
                    }
                }
                match d.prize {
                    None => w.u8(0),
                    Some(p) => {
                        w.u8(1);
                        w.u32(p.index);
                        w.opt_u64(p.stock);
                        w.u64(p.sold);
                        w.u64(p.pending);
                    }
                }
                w.u64(d.total_draws);
                w.u64(d.total_wins);
                w.u64(d.total_losses);
                match &d.request {
                    None => w.u8(0),
                    Some((k, m)) => {
                        w.u8(1);
                        w.u128(*k);
                        write_remembered(&mut w, m);
                    }
                }
                d.gate.encode(&mut w);
                d.swept.encode(&mut w);
            }
            Effect::Count {
                now,
                which,
                value,
                gate,
                swept,
            } => {
                w.u8(T_COUNT);
                w.i64(*now);
                w.u8(*which);
                w.u64(*value);
                gate.unwrap_or_default().encode(&mut w);
                swept.encode(&mut w);
            }
            Effect::User { user, day } => {
                w.u8(T_USER);
                w.u128(*user);
                write_day(&mut w, day);
            }
            Effect::Stock { index, stock } => {
                w.u8(T_STOCK);
                w.u32(*index);
                w.u64(*stock);
            }
            Effect::Paused(p) => {
                w.u8(T_PAUSED);
                w.bool(*p);
            }
            Effect::Ban { user, until } => {
                w.u8(T_BAN);
                w.u128(*user);
                w.i64(*until);
            }
            Effect::Unban { user } => {
                w.u8(T_UNBAN);
                w.u128(*user);
            }
            Effect::Drain { seq, batch } => {
                w.u8(T_DRAIN);
                w.u64(*seq);
                w.u32(batch.len() as u32);
                for (id, n) in batch {
                    w.bytes(id);
                    w.u64(*n);
                }
            }
            Effect::Client { key, state } => {
                w.u8(T_CLIENT);
                write_client(&mut w, *key, state);
            }
            Effect::Transfer { record, stock } => {
                w.u8(T_TRANSFER);
                write_transfer(&mut w, record);
                match stock {
                    None => w.u8(0),
                    Some((i, v)) => {
                        w.u8(1);
                        w.u32(*i);
                        w.u64(*v);
                    }
                }
            }
        }
        *buf = w.buf;
    }

    pub fn decode(buf: &[u8]) -> DResult<Effect> {
        let mut r = Reader::new(buf);
        let v = r.u8()?;
        if v == 0 || v > EFFECT_VERSION {
            return Err(DecodeError("unknown effect version"));
        }
        let tag = r.u8()?;
        let rest = buf.get(2..).unwrap_or(&[]);
        let e = match tag {
            T_CONFIG => return Ok(Effect::Config(rest.to_vec())),
            T_CHUNK => return Ok(Effect::Chunk(rest.to_vec())),
            T_DRAW => {
                let now = r.i64()?;
                let user = r.u128()?;
                let day = read_day(&mut r)?;
                let wins = match r.u8()? {
                    0 => None,
                    1 => Some(UserWins {
                        wins: r.u32()?,
                        last_prize: r.u32()?,
                    }),
                    _ => return Err(DecodeError("bad tag")),
                };
                let prize = match r.u8()? {
                    0 => None,
                    1 => Some(PrizeDelta {
                        index: r.u32()?,
                        stock: r.opt_u64()?,
                        sold: r.u64()?,
                        pending: r.u64()?,
                    }),
                    _ => return Err(DecodeError("bad tag")),
                };
                let (draws, wins_n, losses) = (r.u64()?, r.u64()?, r.u64()?);
                let request = match r.u8()? {
                    0 => None,
                    1 => Some((r.u128()?, read_remembered(&mut r, now)?)),
                    _ => return Err(DecodeError("bad tag")),
                };
                let gate = if v >= 2 {
                    Gate::decode(&mut r)?
                } else {
                    Gate::default()
                };
                let swept = if v >= 3 {
                    Swept::decode(&mut r)?
                } else {
                    Swept::default()
                };
                Effect::Draw(Box::new(DrawEffect {
                    now,
                    user,
                    day,
                    wins,
                    prize,
                    total_draws: draws,
                    total_wins: wins_n,
                    total_losses: losses,
                    request,
                    gate,
                    swept,
                }))
            }
            T_COUNT => {
                let now = r.i64()?;
                let which = r.u8()?;
                if which != COUNT_REPLAYS
                    && Outcome::from_u8(which)
                        .and_then(Outcome::rejection_index)
                        .is_none()
                {
                    return Err(DecodeError("bad counter"));
                }
                let value = r.u64()?;
                let gate = if v >= 2 {
                    Some(Gate::decode(&mut r)?).filter(|g| !g.is_empty())
                } else {
                    None
                };
                let swept = if v >= 3 {
                    Swept::decode(&mut r)?
                } else {
                    Swept::default()
                };
                Effect::Count {
                    now,
                    which,
                    value,
                    gate,
                    swept,
                }
            }
            T_USER => Effect::User {
                user: r.u128()?,
                day: read_day(&mut r)?,
            },
            T_STOCK => Effect::Stock {
                index: r.u32()?,
                stock: r.u64()?,
            },
            T_PAUSED => Effect::Paused(r.bool()?),
            T_BAN => Effect::Ban {
                user: r.u128()?,
                until: r.i64()?,
            },
            T_UNBAN => Effect::Unban { user: r.u128()? },
            T_DRAIN => {
                let seq = r.u64()?;
                let n = r.count(12, MAX_NAMES)?;
                let mut batch = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.bytes(MAX_ID_LEN)?.to_vec();
                    batch.push((id, r.u64()?));
                }
                Effect::Drain { seq, batch }
            }
            T_CONFIGURE if v >= 3 => {
                let created = match r.u8()? {
                    0 => None,
                    1 => {
                        let seed = (r.u64()?, r.u64()?);
                        Some((seed, r.bytes(MAX_STREAM_KEY_LEN)?.to_vec()))
                    }
                    _ => return Err(DecodeError("bad tag")),
                };
                let n = r.count(4, MAX_CONFIGURE_ARGS)?;
                let mut args = Vec::with_capacity(n);
                for _ in 0..n {
                    args.push(r.bytes(MAX_STREAM_KEY_LEN)?.to_vec());
                }
                Effect::Configure { created, args }
            }
            T_CLIENT if v >= 2 => {
                let (key, state) = read_client(&mut r)?;
                Effect::Client { key, state }
            }
            T_TRANSFER => {
                let record = Box::new(read_transfer(&mut r)?);
                let stock = match r.u8()? {
                    0 => None,
                    1 => Some((r.u32()?, r.u64()?)),
                    _ => return Err(DecodeError("bad tag")),
                };
                if stock.is_some_and(|(_, v)| v > i64::MAX as u64) {
                    return Err(DecodeError("stock out of range"));
                }
                Effect::Transfer { record, stock }
            }
            _ => return Err(DecodeError("unknown effect")),
        };
        r.finish()?;
        Ok(e)
    }
}

/// The change a `Configure` effect's options describe.
fn configure_change(args: &[Vec<u8>]) -> DResult<ConfigChange> {
    let opts: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    parse::configure_args(&opts).map_err(|_| DecodeError("configure effect with bad options"))
}

/// The campaign an effect creates on a missing key (`Config` or a creating `Configure`), or
/// None for an effect that needs an existing campaign.
pub fn created_campaign(e: &Effect) -> Option<DResult<Campaign>> {
    match e {
        Effect::Config(meta) => Some(persist::decode_meta(meta)),
        Effect::Configure {
            created: Some((seed, stream)),
            args,
        } => Some(configure_change(args).and_then(|change| {
            Campaign::create(&change, *seed, stream.clone())
                .map_err(|_| DecodeError("configure effect refused"))
        })),
        _ => None,
    }
}

impl Campaign {
    /// Applies a replicated effect. Errors (a corrupt or mismatched effect) leave the campaign
    /// unchanged. `Config` on a missing campaign is handled by the caller (`persist`).
    pub fn apply(&mut self, e: &Effect) -> DResult<()> {
        match e {
            Effect::Config(b) => persist::apply_meta(self, b)?,
            Effect::Configure {
                created: None,
                args,
            } => {
                let change = configure_change(args)?;
                self.configure(&change)
                    .map_err(|_| DecodeError("configure effect refused"))?;
            }
            Effect::Configure {
                created: Some(_), ..
            } => return Err(DecodeError("configure effect creates an existing campaign")),
            Effect::Chunk(b) => persist::load_chunk(self, b)?,
            Effect::Draw(d) => {
                if let Some(p) = &d.prize {
                    let prize = self
                        .prizes
                        .get_mut(p.index as usize)
                        .ok_or(DecodeError("prize index out of range"))?;
                    let was_out = !prize.in_stock();
                    prize.stock = p.stock;
                    prize.sold = p.sold;
                    prize.pending = p.pending;
                    if was_out == prize.in_stock() {
                        self.invalidate_table();
                    }
                }
                self.users.insert(d.user, d.day);
                if let Some(w) = d.wins {
                    self.winners.insert(d.user, w);
                }
                self.counters.draws = d.total_draws;
                self.counters.wins = d.total_wins;
                self.counters.losses = d.total_losses;
                if let Some((k, m)) = d.request {
                    self.reqs.insert(k, m);
                }
                self.apply_gate(&d.gate, d.now);
                self.reqs.evict(d.now, self.rules.idempotency_ms);
                self.apply_swept(&d.swept);
            }
            Effect::Count {
                now,
                which,
                value,
                gate,
                swept,
            } => {
                if let Some(g) = gate {
                    self.apply_gate(g, *now);
                }
                if *which == COUNT_REPLAYS {
                    self.counters.replays = *value;
                } else if let Some(c) = Outcome::from_u8(*which)
                    .and_then(Outcome::rejection_index)
                    .and_then(|i| self.counters.rejected.get_mut(i))
                {
                    *c = *value;
                }
                self.reqs.evict(*now, self.rules.idempotency_ms);
                self.apply_swept(swept);
            }
            Effect::User { user, day } => self.users.insert(*user, *day),
            Effect::Stock { index, stock } => {
                let p = self
                    .prizes
                    .get_mut(*index as usize)
                    .ok_or(DecodeError("prize index out of range"))?;
                if p.stock.is_none() {
                    return Err(DecodeError("stock effect on an INF prize"));
                }
                p.stock = Some(*stock);
                self.invalidate_table();
            }
            Effect::Paused(p) => self.paused = *p,
            Effect::Ban { user, until } => self.set_ban(*user, *until),
            Effect::Unban { user } => {
                self.bans.remove(*user);
            }
            Effect::Drain { seq, batch } => {
                for p in self.prizes.iter_mut().chain(self.retired.iter_mut()) {
                    p.pending = 0;
                }
                self.drain_seq = *seq;
                self.last_batch = batch.clone();
            }
            Effect::Client { key, state } => {
                if *state == ClientState::default() {
                    self.clients.remove(*key);
                } else {
                    self.clients.insert(*key, *state);
                }
            }
            Effect::Transfer { record, stock } => {
                if let Some((i, _)) = *stock {
                    match self.prizes.get(i as usize) {
                        Some(p) if p.stock.is_some() && p.id == record.prize => {}
                        _ => return Err(DecodeError("transfer effect on a wrong prize")),
                    }
                }
                if self.transfers.get(&record.id).is_none() && !self.transfers.has_room() {
                    return Err(DecodeError("too many transfer records"));
                }
                // As on the master (`record_transfer`): prune, store, prune.
                self.transfers.prune();
                if let Some((i, v)) = *stock {
                    self.set_stock(i as usize, v);
                }
                self.transfers.put((**record).clone());
                self.transfers.prune();
            }
        }
        Ok(())
    }
}
