//! LOTTERY.CODES: a code prize's pool of unique codes. `ADD` adds codes the pool does not
//! hold and never handed out (reply: how many were added), `REMOVE` removes unused codes
//! (reply: how many were removed), `COUNT` replies the unused codes (the prize's stock). The
//! arguments are described in `CODES` below and parsed by `parse::codes_args`; the effect
//! carries exactly the codes added or removed.
//!
//! Over `maxmemory` only `ADD` is refused (the command is not `deny-oom` as a whole, so
//! `COUNT` and `REMOVE`, which frees memory, still work). The command is a write, so a
//! replica refuses all of it; there LOTTERY.STATS (`codes`) has the counts.

use super::{aerr, after_key, campaign, campaign_mut, err, int, read_key, write_key};
use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::engine::parse::CodesOp;
use crate::ffi::Str;
use crate::{notify, parse, replication};
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString};

/// Over `maxmemory` (eviction could not make room), for a client's command: what `deny-oom`
/// checks, for ADD alone. The master's stream and the AOF are never refused.
fn over_maxmemory(ctx: &Context) -> bool {
    let f = ctx.get_flags();
    f.contains(ContextFlags::OOM) && !f.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
}

/// LOTTERY.CODES's description: registration, COMMAND DOCS and docs/commands.md.
pub static CODES: Command = Command {
    name: c"lottery.codes",
    entry: crate::generic_entry!(CODES, codes),
    flags: c"write",
    key: Some(RW | ACCESS | UPDATE),
    arity: -4,
    summary: c"Adds, removes or counts a code prize's unique codes (one is handed out per win)",
    complexity: c"O(N) where N is the total length of the codes given",
    args: &[
        Arg::key(),
        Arg::string(c"prize"),
        Arg::oneof(
            c"operation",
            &[
                Arg::string(c"code").tok(c"ADD").multi(),
                Arg::string(c"code").tok(c"REMOVE").multi(),
                Arg::pure(c"count", c"COUNT"),
            ],
        ),
    ],
};

pub fn codes(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = parse::codes_args(&after_key(&args)?).map_err(aerr)?;
    if a.op == CodesOp::Count {
        let k = read_key(ctx, &args[1]);
        let c = campaign(&k)?;
        return c
            .count_codes(a.prize)
            .map(int)
            .map_err(|e| err(e.to_string()));
    }
    if matches!(a.op, CodesOp::Add(_)) && over_maxmemory(ctx) {
        return Err(RedisError::Str(
            "OOM command not allowed when used memory > 'maxmemory'.",
        ));
    }
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let before = c.prize_index(a.prize).and_then(|i| c.prizes()[i].stock);
    let done = match &a.op {
        CodesOp::Add(list) => c.add_codes(a.prize, list),
        CodesOp::Remove(list) => c.remove_codes(a.prize, list),
        CodesOp::Count => return Err(err("unreachable")),
    };
    let (n, effect) = done.map_err(|e| err(e.to_string()))?;
    if let Some(effect) = effect {
        replication::replicate(ctx, &args[1], &effect);
        let after = c.prize_index(a.prize).and_then(|i| c.prizes()[i].stock);
        notify::restocked(ctx, Str::of(&args[1]), before, after);
    }
    Ok(int(n))
}
