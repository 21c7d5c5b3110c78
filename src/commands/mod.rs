//! The command layer: one file per command. Each turns arguments into an engine call and the
//! engine's result into a reply, and replicates the call's effects. No rule lives here.

pub mod apply;
pub mod ban;
pub mod configure;
pub mod debug;
pub mod drain;
pub mod draw;
pub mod grant;
pub mod pause;
pub mod restock;
pub mod stats;
pub mod transfer;
pub mod user;

use crate::command_docs::Command;
use crate::datatype::LOTTERY_TYPE;
use crate::engine::campaign::Campaign;
use redis_module::{Context, RedisError, RedisString, RedisValue};

/// An `ERR ...` error reply.
pub fn err(msg: impl AsRef<str>) -> RedisError {
    RedisError::String(format!("ERR {}", msg.as_ref()))
}

pub fn no_campaign() -> RedisError {
    RedisError::Str("ERR no such campaign")
}

/// The campaign at `key` for writing: `ERR no such campaign` if missing, WRONGTYPE if the key
/// holds anything else.
pub fn campaign_mut<'a>(ctx: &Context, key: &RedisString) -> Result<&'a mut Campaign, RedisError> {
    let k = ctx.open_key_writable(key);
    match k.get_value::<Campaign>(&LOTTERY_TYPE) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(no_campaign()),
        Err(_) => Err(RedisError::WrongType),
    }
}

/// The campaign at `key` for reading.
pub fn campaign<'a>(ctx: &Context, key: &RedisString) -> Result<&'a Campaign, RedisError> {
    let k = ctx.open_key(key);
    match k.get_value::<Campaign>(&LOTTERY_TYPE) {
        Ok(Some(c)) => {
            // SAFETY: the value lives in the keyspace for the whole command; the key handle
            // only guards the lookup.
            Ok(unsafe { &*(c as *const Campaign) })
        }
        Ok(None) => Err(no_campaign()),
        Err(_) => Err(RedisError::WrongType),
    }
}

pub fn bulk(b: &[u8]) -> RedisValue {
    RedisValue::StringBuffer(b.to_vec())
}

pub fn text(s: &str) -> RedisValue {
    RedisValue::StringBuffer(s.as_bytes().to_vec())
}

pub fn int(v: impl TryInto<i64>) -> RedisValue {
    RedisValue::Integer(v.try_into().unwrap_or(i64::MAX))
}

/// A count that may be unlimited (-1).
pub fn count_or_inf(v: Option<u32>) -> RedisValue {
    v.map_or(RedisValue::Integer(-1), |x| {
        RedisValue::Integer(i64::from(x))
    })
}

/// Argument `i` as bytes.
pub fn arg(args: &[RedisString], i: usize) -> &[u8] {
    args.get(i).map_or(&[][..], |a| a.as_slice())
}

/// Converts a parse error into an error reply.
pub fn perr(e: String) -> RedisError {
    err(e)
}

/// Converts a refused argument list into its reply (the wrong-arity error, or `ERR ...`).
pub fn aerr(e: crate::parse::ArgError) -> RedisError {
    match e {
        crate::parse::ArgError::Arity => RedisError::WrongArity,
        crate::parse::ArgError::Invalid(m) => err(m),
    }
}

/// The arguments after the campaign key, as bytes; the wrong-arity error if there is no key.
pub fn after_key(args: &[RedisString]) -> Result<Vec<&[u8]>, RedisError> {
    match args.get(2..) {
        Some(rest) => Ok(rest.iter().map(|a| a.as_slice()).collect()),
        None => Err(RedisError::WrongArity),
    }
}

/// Every command's description, in registration order (LOTTERY.DRAW first: the hot path).
pub static ALL: [&Command; 14] = [
    &draw::DRAW,
    &configure::CONFIGURE,
    &drain::DRAIN,
    &grant::GRANT,
    &restock::RESTOCK,
    &pause::PAUSE,
    &pause::RESUME,
    &ban::BAN,
    &ban::UNBAN,
    &user::USER,
    &stats::STATS,
    &transfer::TRANSFER,
    &debug::DEBUG,
    &apply::APPLY,
];
