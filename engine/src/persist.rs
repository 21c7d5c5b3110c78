//! The versioned persistence encoding: one "meta" record (everything but the per-user maps)
//! and any number of bounded "chunks" of per-user records. RDB, DUMP/RESTORE and the AOF
//! rewrite all use it, so a campaign of millions of users is never one giant buffer.
//!
//! Decoding validates everything it reads (lengths, ranges, cross references) and returns an
//! error instead of panicking; a too-new version is refused.

use super::campaign::{
    read_counters, write_counters, Campaign, Guarantee, Period, Prize, Rules, SoldOut, Tier,
    REJECTION_COUNT,
};
use super::codec::{DResult, DecodeError, Reader, Writer};
use super::flow::{read_client, write_client, Rate, MAX_RATE, PPM};
use super::ledger::Transfers;
use super::limits::{
    MAX_CODE_LEN, MAX_DAYOFFSET_MIN, MAX_GUARANTEE, MAX_IDEMPOTENCY_MS, MAX_ID_LEN, MAX_NAMES,
    MAX_PRIZES, MAX_STREAM_KEY_LEN, MAX_TIERS, MAX_TIER_NAME_LEN, MAX_TIER_WEIGHTS,
};
use super::reqcache::{read_remembered, write_remembered};
use super::users::{read_day, write_day, UserDay, UserLife, UserWins};
use super::verify::Verifiable;

/// Version of the meta/chunk encoding written by this build. Loading accepts 1..=this.
/// 2 added the transfer records at the end of the meta record (none in version 1); 3 the
/// flow-control rules and state (RATE, ADMIT, CLIENTLIMIT, PENALTY, PACE; three more
/// rejection counters; client and admission chunks); 4 the time each REQID entry was made
/// (it ends by the IDEMPOTENCY window in force, not only the one it was made under); 5 the
/// campaign rules GUARANTEE, TOTAL, PERIOD, TIER, a prize's AFTER and CODES, the codes of
/// pending transfer records, and chunks of lifetime counts, code pools, the codes moved out of
/// them and the codes of remembered wins; 6 the VERIFIABLE state (log, epoch, seed, first
/// draw, revealed) at the end of the meta record (a record of an older version loads as not
/// verifiable).
pub const ENCODING_VERSION: u8 = 6;
/// Entries per chunk: 4096 users is about 128 KiB of payload.
pub const CHUNK_ENTRIES: usize = 4096;

const K_USERS: u8 = 1;
const K_WINNERS: u8 = 2;
const K_BANS: u8 = 3;
const K_REQS: u8 = 4;
const K_CLIENTS: u8 = 5;
const K_WAITING: u8 = 6;
const K_LIFE: u8 = 7;
const K_CODES: u8 = 8;
const K_USED_CODES: u8 = 9;
const K_REQ_CODES: u8 = 10;
const K_MOVED_CODES: u8 = 11;

fn write_prize(w: &mut Writer, p: &Prize) {
    w.bytes(&p.id);
    w.u32(p.name);
    w.u32(p.weight);
    w.opt_u64(p.stock);
    w.u64(p.sold);
    w.u64(p.pending);
    w.bool(p.paced);
    w.u32(p.after);
    w.bool(p.codes);
}

fn read_prize(r: &mut Reader, v: u8) -> DResult<Prize> {
    let p = Prize {
        id: r.bytes(MAX_ID_LEN)?.to_vec(),
        name: r.u32()?,
        weight: r.u32()?,
        stock: r.opt_u64()?,
        sold: r.u64()?,
        pending: r.u64()?,
        paced: if v >= 3 { r.bool()? } else { false },
        after: 0,
        codes: false,
    };
    let mut p = p;
    if v >= 5 {
        p.after = r.u32()?;
        p.codes = r.bool()?;
    }
    if p.id.is_empty()
        || p.stock.is_some_and(|s| s > i64::MAX as u64)
        || (p.paced && p.stock.is_none())
        || (p.codes && p.stock.is_none())
    {
        return Err(DecodeError("bad prize"));
    }
    Ok(p)
}

