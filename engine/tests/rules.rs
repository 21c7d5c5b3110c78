//! The campaign rules of docs/rules.md (GUARANTEE, AFTER, TOTAL, PERIOD, TIER, code pools),
//! adversarially: exact odds by counting, each rule's semantics at its edges, replicas and
//! saves equal to the master with every rule on, and the bytes a user costs.

use lottery_engine::admin::OpError;
use lottery_engine::alias::Uniform;
use lottery_engine::apply::created_campaign;
use lottery_engine::campaign::*;
use lottery_engine::configure::ConfigError;
use lottery_engine::effect::Effect;
use lottery_engine::parse::configure_args;
use lottery_engine::persist;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus as Gen;
use std::collections::{HashMap, HashSet};

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
const HOUR: i64 = 3_600_000;

fn args(s: &str) -> Vec<Vec<u8>> {
    s.split_whitespace()
        .map(|a| a.as_bytes().to_vec())
        .collect()
}

fn change_of(a: &[Vec<u8>]) -> ConfigChange {
    let opts: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
    configure_args(&opts).unwrap_or_else(|e| panic!("{e}"))
}

fn change(s: &str) -> ConfigChange {
    change_of(&args(s))
}

const SEED: (u64, u64) = (11, 22);
const STREAM: &[u8] = b"{c}:wins";

fn create(s: &str) -> Campaign {
    Campaign::create(&change(s), SEED, STREAM.to_vec()).unwrap()
}

/// `below(n)` returns a counter mod n, the counter going up by one a call: started at x, the
/// first call of a draw gives x (mod n).
struct Counter {
    next: u64,
    /// The `n` of every call, in order.
    asked: Vec<u64>,
}

impl Counter {
    fn at(x: u64) -> Counter {
        Counter {
            next: x,
            asked: Vec::new(),
        }
    }
}

impl Uniform for Counter {
    fn below(&mut self, n: u64) -> u64 {
        self.asked.push(n);
        let v = self.next % n.max(1);
        self.next += 1;
        v
    }
}

/// Exactly these values, in order (each must be below the `n` asked).
struct Exact(Vec<u64>, usize);

impl Uniform for Exact {
    fn below(&mut self, n: u64) -> u64 {
        let v = self.0[self.1];
        self.1 += 1;
        assert!(v < n, "scripted {v} not below {n}");
        v
    }
}

fn gen(seed: u64) -> Gen {
    Gen::seed_from_u64(seed)
}

fn idx(c: &Campaign, id: &str) -> usize {
    c.prize_index(id.as_bytes()).unwrap()
}

fn tier(c: &Campaign, name: &str) -> Option<usize> {
    Some(c.rules().tier_index(name.as_bytes()).unwrap())
}

fn ukey(c: &Campaign, user: &str) -> u128 {
    c.user_key(user.as_bytes())
}

/// One whole draw as the command layer does it (plan on a tier, then commit or count); a win
/// gets the stream ID `now-seq`.
fn draw_on(
    c: &mut Campaign,
    user: &str,
    reqid: Option<&str>,
    tier: Option<usize>,
    now: i64,
    g: &mut (impl Uniform + ?Sized),
) -> (DrawReply, Effect) {
    let u = c.user_key(user.as_bytes());
    let rk = reqid.map(|r| c.request_key(u, r.as_bytes()));
    let plan = c.plan_draw_tier(u, rk, None, tier, now, g);
    match plan {
        Plan::Replay(r) | Plan::Reject(r, _) => (r, c.count(&plan, now)),
        Plan::Pass { prize, seq, .. } => {
            let id = prize.map(|_| StreamId {
                ms: now as u64,
                seq,
            });
            c.commit_draw(u, rk, now, &plan, id)
        }
    }
}

fn draw(
    c: &mut Campaign,
    user: &str,
    now: i64,
    g: &mut (impl Uniform + ?Sized),
) -> (DrawReply, Effect) {
    draw_on(c, user, None, None, now, g)
}

/// The prize a draw's plan gives (None: a loss); panics on a plan that does not pass.
fn planned(
    c: &mut Campaign,
    user: &str,
    tier: Option<usize>,
    now: i64,
    g: &mut impl Uniform,
) -> Option<usize> {
    let u = c.user_key(user.as_bytes());
    match c.plan_draw_tier(u, None, None, tier, now, g) {
        Plan::Pass { prize, .. } => prize,
        p => panic!("draw refused: {p:?}"),
    }
}

/// The prize id a reply names ("-" for none).
fn won(c: &Campaign, r: &DrawReply) -> String {
    String::from_utf8_lossy(c.name(r.prize).unwrap_or(b"-")).into_owned()
}

