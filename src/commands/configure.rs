//! LOTTERY.CONFIGURE creates the campaign, or changes it atomically while it runs. Any error
//! changes nothing and never creates the key. A campaign key is at most `MAX_KEY_LEN` bytes; a
//! STREAM key must be in the key's slot and writable by the caller (ACL). Replicated as an
//! effect carrying the options as given (plus, on creation, the random hash keys replicas must
//! share), so the effect is as large as the command, whatever the campaign's history. The
//! arguments are described in `CONFIGURE` below and parsed by `parse::configure_args`.

use super::{campaign_mut, err, key_error, perr, write_key};
use crate::command_docs::{Arg, Command, RW, UPDATE};
use crate::engine::campaign::{Campaign, ConfigChange};
use crate::engine::effect::Effect;
use crate::engine::keyslot;
use crate::engine::limits::MAX_KEY_LEN;
use crate::ffi::Str;
use crate::{acl, clock, metrics, notify, parse, replication, rng, verify_log};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// LOTTERY.CONFIGURE's description: registration, COMMAND DOCS and docs/commands.md.
pub static CONFIGURE: Command = Command {
    name: c"lottery.configure",
    entry: crate::generic_entry!(CONFIGURE, configure),
    flags: c"write deny-oom",
    key: Some(RW | UPDATE),
    arity: -2,
    summary: c"Creates a campaign, or changes its prizes and rules atomically while it runs",
    complexity:
        c"O(P + N) where P is the number of prizes given and N the number of prizes in the campaign; plus O(U), U the users, when the lifetime counts start or stop being kept (GUARANTEE, AFTER, TOTAL)",
    args: &[
        Arg::key(),
        Arg::block(
            c"prize",
            &[
                Arg::string(c"id"),
                Arg::integer(c"weight"),
                Arg::string(c"stock"),
                Arg::integer(c"after").tok(c"AFTER").opt(),
            ],
        )
        .tok(c"PRIZE")
        .opt()
        .multi(),
        Arg::integer(c"nothing").tok(c"NOTHING").opt(),
        Arg::integer(c"cooldown").tok(c"COOLDOWN").opt(),
        Arg::string(c"daily").tok(c"DAILY").opt(),
        Arg::string(c"maxwins").tok(c"MAXWINS").opt(),
        Arg::integer(c"dayoffset").tok(c"DAYOFFSET").opt(),
        Arg::block(
            c"window",
            &[Arg::integer(c"start-ms"), Arg::integer(c"end-ms")],
        )
        .tok(c"WINDOW")
        .opt(),
        Arg::oneof(
            c"soldout",
            &[
                Arg::pure(c"lose", c"LOSE"),
                Arg::pure(c"redraw", c"REDRAW"),
                Arg::string(c"fallback").tok(c"FALLBACK"),
            ],
        )
        .tok(c"SOLDOUT")
        .opt(),
        Arg::string(c"stream").tok(c"STREAM").opt(),
        Arg::integer(c"idempotency").tok(c"IDEMPOTENCY").opt(),
        Arg::oneof(
            c"rate",
            &[
                Arg::block(
                    c"limit",
                    &[
                        Arg::integer(c"per-second"),
                        Arg::integer(c"burst").tok(c"BURST").opt(),
                    ],
                ),
                Arg::pure(c"off", c"OFF"),
            ],
        )
        .tok(c"RATE")
        .opt(),
        Arg::oneof(
            c"admit",
            &[
                Arg::block(
                    c"probabilities",
                    &[Arg::string(c"p1"), Arg::string(c"p2").opt()],
                ),
                Arg::pure(c"off", c"OFF"),
            ],
        )
        .tok(c"ADMIT")
        .opt(),
        Arg::oneof(
            c"clientlimit",
            &[
                Arg::block(c"limit", &[Arg::integer(c"n"), Arg::integer(c"window-ms")]),
                Arg::pure(c"off", c"OFF"),
            ],
        )
        .tok(c"CLIENTLIMIT")
        .opt(),
        Arg::integer(c"penalty").tok(c"PENALTY").opt(),
        Arg::block(
            c"pace",
            &[
                Arg::string(c"prize"),
                Arg::oneof(
                    c"mode",
                    &[Arg::pure(c"linear", c"LINEAR"), Arg::pure(c"none", c"NONE")],
                ),
            ],
        )
        .tok(c"PACE")
        .opt()
        .multi(),
        Arg::oneof(
            c"guarantee",
            &[
                Arg::block(
                    c"rule",
                    &[
                        Arg::integer(c"n"),
                        Arg::block(
                            c"listed",
                            &[Arg::integer(c"count"), Arg::string(c"prize").multi()],
                        )
                        .tok(c"PRIZES")
                        .opt(),
                    ],
                ),
                Arg::pure(c"off", c"OFF"),
            ],
        )
        .tok(c"GUARANTEE")
        .opt(),
        Arg::string(c"total").tok(c"TOTAL").opt(),
        Arg::oneof(
            c"period",
            &[
                Arg::pure(c"day", c"DAY"),
                Arg::pure(c"week", c"WEEK"),
                Arg::pure(c"month", c"MONTH"),
            ],
        )
        .tok(c"PERIOD")
        .opt(),
        Arg::block(
            c"tier",
            &[
                Arg::string(c"name"),
                Arg::oneof(
                    c"table",
                    &[
                        Arg::block(
                            c"weights",
                            &[
                                Arg::block(
                                    c"prize-weight",
                                    &[Arg::string(c"id"), Arg::integer(c"weight")],
                                )
                                .tok(c"PRIZE-WEIGHT")
                                .opt()
                                .multi(),
                                Arg::integer(c"nothing").tok(c"NOTHING").opt(),
                            ],
                        ),
                        Arg::pure(c"off", c"OFF"),
                    ],
                ),
            ],
        )
        .tok(c"TIER")
        .opt()
        .multi(),
        Arg::block(
            c"verifiable",
            &[Arg::oneof(
                c"log",
                &[Arg::pure(c"wins", c"WINS"), Arg::pure(c"all", c"ALL")],
            )
            .tok(c"LOG")
            .opt()],
        )
        .tok(c"VERIFIABLE")
        .opt(),
    ],
};