pub fn encode_meta(c: &Campaign) -> Vec<u8> {
    // The exact size but for the rules and counters (a few hundred bytes): a full table with
    // its names and retired prizes is megabytes, better not grown by doubling.
    let prize = |p: &Prize| 4 + p.id.len() + 39;
    let size = 1024
        + c.last_batch
            .iter()
            .map(|(id, _)| 12 + id.len())
            .sum::<usize>()
        + c.names.iter().map(|n| 4 + n.len()).sum::<usize>()
        + c.prizes
            .iter()
            .chain(c.retired.iter())
            .map(prize)
            .sum::<usize>()
        + c.rules.stream.len()
        + c.rules.fallback.as_ref().map_or(0, |f| f.len())
        + c.transfers
            .iter()
            .map(|t| {
                25 + t.id.len()
                    + t.prize.len()
                    + t.peer.len()
                    + t.codes.iter().map(|c| 4 + c.len()).sum::<usize>()
            })
            .sum::<usize>()
        + c.rules
            .guarantee
            .as_ref()
            .map_or(0, |g| g.prizes.iter().map(|p| 4 + p.len()).sum::<usize>())
        + c.rules
            .tiers
            .iter()
            .map(|t| {
                16 + t.name.len() + t.weights.iter().map(|(id, _)| 8 + id.len()).sum::<usize>()
            })
            .sum::<usize>();
    let mut w = Writer::with_capacity(size);
    w.u8(ENCODING_VERSION);
    w.u64(c.seed.0);
    w.u64(c.seed.1);
    let r = &c.rules;
    w.u32(r.nothing);
    w.u64(r.cooldown_ms);
    w.opt_u32(r.daily);
    w.opt_u32(r.maxwins);
    w.i64(i64::from(r.dayoffset_min));
    match r.window {
        None => w.u8(0),
        Some((a, b)) => {
            w.u8(1);
            w.i64(a);
            w.i64(b);
        }
    }
    w.u8(match r.soldout {
        SoldOut::Lose => 0,
        SoldOut::Redraw => 1,
        SoldOut::Fallback => 2,
    });
    match &r.fallback {
        None => w.u8(0),
        Some(f) => {
            w.u8(1);
            w.bytes(f);
        }
    }
    w.bytes(&r.stream);
    w.bool(r.stream_default);
    w.u64(r.idempotency_ms);
    w.bool(c.paused);
    // What replicas hold (`sent_counters`): a count waiting for its batch is not saved.
    write_counters(&mut w, &c.sent_counters());
    w.u64(c.drain_seq);
    w.u32(c.last_batch.len() as u32);
    for (id, n) in &c.last_batch {
        w.bytes(id);
        w.u64(*n);
    }
    w.u32(c.names.len() as u32);
    for n in &c.names {
        w.bytes(n);
    }
    w.u32(c.prizes.len() as u32);
    for p in &c.prizes {
        write_prize(&mut w, p);
    }
    w.u32(c.retired.len() as u32);
    for p in &c.retired {
        write_prize(&mut w, p);
    }
    // How many users, winners and bans: a loader prepares its maps so chunks load at full
    // speed.
    w.u64(c.users.len() as u64);
    w.u64(c.winners().len() as u64);
    w.u64(c.bans.len() as u64);
    c.transfers.encode(&mut w);
    // Version 3: flow control.
    match r.rate {
        None => w.u8(0),
        Some(rate) => {
            w.u8(1);
            w.u64(rate.per_sec);
            w.u64(rate.burst);
        }
    }
    match r.admit {
        None => w.u8(0),
        Some((p1, p2)) => {
            w.u8(1);
            w.u32(p1);
            w.u32(p2);
        }
    }
    match r.client_limit {
        None => w.u8(0),
        Some((n, win)) => {
            w.u8(1);
            w.u32(n);
            w.u64(win);
        }
    }
    w.u64(r.penalty_ms);
    w.u64(c.tat_ns);
    w.u64(c.clients.len() as u64);
    w.u64(c.waiting.len() as u64);
    // Version 5: campaign rules.
    match &r.guarantee {
        None => w.u8(0),
        Some(g) => {
            w.u8(1);
            w.u32(g.n);
            w.u32(g.prizes.len() as u32);
            for p in &g.prizes {
                w.bytes(p);
            }
        }
    }
    w.opt_u32(r.total);
    w.u8(r.period.code());
    w.u32(r.tiers.len() as u32);
    for t in &r.tiers {
        w.bytes(&t.name);
        w.opt_u32(t.nothing);
        w.u32(t.weights.len() as u32);
        for (id, wt) in &t.weights {
            w.bytes(id);
            w.u32(*wt);
        }
    }
    // Version 6: VERIFIABLE.
    Verifiable::encode_opt(c.verify.as_ref(), &mut w);
    w.buf
}

