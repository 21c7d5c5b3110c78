//! LOTTERY.TRANSFER key OUT id prize count peer
//! LOTTERY.TRANSFER key IN id prize count peer
//! LOTTERY.TRANSFER key SETTLE id
//! LOTTERY.TRANSFER key LIST [PENDING]
//!
//! Moves stock between the shards of a sharded campaign, one idempotent step per shard
//! (the protocol is explained in `engine::transfer`). OUT replies the units taken, IN 1 if
//! applied now or 0 for a repeat, SETTLE 1 if it settled a pending record or 0 for a repeat,
//! LIST the records as `[id, OUT|IN, prize, count, peer, PENDING|SETTLED|APPLIED]`, oldest
//! first. A repeated step changes nothing and replicates nothing.

use super::{arg, bulk, campaign, campaign_mut, err, int, perr, text};
use crate::engine::ledger::{Transfer, TransferState, MAX_PEER_LEN, MAX_TRANSFER_ID_LEN};
use crate::{notify, parse, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

fn id_arg(b: &[u8]) -> Result<&[u8], RedisError> {
    if b.is_empty() || b.len() > MAX_TRANSFER_ID_LEN {
        return Err(err(format!(
            "invalid transfer id: must be 1..{MAX_TRANSFER_ID_LEN} bytes"
        )));
    }
    Ok(b)
}

fn peer_arg(b: &[u8]) -> Result<&[u8], RedisError> {
    if b.is_empty() || b.len() > MAX_PEER_LEN {
        return Err(err(format!(
            "invalid peer: must be 1..{MAX_PEER_LEN} bytes"
        )));
    }
    Ok(b)
}

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
    if args.len() < 3 {
        return Err(RedisError::WrongArity);
    }
    let key = &args[1];
    let sub = arg(&args, 2).to_ascii_uppercase();
    match sub.as_slice() {
        b"OUT" | b"IN" => {
            if args.len() != 7 {
                return Err(RedisError::WrongArity);
            }
            let id = id_arg(arg(&args, 3))?;
            let prize = parse::id_arg(arg(&args, 4), "prize id").map_err(perr)?;
            let min = if sub == b"OUT" { 1 } else { 0 };
            let count = parse::int_in(arg(&args, 5), "count", min, i128::from(i64::MAX))
                .map_err(perr)? as u64;
            let peer = peer_arg(arg(&args, 6))?;
            if peer == key.as_slice() {
                return Err(err("a transfer's peer must be another key"));
            }
            let c = campaign_mut(ctx, key)?;
            let index = c.prize_index(&prize);
            let before = index.and_then(|i| notify::stock_of(c, i));
            let (reply, effect) = if sub == b"OUT" {
                let (taken, e) = c
                    .transfer_out(id, &prize, count, peer)
                    .map_err(|e| err(e.to_string()))?;
                (taken, e)
            } else {
                let (applied, e) = c
                    .transfer_in(id, &prize, count, peer)
                    .map_err(|e| err(e.to_string()))?;
                (u64::from(applied), e)
            };
            if let Some(e) = effect {
                replication::replicate(ctx, key, &e);
                let after = index.and_then(|i| notify::stock_of(c, i));
                notify::transferred(ctx.ctx, key.inner, before, after);
            }
            Ok(int(reply))
        }
        b"SETTLE" => {
            if args.len() != 4 {
                return Err(RedisError::WrongArity);
            }
            let id = id_arg(arg(&args, 3))?;
            let c = campaign_mut(ctx, key)?;
            let (settled, effect) = c.transfer_settle(id).map_err(|e| err(e.to_string()))?;
            if let Some(e) = effect {
                replication::replicate(ctx, key, &e);
            }
            Ok(int(u64::from(settled)))
        }
        b"LIST" => {
            let pending_only = match args.len() {
                3 => false,
                4 if arg(&args, 3).eq_ignore_ascii_case(b"PENDING") => true,
                4 => {
                    return Err(err(format!(
                        "unknown option '{}'",
                        parse::shown(arg(&args, 3))
                    )))
                }
                _ => return Err(RedisError::WrongArity),
            };
            let c = campaign(ctx, key)?;
            Ok(RedisValue::Array(
                c.transfers()
                    .iter()
                    .filter(|t| !pending_only || t.state == TransferState::Pending)
                    .map(record_value)
                    .collect(),
            ))
        }
        _ => Err(err(format!(
            "unknown TRANSFER subcommand '{}' (expected OUT, IN, SETTLE or LIST)",
            parse::shown(arg(&args, 2))
        ))),
    }
}
