//! `configure`: new `LOTTERY.CONFIGURE` options on every shard; and the mover lease that it
//! and `restock` hold while they run.

use std::collections::BTreeMap;

use lottery_cluster::configure::{ConfigureOptions, Given};
use lottery_cluster::descriptor::{descriptor_key, Stock};
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{shard_error, Error, Result};
use lottery_shards::lease::{self, Lease};
use lottery_shards::stats::ShardStats;

use super::{load, recover_first};

const CONFIGURE_AND_STATS: &str =
    "redis.call('LOTTERY.CONFIGURE', KEYS[1], unpack(ARGV)) return redis.call('LOTTERY.STATS', KEYS[1])";

const UPDATE_DESCRIPTOR: &str = "local n = tonumber(ARGV[1]) \
     for i = 2, n + 1 do redis.call('HDEL', KEYS[1], ARGV[i]) end \
     if #ARGV > n + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 2)) end return 1";

/// Runs `configure`/`restock` holding the mover lease as `<tool>-<pid>` (refused while someone
/// else holds it, unless `force`), released at the end whatever the outcome.
pub fn with_tool_lease(
    c: &mut Cluster,
    name: &str,
    tool: &str,
    force: bool,
    work: impl FnOnce(&mut Cluster, &mut Lease) -> Result<u8>,
) -> Result<u8> {
    let mut l = Lease::new(name, &lease::tool_id(tool), lease::MIN_LEASE_MS);
    l.take_for_tool(c, force)?;
    let r = work(c, &mut l);
    l.release(c);
    r
}

pub fn configure(c: &mut Cluster, name: &str, options: &[String], l: &mut Lease) -> Result<u8> {
    let opts = ConfigureOptions::parse(options).map_err(Error::Usage)?;
    let d = load(c, name)?;
    recover_first(c, &d)?;
    // Per prize, over the shards, read in the same EVAL as each shard's CONFIGURE.
    let mut sold: BTreeMap<String, i64> = BTreeMap::new();
    let mut remaining: BTreeMap<String, i64> = BTreeMap::new();
    for (i, key) in d.keys.iter().enumerate() {
        l.keep(c);
        let v: redis::Value = c
            .eval(
                CONFIGURE_AND_STATS,
                key,
                &opts.for_shard(i as u32, d.shards),
            )
            .map_err(|e| {
                shard_error(e, key).context(format!(
                    "shard {i} ({key}){}",
                    if i == 0 {
                        "; nothing was changed".to_string()
                    } else {
                        format!(
                            "; shards 0..{} are configured, the rest and the descriptor are \
                             not: fix the options and run configure again",
                            i - 1
                        )
                    }
                ))
            })?;
        let s = ShardStats::from_value(&v).map_err(Error::Campaign)?;
        for p in &s.prizes {
            *sold.entry(p.id.clone()).or_default() += p.sold;
            *remaining.entry(p.id.clone()).or_default() += p.stock.max(0);
        }
        println!("configured shard {i} {key}");
    }
    if opts.has_prizes() {
        let given: BTreeMap<&str, Given> = opts.prizes().collect();
        let drop: Vec<String> = d
            .stock
            .keys()
            .filter(|p| !given.contains_key(p.as_str()))
            .map(|p| format!("stock:{p}"))
            .collect();
        let mut args = vec![drop.len().to_string()];
        args.extend(drop);
        for (p, s) in &given {
            let sold = i128::from(*sold.get(*p).unwrap_or(&0));
            let total = match s {
                Given::Stock(Stock::Inf) => "INF".to_string(),
                Given::Stock(Stock::Finite(v)) => (i128::from(*v) + sold).to_string(),
                // A code prize's stock is its unused codes, which CONFIGURE leaves alone: the
                // units ever put in are the codes left plus the codes handed out (no transfer
                // is in flight: they were finished first, under the lease).
                Given::Codes => (i128::from(*remaining.get(*p).unwrap_or(&0)) + sold).to_string(),
            };
            println!("stock:{p} = {total}");
            args.push(format!("stock:{p}"));
            args.push(total);
        }
        c.eval::<i64>(UPDATE_DESCRIPTOR, &descriptor_key(name), &args)?;
    }
    Ok(0)
}