/// The version 5 rules at the end of a meta record.
fn read_rules_v5(r: &mut Reader, rules: &mut Rules) -> DResult<()> {
    rules.guarantee = match r.u8()? {
        0 => None,
        1 => {
            let n = r.u32()?;
            if !(2..=MAX_GUARANTEE).contains(&n) {
                return Err(DecodeError("bad guarantee"));
            }
            let k = r.count(4, MAX_PRIZES)?;
            let mut prizes = Vec::with_capacity(k);
            for _ in 0..k {
                prizes.push(id_bytes(r)?);
            }
            Some(Guarantee { n, prizes })
        }
        _ => return Err(DecodeError("bad tag")),
    };
    rules.total = r.opt_u32()?;
    rules.period = Period::from_code(r.u8()?).ok_or(DecodeError("bad period"))?;
    // A tier takes at least 10 bytes: its name (a 4-byte length and 1 byte), the NOTHING
    // tag (1) and its weights' count (4), with no NOTHING and no weights.
    let n = r.count(10, MAX_TIERS)?;
    for _ in 0..n {
        let name = r.bytes(MAX_TIER_NAME_LEN)?.to_vec();
        if name.is_empty() || rules.tier_index(&name).is_some() {
            return Err(DecodeError("bad tier name"));
        }
        let nothing = r.opt_u32()?;
        let held: usize = rules.tiers.iter().map(|t| t.weights.len()).sum();
        let k = r.count(8, MAX_PRIZES.min(MAX_TIER_WEIGHTS - held))?;
        let mut weights = Vec::with_capacity(k);
        for _ in 0..k {
            weights.push((id_bytes(r)?, r.u32()?));
        }
        rules.tiers.push(Tier {
            name,
            weights,
            nothing,
        });
    }
    Ok(())
}

/// A prize id: 1..=MAX_ID_LEN bytes.
fn id_bytes(r: &mut Reader) -> DResult<Vec<u8>> {
    let id = r.bytes(MAX_ID_LEN)?;
    if id.is_empty() {
        return Err(DecodeError("empty prize id"));
    }
    Ok(id.to_vec())
}

