//! LOTTERY.GRANT: adds n bonus chances (never expiring; used after the day's free chances),
//! capped at m in total with CAP (a cap never takes chances away). Reply: the user's bonus
//! chances now. The arguments are parsed by `parse::grant_args`.

use super::{aerr, after_key, campaign_mut, int};
use crate::{parse, replication};
use redis_module::{Context, RedisResult, RedisString};

pub fn grant(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let g = parse::grant_args(&after_key(&args)?).map_err(aerr)?;
    let c = campaign_mut(ctx, &args[1])?;
    let ukey = c.user_key(g.user);
    let (bonus, effect) = c.grant(ukey, g.n, g.cap);
    replication::replicate(ctx, &args[1], &effect);
    Ok(int(bonus))
}
