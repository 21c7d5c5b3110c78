//! Micro-benchmark of the engine's draw path, without Redis: `Campaign::plan_draw` +
//! `commit_draw` (the effect for replication included, as the command builds it), for 10 and
//! 10,000 prizes, new users (the user map grows) and returning users, with ChaCha12
//! (`rand::rngs::StdRng`, the module's default) and xoshiro256++ (`rng xoshiro`).
//! Then: the cost of `user_key` (SipHash of the user id), the slowest single draw while one
//! campaign grows to many users, and the persistence round trip (what RDB save/load do with
//! the user maps).
//!
//!     cargo bench -p lottery-engine --bench draw          (make bench-engine)
//!
//! Environment: LOTTERY_BENCH_USERS (users per pass, default 1000000), LOTTERY_BENCH_REPEAT
//! (passes per figure, default 5; the median and the best are printed), LOTTERY_BENCH_GROW
//! (users for the growth test, default 10000000).
//!
//! Plain `harness = false`: std::time::Instant and std::hint::black_box, no criterion.

use lottery_engine::alias::Uniform;
use lottery_engine::campaign::{Campaign, ConfigChange, Plan, PrizeSpec, StreamId};
use lottery_engine::persist;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// `prizes` prizes of weight 1 with stock that never runs out, NOTHING for a ~1% win rate,
/// MAXWINS INF and no cooldown/daily limit, so that every draw passes every check and picks.
fn campaign(prizes: usize) -> Campaign {
    let ch = ConfigChange {
        prizes: Some(
            (0..prizes)
                .map(|i| PrizeSpec {
                    id: format!("p{i}").into_bytes(),
                    weight: 1,
                    stock: Some(1_000_000_000_000),
                    after: 0,
                    codes: false,
                })
                .collect(),
        ),
        nothing: Some(prizes as u32 * 99),
        maxwins: Some(None),
        ..Default::default()
    };
    Campaign::create(&ch, (0x0123_4567, 0x89ab_cdef), b"{c}:wins".to_vec()).expect("campaign")
}

fn user_keys(c: &Campaign, n: usize) -> Vec<u128> {
    (0..n)
        .map(|i| c.user_key(format!("u:{i}").as_bytes()))
        .collect()
}

/// One draw as the command layer does it (a rejection is counted; a win gets a stream ID).
#[inline]
fn draw<U: Uniform>(c: &mut Campaign, user: u128, now: i64, rng: &mut U) -> bool {
    let plan = c.plan_draw(user, None, now, rng);
    match plan {
        Plan::Pass { prize, seq, .. } => {
            let id = prize.map(|_| StreamId {
                ms: now as u64,
                seq,
            });
            let (reply, effect) = c.commit_draw(user, None, now, &plan, id);
            black_box(&effect);
            black_box(reply).win_id.is_some()
        }
        Plan::Replay(r) | Plan::Reject(r, _) => {
            black_box(c.count(&plan, now));
            black_box(r);
            false
        }
    }
}

/// Draws once for each key; returns the time and the number of wins.
fn pass<U: Uniform>(c: &mut Campaign, keys: &[u128], now: i64, rng: &mut U) -> (Duration, u64) {
    let mut wins = 0u64;
    let t = Instant::now();
    for &k in keys {
        wins += draw(c, black_box(k), now, rng) as u64;
    }
    (t.elapsed(), wins)
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[derive(Clone, Copy)]
enum Gen {
    Chacha,
    Xoshiro,
}

impl Gen {
    fn name(self) -> &'static str {
        match self {
            Gen::Chacha => "chacha12",
            Gen::Xoshiro => "xoshiro256++",
        }
    }
}

/// Runs `f` with a freshly seeded generator of the given kind.
fn with_gen<T>(
    g: Gen,
    seed: u64,
    f: impl FnOnce(&mut dyn FnMut(&mut Campaign, &[u128]) -> (Duration, u64)) -> T,
) -> T {
    match g {
        Gen::Chacha => {
            let mut r = StdRng::seed_from_u64(seed);
            f(&mut |c, k| pass(c, k, T0, &mut r))
        }
        Gen::Xoshiro => {
            let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
            f(&mut |c, k| pass(c, k, T0, &mut r))
        }
    }
}

/// New users: each repetition draws once for `keys.len()` users never seen, on a fresh
/// campaign. Returning users: the same users again (two warm-up passes first).
fn bench_draw(prizes: usize, g: Gen, keys: &[u128], repeat: usize) -> (f64, f64, f64, f64, f64) {
    let n = keys.len();
    let mut new_ns = Vec::new();
    let mut ret_ns = Vec::new();
    let mut wins = 0u64;
    let mut draws = 0u64;
    for rep in 0..repeat {
        let mut c = campaign(prizes);
        with_gen(g, rep as u64 + 1, |run| {
            let (d, w) = run(&mut c, keys);
            new_ns.push(ns_per(d, n));
            wins += w;
            draws += n as u64;
            let (d, w) = run(&mut c, keys);
            ret_ns.push(ns_per(d, n));
            wins += w;
            draws += n as u64;
        });
        black_box(&c);
    }
    let best_new = new_ns.iter().cloned().fold(f64::INFINITY, f64::min);
    let best_ret = ret_ns.iter().cloned().fold(f64::INFINITY, f64::min);
    (
        median(&mut new_ns),
        best_new,
        median(&mut ret_ns),
        best_ret,
        wins as f64 / draws.max(1) as f64,
    )
}