/// Decodes a meta record into a campaign with empty per-user maps.
pub fn decode_meta(buf: &[u8]) -> DResult<Campaign> {
    let mut r = Reader::new(buf);
    let v = r.u8()?;
    if v == 0 || v > ENCODING_VERSION {
        return Err(DecodeError("unsupported encoding version"));
    }
    let seed = (r.u64()?, r.u64()?);
    let nothing = r.u32()?;
    let cooldown_ms = r.u64()?;
    let daily = r.opt_u32()?;
    let maxwins = r.opt_u32()?;
    let dayoffset = r.i64()?;
    let max = i64::from(MAX_DAYOFFSET_MIN);
    if !(-max..=max).contains(&dayoffset) {
        return Err(DecodeError("bad day offset"));
    }
    let window = match r.u8()? {
        0 => None,
        1 => {
            let (a, b) = (r.i64()?, r.i64()?);
            if a < 0 || a >= b {
                return Err(DecodeError("bad window"));
            }
            Some((a, b))
        }
        _ => return Err(DecodeError("bad tag")),
    };
    let soldout = match r.u8()? {
        0 => SoldOut::Lose,
        1 => SoldOut::Redraw,
        2 => SoldOut::Fallback,
        _ => return Err(DecodeError("bad sold-out policy")),
    };
    let fallback = match r.u8()? {
        0 => None,
        1 => Some(r.bytes(MAX_ID_LEN)?.to_vec()),
        _ => return Err(DecodeError("bad tag")),
    };
    let stream = r.bytes(MAX_STREAM_KEY_LEN)?.to_vec();
    let stream_default = r.bool()?;
    let idempotency_ms = r.u64()?;
    if idempotency_ms > MAX_IDEMPOTENCY_MS || cooldown_ms > i64::MAX as u64 {
        return Err(DecodeError("rule out of range"));
    }
    let rules = Rules {
        nothing,
        cooldown_ms,
        daily,
        maxwins,
        dayoffset_min: dayoffset as i32,
        window,
        soldout,
        fallback,
        stream,
        stream_default,
        idempotency_ms,
        rate: None,
        admit: None,
        client_limit: None,
        penalty_ms: 0,
        guarantee: None,
        total: None,
        period: Period::Day,
        tiers: Vec::new(),
    };
    let mut c = Campaign::blank(seed, rules);
    c.paused = r.bool()?;
    // Rejection counters: 7 before version 3, 10 before version 5.
    let rejections = match v {
        1 | 2 => 7,
        3 | 4 => 10,
        _ => REJECTION_COUNT,
    };
    c.counters = read_counters(&mut r, rejections)?;
    c.drain_seq = r.u64()?;
    // A DRAIN batch names prizes of the table and retired ones: at most one entry a name.
    let n = r.count(12, MAX_NAMES)?;
    for _ in 0..n {
        let id = r.bytes(MAX_ID_LEN)?.to_vec();
        c.last_batch.push((id, r.u64()?));
    }
    let n = r.count(5, MAX_NAMES)?;
    c.names.reserve(n);
    for _ in 0..n {
        c.names.push(r.bytes(MAX_ID_LEN)?.to_vec());
    }
    let n = r.count(30, MAX_PRIZES)?;
    for _ in 0..n {
        c.prizes.push(read_prize(&mut r, v)?);
    }
    let n = r.count(30, MAX_NAMES - c.prizes.len())?;
    for _ in 0..n {
        c.retired.push(read_prize(&mut r, v)?);
    }
    let hint = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    // Winners are kept in the users' records: normally a subset of the users.
    let (users, winners) = (hint(r.u64()?), hint(r.u64()?));
    c.users.reserve_for_load(users.max(winners));
    c.bans.reserve_for_load(hint(r.u64()?));
    if v >= 2 {
        c.transfers = Transfers::decode(&mut r, v)?;
    }
    if v >= 3 {
        c.rules.rate = match r.u8()? {
            0 => None,
            1 => {
                let rate = Rate {
                    per_sec: r.u64()?,
                    burst: r.u64()?,
                };
                if rate.per_sec == 0 || rate.per_sec > MAX_RATE || rate.burst == 0 {
                    return Err(DecodeError("bad rate"));
                }
                Some(rate)
            }
            _ => return Err(DecodeError("bad tag")),
        };
        c.rules.admit = match r.u8()? {
            0 => None,
            1 => {
                let (p1, p2) = (r.u32()?, r.u32()?);
                if p1 > PPM || p2 > PPM {
                    return Err(DecodeError("bad probability"));
                }
                Some((p1, p2))
            }
            _ => return Err(DecodeError("bad tag")),
        };
        c.rules.client_limit = match r.u8()? {
            0 => None,
            1 => {
                let (n, win) = (r.u32()?, r.u64()?);
                if win == 0 || win > i64::MAX as u64 {
                    return Err(DecodeError("bad client window"));
                }
                Some((n, win))
            }
            _ => return Err(DecodeError("bad tag")),
        };
        c.rules.penalty_ms = r.u64()?;
        if c.rules.penalty_ms > i64::MAX as u64 {
            return Err(DecodeError("bad penalty"));
        }
        c.tat_ns = r.u64()?;
        c.clients.reserve_for_load(hint(r.u64()?));
        c.waiting.reserve_for_load(hint(r.u64()?));
    }
    if v >= 5 {
        read_rules_v5(&mut r, &mut c.rules)?;
    }
    if v >= 6 {
        if let Some(s) = Verifiable::decode_opt(&mut r)? {
            c.set_verifiable(s);
        }
    }
    r.finish()?;
    validate(&mut c)?;
    // No codes yet: the code chunks bring them, and the stock with them.
    code_stock_from_pools(&mut c, None);
    // The layout the chunks load into (nothing to rewrite yet).
    c.users.set_lifetime(c.needs_lifetime());
    Ok(c)
}

