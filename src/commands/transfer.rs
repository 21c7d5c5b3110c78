//! LOTTERY.TRANSFER moves stock between the shards of a sharded campaign, one idempotent step
//! per shard (the protocol is explained in `engine::transfer`). OUT replies the units taken, IN
//! 1 if applied now or 0 for a repeat, SETTLE 1 if it settled a pending record or 0 for a
//! repeat, CODES the codes an OUT of a code prize took (while its record is PENDING), LIST the
//! records as `[id, OUT|IN, prize, count, peer, PENDING|SETTLED|APPLIED]`, oldest first. A
//! repeated step changes nothing and replicates nothing. The arguments are described in
//! `TRANSFER` below and parsed by `parse::transfer_args`.

use super::{aerr, after_key, bulk, campaign, campaign_mut, err, int, read_key, text, write_key};
use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::engine::ledger::{Transfer, TransferState};
use crate::ffi::Str;
use crate::parse::{self, TransferStep};
use crate::{notify, replication};
use redis_module::{Context, RedisResult, RedisString, RedisValue};

/// LOTTERY.TRANSFER's description: registration, COMMAND DOCS and docs/commands.md.
pub static TRANSFER: Command = Command {
    name: c"lottery.transfer",
    entry: crate::generic_entry!(TRANSFER, transfer),
    flags: c"write deny-oom",
    key: Some(RW | ACCESS | UPDATE),
    arity: -3,
    summary: c"Moves stock between the shards of a sharded campaign, one idempotent step per shard",
    complexity: c"O(N) where N is the number of prizes, plus O(C) where C is the number of codes moved; LIST: O(T) where T is the number of transfer records",
    args: &[
        Arg::key(),
        Arg::oneof(
            c"step",
            &[
                Arg::block(c"out", MOVE).tok(c"OUT"),
                Arg::block(c"in", MOVE_IN).tok(c"IN"),
                Arg::block(c"settle", &[Arg::string(c"id")]).tok(c"SETTLE"),
                Arg::block(c"codes", &[Arg::string(c"id")]).tok(c"CODES"),
                Arg::block(c"list", &[Arg::pure(c"pending", c"PENDING").opt()]).tok(c"LIST"),
            ],
        ),
    ],
};

/// The arguments of OUT and IN.
const MOVE: &[Arg] = &[
    Arg::string(c"id"),
    Arg::string(c"prize"),
    Arg::integer(c"count"),
    Arg::string(c"peer"),
];

/// The arguments of IN: those of OUT, then the codes of a code prize.
const MOVE_IN: &[Arg] = &[
    Arg::string(c"id"),
    Arg::string(c"prize"),
    Arg::integer(c"count"),
    Arg::string(c"peer"),
    Arg::block(c"codes", &[Arg::string(c"code").multi()])
        .tok(c"CODES")
        .opt(),
];

fn record_value(t: &Transfer) -> RedisValue {
    RedisValue::Array(vec![
        bulk(&t.id),
        text(t.direction.name()),
        bulk(&t.prize),
        int(t.count),
        bulk(&t.peer),
        text(t.state.name()),
    ])
}

pub fn transfer(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let rest = after_key(&args)?;
    let key = &args[1];
    let step = parse::transfer_args(key.as_slice(), &rest).map_err(aerr)?;
    let (out, codes) = match &step {
        TransferStep::In { codes, .. } => (false, codes.clone()),
        _ => (true, None),
    };
    match step {
        TransferStep::Out {
            id,
            prize,
            count,
            peer,
        }
        | TransferStep::In {
            id,
            prize,
            count,
            peer,
            ..
        } => {
            let mut k = write_key(ctx, key);
            let c = campaign_mut(&mut k)?;
            let index = c.prize_index(&prize);
            let before = index.and_then(|i| notify::stock_of(c, i));
            let (reply, effect) = if out {
                let (taken, e) = c
                    .transfer_out(id, &prize, count, peer)
                    .map_err(|e| err(e.to_string()))?;
                (taken, e)
            } else {
                let (applied, e) = c
                    .transfer_in(id, &prize, count, peer, codes.as_deref())
                    .map_err(|e| err(e.to_string()))?;
                (u64::from(applied), e)
            };
            if let Some(e) = effect {
                replication::replicate(ctx, key, &e);
                let after = index.and_then(|i| notify::stock_of(c, i));
                notify::transferred(ctx, Str::of(key), before, after);
            }
            Ok(int(reply))
        }
        TransferStep::Settle { id } => {
            let mut k = write_key(ctx, key);
            let c = campaign_mut(&mut k)?;
            let (settled, effect) = c.transfer_settle(id).map_err(|e| err(e.to_string()))?;
            if let Some(e) = effect {
                replication::replicate(ctx, key, &e);
            }
            Ok(int(u64::from(settled)))
        }
        TransferStep::Codes { id } => {
            let k = read_key(ctx, key);
            let c = campaign(&k)?;
            let codes = c.transfer_codes(id).map_err(|e| err(e.to_string()))?;
            Ok(RedisValue::Array(codes.iter().map(|x| bulk(x)).collect()))
        }
        TransferStep::List { pending_only } => {
            let k = read_key(ctx, key);
            let c = campaign(&k)?;
            Ok(RedisValue::Array(
                c.transfers()
                    .iter()
                    .filter(|t| !pending_only || t.state == TransferState::Pending)
                    .map(record_value)
                    .collect(),
            ))
        }
    }
}