fn code_of(e: &Effect) -> Option<Vec<u8>> {
    match e {
        Effect::Draw(d) => d.code.clone(),
        _ => None,
    }
}

/// A loss for `user` on the base table: the first `Counter` start whose plan loses, committed.
fn lose(c: &mut Campaign, user: &str, now: i64) {
    for s in 0..10_000 {
        let mut g = Counter::at(s);
        if planned(c, user, None, now, &mut g).is_none() {
            let (r, _) = draw(c, user, now, &mut Counter::at(s));
            assert_eq!(r.outcome, Outcome::Lose);
            return;
        }
    }
    panic!("no losing draw for {user}");
}

/// Unix ms of a UTC date and time.
fn at(y: i64, m: u32, d: u32, h: i64, min: i64) -> i64 {
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * DAY_MS + h * HOUR + min * 60_000
}

fn rejected(c: &Campaign, o: Outcome) -> u64 {
    c.counters().rejected[o.rejection_index().unwrap()]
}

// ---- 1. exact odds, by counting ----------------------------------------------------------

/// The weights a table should have: the base weights with the tier's overrides.
fn expected_weights(
    base: &[u32],
    nothing: u32,
    over: &[(usize, u32)],
    tn: Option<u32>,
) -> Vec<u32> {
    let mut w = base.to_vec();
    for &(i, v) in over {
        w[i] = v;
    }
    w.push(tn.unwrap_or(nothing));
    w
}

fn assert_mass(c: &mut Campaign, t: Option<usize>, want: &[u32], what: &str) {
    let mass = c.table_mass(t, T0);
    let n = want.len() as u128;
    let expect: Vec<u128> = want.iter().map(|&w| u128::from(w) * n).collect();
    assert_eq!(mass, expect, "{what}");
}

#[test]
fn every_table_gives_each_entry_exactly_its_weight() {
    let mut c = create(
        "PRIZE a 3 INF PRIZE b 0 INF PRIZE c 7 10 PRIZE d 1 INF NOTHING 5 \
         TIER vip PRIZE-WEIGHT a 100 PRIZE-WEIGHT b 2 NOTHING 0 \
         TIER cheap NOTHING 1000 TIER same MAXWINS INF",
    );
    let (vip, cheap, same) = (tier(&c, "vip"), tier(&c, "cheap"), tier(&c, "same"));
    assert_mass(&mut c, None, &[3, 0, 7, 1, 5], "base");
    assert_mass(&mut c, vip, &[100, 2, 7, 1, 0], "vip");
    assert_mass(&mut c, cheap, &[3, 0, 7, 1, 1000], "cheap");
    assert_mass(&mut c, same, &[3, 0, 7, 1, 5], "same");
    // An index past the tiers draws from the base table.
    assert_mass(&mut c, Some(99), &[3, 0, 7, 1, 5], "past the tiers");
    // What a tier does not list follows later changes of the base values.
    c.configure(&change(
        "PRIZE a 4 INF PRIZE b 9 INF PRIZE c 7 10 PRIZE d 0 INF NOTHING 6",
    ))
    .unwrap();
    assert_mass(&mut c, None, &[4, 9, 7, 0, 6], "base after");
    assert_mass(&mut c, vip, &[100, 2, 7, 0, 0], "vip after");
    assert_mass(&mut c, cheap, &[4, 9, 7, 0, 1000], "cheap after");
    assert_mass(&mut c, same, &[4, 9, 7, 0, 6], "same after");
    // A tier replaced, then removed (the others keep their index order).
    c.configure(&change("TIER vip PRIZE-WEIGHT d 8")).unwrap();
    assert_mass(&mut c, vip, &[4, 9, 7, 8, 6], "vip replaced");
    c.configure(&change("TIER cheap OFF")).unwrap();
    assert_eq!(c.rules().tiers.len(), 2);
    let same = tier(&c, "same");
    assert_mass(&mut c, same, &[4, 9, 7, 0, 6], "same after cheap went");
    // Sold out: under LOSE it stays in every table; under REDRAW it leaves them all.
    c.restock(b"c", -10).unwrap();
    assert_mass(
        &mut c,
        None,
        &[4, 9, 7, 0, 6],
        "LOSE keeps a sold-out prize",
    );
    assert_mass(&mut c, vip, &[4, 9, 7, 8, 6], "LOSE keeps it in a tier");
    c.configure(&change("SOLDOUT REDRAW")).unwrap();
    assert_mass(&mut c, None, &[4, 9, 0, 0, 6], "REDRAW base");
    assert_mass(&mut c, vip, &[4, 9, 0, 8, 6], "REDRAW tier");
    // Back in stock: back in the tables (the tier's table is rebuilt too).
    c.restock(b"c", 1).unwrap();
    assert_mass(&mut c, vip, &[4, 9, 7, 8, 6], "restocked tier");
    assert_mass(&mut c, None, &[4, 9, 7, 0, 6], "restocked base");
    // A win that sells the last unit out takes it out of the tier's table as well.
    let mut g = gen(1);
    let vip = tier(&c, "vip");
    let mut n = 0;
    while c.prizes()[idx(&c, "c")].stock != Some(0) {
        draw_on(&mut c, &format!("u{n}"), None, vip, T0, &mut g);
        n += 1;
    }
    assert_mass(&mut c, vip, &[4, 9, 0, 8, 6], "sold out by a draw");
}