/// One campaign grows to `n` users, each draw timed on its own, `runs` times over. The growth
/// is deterministic (fixed campaign seed, user ids and generator seed), so the map grows at
/// the same draws in every run, while a preemption by the OS lands on random draws: the
/// minimum over the runs, per draw, keeps what the engine did and drops most of the noise.
/// Returns per-draw minimum ns, the slowest raw draw of any run, and bytes per user.
fn growth(n: usize, runs: usize) -> (Vec<u32>, u64, f64, f64) {
    let mut best: Vec<u32> = vec![u32::MAX; n];
    let mut raw_max = 0u64;
    let mut per_user = 0.0;
    let mut mean = 0.0;
    for _ in 0..runs {
        let mut c = campaign(10);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
        let mut buf = Vec::with_capacity(32);
        let mut total = 0u64;
        for (i, slot) in best.iter_mut().enumerate() {
            buf.clear();
            use std::io::Write;
            let _ = write!(buf, "u:{i}");
            let k = c.user_key(&buf);
            let t = Instant::now();
            draw(&mut c, k, T0, &mut rng);
            let ns = t.elapsed().as_nanos() as u64;
            total += ns;
            raw_max = raw_max.max(ns);
            *slot = (*slot).min(ns.min(u64::from(u32::MAX)) as u32);
        }
        mean = total as f64 / n.max(1) as f64;
        per_user = c.mem_bytes() as f64 / c.users().len().max(1) as f64;
    }
    (best, raw_max, mean, per_user)
}

/// What RDB save and load do with the user maps: encode every chunk, then decode the meta
/// record and merge every chunk into a new campaign. Returns (save ns/user, load ns/user).
fn persist_round_trip(users: usize) -> (f64, f64) {
    let mut c = campaign(10);
    let keys = user_keys(&c, users);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    pass(&mut c, &keys, T0, &mut rng);
    let t = Instant::now();
    let meta = persist::encode_meta(&c);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    persist::for_each_chunk(&c, |b| chunks.push(b.to_vec()));
    let save = t.elapsed();
    let t = Instant::now();
    let mut d = persist::decode_meta(&meta).expect("meta");
    for ch in &chunks {
        persist::load_chunk(&mut d, ch).expect("chunk");
    }
    let load = t.elapsed();
    assert_eq!(d.users().len(), c.users().len());
    black_box(&d);
    (ns_per(save, users), ns_per(load, users))
}

fn main() {
    let users = env("LOTTERY_BENCH_USERS", 1_000_000);
    let repeat = env("LOTTERY_BENCH_REPEAT", 5).max(1);
    let grow = env("LOTTERY_BENCH_GROW", 10_000_000);
    println!(
        "lottery-engine draw path: plan_draw + commit_draw (effect included), {users} users per pass, \
         median (best) of {repeat} passes"
    );
    println!("campaigns: N prizes of weight 1, NOTHING 99*N (~1% wins), MAXWINS INF, no cooldown or daily limit");
    println!();
    println!(
        "{:>7}  {:<13} {:>22} {:>22} {:>8}",
        "prizes", "rng", "new users ns/draw", "returning ns/draw", "wins"
    );
    let probe = campaign(10);
    let keys = user_keys(&probe, users);
    for prizes in [10usize, 10_000] {
        for g in [Gen::Chacha, Gen::Xoshiro] {
            let (nm, nb, rm, rb, wr) = bench_draw(prizes, g, &keys, repeat);
            println!(
                "{:>7}  {:<13} {:>22} {:>22} {:>7.2}%",
                prizes,
                g.name(),
                format!("{nm:.1} ({nb:.1})"),
                format!("{rm:.1} ({rb:.1})"),
                wr * 100.0
            );
        }
    }
    println!();

    // user_key: SipHash-1-3 of the user id (done once per DRAW, before plan_draw).
    let ids: Vec<String> = (0..users).map(|i| format!("u:{i}")).collect();
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let t = Instant::now();
        let mut acc = 0u128;
        for id in &ids {
            acc ^= probe.user_key(black_box(id.as_bytes()));
        }
        black_box(acc);
        best = best.min(ns_per(t.elapsed(), users));
    }
    println!("user_key (SipHash-1-3 of \"u:<n>\"): {best:.1} ns (best of {repeat})");
    println!();

    let (save, load) = persist_round_trip(users);
    println!(
        "persistence of {users} users (RDB without Redis): encode {save:.1} ns/user, \
         decode + insert {load:.1} ns/user"
    );
    println!();

    if grow > 0 {
        let runs = 2;
        let (best, raw_max, mean, per_user) = growth(grow, runs);
        println!(
            "growth: one campaign, 0 -> {grow} new users (xoshiro, 10 prizes), every draw timed, \
             {runs} identical runs: mean {mean:.1} ns/draw (timer included), {per_user:.1} engine \
             bytes/user at the end"
        );
        let over = |t: u32| best.iter().filter(|&&x| x > t).count();
        println!(
            "  per draw, the faster of the {runs} runs: > 10 us: {}, > 100 us: {}, > 1 ms: {}; \
             slowest raw draw of any run (OS noise included): {:.1} us",
            over(10_000),
            over(100_000),
            over(1_000_000),
            raw_max as f64 / 1000.0
        );
        let mut idx: Vec<usize> = (0..best.len()).collect();
        idx.sort_by(|&a, &b| best[b].cmp(&best[a]));
        let list: Vec<String> = idx
            .iter()
            .take(8)
            .map(|&i| format!("{:.1} us @ user {}", f64::from(best[i]) / 1000.0, i))
            .collect();
        println!("  slowest draws (faster of the runs): {}", list.join(", "));
    }
}
