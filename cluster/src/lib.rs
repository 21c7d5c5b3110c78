//! What lottery-shards and lottery-writer share about a campaign sharded over a Redis Cluster,
//! so that both read it the same way:
//!
//! - [`descriptor`]: the descriptor hash `lottery:shards:NAME` (parsing, validation and its
//!   limits), campaign names and shard placement;
//! - [`configure`]: `LOTTERY.CONFIGURE` options for a whole campaign and the stock split;
//! - [`keyslot`]: the cluster key slot of a key (CRC16) and a campaign's default wins stream
//!   (the engine's, re-exported);
//! - [`route`]: the shard of a user (the engine's, re-exported).
//!
//! Everything here is pure: no connection, no Redis client.

pub mod configure;
pub mod descriptor;

pub use lottery_engine::keyslot;
pub use lottery_engine::route;
