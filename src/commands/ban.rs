//! LOTTERY.BAN key user ms / LOTTERY.UNBAN key user
//! LOTTERY.BAN key CLIENT id ms / LOTTERY.UNBAN key CLIENT id
//!
//! A banned user gets BANNED (with the ms left) until the ban ends; a banned client (the
//! CLIENT of DRAW, also put there by PENALTY) gets LIMITED. BAN replies OK; UNBAN replies 1
//! if an active ban was lifted, else 0. The CLIENT forms are told apart by their argument
//! count (one more than the user forms), so a user may well be called "CLIENT".

use super::{arg, campaign_mut, int, perr};
use crate::{clock, parse, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

fn is_client(args: &[RedisString]) -> bool {
    arg(args, 2).eq_ignore_ascii_case(b"CLIENT")
}

pub fn ban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let client = match args.len() {
        4 => false,
        5 if is_client(&args) => true,
        _ => return Err(RedisError::WrongArity),
    };
    let ms_arg = arg(&args, if client { 4 } else { 3 });
    let ms = parse::i64_arg(ms_arg, "ms", 1, i64::MAX).map_err(perr)?;
    if client {
        parse::client_arg(arg(&args, 3)).map_err(perr)?;
    }
    let c = campaign_mut(ctx, &args[1])?;
    let until = clock::now_ms().saturating_add(ms);
    let effect = if client {
        let ck = c.client_key(arg(&args, 3));
        c.ban_client(ck, until)
    } else {
        let ukey = c.user_key(arg(&args, 2));
        c.ban(ukey, until)
    };
    replication::replicate(ctx, &args[1], &effect);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub fn unban(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    match args.len() {
        3 => {
            let c = campaign_mut(ctx, &args[1])?;
            let ukey = c.user_key(arg(&args, 2));
            let (lifted, effect) = c.unban(ukey, clock::now_ms());
            if let Some(e) = effect {
                replication::replicate(ctx, &args[1], &e);
            }
            Ok(int(i64::from(lifted)))
        }
        4 if is_client(&args) => {
            parse::client_arg(arg(&args, 3)).map_err(perr)?;
            let c = campaign_mut(ctx, &args[1])?;
            let ck = c.client_key(arg(&args, 3));
            let (lifted, effect) = c.unban_client(ck, clock::now_ms());
            if let Some(e) = effect {
                replication::replicate(ctx, &args[1], &e);
            }
            Ok(int(i64::from(lifted)))
        }
        _ => Err(RedisError::WrongArity),
    }
}
