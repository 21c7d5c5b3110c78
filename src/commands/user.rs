//! LOTTERY.USER replies the user's state as field/value pairs. A user never seen gets the
//! defaults. `banned_until_ms` includes a PENALTY ban; `admit_waiting` is 1 while ADMIT
//! remembers the user as turned away; `draws_total` and `draws_since_win` are the lifetime
//! counts (0 unless a rule keeps them: GUARANTEE, AFTER, TOTAL). Described in `USER` below.

use super::{arg, bulk, campaign, int, read_key, text};
use crate::clock;
use crate::command_docs::{Arg, Command, ACCESS, RO};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// LOTTERY.USER's description: registration, COMMAND DOCS and docs/commands.md.
pub static USER: Command = Command {
    name: c"lottery.user",
    entry: crate::generic_entry!(USER, user),
    flags: c"readonly fast",
    key: Some(RO | ACCESS),
    arity: 3,
    summary: c"Returns a user's state in a campaign",
    complexity: c"O(1)",
    args: &[Arg::key(), Arg::string(c"user")],
};

pub fn user(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    let k = read_key(ctx, &args[1]);
    let c = campaign(&k)?;
    let v = c.user_view(c.user_key(arg(&args, 2)), clock::now_ms());
    Ok(RedisValue::Array(vec![
        text("draws_today"),
        int(v.draws_today),
        text("chances_left"),
        int(v.chances_left),
        text("bonus"),
        int(v.bonus),
        text("wins"),
        int(v.wins),
        text("last_prize"),
        c.name(v.last_prize).map_or(RedisValue::Null, bulk),
        text("last_draw_ms"),
        int(v.last_draw_ms),
        text("cooldown_left_ms"),
        int(v.cooldown_left_ms),
        text("banned_until_ms"),
        int(v.banned_until_ms),
        text("admit_waiting"),
        int(i64::from(v.admit_waiting)),
        text("draws_total"),
        int(v.draws_total),
        text("draws_since_win"),
        int(v.draws_since_win),
    ]))
}
