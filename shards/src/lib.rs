//! lottery-shards: one redis-lottery campaign sharded over a Redis Cluster.
//!
//! Layout, in reading order:
//! - [`error`]: the error kinds and the process exit code of each;
//! - the campaign's descriptor hash, shard placement, configure options and the stock split
//!   (pure) are in the `lottery-cluster` crate (`lottery_cluster::descriptor`), shared with
//!   lottery-writer;
//! - [`cluster`]: the cluster topology (masters by node id, slot owners) and a connection that
//!   routes each command by its key;
//! - [`stats`]: reading `LOTTERY.STATS` and transfer records, combined figures and the
//!   conservation check (pure once read);
//! - [`rebalance`]: the transfer protocol (OUT -> IN -> SETTLE), its crash points and recovery;
//! - [`lease`]: the mover lease that keeps `configure`/`restock` from running under a mover;
//! - the binary (`main.rs`, `args.rs`, `commands/`): the command line, one module per
//!   subcommand or group.

pub mod cluster;
pub mod error;
pub mod lease;
pub mod rebalance;
pub mod stats;
