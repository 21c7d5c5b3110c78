//! Replication and AOF glue: effects go out as `LOTTERY.APPLY key blob`, one command per
//! write; a win's effect carries its wins stream entry with the concrete ID the master's append
//! got, and the replica appends the same entry. Nothing random or clock-dependent is ever
//! re-run on a replica.

use crate::engine::campaign::StreamId;
use crate::engine::effect::{entry_layout, Effect, EntryField, WinEntry};
use crate::entry::{log, Level};
use crate::ffi::key::KeyKind;
use crate::ffi::{server, string, Appended, KeptSet, KeptString, Key, OwnedString, Str};
use redis_module::{Context, RedisString};

/// Sends an effect to replicas and the AOF, and signals the key as modified (WATCH,
/// client-side caching): an effect is exactly a change. A failure is logged loudly: it means
/// the master changed state that its copies will not see.
pub fn replicate(ctx: &Context, key: &RedisString, effect: &Effect) {
    replicate_str(ctx, Str::of(key), effect);
}

/// `replicate` of a borrowed key name: `LOTTERY.APPLY <key> <effect>` with the key string
/// passed through as is (no copy) and the effect as one binary argument.
pub fn replicate_str(ctx: &Context, key: Str<'_>, effect: &Effect) {
    signal_modified(ctx, key);
    send(ctx, key, effect);
}

/// Sends an effect to replicas and the AOF without signalling the key (statistics the
/// command that counted them signalled already).
pub fn send(ctx: &Context, key: Str<'_>, effect: &Effect) {
    send_with(ctx, key, effect, None);
}

/// `replicate_str` of a win's draw effect: `LOTTERY.APPLY <key> <effect> <user> [<reqid>]`,
/// the stream entry's user and REQID passed on as the client sent them.
pub fn replicate_win(
    ctx: &Context,
    key: Str<'_>,
    effect: &Effect,
    user: Str<'_>,
    reqid: Option<Str<'_>>,
) {
    signal_modified(ctx, key);
    send_with(ctx, key, effect, Some((user, reqid)));
}

fn send_with(ctx: &Context, key: Str<'_>, effect: &Effect, entry: Option<(Str, Option<Str>)>) {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let status = BUF.with(|b| {
        let Ok(mut blob) = b.try_borrow_mut() else {
            return false;
        };
        effect.encode_into(&mut blob);
        match entry {
            None => server::replicate_key_blob(ctx, c"LOTTERY.APPLY", key, &blob),
            Some((user, reqid)) => {
                server::replicate_key_blob_args(ctx, c"LOTTERY.APPLY", key, &blob, user, reqid)
            }
        }
    });
    if !status {
        log(
            ctx.ctx,
            Level::Warning,
            "lottery: RedisModule_Replicate failed: a replica or the AOF may miss an effect",
        );
    }
}

/// Signals `key` as modified. The module runs with implicit signalling off, so a command
/// that opened a key for writing and then refused leaves WATCH untouched.
pub fn signal_modified(ctx: &Context, key: Str<'_>) {
    server::signal_modified(ctx, key);
}

/// A stream entry ID as Redis writes it, `<ms>-<seq>`, in `buf`: the text's length.
pub fn stream_id_text(ms: u64, seq: u64, buf: &mut [u8; 41]) -> usize {
    let mut a = itoa::Buffer::new();
    let mut b = itoa::Buffer::new();
    let (a, b) = (a.format(ms).as_bytes(), b.format(seq).as_bytes());
    buf[..a.len()].copy_from_slice(a);
    buf[a.len()] = b'-';
    buf[a.len() + 1..a.len() + 1 + b.len()].copy_from_slice(b);
    a.len() + 1 + b.len()
}

/// What a win appends to the wins stream: its field values (the layout is the engine's
/// `entry_layout`), the draw's time, and the last entry the campaign appended (`hint`).
pub struct Win<'a> {
    pub user: Str<'a>,
    pub prize: &'a [u8],
    pub draw: u64,
    pub reqid: Option<Str<'a>>,
    /// The code a code prize hands out.
    pub code: Option<&'a [u8]>,
    pub now: i64,
    pub hint: Option<StreamId>,
}

