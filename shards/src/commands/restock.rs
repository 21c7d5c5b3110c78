//! `restock`: adds or takes away units of a prize across the shards.

use lottery_cluster::configure::split;
use lottery_cluster::descriptor::{descriptor_key, Stock};
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{shard_error, Error, Result};
use lottery_shards::lease::Lease;
use lottery_shards::rebalance::Shards;

use super::{load, recover_first};

pub fn parse_delta(s: &str) -> Result<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    match s.parse::<i64>() {
        Ok(v)
            if v != i64::MIN
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(v)
        }
        _ => Err(Error::Usage(format!(
            "invalid delta '{s}': expected an integer in -9223372036854775807..9223372036854775807"
        ))),
    }
}

/// How many units to take from each shard to take `need` in all, proportionally to what each
/// holds (only from shards that have some). None when they hold fewer than `need`.
fn take_plan(remaining: &[u64], need: u64) -> Option<Vec<u64>> {
    let sum: u128 = remaining.iter().map(|&r| u128::from(r)).sum();
    if sum < u128::from(need) {
        return None;
    }
    if need == 0 {
        return Some(vec![0; remaining.len()]);
    }
    let mut take: Vec<u64> = remaining
        .iter()
        .map(|&r| (u128::from(need) * u128::from(r) / sum) as u64)
        .collect();
    // The floors leave fewer than one unit per shard; the shards with the most to spare
    // give one more each.
    let mut left = need - take.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..remaining.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(remaining[i] - take[i]));
    while left > 0 {
        for &i in &order {
            if left > 0 && remaining[i] > take[i] {
                take[i] += 1;
                left -= 1;
            }
        }
    }
    Some(take)
}

pub fn restock(c: &mut Cluster, name: &str, prize: &str, delta: &str, l: &mut Lease) -> Result<u8> {
    let delta = parse_delta(delta)?;
    let d = load(c, name)?;
    match d.stock.get(prize) {
        None => return Err(Error::Campaign(format!("no such prize '{prize}'"))),
        Some(Stock::Inf) => return Err(Error::Campaign(format!("prize '{prize}' has INF stock"))),
        Some(Stock::Finite(_)) => {}
    }
    recover_first(c, &d)?;
    let dkey = descriptor_key(name);
    let field = format!("stock:{prize}");
    let mut applied: i64 = 0;
    let result = (|| -> Result<()> {
        if delta >= 0 {
            for (i, key) in d.keys.iter().enumerate() {
                let part = split(delta as u64, d.shards, i as u32);
                if part == 0 {
                    continue;
                }
                l.keep(c);
                let now: i64 = c
                    .query_once(
                        key,
                        redis::cmd("LOTTERY.RESTOCK").arg(key).arg(prize).arg(part),
                    )
                    .map_err(|e| shard_error(e, key))?;
                applied += part as i64;
                println!("shard {i} {key} +{part} -> {now}");
            }
            return Ok(());
        }
        let mut need = delta.unsigned_abs();
        for _ in 0..5 {
            let mut remaining = Vec::with_capacity(d.keys.len());
            for key in &d.keys {
                let s = c.stats(key)?;
                let r = s
                    .prizes
                    .iter()
                    .find(|p| p.id == prize)
                    .map_or(0, |p| p.stock.max(0));
                remaining.push(r as u64);
            }
            let Some(take) = take_plan(&remaining, need) else {
                return Err(Error::Campaign(format!(
                    "only {} units of '{prize}' remain across the shards; cannot take {need}",
                    remaining.iter().sum::<u64>()
                )));
            };
            for (i, key) in d.keys.iter().enumerate() {
                if take[i] == 0 {
                    continue;
                }
                l.keep(c);
                let r: Result<i64> = c.query_once(
                    key,
                    redis::cmd("LOTTERY.RESTOCK")
                        .arg(key)
                        .arg(prize)
                        .arg(-(take[i] as i64)),
                );
                match r {
                    Ok(now) => {
                        applied -= take[i] as i64;
                        need -= take[i];
                        println!("shard {i} {key} -{} -> {now}", take[i]);
                    }
                    // Drawn meanwhile: read again and take the rest elsewhere.
                    Err(Error::Campaign(m)) if m.contains("below zero") => {}
                    Err(e) => return Err(shard_error(e, key)),
                }
            }
            if need == 0 {
                return Ok(());
            }
        }
        Err(Error::Campaign(format!(
            "could not take the last {need} units of '{prize}': draws kept taking them"
        )))
    })();
    if applied != 0 {
        let total: i64 = c.query_once(
            &dkey,
            redis::cmd("HINCRBY").arg(&dkey).arg(&field).arg(applied),
        )?;
        println!("{field} = {total}");
    }
    result.map(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_plan_takes_exactly() {
        for (rem, need) in [
            (vec![10u64, 0, 5], 7u64),
            (vec![1, 1, 1], 3),
            (vec![0, 0, 9], 9),
            (vec![3, 4, 5], 0),
            (vec![100, 1, 1], 2),
            (vec![u64::MAX / 4, u64::MAX / 4], u64::MAX / 4),
        ] {
            let t = take_plan(&rem, need).unwrap();
            assert_eq!(t.iter().sum::<u64>(), need, "{rem:?} {need}");
            assert!(t.iter().zip(&rem).all(|(t, r)| t <= r), "{rem:?} -> {t:?}");
        }
        assert!(take_plan(&[1, 2], 4).is_none());
    }

    #[test]
    fn deltas() {
        assert_eq!(parse_delta("-5").unwrap(), -5);
        assert_eq!(parse_delta("9223372036854775807").unwrap(), i64::MAX);
        for bad in ["", "-", "+5", "5.0", "-9223372036854775808", "x", " 5"] {
            assert!(parse_delta(bad).is_err(), "{bad:?}");
        }
    }
}
