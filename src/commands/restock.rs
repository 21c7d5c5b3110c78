//! LOTTERY.RESTOCK: adds delta (may be negative) to a prize's remaining stock. Reply: the new
//! stock. An unknown prize, an INF stock, or a result below zero is an error and changes
//! nothing. The arguments are described in `RESTOCK` below and parsed by `parse::restock_args`.

use super::{aerr, after_key, campaign_mut, err, int, write_key};
use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::ffi::Str;
use crate::{notify, parse, replication};
use redis_module::{Context, RedisResult, RedisString};

/// LOTTERY.RESTOCK's description: registration, COMMAND DOCS and docs/commands.md.
pub static RESTOCK: Command = Command {
    name: c"lottery.restock",
    entry: crate::generic_entry!(RESTOCK, restock),
    flags: c"write deny-oom fast",
    key: Some(RW | ACCESS | UPDATE),
    arity: 4,
    summary: c"Adds to (or takes from) a prize's remaining stock",
    complexity: c"O(N) where N is the number of prizes",
    args: &[Arg::key(), Arg::string(c"prize"), Arg::integer(c"delta")],
};

pub fn restock(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let r = parse::restock_args(&after_key(&args)?).map_err(aerr)?;
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let (stock, effect) = c
        .restock(r.prize, r.delta)
        .map_err(|e| err(e.to_string()))?;
    replication::replicate(ctx, &args[1], &effect);
    let before = u64::try_from(i128::from(stock) - i128::from(r.delta)).ok();
    notify::restocked(ctx, Str::of(&args[1]), before, Some(stock));
    Ok(int(stock))
}