/// The ID that carries the draw's time exactly and follows the campaign's last entry: `now-0`,
/// or `now-(seq+1)` after an entry in the same millisecond. None: no such ID (a negative
/// time, or the clock behind the last entry).
pub fn exact_id(now: i64, hint: Option<StreamId>) -> Option<(u64, u64)> {
    let ms = u64::try_from(now).ok().filter(|&ms| ms > 0)?;
    match hint {
        Some(h) if h.ms == ms => Some((ms, h.seq.checked_add(1)?)),
        Some(h) if h.ms > ms => None,
        _ => Some((ms, 0)),
    }
}

/// The field names, made once (see `entry_layout`).
fn names() -> Option<&'static [KeptString; 6]> {
    static NAMES: std::sync::OnceLock<Option<KeptSet<6>>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| KeptSet::new([b"user", b"prize", b"draw", b"reqid", b"ts", b"code"]))
        .as_ref()
        .map(KeptSet::strings)
}

fn name_of(f: EntryField) -> usize {
    match f {
        EntryField::User => 0,
        EntryField::Prize => 1,
        EntryField::Draw => 2,
        EntryField::Reqid => 3,
        EntryField::Ts => 4,
        EntryField::Code => 5,
    }
}

/// Appends one entry with the engine's layout: `value` gives each field's string. Returns
/// how the append ended.
fn add_entry<'a>(
    key: &mut Key<'_>,
    id: Option<(u64, u64)>,
    (code, reqid, ts): (bool, bool, bool),
    value: impl Fn(EntryField) -> Option<Str<'a>>,
) -> Result<Appended, String> {
    let api = || "ERR module API unavailable".to_string();
    let names = names().ok_or_else(api)?;
    let (layout, n) = entry_layout(code, reqid, ts);
    let mut argv: [Str; 12] = [names[0].as_str(); 12];
    for (i, &(_, f)) in layout.iter().take(n).enumerate() {
        argv[2 * i] = names[name_of(f)].as_str();
        argv[2 * i + 1] = value(f).ok_or_else(api)?;
    }
    key.stream_add(id, &argv[..2 * n]).map_err(|_| api())
}

/// Appends a win to the wins stream (`RedisModule_StreamAdd`, which wakes blocked readers)
/// and raises the `xadd` keyspace event, as XADD does. The entry's ID is the draw's time
/// (`exact_id`) when it can be; otherwise it gets an automatic ID and a `ts` field with the
/// time. Nothing is written unless the stream key is empty or a stream. `guard_migration`:
/// the campaign has sold before and the server is a cluster node, so a missing stream may be
/// one half of a slot migration (`crate::cluster`): then the win is refused with TRYAGAIN.
/// Returns the entry (ID and `ts`), or an error reply. The entry reaches replicas and the AOF
/// inside the draw's effect (`replicate_str`).
pub fn append_win(
    ctx: &Context,
    stream: &[u8],
    win: &Win,
    guard_migration: bool,
) -> Result<(StreamId, Option<i64>), String> {
    let api = || "ERR module API unavailable".to_string();
    let name = string::cached(stream).ok_or_else(api)?;
    let mut key = Key::write(ctx, name.as_str());
    let kind = key.kind().map_err(|_| api())?;
    if kind != KeyKind::Empty && kind != KeyKind::Stream {
        return Err("WRONGTYPE Operation against a key holding the wrong kind of value".into());
    }
    if kind == KeyKind::Empty && guard_migration && crate::cluster::slot_in_migration(ctx, stream) {
        return Err(format!(
            "TRYAGAIN the wins stream '{}' is not on this node while its slot is migrating; retry",
            crate::parse::shown(stream)
        ));
    }
    let prize = string::cached(win.prize).ok_or_else(api)?;
    let draw =
        OwnedString::new(ctx, itoa::Buffer::new().format(win.draw).as_bytes()).ok_or_else(api)?;
    let code = match win.code {
        Some(c) => Some(OwnedString::new(ctx, c).ok_or_else(api)?),
        None => None,
    };
    let code = code.as_ref().map(OwnedString::as_str);
    let (has_code, has_reqid) = (code.is_some(), win.reqid.is_some());
    let mut ts_text: Option<OwnedString> = None;
    let mut added = Appended::IdTooSmall;
    if let Some(id) = exact_id(win.now, win.hint) {
        added = add_entry(
            &mut key,
            Some(id),
            (has_code, has_reqid, false),
            |f| match f {
                EntryField::User => Some(win.user),
                EntryField::Prize => Some(prize.as_str()),
                EntryField::Draw => Some(draw.as_str()),
                EntryField::Code => code,
                EntryField::Reqid => win.reqid,
                EntryField::Ts => None,
            },
        )?;
    }
    if added == Appended::IdTooSmall {
        let t = OwnedString::new(ctx, itoa::Buffer::new().format(win.now).as_bytes())
            .ok_or_else(api)?;
        let ts = ts_text.insert(t).as_str();
        added = add_entry(&mut key, None, (has_code, has_reqid, true), |f| match f {
            EntryField::User => Some(win.user),
            EntryField::Prize => Some(prize.as_str()),
            EntryField::Draw => Some(draw.as_str()),
            EntryField::Code => code,
            EntryField::Reqid => win.reqid,
            EntryField::Ts => Some(ts),
        })?;
    }
    let Appended::At(ms, seq) = added else {
        return Err("ERR the wins stream cannot take another entry (its IDs are exhausted)".into());
    };
    let name = name.as_str();
    signal_modified(ctx, name);
    server::notify(
        ctx,
        redis_module::raw::REDISMODULE_NOTIFY_STREAM,
        c"xadd",
        name,
    );
    Ok((StreamId { ms, seq }, ts_text.map(|_| win.now)))
}

