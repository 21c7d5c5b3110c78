//! LOTTERY.GRANT: adds n bonus chances (never expiring; used after the day's free chances),
//! capped at m in total with CAP (a cap never takes chances away). Reply: the user's bonus
//! chances now. The arguments are described in `GRANT` below and parsed by `parse::grant_args`.

use super::{aerr, after_key, campaign_mut, int, write_key};
use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::{parse, replication};
use redis_module::{Context, RedisResult, RedisString};

/// LOTTERY.GRANT's description: registration, COMMAND DOCS and docs/commands.md.
pub static GRANT: Command = Command {
    name: c"lottery.grant",
    entry: crate::generic_entry!(GRANT, grant),
    flags: c"write deny-oom fast",
    key: Some(RW | ACCESS | UPDATE),
    arity: -4,
    summary: c"Gives a user bonus chances, optionally capped",
    complexity: c"O(1)",
    args: &[
        Arg::key(),
        Arg::string(c"user"),
        Arg::integer(c"n"),
        Arg::integer(c"cap").tok(c"CAP").opt(),
    ],
};

pub fn grant(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let g = parse::grant_args(&after_key(&args)?).map_err(aerr)?;
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let ukey = c.user_key(g.user);
    let (bonus, effect) = c.grant(ukey, g.n, g.cap);
    replication::replicate(ctx, &args[1], &effect);
    Ok(int(bonus))
}
