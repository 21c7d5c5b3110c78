//! The command layer: one file per command. Each turns arguments into an engine call and the
//! engine's result into a reply, and replicates the call's effects. No rule lives here.

pub mod apply;
pub mod ban;
pub mod codes;
pub mod configure;
pub mod debug;
pub mod drain;
pub mod draw;
pub mod grant;
pub mod pause;
pub mod restock;
pub mod seed;
pub mod stats;
pub mod transfer;
pub mod user;

use crate::command_docs::Command;
use crate::engine::campaign::Campaign;
use crate::ffi::{Key, KeyError, Str};
use redis_module::{Context, RedisError, RedisString, RedisValue};

/// An `ERR ...` error reply.
pub fn err(msg: impl AsRef<str>) -> RedisError {
    RedisError::String(format!("ERR {}", msg.as_ref()))
}

pub fn no_campaign() -> RedisError {
    RedisError::Str("ERR no such campaign")
}

/// The reply for a key that holds no usable campaign.
pub fn key_error(e: KeyError) -> RedisError {
    match e {
        KeyError::WrongType => RedisError::WrongType,
        KeyError::Unavailable => RedisError::Str("ERR module API unavailable"),
    }
}

/// The campaign in an open key, for writing (borrowed from the handle): `ERR no such
/// campaign` if the key is empty, WRONGTYPE if it holds anything else.
pub fn campaign_mut<'k>(key: &'k mut Key<'_>) -> Result<&'k mut Campaign, RedisError> {
    key.campaign_mut()
        .map_err(key_error)?
        .ok_or_else(no_campaign)
}

/// The campaign in an open key, for reading.
pub fn campaign<'k>(key: &'k Key<'_>) -> Result<&'k Campaign, RedisError> {
    key.campaign().map_err(key_error)?.ok_or_else(no_campaign)
}

/// Opens the campaign key `name` for writing.
pub fn write_key<'c>(ctx: &'c Context, name: &RedisString) -> Key<'c> {
    Key::write(ctx, Str::of(name))
}

/// Opens the campaign key `name` for reading.
pub fn read_key<'c>(ctx: &'c Context, name: &RedisString) -> Key<'c> {
    Key::read(ctx, Str::of(name))
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
pub static ALL: [&Command; 16] = [
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
    &codes::CODES,
    &seed::SEED,
    &debug::DEBUG,
    &apply::APPLY,
];