/// Sets the stock of the code prizes in the table (those with interned name `only`, or all)
/// to their pools' unused codes. A code prize's stock is its pool, whatever a meta record
/// says: a load missing some code chunks (a truncated AOF) must not leave a stock the pool
/// cannot hand out, or a win would give no code.
fn code_stock_from_pools(c: &mut Campaign, only: Option<u32>) {
    let at = match only {
        Some(name) => c
            .name(name)
            .and_then(|id| c.prize_index(id))
            .map_or(0..0, |i| i..i + 1),
        None => 0..c.prizes.len(),
    };
    for i in at {
        if c.prizes[i].codes {
            let n = c.codes.unused(c.prizes[i].name);
            c.set_stock(i, n);
        }
    }
}

/// Cross-checks a decoded campaign (what the engine relies on must hold) and builds its
/// lookups by id.
fn validate(c: &mut Campaign) -> DResult<()> {
    if c.prizes.is_empty() {
        return Err(DecodeError("no prizes"));
    }
    let total: u64 =
        c.prizes.iter().map(|p| u64::from(p.weight)).sum::<u64>() + u64::from(c.rules.nothing);
    if total == 0 {
        return Err(DecodeError("all weights zero"));
    }
    // Unique names, each prize named by its id, no id twice among prizes and retired ones.
    c.reindex().map_err(DecodeError)?;
    match (&c.rules.soldout, &c.rules.fallback) {
        (SoldOut::Fallback, Some(f)) if c.prize_index(f).is_some() => {}
        (SoldOut::Fallback, _) => return Err(DecodeError("bad fallback")),
        _ => {}
    }
    Ok(())
}

/// Replaces everything but the per-user maps (a CONFIGURE effect).
pub fn apply_meta(c: &mut Campaign, buf: &[u8]) -> DResult<()> {
    let mut m = decode_meta(buf)?;
    std::mem::swap(&mut m.users, &mut c.users);
    std::mem::swap(&mut m.bans, &mut c.bans);
    std::mem::swap(&mut m.reqs, &mut c.reqs);
    std::mem::swap(&mut m.clients, &mut c.clients);
    std::mem::swap(&mut m.waiting, &mut c.waiting);
    std::mem::swap(&mut m.codes, &mut c.codes);
    *c = m;
    code_stock_from_pools(c, None);
    let keep = c.needs_lifetime();
    c.users.set_lifetime(keep);
    Ok(())
}

