//! LOTTERY.SEED key ROTATE|REVEAL: a VERIFIABLE campaign's seeds. ROTATE starts a new epoch
//! (a fresh seed from the OS, from the next draw on; its `epoch` entry) and replies the
//! previous epoch's seed, with a `reveal` entry for it unless one was appended already.
//! REVEAL replies the current seed once the campaign's WINDOW has ended (the first REVEAL of
//! an epoch appends its `reveal` entry; a later draw starts a new epoch first). Seeds are
//! replied as 64 lowercase hex characters. Described in `SEED` below.

use super::{campaign_mut, err, write_key};
use crate::command_docs::{Arg, Command, RW, UPDATE};
use crate::engine::verify::{seed_hex, Verifiable};
use crate::{clock, replication, verify_log};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// LOTTERY.SEED's description: registration, COMMAND DOCS and docs/commands.md.
pub static SEED: Command = Command {
    name: c"lottery.seed",
    entry: crate::generic_entry!(SEED, seed),
    flags: c"write deny-oom",
    key: Some(RW | UPDATE),
    arity: 3,
    summary: c"A VERIFIABLE campaign's seeds: ROTATE starts a new epoch and reveals the previous seed; REVEAL shows the current seed once the WINDOW has ended",
    complexity: c"O(1)",
    args: &[
        Arg::key(),
        Arg::oneof(
            c"action",
            &[
                Arg::pure(c"rotate", c"ROTATE"),
                Arg::pure(c"reveal", c"REVEAL"),
            ],
        ),
    ],
};

/// The refusal of a new epoch past `MAX_EPOCH`.
pub const EXHAUSTED: &str =
    "the campaign's epoch numbers are exhausted: no new epoch (seed) can start; use a new campaign";

/// The refusal of REVEAL before the WINDOW's end.
const NOT_ENDED: &str =
    "the seed can be revealed only after the campaign's WINDOW has ended (use LOTTERY.SEED key ROTATE)";

pub fn seed(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    let sub = args[2].as_slice();
    let rotate = if sub.eq_ignore_ascii_case(b"ROTATE") {
        true
    } else if sub.eq_ignore_ascii_case(b"REVEAL") {
        false
    } else {
        return Err(err("syntax error"));
    };
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let Some(old) = c.verifiable().copied() else {
        return Err(err(
            "the campaign is not VERIFIABLE (LOTTERY.CONFIGURE key VERIFIABLE)",
        ));
    };
    if rotate && c.epochs_exhausted() {
        return Err(err(EXHAUSTED));
    }
    let now = clock::now_ms();
    let key = &args[1];
    if !rotate && !c.may_reveal(now) {
        return Err(err(NOT_ENDED));
    }
    // The entries to append (the reveal, the new epoch) must all fit: a stream of the wrong
    // type or without room refuses the command before anything changes.
    let n = u64::from(!old.revealed) + u64::from(rotate);
    verify_log::check_room(ctx, &c.rules().stream, n).map_err(RedisError::String)?;
    if !old.revealed {
        verify_log::append_reveal(ctx, c, old.epoch, &old.seed, now).map_err(RedisError::String)?;
        if let Some(e) = c.reveal_seed() {
            replication::replicate(ctx, key, &e);
        }
    }
    if rotate {
        let fresh = verify_log::fresh_seed().map_err(RedisError::String)?;
        let from = c.counters().draws.saturating_add(1);
        let epoch = old.epoch.saturating_add(1);
        verify_log::append_epoch(ctx, c, epoch, &fresh, from, now).map_err(RedisError::String)?;
        let e = c.start_epoch(fresh, None);
        replication::replicate(ctx, key, &e);
    }
    Ok(hex(&old))
}

fn hex(v: &Verifiable) -> RedisValue {
    RedisValue::StringBuffer(seed_hex(&v.seed).to_vec())
}
