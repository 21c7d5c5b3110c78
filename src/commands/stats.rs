//! LOTTERY.STATS replies field/value pairs: state, rules (flow control and the campaign rules
//! included), counters (one per rejection outcome), `pace` (the paced prizes' ids), `after`
//! and `codes` (the locked and the code prizes), `tiers`, and `prizes` as [id, weight, stock,
//! sold] entries (stock -1 for INF). Described in `STATS` below.

use super::{bulk, campaign, count_or_inf, int, read_key, text};
use crate::clock;
use crate::command_docs::{Arg, Command, ACCESS, RO};
use crate::engine::campaign::Outcome;
use crate::engine::flow::ppm_text;
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// LOTTERY.STATS's description: registration, COMMAND DOCS and docs/commands.md.
pub static STATS: Command = Command {
    name: c"lottery.stats",
    entry: crate::generic_entry!(STATS, stats),
    flags: c"readonly",
    key: Some(RO | ACCESS),
    arity: 2,
    summary: c"Returns a campaign's rules, counters and prizes",
    complexity: c"O(N) where N is the number of prizes",
    args: &[Arg::key()],
};

pub fn stats(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let k = read_key(ctx, &args[1]);
    let c = campaign(&k)?;
    let r = c.rules();
    let k = c.counters();
    let now = clock::now_ms();
    let mut v = vec![
        text("state"),
        text(c.state_name(now)),
        text("nothing_weight"),
        int(r.nothing),
        text("cooldown_ms"),
        int(r.cooldown_ms),
        text("daily"),
        count_or_inf(r.daily),
        text("maxwins"),
        count_or_inf(r.maxwins),
        text("dayoffset"),
        int(r.dayoffset_min),
        text("window_start_ms"),
        int(r.window.map_or(-1, |w| w.0)),
        text("window_end_ms"),
        int(r.window.map_or(-1, |w| w.1)),
        text("soldout"),
        text(r.soldout.name()),
        text("fallback"),
        r.fallback.as_deref().map_or(RedisValue::Null, bulk),
        text("stream"),
        bulk(&r.stream),
        text("idempotency_ms"),
        int(r.idempotency_ms),
        text("rate"),
        int(r.rate.map_or(-1, |x| x.per_sec as i64)),
        text("burst"),
        int(r.rate.map_or(-1, |x| x.burst as i64)),
        text("admit"),
        r.admit
            .map_or(RedisValue::Null, |(p1, _)| text(&ppm_text(p1))),
        text("admit_retry"),
        r.admit
            .map_or(RedisValue::Null, |(_, p2)| text(&ppm_text(p2))),
        text("clientlimit"),
        int(r.client_limit.map_or(-1, |x| i64::from(x.0))),
        text("clientlimit_window_ms"),
        int(r.client_limit.map_or(-1, |x| x.1 as i64)),
        text("penalty_ms"),
        int(r.penalty_ms),
        text("guarantee"),
        int(r.guarantee.as_ref().map_or(-1, |g| i64::from(g.n))),
        text("guarantee_prizes"),
        RedisValue::Array(
            r.guarantee
                .iter()
                .flat_map(|g| g.prizes.iter())
                .map(|id| bulk(id))
                .collect(),
        ),
        text("total"),
        count_or_inf(r.total),
        text("period"),
        text(r.period.name()),
        text("users"),
        int(c.users().len()),
        text("clients"),
        int(c.clients().len()),
        text("penalized_clients"),
        int(c.penalized_clients(now)),
        text("admit_waiting"),
        int(c.waiting().len()),
        text("draws"),
        int(k.draws),
        text("wins"),
        int(k.wins),
        text("losses"),
        int(k.losses),
        text("replays"),
        int(k.replays),
    ];
    for o in Outcome::REJECTIONS {
        if let Some(i) = o.rejection_index() {
            v.push(text(&format!("rejected_{}", o.stat_name())));
            v.push(int(k.rejected.get(i).copied().unwrap_or(0)));
        }
    }
    v.push(text("drain_seq"));
    v.push(int(c.drain_seq()));
    v.push(text("pace"));
    v.push(RedisValue::Array(
        c.prizes()
            .iter()
            .filter(|p| p.paced)
            .map(|p| bulk(&p.id))
            .collect(),
    ));
    // [id, n] for each prize with AFTER n.
    v.push(text("after"));
    v.push(RedisValue::Array(
        c.prizes()
            .iter()
            .filter(|p| p.after > 1)
            .flat_map(|p| [bulk(&p.id), int(p.after)])
            .collect(),
    ));
    // [id, unused, handed out] for each code prize.
    v.push(text("codes"));
    v.push(RedisValue::Array(
        c.prizes()
            .iter()
            .filter(|p| p.codes)
            .flat_map(|p| {
                let pool = c.codes().get(p.name);
                [
                    bulk(&p.id),
                    int(pool.map_or(0, |x| x.unused())),
                    int(pool.map_or(0, |x| x.used())),
                ]
            })
            .collect(),
    ));
    // [name, NOTHING weight (-1: the base one), [id, weight, ...]] for each tier.
    v.push(text("tiers"));
    v.push(RedisValue::Array(
        r.tiers
            .iter()
            .map(|t| {
                RedisValue::Array(vec![
                    bulk(&t.name),
                    int(t.nothing.map_or(-1, i64::from)),
                    RedisValue::Array(
                        t.weights
                            .iter()
                            .flat_map(|(id, w)| [bulk(id), int(*w)])
                            .collect(),
                    ),
                ])
            })
            .collect(),
    ));
    v.push(text("prizes"));
    v.push(RedisValue::Array(
        c.prizes()
            .iter()
            .map(|p| {
                RedisValue::Array(vec![
                    bulk(&p.id),
                    int(p.weight),
                    p.stock.map_or(RedisValue::Integer(-1), int),
                    int(p.sold),
                ])
            })
            .collect(),
    ));
    // VERIFIABLE: the current epoch (its seed only as its commitment).
    let s = c.verifiable();
    v.extend([
        text("verifiable"),
        int(i64::from(s.is_some())),
        text("seed_log"),
        s.map_or(RedisValue::Null, |s| text(s.log.name())),
        text("seed_epoch"),
        int(s.map_or(0, |s| s.epoch)),
        text("seed_commitment"),
        s.map_or(RedisValue::Null, |s| bulk(&s.commitment())),
        text("seed_from_draw"),
        s.map_or(RedisValue::Integer(-1), |s| int(s.from_draw)),
        text("seed_revealed"),
        int(i64::from(s.is_some_and(|s| s.revealed))),
    ]);
    Ok(RedisValue::Array(v))
}