/// Calls `f` with each chunk of per-user records, at most `CHUNK_ENTRIES` entries each.
pub fn for_each_chunk(c: &Campaign, f: impl FnMut(&[u8])) {
    let mut out = Chunks {
        w: Writer::with_capacity(CHUNK_ENTRIES * 40),
        n: 0,
        f,
    };
    out.section(K_USERS, c.users.iter_scattered(), |w, (k, d)| {
        w.u128(k);
        write_day(w, &d);
    });
    out.section(K_WINNERS, c.winners().iter_scattered(), |w, (k, x)| {
        w.u128(k);
        w.u32(x.wins);
        w.u32(x.last_prize);
    });
    out.section(K_BANS, c.bans.iter_scattered(), |w, (k, until)| {
        w.u128(k);
        w.i64(until);
    });
    out.section(K_REQS, c.reqs.iter(), |w, (k, m)| {
        w.u128(k);
        w.i64(m.made_ms);
        write_remembered(w, &m);
    });
    out.section(K_CLIENTS, c.clients.iter_scattered(), |w, (k, s)| {
        write_client(w, k, &s)
    });
    out.section(K_WAITING, c.waiting.iter_scattered(), |w, (k, t)| {
        w.u128(k);
        w.i64(t);
    });
    out.section(K_LIFE, c.users.iter_life(), |w, (k, l)| {
        w.u128(k);
        w.u32(l.draws);
        w.u32(l.since_win);
    });
    // Unused codes oldest first (a loader adds them back in this order), then the keys of
    // the codes handed out and of those moved out to another shard.
    let unused = c
        .codes
        .iter()
        .flat_map(|(name, pool)| pool.iter_unused().map(move |code| (name, code)));
    out.section(K_CODES, unused, |w, (name, code)| {
        w.u32(name);
        w.bytes(code);
    });
    let used = c
        .codes
        .iter()
        .flat_map(|(name, pool)| pool.iter_used_keys().map(move |k| (name, k)));
    out.section(K_USED_CODES, used, |w, (name, k)| {
        w.u32(name);
        w.u128(k);
    });
    out.section(K_MOVED_CODES, c.codes.iter_moved(), |w, (name, k)| {
        w.u32(name);
        w.u128(k);
    });
    out.section(K_REQ_CODES, c.reqs.iter_codes(), |w, (k, code)| {
        w.u128(k);
        w.bytes(code);
    });
}

/// Writes the chunks of `for_each_chunk`: records of one kind at a time, at most
/// `CHUNK_ENTRIES` a chunk, each chunk handed to `f`.
struct Chunks<F: FnMut(&[u8])> {
    w: Writer,
    n: u32,
    f: F,
}

impl<F: FnMut(&[u8])> Chunks<F> {
    /// Every item of `items` as a record of chunk kind `kind`, written by `write`.
    fn section<T>(
        &mut self,
        kind: u8,
        items: impl Iterator<Item = T>,
        mut write: impl FnMut(&mut Writer, T),
    ) {
        for x in items {
            write(&mut self.w, x);
            self.n += 1;
            if self.n as usize == CHUNK_ENTRIES {
                self.flush(kind);
            }
        }
        self.flush(kind);
    }

    fn flush(&mut self, kind: u8) {
        if self.n > 0 {
            let mut out = Writer::with_capacity(self.w.buf.len() + 6);
            out.u8(ENCODING_VERSION);
            out.u8(kind);
            out.u32(self.n);
            out.buf.extend_from_slice(&self.w.buf);
            (self.f)(&out.buf);
        }
        self.w.buf.clear();
        self.n = 0;
    }
}