/// Appends a replicated win's entry (`WinEntry`, with the ID the master's got) to the wins
/// stream, on a replica or from the AOF; `prize` is the prize's id, `user` and `reqid` the
/// values the master's entry got. `notify`: raise `xadd` (not while loading). False: the
/// stream refused it (logged by the caller).
#[allow(clippy::too_many_arguments)]
pub fn append_entry(
    ctx: &Context,
    stream: &[u8],
    prize: &[u8],
    e: &WinEntry,
    code: Option<&[u8]>,
    user: Str<'_>,
    reqid: Option<Str<'_>>,
    notify: bool,
) -> bool {
    let Some(name) = string::cached(stream) else {
        return false;
    };
    let mut key = Key::write(ctx, name.as_str());
    if !matches!(key.kind(), Ok(KeyKind::Empty | KeyKind::Stream)) {
        return false;
    }
    let s = |b: &[u8]| OwnedString::new(ctx, b);
    let (Some(prize), Some(draw)) = (
        string::cached(prize),
        s(itoa::Buffer::new().format(e.draw).as_bytes()),
    ) else {
        return false;
    };
    let ts = match e.ts {
        Some(t) => match s(itoa::Buffer::new().format(t).as_bytes()) {
            Some(t) => Some(t),
            None => return false,
        },
        None => None,
    };
    let code = match code {
        Some(c) => match s(c) {
            Some(c) => Some(c),
            None => return false,
        },
        None => None,
    };
    let added = add_entry(
        &mut key,
        Some((e.ms, e.seq)),
        (code.is_some(), reqid.is_some(), ts.is_some()),
        |f| match f {
            EntryField::User => Some(user),
            EntryField::Prize => Some(prize.as_str()),
            EntryField::Draw => Some(draw.as_str()),
            EntryField::Code => code.as_ref().map(OwnedString::as_str),
            EntryField::Reqid => reqid,
            EntryField::Ts => ts.as_ref().map(OwnedString::as_str),
        },
    );
    if added != Ok(Appended::At(e.ms, e.seq)) {
        return false;
    }
    signal_modified(ctx, name.as_str());
    if notify {
        server::notify(
            ctx,
            redis_module::raw::REDISMODULE_NOTIFY_STREAM,
            c"xadd",
            name.as_str(),
        );
    }
    true
}
