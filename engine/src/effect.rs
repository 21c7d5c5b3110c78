//! Effects: what a write did, as absolute values, for replicas and the AOF.
//!
//! The master decides (clock, random pick, stream ID) and replicates an `Effect`; a replica
//! or the AOF loader applies it with `Campaign::apply` (in `apply`), which reads no clock
//! and draws nothing. Encoded as one binary argument of the internal `LOTTERY.APPLY` command.

use super::campaign::{Outcome, REJECTION_COUNT};
use super::codec::{DResult, DecodeError, Reader, Writer};
use super::flow::{read_client, write_client, ClientState, Gate, Swept};
use super::ledger::{read_transfer, write_transfer, Transfer};
use super::limits::{MAX_CODES_PER_CALL, MAX_CODE_LEN, MAX_TIERS};
use super::limits::{MAX_ID_LEN, MAX_NAMES, MAX_PRIZES, MAX_STREAM_KEY_LEN};
use super::reqcache::{read_remembered, write_remembered, Remembered};
use super::users::{read_day, write_day, UserDay, UserLife, UserWins};
use super::verify::Verifiable;

/// Version of the effect encoding written; 1..=this are read (an AOF written by an older
/// build still loads), a newer one is refused, never guessed at. Version 2 added the
/// flow-control `Gate` to draws and counts; version 3 the keys their sweep removed
/// (`Swept`: idle client records, expired ADMIT memory) and `Configure`; version 4 the wins
/// stream entry a draw appended (`WinEntry`) and `Stats`; version 5 the user's lifetime
/// counts and the code a draw handed out, `Codes`, and the codes of a `Transfer`'s record;
/// version 6 `Seed` (a VERIFIABLE campaign's epoch: started, revealed, its log).
pub const EFFECT_VERSION: u8 = 6;

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
    /// The wins stream entry a win appended, which a replica or the AOF appends with the
    /// draw (effects of version 3 and older came with their own XADD). Its user and REQID
    /// travel next to the effect (see `WinEntry`).
    pub entry: Option<WinEntry>,
    /// The user's lifetime counts after the draw, when the campaign keeps them.
    pub life: Option<UserLife>,
    /// The code a win of a code prize handed out.
    pub code: Option<Vec<u8>>,
}