/// Merges one chunk of per-user records into the campaign. All-or-nothing: the chunk is
/// decoded completely before anything is inserted.
pub fn load_chunk(c: &mut Campaign, buf: &[u8]) -> DResult<()> {
    let mut r = Reader::new(buf);
    let v = r.u8()?;
    if v == 0 || v > ENCODING_VERSION {
        return Err(DecodeError("unsupported encoding version"));
    }
    let kind = r.u8()?;
    match kind {
        K_USERS => {
            let n = r.count(32, CHUNK_ENTRIES)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                let d: UserDay = read_day(&mut r)?;
                if k == 0 {
                    return Err(DecodeError("zero user key"));
                }
                v.push((k, d));
            }
            r.finish()?;
            for (k, d) in v.iter().copied() {
                c.users.insert(k, d);
            }
        }
        K_WINNERS => {
            let n = r.count(24, CHUNK_ENTRIES)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                let w = UserWins {
                    wins: r.u32()?,
                    last_prize: r.u32()?,
                };
                if k == 0 || (w.last_prize != 0 && c.name(w.last_prize).is_none()) {
                    return Err(DecodeError("bad winner record"));
                }
                v.push((k, w));
            }
            r.finish()?;
            for (k, w) in v.iter().copied() {
                c.users.insert_wins(k, w);
            }
        }
        K_BANS => {
            let n = r.count(24, CHUNK_ENTRIES)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                if k == 0 {
                    return Err(DecodeError("zero user key"));
                }
                v.push((k, r.i64()?));
            }
            r.finish()?;
            for (k, u) in v.iter().copied() {
                c.bans.insert(k, u);
            }
        }
        K_REQS => {
            let n = r.count(if v >= 4 { 69 } else { 61 }, CHUNK_ENTRIES)?;
            let idem = i64::try_from(c.rules.idempotency_ms).unwrap_or(i64::MAX);
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                // Before version 4 the time made was not kept: taken as the expiry less the
                // window in force.
                let made = if v >= 4 { Some(r.i64()?) } else { None };
                let mut m = read_remembered(&mut r, 0)?;
                m.made_ms = made.unwrap_or_else(|| m.expires_ms.saturating_sub(idem));
                if k == 0 || (m.prize != 0 && c.name(m.prize).is_none()) {
                    return Err(DecodeError("bad request record"));
                }
                out.push((k, m));
            }
            r.finish()?;
            for (k, m) in out {
                c.reqs.insert(k, m);
            }
        }
        K_CLIENTS if v >= 3 => {
            let n = r.count(36, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(read_client(&mut r)?);
            }
            r.finish()?;
            for (k, s) in out {
                c.clients.insert(k, s);
            }
        }
        K_WAITING if v >= 3 => {
            let n = r.count(24, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                if k == 0 {
                    return Err(DecodeError("zero user key"));
                }
                out.push((k, r.i64()?));
            }
            r.finish()?;
            for (k, t) in out {
                c.waiting.insert(k, t);
            }
        }
        K_LIFE if v >= 5 => {
            let n = r.count(24, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                if k == 0 {
                    return Err(DecodeError("zero user key"));
                }
                out.push((
                    k,
                    UserLife {
                        draws: r.u32()?,
                        since_win: r.u32()?,
                    },
                ));
            }
            r.finish()?;
            for (k, l) in out {
                c.users.insert_life(k, l);
            }
        }
        K_CODES if v >= 5 => {
            let n = r.count(9, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.u32()?;
                let code = r.bytes(MAX_CODE_LEN)?;
                if code.is_empty() || c.name(name).is_none() {
                    return Err(DecodeError("bad code record"));
                }
                out.push((name, code));
            }
            r.finish()?;
            let seed = c.seed;
            // The prizes whose pools the chunk adds to (a chunk holds pools one after another).
            let mut names: Vec<u32> = Vec::new();
            for (name, code) in out {
                c.codes.pool_mut(name, seed).add(code);
                if names.last() != Some(&name) {
                    names.push(name);
                }
            }
            for name in names {
                code_stock_from_pools(c, Some(name));
            }
        }
        K_USED_CODES if v >= 5 => {
            let n = r.count(20, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.u32()?;
                let k = r.u128()?;
                if k == 0 || c.name(name).is_none() {
                    return Err(DecodeError("bad code record"));
                }
                out.push((name, k));
            }
            r.finish()?;
            let seed = c.seed;
            for (name, k) in out {
                c.codes.pool_mut(name, seed).insert_used_key(k);
            }
        }
        K_MOVED_CODES if v >= 5 => {
            let n = r.count(20, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.u32()?;
                let k = r.u128()?;
                if k == 0 || c.name(name).is_none() {
                    return Err(DecodeError("bad code record"));
                }
                out.push((name, k));
            }
            r.finish()?;
            for (name, k) in out {
                c.codes.insert_moved_key(name, k);
            }
        }
        K_REQ_CODES if v >= 5 => {
            let n = r.count(21, CHUNK_ENTRIES)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.u128()?;
                let code = r.bytes(MAX_CODE_LEN)?;
                if k == 0 || code.is_empty() {
                    return Err(DecodeError("bad code record"));
                }
                out.push((k, code.to_vec()));
            }
            r.finish()?;
            for (k, code) in out {
                c.reqs.insert_code(k, code);
            }
        }
        _ => return Err(DecodeError("unknown chunk kind")),
    }
    Ok(())
}

