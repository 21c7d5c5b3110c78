//! LOTTERY.GRANT key user n [CAP m]
//!
//! Adds n bonus chances (never expiring; used after the day's free chances), capped at m in
//! total with CAP (a cap never takes chances away). Reply: the user's bonus chances now.

use super::{arg, campaign_mut, err, int, perr};
use crate::{parse, replication};
use redis_module::{Context, RedisError, RedisResult, RedisString};

pub fn grant(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let cap = match args.len() {
        4 => None,
        6 if arg(&args, 4).eq_ignore_ascii_case(b"CAP") => {
            Some(parse::u32_arg(arg(&args, 5), "CAP").map_err(perr)?)
        }
        6 => {
            return Err(err(format!(
                "unknown option '{}'",
                parse::shown(arg(&args, 4))
            )))
        }
        _ => return Err(RedisError::WrongArity),
    };
    let n = parse::int_in(arg(&args, 3), "n", 1, i128::from(u32::MAX)).map_err(perr)? as u32;
    let c = campaign_mut(ctx, &args[1])?;
    let ukey = c.user_key(arg(&args, 2));
    let (bonus, effect) = c.grant(ukey, n, cap);
    replication::replicate(ctx, &args[1], &effect);
    Ok(int(bonus))
}