/// A win's entry in the wins stream: its concrete ID and what its fields hold besides the
/// user's id and the REQID, which travel as they came from the client, next to the effect
/// (arguments of `LOTTERY.APPLY`); the prize's id is the campaign's, by `PrizeDelta::index`.
/// Fields, in this order: `user`, `prize`, `draw`, then `code` for a code prize, `reqid` when
/// the draw had one, then `ts` only when the entry's ID does not carry the draw's time
/// (`entry_layout`). The code is the effect's (`DrawEffect::code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinEntry {
    pub ms: u64,
    pub seq: u64,
    /// The draw number (the campaign's draw counter after the draw).
    pub draw: u64,
    /// Whether the entry has a `reqid` field.
    pub reqid: bool,
    /// The draw's time, when the ID's milliseconds are not it (the clock stepped back
    /// behind the stream's last entry, or the stream held a later ID).
    pub ts: Option<i64>,
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
    /// The pure statistics counters (replays and every rejection counter), as absolute
    /// values: what refusals that changed nothing else added since they were last sent.
    Stats {
        replays: u64,
        rejected: [u64; REJECTION_COUNT],
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
    /// remaining stock (index, stock). For a code prize the record carries the codes: those
    /// an OUT took from the pool, or those an IN was given to add to it.
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
    /// LOTTERY.CODES ADD or REMOVE on the prize with this id, with the codes it added or
    /// removed (only those), in order, and the prize's stock after.
    Codes {
        prize: Vec<u8>,
        add: bool,
        codes: Vec<Vec<u8>>,
    },
    /// A VERIFIABLE campaign's whole verifiable state, as absolute values: an epoch started
    /// (its number, seed, first draw and log), its seed revealed, or its log changed.
    Seed(Verifiable),
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
const T_STATS: u8 = 14;
const T_CODES: u8 = 15;
const T_SEED: u8 = 16;

/// The most options a CONFIGURE the parser accepts can have, so its effect always decodes:
/// every prize's clause with AFTER (6 each), a PACE clause per prize (3), GUARANTEE's list
/// (1 each), every tier weighing every prize (3 each, plus the tier's own 5), and the rules.
const MAX_CONFIGURE_ARGS: usize = (6 + 3 + 1 + 3 * MAX_TIERS) * MAX_PRIZES + 5 * MAX_TIERS + 64;

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
                write_life_and_code(&mut w, d);
                match &d.entry {
                    None => w.u8(0),
                    Some(e) => {
                        w.u8(1);
                        w.u64(e.ms);
                        w.u64(e.seq);
                        w.u64(e.draw);
                        w.bool(e.reqid);
                        match e.ts {
                            None => w.u8(0),
                            Some(t) => {
                                w.u8(1);
                                w.i64(t);
                            }
                        }
                    }
                }
            }
            Effect::Stats { replays, rejected } => {
                w.u8(T_STATS);
                w.u64(*replays);
                w.u8(REJECTION_COUNT as u8);
                for v in rejected {
                    w.u64(*v);
                }
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
            Effect::Codes { prize, add, codes } => {
                w.u8(T_CODES);
                w.bytes(prize);
                w.bool(*add);
                w.u32(codes.len() as u32);
                for c in codes {
                    w.bytes(c);
                }
            }
            Effect::Seed(v) => {
                w.u8(T_SEED);
                v.encode(&mut w);
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
                let (life, code) = if v >= 5 {
                    read_life_and_code(&mut r)?
                } else {
                    (None, None)
                };
                let entry = if v >= 4 { read_entry(&mut r)? } else { None };
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
                    entry,
                    life,
                    code,
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
            T_STATS if v >= 4 => {
                let replays = r.u64()?;
                let n = usize::from(r.u8()?);
                if n > REJECTION_COUNT {
                    return Err(DecodeError("bad counter"));
                }
                let mut rejected = [0; REJECTION_COUNT];
                for v in rejected.iter_mut().take(n) {
                    *v = r.u64()?;
                }
                Effect::Stats { replays, rejected }
            }
            T_CODES if v >= 5 => {
                let prize = r.bytes(MAX_ID_LEN)?.to_vec();
                let add = r.bool()?;
                let n = r.count(5, MAX_CODES_PER_CALL)?;
                let mut codes = Vec::with_capacity(n);
                for _ in 0..n {
                    let c = r.bytes(MAX_CODE_LEN)?;
                    if c.is_empty() {
                        return Err(DecodeError("empty code"));
                    }
                    codes.push(c.to_vec());
                }
                Effect::Codes { prize, add, codes }
            }
            T_SEED if v >= 6 => Effect::Seed(Verifiable::decode(&mut r)?),
            T_CLIENT if v >= 2 => {
                let (key, state) = read_client(&mut r)?;
                Effect::Client { key, state }
            }
            T_TRANSFER => {
                let record = Box::new(read_transfer(&mut r, v)?);
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

/// A version 5 draw effect's lifetime counts and code (before its `WinEntry`).
fn write_life_and_code(w: &mut Writer, d: &DrawEffect) {
    match d.life {
        None => w.u8(0),
        Some(l) => {
            w.u8(1);
            w.u32(l.draws);
            w.u32(l.since_win);
        }
    }
    match &d.code {
        None => w.u8(0),
        Some(c) => {
            w.u8(1);
            w.bytes(c);
        }
    }
}

fn read_life_and_code(r: &mut Reader) -> DResult<(Option<UserLife>, Option<Vec<u8>>)> {
    let life = match r.u8()? {
        0 => None,
        1 => Some(UserLife {
            draws: r.u32()?,
            since_win: r.u32()?,
        }),
        _ => return Err(DecodeError("bad tag")),
    };
    let code = match r.u8()? {
        0 => None,
        1 => {
            let c = r.bytes(MAX_CODE_LEN)?;
            if c.is_empty() {
                return Err(DecodeError("empty code"));
            }
            Some(c.to_vec())
        }
        _ => return Err(DecodeError("bad tag")),
    };
    Ok((life, code))
}

/// The optional `WinEntry` of a version 4 draw effect.
fn read_entry(r: &mut Reader) -> DResult<Option<WinEntry>> {
    if !r.bool()? {
        return Ok(None);
    }
    let (ms, seq, draw, reqid) = (r.u64()?, r.u64()?, r.u64()?, r.bool()?);
    let ts = match r.bool()? {
        false => None,
        true => Some(r.i64()?),
    };
    Ok(Some(WinEntry {
        ms,
        seq,
        draw,
        reqid,
        ts,
    }))
}

/// One field of a win's stream entry (`entry_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryField {
    /// The user's id as the client sent it.
    User,
    /// The prize's id.
    Prize,
    /// The draw number, in decimal.
    Draw,
    /// The code handed out (a code prize).
    Code,
    /// The REQID the client sent.
    Reqid,
    /// The draw's time in Unix ms, in decimal.
    Ts,
}

/// The fields of a win's stream entry, in order, with their names (see `WinEntry`): what the
/// master appends and a replica appends again.
pub fn entry_layout(
    code: bool,
    reqid: bool,
    ts: bool,
) -> ([(&'static [u8], EntryField); 6], usize) {
    let mut f = [(&b""[..], EntryField::User); 6];
    let mut n = 0;
    for (on, name, field) in [
        (true, &b"user"[..], EntryField::User),
        (true, b"prize", EntryField::Prize),
        (true, b"draw", EntryField::Draw),
        (code, b"code", EntryField::Code),
        (reqid, b"reqid", EntryField::Reqid),
        (ts, b"ts", EntryField::Ts),
    ] {
        if on {
            f[n] = (name, field);
            n += 1;
        }
    }
    (f, n)
}