/// An order-independent fingerprint of the whole campaign (DEBUG DIGEST-VALUE): equal on
/// master and replica whatever the maps' internal layout.
pub fn fingerprint(c: &Campaign) -> (Vec<u8>, u64) {
    let meta = encode_meta(c);
    let mut acc: u64 = 0;
    let mix = |tag: u64, a: u128, b: u64, c2: u64| -> u64 {
        let mut x = (a as u64)
            ^ ((a >> 64) as u64).rotate_left(17)
            ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= b.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ c2.rotate_left(31);
        x ^= x >> 29;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 32)
    };
    for (k, d) in c.users.iter() {
        acc = acc.wrapping_add(mix(
            1,
            k,
            d.last_draw_ms as u64,
            (u64::from(d.draws_today) << 32) | u64::from(d.bonus),
        ));
    }
    for (k, w) in c.winners().iter() {
        acc = acc.wrapping_add(mix(2, k, u64::from(w.wins), u64::from(w.last_prize)));
    }
    for (k, u) in c.bans.iter() {
        acc = acc.wrapping_add(mix(3, k, u as u64, 0));
    }
    for (k, s) in c.clients.iter() {
        acc = acc.wrapping_add(mix(
            5,
            k,
            s.window_start as u64 ^ (s.banned_until as u64).rotate_left(19),
            u64::from(s.count),
        ));
    }
    for (k, t) in c.waiting.iter() {
        acc = acc.wrapping_add(mix(6, k, t as u64, 0));
    }
    for (k, m) in c.reqs.iter() {
        acc = acc.wrapping_add(mix(
            4,
            k,
            m.expires_ms as u64 ^ (m.made_ms as u64).rotate_left(23),
            (m.win_ms ^ m.win_seq.rotate_left(7)) ^ u64::from(m.prize),
        ));
    }
    for (k, l) in c.users.iter_life() {
        acc = acc.wrapping_add(mix(7, k, u64::from(l.draws), u64::from(l.since_win)));
    }
    for (name, pool) in c.codes.iter() {
        // The order of the unused codes is part of the state (the oldest goes first).
        for (i, code) in pool.iter_unused().enumerate() {
            acc = acc.wrapping_add(mix(8, pool.key(code), u64::from(name), i as u64));
        }
        for k in pool.iter_used_keys() {
            acc = acc.wrapping_add(mix(9, k, u64::from(name), 0));
        }
    }
    for (name, k) in c.codes.iter_moved() {
        acc = acc.wrapping_add(mix(11, k, u64::from(name), 0));
    }
    for (k, code) in c.reqs.iter_codes() {
        let h = code.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        acc = acc.wrapping_add(mix(10, k, h, code.len() as u64));
    }
    (meta, acc)
}
