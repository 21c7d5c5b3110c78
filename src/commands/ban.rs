//! LOTTERY.BAN / LOTTERY.UNBAN: a banned user gets BANNED (with the ms left) until the ban
//! ends; a banned client (the CLIENT of DRAW, also put there by PENALTY) gets LIMITED. BAN
//! replies OK; UNBAN replies 1 if an active ban was lifted, else 0. The arguments are parsed by
//! `parse::ban_args` / `parse::unban_args`.

use super::{aerr, after_key, campaign_mut, int};
use crate::parse::{self, Banned};
use crate::{clock, replication};
use redis_module::{Context, RedisResult, RedisString, RedisValue};

pub fn ban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let b = parse::ban_args(&after_key(&args)?).map_err(aerr)?;
    let c = campaign_mut(ctx, &args[1])?;
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
    let c = campaign_mut(ctx, &args[1])?;
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
