//! The lottery engine: plain Rust, no Redis. Everything a draw decides is decided here, with
//! time and randomness passed in, so it is unit-tested and fuzzed without a server. The Redis
//! module (the `redis-lottery` crate) is a thin layer of commands over it.
//!
//! Layering: a file uses only files on the layers below it (or beside it, where noted), never
//! one above, so there is no cycle.
//!
//! 1. Building blocks, knowing nothing of a campaign: `codec` (byte reader and writer),
//!    `segmap`, `alias` (the alias table), `keyslot`, `route`, `limits` (every bound a campaign
//!    keeps to), `period` (what DAILY counts: days, weeks, months), `verify` (a VERIFIABLE
//!    draw's words: HMAC-SHA256 of the seed, uniform integers, prefix-sum picks).
//! 2. Records a campaign is made of, each with its encoding: `users` (per-user records and
//!    their map), `reqcache` (REQID memory), `codes` (a code prize's pool) and `code_pools`
//!    (a campaign's pools), `flow` (flow-control rules and the state a draw's
//!    checks change: RATE, ADMIT, CLIENTLIMIT, PENALTY, PACE), `ledger` (transfer records).
//! 3. `campaign`: the `Campaign` struct, the core types (outcomes, rules, prizes, counters, the
//!    draw's reply and plan), read access to the state, the keys of users and clients.
//! 4. Over the campaign: `parse` (CONFIGURE and command arguments) and `effect` (what a write
//!    did, and its encoding).
//! 5. What a campaign does, each an `impl Campaign` returning effects: `configure`, `draw`
//!    (with `draw_verified`, a VERIFIABLE campaign's pick), `epochs` (its seeds),
//!    `flow_state` (storing what the checks changed, the sweep, the client penalty box),
//!    `admin` (GRANT, RESTOCK, PAUSE, BAN, DRAIN...), `transfer` (LOTTERY.TRANSFER), `views`
//!    (reads). They call one another's methods on the campaign; the imports among them are
//!    `admin`'s `OpError` in `transfer` and `draw_verified`'s types in `draw`.
//! 6. On top, applying to the whole campaign: `persist` (the RDB/DUMP/AOF encoding) and
//!    `apply` (replaying an effect on a replica or from the AOF).
#![forbid(unsafe_code)]

pub mod alias;
pub mod codec;
pub mod keyslot;
pub mod limits;
pub mod route;
pub mod segmap;

pub mod code_pools;
pub mod codes;
pub mod flow;
pub mod ledger;
pub mod period;
pub mod reqcache;
pub mod users;
pub mod verify;

pub mod campaign;

pub mod effect;
pub mod parse;

pub mod admin;
pub mod configure;
pub mod draw;
pub mod draw_verified;
pub mod epochs;
pub mod flow_state;
pub mod transfer;
pub mod views;

pub mod apply;
pub mod persist;

pub mod fuzz_checks;
