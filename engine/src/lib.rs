//! The lottery engine: plain Rust, no Redis. Everything a draw decides is decided here, with
//! time and randomness passed in, so it is unit-tested and fuzzed without a server. The Redis
//! module (the `redis-lottery` crate) is a thin layer of commands over it.

pub mod alias;
pub mod campaign;
pub mod codec;
pub mod effect;
pub mod gate;
pub mod keyslot;
pub mod parse;
pub mod persist;
pub mod reqcache;
pub mod route;
pub mod segmap;
pub mod transfer;
pub mod users;
