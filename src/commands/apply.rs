//! LOTTERY.APPLY (internal) applies a write's effects, as replicated by the master or written
//! by an AOF rewrite. It reads no clock and draws nothing. Refused from ordinary clients: only
//! the master link (REPLICATED) and the AOF loader (LOADING) may run it, so no one can forge
//! state with it. It re-propagates itself verbatim, so a replica's own AOF and sub-replicas get
//! it too. A draw effect that carries a wins stream entry appends it, with the master's ID.
//! From the master link it raises the keyspace events the master's command raised
//! (`crate::notify`), as Redis's own replicated commands do on replicas. Its arguments are in
//! `APPLY` below.

use super::{arg, err, key_error, no_campaign, write_key};
use crate::command_docs::{Arg, Command, RW, UPDATE};
use crate::engine::apply::created_campaign;
use crate::engine::campaign::{Campaign, StreamId};
use crate::engine::effect::{DrawEffect, Effect};
use crate::ffi::Str;
use crate::{metrics, notify};
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

/// LOTTERY.APPLY's description: registration, COMMAND DOCS and docs/commands.md.
pub static APPLY: Command = Command {
    name: c"lottery.apply",
    entry: crate::generic_entry!(APPLY, apply),
    flags: c"write",
    key: Some(RW | UPDATE),
    arity: -3,
    summary:
        c"Internal: applies a write's effects on a replica or from the AOF; refused from clients",
    complexity: c"O(N) where N is the size of the effect",
    args: &[
        Arg::key(),
        Arg::string(c"blob"),
        Arg::string(c"user").opt(),
        Arg::string(c"request-id").opt(),
    ],
};

/// The prize whose stock an effect sets, if any.
fn stock_index(effect: &Effect) -> Option<usize> {
    let i = match effect {
        Effect::Stock { index, .. } => *index,
        Effect::Transfer {
            stock: Some((index, _)),
            ..
        } => *index,
        Effect::Draw(d) => d.prize.as_ref()?.index,
        _ => return None,
    };
    usize::try_from(i).ok()
}

/// The events for an applied effect (`before`: the touched prize's stock before it).
fn raise(ctx: &Context, key: &RedisString, c: &Campaign, effect: &Effect, before: Option<u64>) {
    let k = Str::of(key);
    let after = stock_index(effect).and_then(|i| notify::stock_of(c, i));
    match effect {
        Effect::Config(_) | Effect::Configure { .. } => notify::event(ctx, notify::CONFIGURE, k),
        Effect::Paused(true) => notify::event(ctx, notify::PAUSE, k),
        Effect::Paused(false) => notify::event(ctx, notify::RESUME, k),
        Effect::Stock { .. } => notify::restocked(ctx, k, before, after),
        Effect::Transfer { .. } => notify::transferred(ctx, k, before, after),
        Effect::Draw(_) if after == Some(0) && before.is_some_and(|b| b > 0) => {
            notify::soldout(ctx, k)
        }
        _ => {}
    }
}

/// Appends the wins stream entry a draw effect carries, as the master appended it (same ID,
/// same fields). A stream that refuses it (a key of another type, an ID not above its last)
/// is logged: the campaign's state is applied all the same, so it stays equal to the master's.
fn append_entry(
    ctx: &Context,
    c: &mut Campaign,
    d: &DrawEffect,
    user: Option<Str<'_>>,
    reqid: Option<Str<'_>>,
    notify: bool,
) {
    let (Some(e), Some(user)) = (&d.entry, user) else {
        return;
    };
    let prize = d
        .prize
        .and_then(|p| c.prizes().get(p.index as usize))
        .map(|p| p.id.as_slice());
    let ok = prize.is_some_and(|prize| {
        crate::replication::append_entry(
            ctx,
            &c.rules().stream,
            prize,
            e,
            d.code.as_deref(),
            user,
            reqid,
            notify,
        )
    });
    if ok {
        c.host.last_entry = Some(StreamId {
            ms: e.ms,
            seq: e.seq,
        });
    } else {
        crate::entry::log(
            ctx.ctx,
            crate::entry::Level::Warning,
            &format!(
                "lottery: LOTTERY.APPLY could not append win {}-{} to the wins stream '{}'",
                e.ms,
                e.seq,
                crate::parse::shown(&c.rules().stream)
            ),
        );
    }
}

pub fn apply(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let flags = ctx.get_flags();
    if !flags.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING) {
        return Err(err("LOTTERY.APPLY is internal (replication and AOF only)"));
    }
    if !(3..=5).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let notify = !flags.contains(ContextFlags::LOADING);
    let effect = Effect::decode(arg(&args, 2)).map_err(|e| err(e.to_string()))?;
    // A win's stream entry comes with its user, and its REQID if it had one; nothing else
    // takes more arguments.
    let entry_args = match &effect {
        Effect::Draw(d) => d.entry.map_or(0, |e| 1 + usize::from(e.reqid)),
        _ => 0,
    };
    if args.len() != 3 + entry_args {
        return Err(err("effect and arguments do not match"));
    }
    let mut k = write_key(ctx, &args[1]);
    match k.campaign_mut().map_err(key_error)? {
        Some(c) => {
            let before = stock_index(&effect).and_then(|i| notify::stock_of(c, i));
            c.apply(&effect).map_err(|e| err(e.to_string()))?;
            if let Effect::Draw(d) = &effect {
                let user = args.get(3).map(Str::of);
                let reqid = args.get(4).map(Str::of);
                append_entry(ctx, c, d, user, reqid, notify);
            }
            if notify {
                raise(ctx, &args[1], c, &effect, before);
            }
        }
        None => match created_campaign(&effect) {
            Some(c) => {
                let c = c.map_err(|e| err(e.to_string()))?;
                k.set_campaign(c)
                    .map_err(|_| err("could not store the campaign"))?;
                metrics::campaign_created();
                if notify {
                    notify::event(ctx, notify::CONFIGURE, Str::of(&args[1]));
                }
            }
            None => return Err(no_campaign()),
        },
    }
    crate::replication::signal_modified(ctx, Str::of(&args[1]));
    ctx.replicate_verbatim();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
