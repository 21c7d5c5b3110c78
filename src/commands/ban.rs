//! LOTTERY.BAN / LOTTERY.UNBAN: a banned user gets BANNED (with the ms left) until the ban
//! ends; a banned client (the CLIENT of DRAW, also put there by PENALTY) gets LIMITED. BAN
//! replies OK; UNBAN replies 1 if an active ban was lifted, else 0. The arguments are described
//! in `BAN` and `UNBAN` below and parsed by `parse::ban_args` / `parse::unban_args`.

use super::{aerr, after_key, campaign_mut, int, write_key};
use crate::command_docs::{Arg, Command, ACCESS, RW, UPDATE};
use crate::parse::{self, Banned};
use crate::{clock, replication};
use redis_module::{Context, RedisResult, RedisString, RedisValue};

/// LOTTERY.BAN's description: registration, COMMAND DOCS and docs/commands.md.
pub static BAN: Command = Command {
    name: c"lottery.ban",
    entry: crate::generic_entry!(BAN, ban),
    flags: c"write deny-oom fast",
    key: Some(RW | UPDATE),
    arity: -4,
    summary: c"Bans a user (or, with CLIENT, a client id) from drawing for some milliseconds",
    complexity: c"O(1)",
    args: &[Arg::key(), WHO, Arg::integer(c"ms")],
};

/// LOTTERY.UNBAN's description: registration, COMMAND DOCS and docs/commands.md.
pub static UNBAN: Command = Command {
    name: c"lottery.unban",
    entry: crate::generic_entry!(UNBAN, unban),
    flags: c"write fast",
    key: Some(RW | ACCESS | UPDATE),
    arity: -3,
    summary: c"Lifts a user's ban, or (with CLIENT) a client's penalty",
    complexity: c"O(1)",
    args: &[Arg::key(), WHO],
};

/// A user, or CLIENT and a client id.
const WHO: Arg = Arg::oneof(
    c"who",
    &[
        Arg::string(c"user"),
        Arg::string(c"client-id").tok(c"CLIENT"),
    ],
);

pub fn ban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let b = parse::ban_args(&after_key(&args)?).map_err(aerr)?;
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let until = clock::now_ms().saturating_add(b.ms);
    let effect = match b.who {
        Banned::Client(id) => {
            let ck = c.client_key(id);
            c.ban_client(ck, until)
        }
        Banned::User(user) => {
            let ukey = c.user_key(user);
            c.ban(ukey, until)
        }
    };
    replication::replicate(ctx, &args[1], &effect);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn unban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let who = parse::unban_args(&after_key(&args)?).map_err(aerr)?;
    let mut k = write_key(ctx, &args[1]);
    let c = campaign_mut(&mut k)?;
    let (lifted, effect) = match who {
        Banned::User(user) => {
            let ukey = c.user_key(user);
            c.unban(ukey, clock::now_ms())
        }
        Banned::Client(id) => {
            let ck = c.client_key(id);
            c.unban_client(ck, clock::now_ms())
        }
    };
    if let Some(e) = effect {
        replication::replicate(ctx, &args[1], &e);
    }
    Ok(int(i64::from(lifted)))
}