pub fn configure(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let key = &args[1];
    if key.as_slice().len() > MAX_KEY_LEN {
        return Err(err(format!(
            "campaign key too long: at most {MAX_KEY_LEN} bytes"
        )));
    }
    let opts: Vec<&[u8]> = args[2..].iter().map(|a| a.as_slice()).collect();
    let change = parse::configure_args(&opts).map_err(perr)?;
    let slot = keyslot::key_slot(key.as_slice());
    if let Some(s) = &change.stream {
        if keyslot::key_slot(s) != slot {
            return Err(RedisError::String(format!(
                "CROSSSLOT STREAM key '{}' hashes to slot {}, the campaign key to slot {slot}",
                parse::shown(s),
                keyslot::key_slot(s)
            )));
        }
        if s.as_slice() == key.as_slice() {
            return Err(err("STREAM key must not be the campaign key itself"));
        }
        acl::check_write(ctx, s, "STREAM key").map_err(RedisError::String)?;
    }
    let given = || args[2..].iter().map(|a| a.as_slice().to_vec()).collect();
    let mut k = write_key(ctx, key);
    // VERIFIABLE on a campaign that is not yet: its seed, and a wins stream that takes the
    // epoch entry, before anything changes.
    let starts = match k.campaign_mut().map_err(key_error)? {
        Some(c) => c.starts_verifiable(&change),
        None => change.verifiable.is_some(),
    };
    if let (Some(s), Ok(Some(c))) = (&change.stream, k.campaign_mut()) {
        if c.verifiable().is_some() && !starts {
            verify_log::check_stream(ctx, s).map_err(RedisError::String)?;
        }
    }
    let seed = if starts {
        let stream = match (&change.stream, k.campaign_mut().map_err(key_error)?) {
            (Some(s), _) => s.clone(),
            (None, Some(c)) => c.rules().stream.clone(),
            (None, None) => keyslot::default_stream(key.as_slice()),
        };
        verify_log::check_stream(ctx, &stream).map_err(RedisError::String)?;
        Some(verify_log::fresh_seed().map_err(RedisError::String)?)
    } else {
        None
    };
    // A VERIFIABLE campaign moving to another wins stream: the new stream gets the current
    // epoch's entry again (its tables are published again by the next draws).
    let mut moved = false;
    let effect = match k.campaign_mut().map_err(key_error)? {
        Some(c) => {
            let old_stream = c.verifiable().map(|_| c.rules().stream.clone());
            c.configure(&change).map_err(|e| err(e.to_string()))?;
            moved = old_stream.is_some_and(|s| s != c.rules().stream);
            Effect::Configure {
                created: None,
                args: given(),
            }
        }
        None => {
            let default = keyslot::default_stream(key.as_slice());
            if change.stream.is_none() && keyslot::key_slot(&default) != slot {
                return Err(err(
                    "this key has no default wins stream in its slot ('}' outside a hash tag): give STREAM",
                ));
            }
            let seed = rng::seed().ok_or_else(|| err("the OS gave no randomness"))?;
            let c =
                Campaign::create(&change, seed, default.clone()).map_err(|e| err(e.to_string()))?;
            let effect = Effect::Configure {
                created: Some((seed, default)),
                args: given(),
            };
            k.set_campaign(c)
                .map_err(|_| err("could not store the campaign"))?;
            metrics::campaign_created();
            effect
        }
    };
    replication::replicate(ctx, key, &effect);
    notify::event(ctx, notify::CONFIGURE, Str::of(key));
    if let Some(seed) = seed {
        let c = campaign_mut(&mut k)?;
        start_verifiable(ctx, key, c, seed, &change)?;
    } else if moved {
        let c = campaign_mut(&mut k)?;
        if let Some(v) = c.verifiable().copied() {
            let now = clock::now_ms();
            verify_log::append_epoch(ctx, c, v.epoch, &v.seed, v.from_draw, now).map_err(|e| {
                RedisError::String(format!(
                    "{e} (the options were applied; the new wins stream lacks the epoch entry)"
                ))
            })?;
        }
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

/// Makes a configured campaign VERIFIABLE: its first epoch's entry is appended, then the
/// epoch starts (and is replicated). If the stream refuses the entry (its IDs exhausted)
/// the campaign stays as configured, not verifiable, and the reply says so.
fn start_verifiable(
    ctx: &Context,
    key: &RedisString,
    c: &mut Campaign,
    seed: [u8; 32],
    change: &ConfigChange,
) -> Result<(), RedisError> {
    let now = clock::now_ms();
    let from = c.counters().draws.saturating_add(1);
    verify_log::append_epoch(ctx, c, 1, &seed, from, now).map_err(|e| {
        RedisError::String(format!(
            "{e} (the other options were applied; the campaign is not VERIFIABLE)"
        ))
    })?;
    let e = c.start_epoch(seed, change.verifiable.flatten());
    replication::replicate(ctx, key, &e);
    Ok(())
}
