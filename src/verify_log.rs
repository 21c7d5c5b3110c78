//! A VERIFIABLE campaign's entries in its wins stream: `epoch` (a seed's commitment, before
//! the seed decides a draw), `table` (the weights a draw picked on, when they changed),
//! `draw` (what a draw picked and gave) and `reveal` (a seed, once shown). Each starts with a
//! `type` field (win entries have none); layouts in docs/commands.md.
//!
//! Each is appended with `RedisModule_StreamAdd` (the `xadd` keyspace event raised, as XADD
//! does), with the ID carrying the command's time after the campaign's last entry when it
//! can (else an automatic one), and replicated verbatim as `XADD <stream> <id> field value
//! ...`, in the order it was appended, among the command's other replicated effects.

use crate::engine::campaign::{Campaign, StreamId};
use crate::engine::draw::VerifiedPick;
use crate::engine::verify::{self, SEED_LEN};
use crate::entry::{log, Level};
use crate::ffi::key::KeyKind;
use crate::ffi::{server, string, Appended, Key, OwnedString, Str};
use crate::replication::{exact_id, signal_modified, stream_id_text};
use redis_module::Context;

/// Whether `stream` can take entries: empty, or a stream. Err: the WRONGTYPE reply.
pub fn check_stream(ctx: &Context, stream: &[u8]) -> Result<(), String> {
    check_room(ctx, stream, 0)
}

/// Whether the key `stream` holds nothing (a stream of no entries is not empty: it keeps its
/// entries' history; a key of another type is not either: the appends refuse it). Err: the
/// module API unavailable.
fn stream_is_empty(ctx: &Context, stream: &[u8]) -> Result<bool, String> {
    let name = string::cached(stream).ok_or_else(api)?;
    let key = Key::read(ctx, name.as_str());
    Ok(key.kind().map_err(|_| api())? == KeyKind::Empty)
}

/// The refusal of a stream whose IDs are exhausted.
const EXHAUSTED: &str = "ERR the wins stream cannot take another entry (its IDs are exhausted)";

/// `check_stream`, and the stream can take `n` more entries: its last entry is not within
/// `n` IDs of the last possible one (`u64::MAX-u64::MAX`). Err: the error reply.
pub fn check_room(ctx: &Context, stream: &[u8], n: u64) -> Result<(), String> {
    let name = string::cached(stream).ok_or_else(api)?;
    let mut key = Key::read(ctx, name.as_str());
    match key.kind() {
        Ok(KeyKind::Empty) => Ok(()),
        Ok(KeyKind::Stream) => match key.stream_last_entry() {
            Some((u64::MAX, seq)) if u64::MAX - seq < n => Err(EXHAUSTED.into()),
            _ => Ok(()),
        },
        Ok(_) => Err("WRONGTYPE Operation against a key holding the wrong kind of value".into()),
        Err(_) => Err(api()),
    }
}

fn api() -> String {
    "ERR module API unavailable".to_string()
}

/// The field/value strings of one entry, built from bytes (any bytes: they are copied into
/// Redis strings, never into C strings).
struct Fields<'c> {
    ctx: &'c Context,
    owned: Vec<OwnedString>,
}

