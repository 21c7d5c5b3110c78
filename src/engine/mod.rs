//! The lottery engine: plain Rust, no Redis. Everything a draw decides is decided here, with
//! time and randomness passed in, so it is unit-tested without a server.

pub mod alias;
pub mod campaign;
pub mod codec;
pub mod effect;
pub mod keyslot;
pub mod persist;
pub mod reqcache;
pub mod segmap;

#[cfg(test)]
mod tests;
