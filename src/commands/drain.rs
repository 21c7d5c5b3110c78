//! LOTTERY.DRAIN hands out the sold counts accumulated since the previous DRAIN and resets
//! them: `[seq, [prize-id, count, ...]]`. `LAST` repeats the previous batch unchanged, so a
//! writer that crashed mid-write can redo it idempotently, keyed by seq. The arguments are
//! described in `DRAIN` below and parsed by `parse::drain_args`.

use super::{aerr, after_key, bulk, campaign, campaign_mut, int, read_key, write_key};
use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::parse;
use crate::replication;
use redis_module::{Context, RedisResult, RedisString, RedisValue};

/// LOTTERY.DRAIN's description: registration, COMMAND DOCS and docs/commands.md.
pub static DRAIN: Command = Command {
    name: c"lottery.drain",
    entry: crate::generic_entry!(DRAIN, drain),
    flags: c"write",
    key: Some(RW | ACCESS | UPDATE),
    arity: -2,
    summary: c"Returns the prizes sold since the previous drain and starts a new batch",
    complexity: c"O(N) where N is the number of prizes",
    args: &[Arg::key(), Arg::pure(c"last", c"LAST").opt()],
};

fn batch_value(seq: u64, batch: &[(Vec<u8>, u64)]) -> RedisValue {
    let mut items = Vec::with_capacity(batch.len() * 2);
    for (id, n) in batch {
        items.push(bulk(id));
        items.push(int(*n));
    }
    RedisValue::Array(vec![int(seq), RedisValue::Array(items)])
}

pub fn drain(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    match parse::drain_args(&after_key(&args)?).map_err(aerr)? {
        parse::Drain::Next => {
            let mut k = write_key(ctx, &args[1]);
            let c = campaign_mut(&mut k)?;
            let (seq, batch, effect) = c.drain();
            replication::replicate(ctx, &args[1], &effect);
            Ok(batch_value(seq, &batch))
        }
        parse::Drain::Last => {
            let k = read_key(ctx, &args[1]);
            let c = campaign(&k)?;
            Ok(batch_value(c.drain_seq(), c.last_batch()))
        }
    }
}