impl<'c> Fields<'c> {
    fn new(ctx: &'c Context, pairs: usize) -> Fields<'c> {
        Fields {
            ctx,
            owned: Vec::with_capacity(2 * pairs),
        }
    }

    fn push(&mut self, b: &[u8]) -> Result<(), String> {
        self.owned
            .push(OwnedString::new(self.ctx, b).ok_or_else(api)?);
        Ok(())
    }

    fn pair(&mut self, name: &[u8], value: &[u8]) -> Result<(), String> {
        self.push(name)?;
        self.push(value)
    }

    fn num(&mut self, name: &[u8], v: u64) -> Result<(), String> {
        let mut b = [0u8; 20];
        let text = verify::decimal(v, &mut b);
        self.pair(name, text)
    }
}

/// Appends one entry to `stream` and replicates it as `XADD`; updates the campaign's
/// last-entry hint. Err: the error reply (nothing appended).
fn append(
    ctx: &Context,
    c: &mut Campaign,
    fields: &Fields<'_>,
    now: i64,
    guard_migration: bool,
) -> Result<StreamId, String> {
    let stream = c.rules().stream.clone();
    let name = string::cached(&stream).ok_or_else(api)?;
    let mut key = Key::write(ctx, name.as_str());
    let kind = key.kind().map_err(|_| api())?;
    if kind != KeyKind::Empty && kind != KeyKind::Stream {
        return Err("WRONGTYPE Operation against a key holding the wrong kind of value".into());
    }
    if kind == KeyKind::Empty && guard_migration && crate::cluster::slot_in_migration(ctx, &stream)
    {
        return Err(format!(
            "TRYAGAIN the wins stream '{}' is not on this node while its slot is migrating; retry",
            crate::parse::shown(&stream)
        ));
    }
    let argv: Vec<Str<'_>> = fields.owned.iter().map(OwnedString::as_str).collect();
    let mut added = Appended::IdTooSmall;
    if let Some(id) = exact_id(now, c.host.last_entry) {
        added = key.stream_add(Some(id), &argv).map_err(|_| api())?;
    }
    if added == Appended::IdTooSmall {
        added = key.stream_add(None, &argv).map_err(|_| api())?;
    }
    let Appended::At(ms, seq) = added else {
        return Err(EXHAUSTED.into());
    };
    drop(key);
    let id = StreamId { ms, seq };
    c.host.last_entry = Some(id);
    let name = name.as_str();
    signal_modified(ctx, name);
    server::notify(
        ctx,
        redis_module::raw::REDISMODULE_NOTIFY_STREAM,
        c"xadd",
        name,
    );
    let mut idb = [0u8; 41];
    let n = stream_id_text(ms, seq, &mut idb);
    let id_text = OwnedString::new(ctx, &idb[..n]).ok_or_else(api)?;
    let mut xadd: Vec<Str<'_>> = Vec::with_capacity(argv.len() + 2);
    xadd.push(name);
    xadd.push(id_text.as_str());
    xadd.extend_from_slice(&argv);
    if !server::replicate_argv(ctx, c"XADD", &xadd) {
        log(
            ctx.ctx,
            Level::Warning,
            "lottery: RedisModule_Replicate failed: a replica or the AOF may miss a stream entry",
        );
    }
    Ok(id)
}

/// Whether a draw on this campaign may find its stream mid-migration (see `crate::cluster`).
fn guard(c: &Campaign) -> bool {
    c.counters().wins > 0
        && crate::datatype::CLUSTER_MODE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Appends `type epoch epoch <n> commitment <hex64> from_draw <s>`.
pub fn append_epoch(
    ctx: &Context,
    c: &mut Campaign,
    epoch: u64,
    seed: &[u8; SEED_LEN],
    from_draw: u64,
    now: i64,
) -> Result<StreamId, String> {
    let mut f = Fields::new(ctx, 4);
    f.pair(b"type", b"epoch")?;
    f.num(b"epoch", epoch)?;
    f.pair(b"commitment", &verify::commitment(seed))?;
    f.num(b"from_draw", from_draw)?;
    let g = guard(c);
    append(ctx, c, &f, now, g)
}

/// Appends `type reveal epoch <n> seed <hex64>`.
pub fn append_reveal(
    ctx: &Context,
    c: &mut Campaign,
    epoch: u64,
    seed: &[u8; SEED_LEN],
    now: i64,
) -> Result<StreamId, String> {
    let mut f = Fields::new(ctx, 3);
    f.pair(b"type", b"reveal")?;
    f.num(b"epoch", epoch)?;
    f.pair(b"seed", &verify::seed_hex(seed))?;
    let g = guard(c);
    append(ctx, c, &f, now, g)
}

/// What a verifiable draw that passed its checks does before its win entry and commit: a new
/// epoch if the seed was revealed (`fresh`: the seed the plan used), then the table entry if
/// the table in force was not published yet; then it checks the stream can take the entries
/// the draw appends after (`won`: its win entry, and the `draw` entry of a win or of any draw
/// under LOG ALL), so a draw answered always has them. Err: the error reply; the draw must
/// then not be committed (an epoch already started stays, replicated: a whole change of its
/// own).
pub fn before_draw(
    ctx: &Context,
    key: Str<'_>,
    c: &mut Campaign,
    p: &VerifiedPick,
    fresh: Option<&[u8; SEED_LEN]>,
    won: bool,
    now: i64,
) -> Result<(), String> {
    // A wins stream deleted since (by an operator): the new one starts with the current
    // epoch's entry and the table in force, so its draws stay verifiable.
    let restart = stream_is_empty(ctx, &c.rules().stream)?;
    if restart && !p.new_epoch {
        if let Some(v) = c.verifiable().copied() {
            append_epoch(ctx, c, v.epoch, &v.seed, v.from_draw, now)?;
        }
    }
    if p.new_epoch {
        let Some(seed) = fresh else {
            return Err("ERR internal error: a new epoch without a seed".into());
        };
        let epoch = c.verifiable().map_or(1, |v| v.epoch.saturating_add(1));
        append_epoch(ctx, c, epoch, seed, p.draw, now)?;
        let e = c.start_epoch(*seed, None);
        crate::replication::replicate_str(ctx, key, &e);
    }
    if p.publish || restart {
        let weights = c.table_weights_in_force(p.tier);
        let prizes = c.prizes();
        let mut f = Fields::new(ctx, 3 + weights.len());
        f.pair(b"type", b"table")?;
        f.num(b"from_draw", p.draw)?;
        let tier: &[u8] = match p.tier.and_then(|t| c.rules().tiers.get(t)) {
            Some(t) => &t.name,
            None => b"",
        };
        f.pair(b"tier", tier)?;
        for (i, w) in weights.iter().enumerate() {
            let id: &[u8] = match prizes.get(i) {
                Some(p) => &p.id,
                None => b"NOTHING",
            };
            f.num(id, u64::from(*w))?;
        }
        let g = guard(c);
        append(ctx, c, &f, now, g)?;
        c.note_published(p.tier);
    }
    // A stream of the wrong type, or one without room for the entries to come, refuses the
    // draw before it changes anything.
    let all = c
        .verifiable()
        .is_some_and(|v| v.log == verify::SeedLog::All);
    let n = u64::from(won) + u64::from(won || all);
    if n > 0 {
        check_room(ctx, &c.rules().stream, n)?;
    }
    Ok(())
}

/// Appends a passed verifiable draw's `draw` entry (after its win entry): for a win, or for
/// every draw with LOG ALL. `outcome`: the prize won. A failure (the stream's IDs exhausted)
/// is logged: the draw is committed by then.
pub fn after_draw(
    ctx: &Context,
    c: &mut Campaign,
    p: &VerifiedPick,
    user: &[u8],
    outcome: Option<usize>,
    now: i64,
) {
    let all = c
        .verifiable()
        .is_some_and(|v| v.log == verify::SeedLog::All);
    if outcome.is_none() && !all {
        return;
    }
    let r = (|| {
        let id = |i: Option<usize>| -> Vec<u8> {
            i.and_then(|i| c.prizes().get(i))
                .map_or(Vec::new(), |p| p.id.clone())
        };
        let mut f = Fields::new(ctx, 7);
        f.pair(b"type", b"draw")?;
        f.num(b"draw", p.draw)?;
        f.pair(b"user", user)?;
        f.pair(b"outcome", &id(outcome))?;
        f.pair(b"pick", &id(Some(p.entry)))?;
        if let Some(t) = p.tier.and_then(|t| c.rules().tiers.get(t)) {
            f.pair(b"tier", &t.name)?;
        }
        if let Some(rule) = p.rule {
            f.pair(b"rule", rule.name().as_bytes())?;
        }
        append(ctx, c, &f, now, false)
    })();
    if let Err(e) = r {
        log(
            ctx.ctx,
            Level::Warning,
            &format!("lottery: a verifiable draw's entry was not appended: {e}"),
        );
    }
}

/// A fresh seed from the OS for a new epoch. Err: the error reply.
pub fn fresh_seed() -> Result<[u8; SEED_LEN], String> {
    crate::rng::seed32().ok_or_else(|| "ERR the OS gave no randomness".to_string())
}
