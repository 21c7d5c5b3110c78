//! lottery-shards: the command line. See shards/README.md.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use lottery_cluster::descriptor::{
    descriptor_key, missing, place_shards, split, validate_name, ConfigureOptions, Descriptor,
    Stock, MAX_SHARDS,
};
use lottery_cluster::keyslot::default_stream;
use lottery_shards::cluster::{normalise_seed, Cluster};
use lottery_shards::error::{Error, Result};
use lottery_shards::lease::{self, Lease};
use lottery_shards::rebalance::{self, Shards, Step};
use lottery_shards::stats::{self, conservation, parse_records, ShardSnapshot, ShardStats};

#[derive(Parser)]
#[command(
    name = "lottery-shards",
    version,
    about = "Creates, inspects, changes and rebalances a redis-lottery campaign sharded over a Redis Cluster"
)]
struct Cli {
    /// Any cluster node, redis://HOST:PORT (repeatable, or a comma list). Default: $LOTTERY_CLUSTER.
    #[arg(long, global = true, value_name = "redis://HOST:PORT")]
    cluster: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum CrashAfter {
    Out,
    In,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create NAME with N shards: lottery-shards create NAME --shards N -- PRIZE id weight stock ...
    Create {
        name: String,
        #[arg(long)]
        shards: u32,
        /// LOTTERY.CONFIGURE options (after --); each finite PRIZE stock is split over the shards
        #[arg(last = true, required = true, value_name = "OPTIONS")]
        options: Vec<String>,
    },
    /// Print the descriptor, one `field = value` line each
    Describe { name: String },
    /// Print the shard of USER: `<index> <key>`
    Route {
        name: String,
        #[arg(value_parser = clap::value_parser!(OsString))]
        user: OsString,
    },
    /// Combined figures of every shard
    Stats {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Send LOTTERY.CONFIGURE options to every shard (PRIZE stocks split as in create)
    Configure {
        name: String,
        /// Run even while a rebalance holds the mover lease
        #[arg(long)]
        force: bool,
        #[arg(last = true, required = true, value_name = "OPTIONS")]
        options: Vec<String>,
    },
    /// Add (or, negative, take away) DELTA units of PRIZE, split across the shards
    Restock {
        name: String,
        prize: String,
        #[arg(allow_negative_numbers = true)]
        delta: String,
        /// Run even while a rebalance holds the mover lease
        #[arg(long)]
        force: bool,
    },
    /// Pause every shard
    Pause { name: String },
    /// Resume every shard
    Resume { name: String },
    /// Finish pending transfers, then even out every finite prize's remaining stock
    Rebalance {
        name: String,
        /// Keep rebalancing every MS milliseconds until SIGTERM/SIGINT
        #[arg(long, value_name = "MS")]
        every_ms: Option<u64>,
        /// Leave out moves of fewer units
        #[arg(long, value_name = "N", default_value_t = 1)]
        min_move: u64,
        /// Fault tests: abort right after that step of the first transfer
        #[arg(long, value_enum)]
        crash_after: Option<CrashAfter>,
        /// Tests: the mover lease's length (default max(3 * every-ms, 10000))
        #[arg(long, value_name = "MS", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
        lease_ms: Option<u64>,
    },
    /// Conservation per prize: total == remaining + sold + in_flight (exit 1 when not)
    Check {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lottery-shards: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn seeds(cli: &[String]) -> Result<Vec<String>> {
    let raw = if cli.is_empty() {
        std::env::var("LOTTERY_CLUSTER").unwrap_or_default()
    } else {
        cli.join(",")
    };
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(normalise_seed)
        .collect()
}

fn name_ok(name: &str) -> Result<()> {
    validate_name(name).map_err(Error::Usage)
}

fn load(c: &mut Cluster, name: &str) -> Result<Descriptor> {
    name_ok(name)?;
    let key = descriptor_key(name);
    let raw: BTreeMap<String, String> = c.query(redis::cmd("HGETALL").arg(&key))?;
    if raw.is_empty() {
        return Err(Error::Campaign(missing(name)));
    }
    let fields: Vec<(String, String)> = raw.into_iter().collect();
    Descriptor::parse(name, &fields).map_err(Error::Campaign)
}

fn run(cli: Cli) -> Result<u8> {
    let seeds = seeds(&cli.cluster)?;
    // Check what needs no server before connecting.
    match &cli.cmd {
        Cmd::Create {
            name,
            shards,
            options,
        } => {
            name_ok(name)?;
            if name.ends_with(":mover") {
                // Its descriptor key would be the mover lease of the campaign before ":mover".
                return Err(Error::Usage(format!(
                    "bad campaign name {name:?}: it must not end with \":mover\""
                )));
            }
            if !(1..=MAX_SHARDS).contains(shards) {
                return Err(Error::Usage(format!("--shards must be 1..={MAX_SHARDS}")));
            }
            ConfigureOptions::parse(options).map_err(Error::Usage)?;
        }
        Cmd::Configure { name, options, .. } => {
            name_ok(name)?;
            ConfigureOptions::parse(options).map_err(Error::Usage)?;
        }
        Cmd::Describe { name }
        | Cmd::Route { name, .. }
        | Cmd::Stats { name, .. }
        | Cmd::Restock { name, .. }
        | Cmd::Pause { name }
        | Cmd::Resume { name }
        | Cmd::Rebalance { name, .. }
        | Cmd::Check { name, .. } => name_ok(name)?,
    }
    if let Cmd::Restock { delta, .. } = &cli.cmd {
        parse_delta(delta)?;
    }
    let mut c = Cluster::connect(&seeds)?;
    match cli.cmd {
        Cmd::Create {
            name,
            shards,
            options,
        } => create(&mut c, &name, shards, &options),
        Cmd::Describe { name } => describe(&mut c, &name),
        Cmd::Route { name, user } => {
            let d = load(&mut c, &name)?;
            let (i, key) = d.shard_of(user.as_encoded_bytes());
            println!("{i} {key}");
            Ok(0)
        }
        Cmd::Stats { name, json } => show_stats(&mut c, &name, json),
        Cmd::Configure {
            name,
            options,
            force,
        } => with_tool_lease(&mut c, &name, "configure", force, |c, l| {
            configure(c, &name, &options, l)
        }),
        Cmd::Restock {
            name,
            prize,
            delta,
            force,
        } => with_tool_lease(&mut c, &name, "restock", force, |c, l| {
            restock(c, &name, &prize, &delta, l)
        }),
        Cmd::Pause { name } => pause(&mut c, &name, "LOTTERY.PAUSE", "paused"),
        Cmd::Resume { name } => pause(&mut c, &name, "LOTTERY.RESUME", "resumed"),
        Cmd::Rebalance {
            name,
            every_ms,
            min_move,
            crash_after,
            lease_ms,
        } => rebalance_cmd(&mut c, &name, every_ms, min_move, crash_after, lease_ms),
        Cmd::Check { name, json } => check(&mut c, &name, json),
    }
}

const CREATE_DESCRIPTOR: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
     redis.call('HSET', KEYS[1], unpack(ARGV)) return 1";

fn create(c: &mut Cluster, name: &str, n: u32, options: &[String]) -> Result<u8> {
    let opts = ConfigureOptions::parse(options).map_err(Error::Usage)?;
    let dkey = descriptor_key(name);
    if c.query::<i64>(redis::cmd("EXISTS").arg(&dkey))? == 1 {
        return Err(Error::Campaign(format!(
            "sharded campaign '{name}' exists already ({dkey})"
        )));
    }
    let topo = c.topology.clone();
    let keys = place_shards(name, n, topo.masters.len(), |s| topo.owner_of_slot(s))
        .map_err(Error::Cluster)?;
    for key in &keys {
        let stream = String::from_utf8_lossy(&default_stream(key.as_bytes())).into_owned();
        for k in [key, &stream] {
            if c.query::<i64>(redis::cmd("EXISTS").arg(k))? == 1 {
                return Err(Error::Campaign(format!(
                    "key {k} exists already (left over from an earlier campaign?): delete it \
                     or use another name"
                )));
            }
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let mut cmd = redis::cmd("LOTTERY.CONFIGURE");
        cmd.arg(key).arg(opts.for_shard(i as u32, n));
        if let Err(e) = c.query::<()>(&cmd) {
            // Fresh keys of ours: take back the shards made so far.
            for k in &keys[..i] {
                let stream = String::from_utf8_lossy(&default_stream(k.as_bytes())).into_owned();
                let _ = c.query::<i64>(redis::cmd("DEL").arg(k));
                let _ = c.query::<i64>(redis::cmd("DEL").arg(&stream));
            }
            return Err(e.context(format!(
                "configuring shard {i} ({key}); nothing was created"
            )));
        }
    }
    let d = Descriptor {
        name: name.to_string(),
        shards: n,
        keys: keys.clone(),
        stock: opts.prizes().map(|(p, s)| (p.to_string(), s)).collect(),
        created_ms: now_ms(),
    };
    let args: Vec<String> = d.fields().into_iter().flat_map(|(k, v)| [k, v]).collect();
    let mut eval = redis::cmd("EVAL");
    eval.arg(CREATE_DESCRIPTOR).arg(1).arg(&dkey).arg(&args);
    if c.query_once::<i64>(&dkey, &eval)? == 0 {
        return Err(Error::Campaign(format!(
            "sharded campaign '{name}' was created meanwhile by someone else ({dkey})"
        )));
    }
    for (i, key) in keys.iter().enumerate() {
        println!("shard {i} {key} {}", c.topology.node_of_key(key));
    }
    Ok(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn describe(c: &mut Cluster, name: &str) -> Result<u8> {
    let d = load(c, name)?;
    let raw: BTreeMap<String, String> = c.query(redis::cmd("HGETALL").arg(descriptor_key(name)))?;
    // Known fields in their order, then anything else the hash holds.
    let known = d.fields();
    for (k, _) in &known {
        if let Some(v) = raw.get(k) {
            println!("{k} = {v}");
        }
    }
    for (k, v) in &raw {
        if !known.iter().any(|(f, _)| f == k) {
            println!("{k} = {v}");
        }
    }
    Ok(0)
}

fn read_stats(c: &mut Cluster, d: &Descriptor) -> Result<Vec<(String, String, ShardStats)>> {
    let mut out = Vec::with_capacity(d.keys.len());
    for key in &d.keys {
        let s = c
            .stats(key)
            .map_err(|e| e.context(format!("shard {key}")))?;
        out.push((key.clone(), c.topology.node_of_key(key), s));
    }
    Ok(out)
}

fn inf(v: i64) -> String {
    if v < 0 {
        "INF".into()
    } else {
        v.to_string()
    }
}

fn show_stats(c: &mut Cluster, name: &str, json: bool) -> Result<u8> {
    let d = load(c, name)?;
    let shards = read_stats(c, &d)?;
    if json {
        println!("{}", stats::stats_json(&d, &shards));
        return Ok(0);
    }
    let only: Vec<ShardStats> = shards.iter().map(|s| s.2.clone()).collect();
    println!("campaign {name}: {} shards", d.shards);
    println!(
        "draws {} wins {} losses {} users {}",
        stats::sum_field(&only, "draws"),
        stats::sum_field(&only, "wins"),
        stats::sum_field(&only, "losses"),
        stats::sum_field(&only, "users")
    );
    for (id, t) in stats::prize_totals(&d, &only) {
        println!(
            "prize {id}: total {} remaining {} sold {}",
            inf(t.total),
            inf(t.remaining),
            t.sold
        );
    }
    for (i, (key, node, s)) in shards.iter().enumerate() {
        let prizes: Vec<String> = s
            .prizes
            .iter()
            .map(|p| format!("{} {}/{}", p.id, inf(p.stock), p.sold))
            .collect();
        println!(
            "shard {i} {key} {node}: {} draws {} wins {} losses {} users {}; remaining/sold: {}",
            s.get_str("state"),
            s.get_i64("draws"),
            s.get_i64("wins"),
            s.get_i64("losses"),
            s.get_i64("users"),
            prizes.join(", ")
        );
    }
    Ok(0)
}

/// Finishes pending transfers before anything sets stock; a module without LOTTERY.TRANSFER
/// cannot have any.
fn recover_first(c: &mut Cluster, d: &Descriptor) -> Result<()> {
    let r = rebalance::recover(c, &d.keys, &mut |l| println!("{l}"));
    match r {
        Err(Error::Campaign(m)) if m.contains("unknown command") => Ok(()),
        other => other.map(|_| ()),
    }
}

const CONFIGURE_AND_STATS: &str =
    "redis.call('LOTTERY.CONFIGURE', KEYS[1], unpack(ARGV)) return redis.call('LOTTERY.STATS', KEYS[1])";

const UPDATE_DESCRIPTOR: &str = "local n = tonumber(ARGV[1]) \
     for i = 2, n + 1 do redis.call('HDEL', KEYS[1], ARGV[i]) end \
     if #ARGV > n + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 2)) end return 1";

/// Runs `configure`/`restock` holding the mover lease as `<tool>-<pid>` (refused while someone
/// else holds it, unless `force`), released at the end whatever the outcome.
fn with_tool_lease(
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

fn configure(c: &mut Cluster, name: &str, options: &[String], l: &mut Lease) -> Result<u8> {
    let opts = ConfigureOptions::parse(options).map_err(Error::Usage)?;
    let d = load(c, name)?;
    recover_first(c, &d)?;
    let mut sold: BTreeMap<String, i64> = BTreeMap::new();
    for (i, key) in d.keys.iter().enumerate() {
        l.keep(c);
        let v: redis::Value = c
            .eval(
                CONFIGURE_AND_STATS,
                key,
                &opts.for_shard(i as u32, d.shards),
            )
            .map_err(|e| {
                e.context(format!(
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
        }
        println!("configured shard {i} {key}");
    }
    if opts.has_prizes() {
        let given: BTreeMap<&str, Stock> = opts.prizes().collect();
        let drop: Vec<String> = d
            .stock
            .keys()
            .filter(|p| !given.contains_key(p.as_str()))
            .map(|p| format!("stock:{p}"))
            .collect();
        let mut args = vec![drop.len().to_string()];
        args.extend(drop);
        for (p, s) in &given {
            let total = match s {
                Stock::Inf => "INF".to_string(),
                Stock::Finite(v) => {
                    (i128::from(*v) + i128::from(*sold.get(*p).unwrap_or(&0))).to_string()
                }
            };
            println!("stock:{p} = {total}");
            args.push(format!("stock:{p}"));
            args.push(total);
        }
        c.eval::<i64>(UPDATE_DESCRIPTOR, &descriptor_key(name), &args)?;
    }
    Ok(0)
}

fn parse_delta(s: &str) -> Result<i64> {
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

fn restock(c: &mut Cluster, name: &str, prize: &str, delta: &str, l: &mut Lease) -> Result<u8> {
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
                let now: i64 = c.query_once(
                    key,
                    redis::cmd("LOTTERY.RESTOCK").arg(key).arg(prize).arg(part),
                )?;
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
                    Err(e) => return Err(e),
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

fn pause(c: &mut Cluster, name: &str, command: &str, done: &str) -> Result<u8> {
    let d = load(c, name)?;
    for (i, key) in d.keys.iter().enumerate() {
        c.query::<()>(redis::cmd(command).arg(key))
            .map_err(|e| e.context(format!("shard {i} ({key})")))?;
        println!("{done} shard {i} {key}");
    }
    Ok(0)
}

fn rebalance_cmd(
    c: &mut Cluster,
    name: &str,
    every_ms: Option<u64>,
    min_move: u64,
    crash_after: Option<CrashAfter>,
    lease_ms: Option<u64>,
) -> Result<u8> {
    let d = load(c, name)?;
    let opts = rebalance::Options {
        min_move,
        crash_after: crash_after.map(|s| match s {
            CrashAfter::Out => Step::Out,
            CrashAfter::In => Step::In,
        }),
    };
    let run = rebalance::run_id();
    let mut seq = 0u64;
    // Seen between transfers, so the lease is released on the way out.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::Usage(format!("cannot handle signals: {e}")))?;
    }
    let stopped = || stop.load(Ordering::Relaxed);
    let mut l = Lease::new(
        name,
        &run,
        lease_ms.unwrap_or_else(|| lease::lease_ms(every_ms)),
    );
    if !l.take_for_mover(c, &stopped)? {
        return Ok(0);
    }
    let r = rebalance_loop(c, &d, &run, &mut seq, &opts, every_ms, &mut l, &stopped);
    l.release(c);
    r
}

#[allow(clippy::too_many_arguments)]
fn rebalance_loop(
    c: &mut Cluster,
    d: &Descriptor,
    run: &str,
    seq: &mut u64,
    opts: &rebalance::Options,
    every_ms: Option<u64>,
    l: &mut Lease,
    stopped: &dyn Fn() -> bool,
) -> Result<u8> {
    loop {
        l.keep(c);
        let r = rebalance::round(
            c,
            d,
            run,
            seq,
            opts,
            &mut |line| println!("{line}"),
            &mut |c: &mut Cluster| {
                if stopped() {
                    return true;
                }
                l.keep(c);
                false
            },
        );
        match (r, every_ms) {
            (Ok(_), None) => return Ok(0),
            (Err(e), None) => return Err(e),
            (Ok(_), Some(_)) => {}
            (Err(e), Some(_)) => {
                eprintln!("lottery-shards: {e} (trying again next round)");
                let _ = c.refresh_topology();
            }
        }
        let until = Instant::now() + Duration::from_millis(every_ms.unwrap_or(0));
        while !stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        if stopped() {
            return Ok(0);
        }
    }
}

const STATS_AND_LIST: &str =
    "return {redis.call('LOTTERY.STATS', KEYS[1]), redis.call('LOTTERY.TRANSFER', KEYS[1], 'LIST')}";

fn snapshot(c: &mut Cluster, d: &Descriptor) -> Result<Vec<ShardSnapshot>> {
    let mut out = Vec::new();
    for key in &d.keys {
        let v: redis::Value = c.eval(STATS_AND_LIST, key, &[])?;
        let parts = match v {
            redis::Value::Array(p) if p.len() == 2 => p,
            other => {
                return Err(Error::Campaign(format!(
                    "{key}: unexpected reply {other:?}"
                )))
            }
        };
        out.push(ShardSnapshot {
            key: key.clone(),
            stats: ShardStats::from_value(&parts[0]).map_err(Error::Campaign)?,
            records: parse_records(&parts[1]).map_err(Error::Campaign)?,
        });
    }
    Ok(out)
}

fn check(c: &mut Cluster, name: &str, json: bool) -> Result<u8> {
    let d = load(c, name)?;
    // Each shard is read atomically, but not all at one instant: a transfer running meanwhile
    // can make one reading look off, so an unbalanced reading is taken again (up to 3 times).
    let mut report = conservation(&d, &snapshot(c, &d)?);
    for _ in 0..2 {
        if report.ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        report = conservation(&d, &snapshot(c, &d)?);
    }
    if json {
        println!("{}", report.to_json());
    } else {
        for (id, p) in &report.prizes {
            if p.total < 0 && p.remaining < 0 {
                println!("prize {id}: INF stock, sold {} (not checked)", p.sold);
            } else {
                println!(
                    "prize {id}: total {} {} remaining {} + sold {} + in_flight {}{}",
                    inf(p.total),
                    if p.ok() { "==" } else { "!=" },
                    inf(p.remaining),
                    p.sold,
                    p.in_flight,
                    if p.ok() { "" } else { "  NOT CONSERVED" }
                );
            }
        }
        println!("pending transfers: {}", report.pending);
        println!(
            "{}",
            if report.ok() {
                "conserved"
            } else {
                "NOT CONSERVED"
            }
        );
    }
    Ok(if report.ok() { 0 } else { 1 })
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

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "lottery-shards",
            "--cluster",
            "redis://h:1",
            "create",
            "s",
            "--shards",
            "3",
            "--",
            "PRIZE",
            "p",
            "1",
            "10",
            "DAYOFFSET",
            "-60",
        ])
        .unwrap();
        assert!(
            matches!(cli.cmd, Cmd::Create { shards: 3, ref options, .. } if options.len() == 6)
        );
        let cli =
            Cli::try_parse_from(["x", "restock", "s", "p", "-5", "--cluster", "h:1"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Restock { ref delta, .. } if delta == "-5"));
        assert!(Cli::try_parse_from(["x", "rebalance", "s", "--crash-after", "oops"]).is_err());
        let cli = Cli::try_parse_from(["x", "restock", "s", "p", "-5", "--force"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Restock { force: true, .. }));
        let cli =
            Cli::try_parse_from(["x", "configure", "s", "--force", "--", "DAILY", "3"]).unwrap();
        assert!(
            matches!(cli.cmd, Cmd::Configure { force: true, ref options, .. } if options.len() == 2)
        );
        let cli = Cli::try_parse_from(["x", "configure", "s", "--", "--force"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Configure { force: false, .. }));
        let cli = Cli::try_parse_from(["x", "rebalance", "s", "--lease-ms", "1500"]).unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Rebalance {
                lease_ms: Some(1500),
                ..
            }
        ));
        assert!(Cli::try_parse_from(["x", "rebalance", "s", "--lease-ms", "0"]).is_err());
        assert_eq!(seeds(&["a:1,redis://b:2".into()]).unwrap().len(), 2);
    }
}