#[test]
fn random_tiers_are_exact() {
    let mut g = gen(2);
    let mut checked = 0;
    for round in 0..150 {
        let n = g.random_range(1..40usize);
        let base: Vec<u32> = (0..n)
            .map(|_| match g.random_range(0..4) {
                0 => 0,
                1 => g.random_range(1..10),
                2 => g.random_range(0..u32::MAX / 64),
                _ => g.random_range(0..1_000_000),
            })
            .collect();
        let nothing = if g.random_bool(0.3) {
            0
        } else {
            g.random_range(0..1000)
        };
        let mut s = String::new();
        for (i, w) in base.iter().enumerate() {
            s.push_str(&format!("PRIZE p{i} {w} INF "));
        }
        s.push_str(&format!("NOTHING {nothing} "));
        let mut tiers = Vec::new();
        for t in 0..g.random_range(1..5) {
            let mut over = Vec::new();
            s.push_str(&format!("TIER t{t} "));
            for i in 0..n {
                if g.random_bool(0.3) {
                    let v = if g.random_bool(0.3) {
                        0
                    } else {
                        g.random_range(0..u32::MAX / 64)
                    };
                    over.push((i, v));
                    s.push_str(&format!("PRIZE-WEIGHT p{i} {v} "));
                }
            }
            let tn = g.random_bool(0.5).then(|| g.random_range(0..100u32));
            if let Some(v) = tn {
                s.push_str(&format!("NOTHING {v} "));
            }
            tiers.push((over, tn));
        }
        let Ok(mut c) = Campaign::create(&change(&s), SEED, STREAM.to_vec()) else {
            // All weights zero somewhere: refused, which `configure` tests elsewhere.
            continue;
        };
        assert_mass(
            &mut c,
            None,
            &expected_weights(&base, nothing, &[], None),
            "base",
        );
        for (t, (over, tn)) in tiers.iter().enumerate() {
            let want = expected_weights(&base, nothing, over, *tn);
            assert_mass(&mut c, Some(t), &want, &format!("round {round} tier {t}"));
        }
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

/// Every (column, number) pair of a tier's alias table, through the whole draw: each prize
/// exactly its tier weight times the table's size.
#[test]
fn draws_on_a_tier_enumerate_to_the_exact_weights() {
    let mut c = create(
        "PRIZE a 3 INF PRIZE b 0 INF PRIZE c 7 INF PRIZE d 1 INF NOTHING 5 MAXWINS INF \
         TIER vip PRIZE-WEIGHT a 10 PRIZE-WEIGHT b 2 NOTHING 0 TIER low PRIZE-WEIGHT c 0 NOTHING 9",
    );
    for (t, want) in [
        (None, vec![3u64, 0, 7, 1, 5]),
        (tier(&c, "vip"), vec![10, 2, 7, 1, 0]),
        (tier(&c, "low"), vec![3, 0, 0, 1, 9]),
    ] {
        let n = want.len() as u64;
        let total: u64 = want.iter().sum();
        let mut counts = vec![0u64; want.len()];
        for col in 0..n {
            for r in 0..total {
                let p = planned(&mut c, "u", t, T0, &mut Exact(vec![col, r], 0));
                counts[p.unwrap_or(want.len() - 1)] += 1;
            }
        }
        let expect: Vec<u64> = want.iter().map(|w| w * n).collect();
        assert_eq!(counts, expect, "tier {t:?}");
    }
}

/// A guaranteed draw, every value of its one uniform number: each qualifying listed prize
/// exactly its weight times; unlisted, sold-out, locked and zero-weight prizes never.
#[test]
fn a_guaranteed_draw_enumerates_to_the_listed_weights() {
    let mut c = create(
        "PRIZE a 3 INF PRIZE b 5 INF PRIZE c 4 0 PRIZE d 6 INF AFTER 10 PRIZE e 0 INF \
         PRIZE f 2 INF NOTHING 1000 MAXWINS INF GUARANTEE 2 PRIZES 5 a b c d e \
         TIER vip PRIZE-WEIGHT a 30 PRIZE-WEIGHT e 7 PRIZE-WEIGHT f 50",
    );
    lose(&mut c, "u", T0);
    let u = ukey(&c, "u");
    assert_eq!(c.user_view(u, T0).draws_since_win, 1);
    let (a, b, e) = (idx(&c, "a"), idx(&c, "b"), idx(&c, "e"));
    for (t, want) in [
        (None, vec![(a, 3u64), (b, 5)]),
        (tier(&c, "vip"), vec![(a, 30), (b, 5), (e, 7)]),
    ] {
        let total: u64 = want.iter().map(|x| x.1).sum();
        let mut counts: HashMap<usize, u64> = HashMap::new();
        for x in 0..total {
            let mut g = Counter::at(x);
            let p = planned(&mut c, "u", t, T0, &mut g).expect("a guaranteed draw wins");
            // One uniform number, over exactly the qualifying weights.
            assert_eq!(g.asked, vec![total], "tier {t:?}");
            *counts.entry(p).or_default() += 1;
        }
        let want: HashMap<usize, u64> = want.into_iter().collect();
        assert_eq!(counts, want, "tier {t:?}");
    }
    // Without GUARANTEE the same user's draws are ordinary: mostly losses.
    let mut plain = c.clone();
    plain
        .configure(&change("GUARANTEE OFF TOTAL 1000"))
        .unwrap();
    let mut g = gen(9);
    let losses = (0..1000)
        .filter(|_| planned(&mut plain, "u", None, T0, &mut g).is_none())
        .count();
    assert!(losses > 950, "{losses}");
}

// ---- 2. GUARANTEE --------------------------------------------------------------------------

#[test]
fn the_nth_draw_without_a_win_wins() {
    for n in 2..=6u32 {
        let mut c = create(&format!(
            "PRIZE a 1 INF PRIZE b 2 INF NOTHING 1000000 MAXWINS INF GUARANTEE {n}"
        ));
        let mut g = gen(u64::from(n));
        let users: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
        let mut model: HashMap<&str, (u32, u32)> = HashMap::new();
        let mut guaranteed = 0;
        let mut now = T0;
        for _round in 0..4 * n {
            for user in &users {
                now += 1;
                let (total, since) = model.get(user.as_str()).copied().unwrap_or_default();
                let (r, _) = draw(&mut c, user, now, &mut g);
                if since + 1 >= n {
                    assert_eq!(
                        r.outcome,
                        Outcome::Win,
                        "n {n}: draw {} of {user}",
                        total + 1
                    );
                    guaranteed += 1;
                }
                let since = if r.outcome == Outcome::Win {
                    0
                } else {
                    since + 1
                };
                model.insert(user, (total + 1, since));
                let v = c.user_view(ukey(&c, user), now);
                assert_eq!((v.draws_total, v.draws_since_win), (total + 1, since));
            }
        }
        // Every user reached the guarantee at least once (an ordinary win is one in 333,334).
        assert!(guaranteed >= 20, "n {n}: {guaranteed}");
        assert_eq!(
            c.counters().wins,
            guaranteed as u64,
            "n {n}: no ordinary win"
        );
    }
}

#[test]
fn a_fallback_win_resets_the_count_and_no_listed_prize_makes_an_ordinary_draw() {
    // a is sold out; the fallback b weighs 0, so no prize qualifies for a guaranteed draw:
    // every draw is ordinary, half of them fallback wins, half losses (NOTHING).
    let mut c =
        create("PRIZE a 1 0 PRIZE b 0 INF NOTHING 1 SOLDOUT FALLBACK b MAXWINS INF GUARANTEE 3");
    let mut g = gen(3);
    let u = ukey(&c, "u");
    let (mut since, mut longest, mut wins) = (0u32, 0u32, 0);
    for i in 0..400 {
        let (r, _) = draw(&mut c, "u", T0 + i, &mut g);
        if r.outcome == Outcome::Win {
            assert_eq!(won(&c, &r), "b");
            wins += 1;
            since = 0;
        } else {
            since += 1;
        }
        longest = longest.max(since);
        let v = c.user_view(u, T0 + i);
        assert_eq!((v.draws_total, v.draws_since_win), (i as u32 + 1, since));
    }
    assert!(wins > 150 && wins < 250, "{wins}");
    assert!(longest >= 3, "losses past the guarantee: {longest}");
}

#[test]
fn listed_prizes_sold_out_give_an_ordinary_draw() {
    let mut c =
        create("PRIZE a 1 1 PRIZE b 1 INF NOTHING 100000 MAXWINS INF GUARANTEE 2 PRIZES 1 a");
    lose(&mut c, "u1", T0);
    let (r, _) = draw(&mut c, "u1", T0, &mut gen(4));
    assert_eq!((r.outcome, won(&c, &r)), (Outcome::Win, "a".into()));
    assert_eq!(c.prizes()[idx(&c, "a")].stock, Some(0));
    lose(&mut c, "u2", T0);
    // u2 is due a guaranteed draw, but a is sold out: the draw is exactly the ordinary one.
    let mut ordinary = c.clone();
    ordinary
        .configure(&change("GUARANTEE OFF TOTAL 1000"))
        .unwrap();
    for x in 0..5000 {
        let due = planned(&mut c, "u2", None, T0, &mut Counter::at(x));
        let plain = planned(&mut ordinary, "u2", None, T0, &mut Counter::at(x));
        assert_eq!(due, plain, "x {x}");
    }
    // A listed prize locked by AFTER does not qualify either, until the draw that unlocks it.
    let mut c = create(
        "PRIZE d 1 INF AFTER 3 PRIZE b 1 INF NOTHING 1000000 MAXWINS INF GUARANTEE 2 PRIZES 1 d",
    );
    let u = ukey(&c, "u");
    lose(&mut c, "u", T0);
    // Draw 2: guaranteed, but d is locked until draw 3: ordinary (a loss here).
    let (r, _) = draw(&mut c, "u", T0, &mut Counter::at(0));
    assert_eq!(r.outcome, Outcome::Lose);
    assert_eq!(c.user_view(u, T0).draws_since_win, 2);
    // Draw 3: d unlocks and the guarantee gives it.
    let (r, _) = draw(&mut c, "u", T0, &mut Counter::at(0));
    assert_eq!((r.outcome, won(&c, &r)), (Outcome::Win, "d".into()));
    let v = c.user_view(u, T0);
    assert_eq!((v.draws_total, v.draws_since_win, v.wins), (3, 0, 1));
}

#[test]
fn lifetime_counts_only_count_consumed_chances() {
    let mut c = create("PRIZE a 1 INF NOTHING 3 MAXWINS INF COOLDOWN 1000 DAILY 2 GUARANTEE 5");
    let u = ukey(&c, "u");
    let none = c.user_view(u, T0);
    assert_eq!((none.draws_total, none.draws_since_win), (0, 0));
    let mut g = gen(5);
    let total = |c: &Campaign, now: i64| c.user_view(u, now).draws_total;
    let (first, _) = draw_on(&mut c, "u", Some("r1"), None, T0, &mut g);
    assert_eq!(total(&c, T0), 1);
    // REQID replays consume nothing.
    for (i, t) in [T0 + 1, T0 + 5000].into_iter().enumerate() {
        let (r, _) = draw_on(&mut c, "u", Some("r1"), None, t, &mut g);
        assert_eq!(r, first);
        assert_eq!(c.counters().replays, i as u64 + 1);
        assert_eq!(total(&c, t), 1);
    }
    // Refusals neither: COOLDOWN, then the day's quota.
    assert_eq!(
        draw(&mut c, "u", T0 + 1, &mut g).0.outcome,
        Outcome::Cooldown
    );
    assert_eq!(total(&c, T0 + 1), 1);
    let (r, _) = draw(&mut c, "u", T0 + 2000, &mut g);
    assert!(matches!(r.outcome, Outcome::Win | Outcome::Lose));
    assert_eq!(total(&c, T0 + 2000), 2);
    assert_eq!(
        draw(&mut c, "u", T0 + 4000, &mut g).0.outcome,
        Outcome::Quota
    );
    assert_eq!(total(&c, T0 + 4000), 2);
    // A bonus chance counts like any other.
    c.grant(u, 1, None);
    let (r, _) = draw(&mut c, "u", T0 + 6000, &mut g);
    assert!(matches!(r.outcome, Outcome::Win | Outcome::Lose));
    assert_eq!(total(&c, T0 + 6000), 3);
}

// ---- 3. AFTER --------------------------------------------------------------------------------

#[test]
fn a_locked_prize_is_never_won_before_its_draw() {
    for policy in ["LOSE", "REDRAW", "FALLBACK b"] {
        let mut c = create(&format!(
            "PRIZE a 10 INF AFTER 5 PRIZE b 1 INF NOTHING 1 MAXWINS INF SOLDOUT {policy}"
        ));
        let mut g = gen(6);
        let mut first_a = Vec::new();
        for i in 0..300 {
            let user = format!("u{i}");
            for n in 1..=8u32 {
                let (r, _) = draw(&mut c, &user, T0, &mut g);
                if won(&c, &r) == "a" {
                    assert!(n >= 5, "{policy}: a won on draw {n}");
                    first_a.push(n);
                }
            }
        }
        // Unlocked from the 5th draw on, a wins about 10 in 12 of them.
        assert!(first_a.iter().any(|&n| n == 5), "{policy}");
        assert!(first_a.len() > 900, "{policy}: {}", first_a.len());
        // A first draw, every (column, number) pair: a's mass goes by the policy.
        if policy != "REDRAW" {
            let mut counts = [0u64; 3];
            for col in 0..3 {
                for r in 0..12 {
                    let p = planned(&mut c, "fresh", None, T0, &mut Exact(vec![col, r], 0));
                    counts[p.unwrap_or(2)] += 1;
                }
            }
            let want = if policy == "LOSE" {
                [0, 3, 33]
            } else {
                [0, 33, 3]
            };
            assert_eq!(counts, want, "{policy}");
        }
    }
}

/// Draws `n` plans (nothing committed) for `user` and checks each outcome's share against
/// `want` (weights by prize index, NOTHING last) within 5 binomial standard deviations.
fn check_proportions(c: &mut Campaign, user: &str, t: Option<usize>, want: &[u64], seed: u64) {
    let n = 200_000u64;
    let mut g = gen(seed);
    let mut counts = vec![0u64; want.len()];
    for _ in 0..n {
        let p = planned(c, user, t, T0, &mut g);
        counts[p.unwrap_or(want.len() - 1)] += 1;
    }
    let total: u64 = want.iter().sum();
    for (i, (&k, &w)) in counts.iter().zip(want).enumerate() {
        let p = w as f64 / total as f64;
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        if w == 0 {
            assert_eq!(k, 0, "entry {i} has no weight: {counts:?}");
        } else {
            assert!(
                (k as f64 - mean).abs() <= 5.0 * sd,
                "entry {i}: {k} against {mean:.0} +- {sd:.0} (5 sd: {:.0}): {counts:?}",
                5.0 * sd
            );
        }
    }
}

#[test]
fn redraw_skips_locked_prizes_with_the_exact_odds() {
    // A quarter of the mass locked: most draws redraw once or twice.
    let mut c = create(
        "PRIZE a 50 INF AFTER 1000 PRIZE b 30 INF PRIZE c 20 INF NOTHING 100 \
         SOLDOUT REDRAW MAXWINS INF TIER t PRIZE-WEIGHT a 900 NOTHING 10",
    );
    check_proportions(&mut c, "u", None, &[0, 30, 20, 100], 10);
    // On a tier: 900 of 960 locked.
    let t = tier(&c, "t");
    check_proportions(&mut c, "u", t, &[0, 30, 20, 10], 11);
    // 99.99% of the mass locked: 16 tries almost always fail, then the exact pick.
    let mut c = create(
        "PRIZE a 999900 INF AFTER 1000 PRIZE b 30 INF PRIZE c 70 INF NOTHING 0 \
         SOLDOUT REDRAW MAXWINS INF",
    );
    check_proportions(&mut c, "u", None, &[0, 30, 70, 0], 12);
    // With a sold-out prize (out of the table) and NOTHING in the exact pick.
    let mut c = create(
        "PRIZE a 999000 INF AFTER 1000 PRIZE s 500 0 PRIZE b 1 INF PRIZE c 3 INF NOTHING 6 \
         SOLDOUT REDRAW MAXWINS INF",
    );
    check_proportions(&mut c, "u", None, &[0, 0, 1, 3, 6], 13);
    // Two locks: at the user's 2nd draw only the AFTER 2 prize is unlocked.
    let mut c = create(
        "PRIZE a 6000 INF AFTER 1000 PRIZE m 40 INF AFTER 2 PRIZE b 10 INF NOTHING 50 \
         SOLDOUT REDRAW MAXWINS INF",
    );
    check_proportions(&mut c, "u", None, &[0, 0, 10, 50], 14);
    lose(&mut c, "u", T0);
    check_proportions(&mut c, "u", None, &[0, 40, 10, 50], 15);
    // Everything winnable weighs 0: a locked pick is a loss.
    let mut c = create("PRIZE a 5 INF AFTER 3 PRIZE b 0 INF NOTHING 0 SOLDOUT REDRAW MAXWINS INF");
    for x in 0..50 {
        assert_eq!(planned(&mut c, "u", None, T0, &mut Counter::at(x)), None);
    }
}

// ---- 4. TOTAL, QUOTA, PERIOD -----------------------------------------------------------------

#[test]
fn total_caps_every_chance_grants_included() {
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 2 TOTAL 3");
    let u = ukey(&c, "u");
    let mut g = gen(20);
    assert_eq!(c.user_view(u, T0).chances_left, 2);
    let (r, _) = draw(&mut c, "u", T0, &mut g);
    assert_eq!(r.chances_left, 1);
    let (r, _) = draw(&mut c, "u", T0 + 1, &mut g);
    assert_eq!(r.chances_left, 0);
    // The day's quota first (TOTAL leaves 1): QUOTA with the wait to the next day.
    let (r, _) = draw(&mut c, "u", T0 + 2, &mut g);
    assert_eq!(r.outcome, Outcome::Quota);
    assert_eq!(r.wait_ms, Period::Day.ms_to_next(T0 + 2, 0));
    assert_eq!(rejected(&c, Outcome::Quota), 1);
    // Five bonus chances, but TOTAL leaves one.
    c.grant(u, 5, None);
    assert_eq!(c.user_view(u, T0 + 3).chances_left, 1);
    let (r, _) = draw(&mut c, "u", T0 + 3, &mut g);
    assert!(matches!(r.outcome, Outcome::Win | Outcome::Lose));
    assert_eq!(r.chances_left, 0);
    let (r, e) = draw(&mut c, "u", T0 + 4, &mut g);
    assert_eq!(
        (r.outcome, r.outcome.name(), r.wait_ms),
        (Outcome::QuotaTotal, "QUOTA", -1)
    );
    assert_eq!(r.chances_left, 0);
    assert_eq!(rejected(&c, Outcome::QuotaTotal), 1);
    assert_eq!(Outcome::QuotaTotal.stat_name(), "total");
    match e {
        Effect::Count { which, value, .. } => {
            assert_eq!((which, value), (Outcome::QuotaTotal as u8, 1));
        }
        e => panic!("{e:?}"),
    }
    // Still refused on later days, with the bonus unspent.
    let v = c.user_view(u, T0 + 10 * DAY_MS);
    assert_eq!((v.bonus, v.chances_left, v.draws_total), (4, 0, 3));
    let (r, _) = draw(&mut c, "u", T0 + 10 * DAY_MS, &mut g);
    assert_eq!(r.outcome, Outcome::QuotaTotal);
    // The period's quota and TOTAL both spent: TOTAL is checked first.
    let mut d = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 1 TOTAL 1");
    draw(&mut d, "u", T0, &mut g);
    let (r, _) = draw(&mut d, "u", T0 + 1, &mut g);
    assert_eq!(r.outcome, Outcome::QuotaTotal);
    assert_eq!(
        (
            rejected(&d, Outcome::Quota),
            rejected(&d, Outcome::QuotaTotal)
        ),
        (0, 1)
    );
    // COOLDOWN comes before TOTAL.
    let mut d = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF COOLDOWN 100 TOTAL 1");
    draw(&mut d, "u", T0, &mut g);
    assert_eq!(
        draw(&mut d, "u", T0 + 1, &mut g).0.outcome,
        Outcome::Cooldown
    );
    assert_eq!(
        draw(&mut d, "u", T0 + 101, &mut g).0.outcome,
        Outcome::QuotaTotal
    );
    // Raising TOTAL gives chances back; TOTAL INF lifts it (and stops the counts).
    d.configure(&change("TOTAL 2")).unwrap();
    let v = d.user_view(ukey(&d, "u"), T0 + 200);
    assert_eq!((v.chances_left, v.draws_total), (1, 1));
    assert!(matches!(
        draw(&mut d, "u", T0 + 200, &mut g).0.outcome,
        Outcome::Win | Outcome::Lose
    ));
    assert_eq!(
        draw(&mut d, "u", T0 + 400, &mut g).0.outcome,
        Outcome::QuotaTotal
    );
    d.configure(&change("TOTAL INF")).unwrap();
    assert_eq!(d.user_view(ukey(&d, "u"), T0 + 600).chances_left, -1);
    assert!(matches!(
        draw(&mut d, "u", T0 + 600, &mut g).0.outcome,
        Outcome::Win | Outcome::Lose
    ));
    // TOTAL 0: nobody draws.
    let mut z = create("PRIZE a 1 INF TOTAL 0");
    assert_eq!(draw(&mut z, "u", T0, &mut g).0.outcome, Outcome::QuotaTotal);
    assert_eq!(z.user_view(ukey(&z, "u"), T0).chances_left, 0);
}

#[test]
fn chances_left_is_the_smaller_of_the_period_and_total() {
    let mut g = gen(21);
    for (rules, want) in [
        ("", vec![-1, -1, -1, -1]),
        ("DAILY 3", vec![3, 2, 1, 0]),
        ("TOTAL 2", vec![2, 1, 0, 0]),
        ("DAILY 3 TOTAL 2", vec![2, 1, 0, 0]),
        ("DAILY 1 TOTAL 5", vec![1, 0, 0, 0]),
    ] {
        let mut c = create(&format!("PRIZE a 1 INF NOTHING 1 MAXWINS INF {rules}"));
        let u = ukey(&c, "u");
        let mut seen = vec![c.user_view(u, T0).chances_left];
        for i in 1..4 {
            let (r, _) = draw(&mut c, "u", T0 + i, &mut g);
            assert_eq!(
                r.chances_left,
                c.user_view(u, T0 + i).chances_left,
                "{rules}"
            );
            seen.push(r.chances_left);
        }
        assert_eq!(seen, want, "{rules}");
    }
    // With a bonus: the period's chances plus bonus, capped by TOTAL.
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 1 TOTAL 4");
    let u = ukey(&c, "u");
    c.grant(u, 2, None);
    assert_eq!(c.user_view(u, T0).chances_left, 3);
    c.grant(u, 10, None);
    assert_eq!(c.user_view(u, T0).chances_left, 4);
}

#[test]
fn week_and_month_periods_reset_in_the_dayoffset_zone() {
    let mut g = gen(22);
    // Weeks in UTC+8: Monday 2026-11-30 00:00 local is Sunday 2026-11-29 16:00 UTC.
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 2 PERIOD WEEK DAYOFFSET 480");
    let u = ukey(&c, "u");
    let monday = at(2026, 11, 29, 16, 0);
    let t = monday - 7 * DAY_MS + HOUR; // the previous Monday, 01:00 local
    draw(&mut c, "u", t, &mut g);
    draw(&mut c, "u", t + 3 * DAY_MS, &mut g);
    assert_eq!(c.user_view(u, t + 3 * DAY_MS).draws_today, 2);
    let late = monday - 60_000; // Sunday 23:59 local
    let (r, _) = draw(&mut c, "u", late, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, 60_000));
    assert_eq!(r.chances_left, 0);
    // The new week at Monday 00:00 local.
    let v = c.user_view(u, monday);
    assert_eq!((v.draws_today, v.chances_left), (0, 2));
    draw(&mut c, "u", monday, &mut g);
    draw(&mut c, "u", monday + 6 * DAY_MS, &mut g);
    let (r, _) = draw(&mut c, "u", monday + 7 * DAY_MS - 1, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, 1));
    let (r, _) = draw(&mut c, "u", monday + 7 * DAY_MS, &mut g);
    assert!(matches!(r.outcome, Outcome::Win | Outcome::Lose));

    // Months in UTC-5: March 2024 starts at 2024-03-01 05:00 UTC; February has 29 days.
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 1 PERIOD MONTH DAYOFFSET -300");
    let u = ukey(&c, "u");
    let feb = at(2024, 2, 1, 5, 0);
    let march = at(2024, 3, 1, 5, 0);
    draw(&mut c, "u", feb, &mut g);
    let (r, _) = draw(&mut c, "u", feb + 10 * DAY_MS, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, 19 * DAY_MS));
    let (r, _) = draw(&mut c, "u", march - 1, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, 1));
    let (r, _) = draw(&mut c, "u", march, &mut g);
    assert!(matches!(r.outcome, Outcome::Win | Outcome::Lose));
    assert_eq!(c.user_view(u, march).draws_today, 1);
    // A 31-day month: from March 1st local to April 1st local.
    let (r, _) = draw(&mut c, "u", march + HOUR, &mut g);
    assert_eq!(r.wait_ms, 31 * DAY_MS - HOUR);
    // March 31st 23:00 local is April 1st 04:00 UTC: still March.
    let (r, _) = draw(&mut c, "u", at(2024, 4, 1, 4, 0), &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, HOUR));
}

#[test]
fn changing_the_period_keeps_the_count_of_the_current_period() {
    let mut g = gen(23);
    // 2026-12-02 is a Wednesday.
    let wed = at(2026, 12, 2, 12, 0);
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 2");
    let u = ukey(&c, "u");
    draw(&mut c, "u", wed - DAY_MS, &mut g);
    draw(&mut c, "u", wed - DAY_MS + 1, &mut g);
    // A new day under DAY.
    assert_eq!(c.user_view(u, wed).draws_today, 0);
    // Under WEEK, Tuesday's draws are this week's.
    c.configure(&change("PERIOD WEEK")).unwrap();
    let v = c.user_view(u, wed);
    assert_eq!((v.draws_today, v.chances_left), (2, 0));
    assert_eq!(draw(&mut c, "u", wed, &mut g).0.outcome, Outcome::Quota);
    // Under MONTH too (December); back to DAY, a new day again.
    c.configure(&change("PERIOD MONTH")).unwrap();
    assert_eq!(c.user_view(u, wed).draws_today, 2);
    c.configure(&change("PERIOD DAY")).unwrap();
    assert_eq!(c.user_view(u, wed).draws_today, 0);
}
