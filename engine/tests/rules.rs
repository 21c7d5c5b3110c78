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
use lottery_engine::views::UserView;
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
/// Returns the draw's effect.
fn lose(c: &mut Campaign, user: &str, now: i64) -> Effect {
    for s in 0..10_000 {
        let mut g = Counter::at(s);
        if planned(c, user, None, now, &mut g).is_none() {
            let (r, e) = draw(c, user, now, &mut Counter::at(s));
            assert_eq!(r.outcome, Outcome::Lose);
            return e;
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
        let mut a_won_at = Vec::new();
        for i in 0..300 {
            let user = format!("u{i}");
            for n in 1..=8u32 {
                let (r, _) = draw(&mut c, &user, T0, &mut g);
                if won(&c, &r) == "a" {
                    assert!(n >= 5, "{policy}: a won on draw {n}");
                    a_won_at.push(n);
                }
            }
        }
        // Unlocked from the 5th draw on, a wins about 10 in 12 of them.
        assert!(a_won_at.contains(&5), "{policy}");
        assert!(a_won_at.len() > 900, "{policy}: {}", a_won_at.len());
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
    assert_eq!(
        Outcome::QuotaTotal.rejection_index(),
        Some(REJECTION_COUNT - 1)
    );
    assert_eq!(
        Outcome::from_u8(Outcome::QuotaTotal as u8),
        Some(Outcome::QuotaTotal)
    );
    assert!(Outcome::REJECTIONS.contains(&Outcome::QuotaTotal));
    assert_eq!(
        rejected(&c, Outcome::Quota),
        1,
        "apart from the period's QUOTA"
    );
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

// ---- 5. code pools ----------------------------------------------------------------------

fn codes(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|c| c.as_bytes().to_vec()).collect()
}

fn add(c: &mut Campaign, prize: &str, list: &[&str]) -> u64 {
    let v = codes(list);
    let r: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
    c.add_codes(prize.as_bytes(), &r).unwrap().0
}

fn remove(c: &mut Campaign, prize: &str, list: &[&str]) -> u64 {
    let v = codes(list);
    let r: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
    c.remove_codes(prize.as_bytes(), &r).unwrap().0
}

/// A code prize's stock is its unused codes, however counted.
fn check_stock(c: &Campaign, prize: &str) {
    let i = idx(c, prize);
    let p = &c.prizes()[i];
    let unused = c.count_codes(prize.as_bytes()).unwrap();
    assert_eq!(p.stock, Some(unused), "{prize}");
    let pool = c.codes().get(p.name);
    assert_eq!(pool.map_or(0, |x| x.unused()), unused);
    assert_eq!(pool.map_or(0, |x| x.iter_unused().count() as u64), unused);
    assert_eq!(c.next_code(i), pool.and_then(|x| x.iter_unused().next()));
}

#[test]
fn a_code_prize_hands_out_its_codes_oldest_first_never_twice() {
    let mut c = create("PRIZE g 1 CODES PRIZE n 0 INF MAXWINS INF");
    check_stock(&c, "g");
    assert_eq!(c.prizes()[idx(&c, "g")].stock, Some(0));
    assert_eq!(add(&mut c, "g", &["c1", "c2", "c3", "c4", "c5"]), 5);
    // A code already in the pool is skipped, in the same call too.
    assert_eq!(add(&mut c, "g", &["c1", "c6", "c6"]), 1);
    check_stock(&c, "g");
    assert_eq!(remove(&mut c, "g", &["c3", "c3", "nope"]), 1);
    assert_eq!(c.count_codes(b"g").unwrap(), 5);
    check_stock(&c, "g");
    let mut g = gen(30);
    let mut handed = Vec::new();
    for i in 0..5 {
        let next = c.next_code(idx(&c, "g")).map(<[u8]>::to_vec);
        let (r, e) = draw(&mut c, &format!("u{i}"), T0, &mut g);
        assert_eq!((r.outcome, won(&c, &r)), (Outcome::Win, "g".into()));
        let code = code_of(&e).expect("a code");
        assert_eq!(Some(code.clone()), next);
        handed.push(String::from_utf8(code).unwrap());
        check_stock(&c, "g");
    }
    assert_eq!(handed, ["c1", "c2", "c4", "c5", "c6"]);
    // Empty: sold out, a loss (SOLDOUT LOSE), no code.
    let (r, e) = draw(&mut c, "u9", T0, &mut g);
    assert_eq!((r.outcome, code_of(&e)), (Outcome::Lose, None));
    // A handed-out code is refused for good; an unused one cannot be removed twice; a
    // removed one (never handed out) may come back.
    assert_eq!(add(&mut c, "g", &["c1", "c5", "c6"]), 0);
    assert_eq!(remove(&mut c, "g", &["c1"]), 0);
    assert_eq!(add(&mut c, "g", &["c3", "c7"]), 2);
    check_stock(&c, "g");
    let (_, e) = draw(&mut c, "u10", T0, &mut g);
    assert_eq!(code_of(&e), Some(b"c3".to_vec()));
    // The wrong prizes.
    assert_eq!(
        c.add_codes(b"n", &[b"x"]).unwrap_err(),
        OpError::NotCodePrize(b"n".to_vec())
    );
    assert_eq!(
        c.count_codes(b"zz").unwrap_err(),
        OpError::NoSuchPrize(b"zz".to_vec())
    );
    assert_eq!(
        c.restock(b"g", 5).unwrap_err(),
        OpError::CodePrize(b"g".to_vec())
    );
    assert_eq!(
        c.restock(b"g", -1).unwrap_err(),
        OpError::CodePrize(b"g".to_vec())
    );
    // Nothing added or removed: no effect.
    assert!(c.add_codes(b"g", &[b"c1"]).unwrap().1.is_none());
    assert!(c.remove_codes(b"g", &[b"c1"]).unwrap().1.is_none());
}

#[test]
fn random_code_traffic_keeps_stock_equal_to_the_unused_codes() {
    let mut c = create("PRIZE g 3 CODES PRIZE h 2 CODES PRIZE a 1 50 NOTHING 2 MAXWINS INF");
    let mut r = Campaign::create(
        &change("PRIZE g 3 CODES PRIZE h 2 CODES PRIZE a 1 50 NOTHING 2 MAXWINS INF"),
        SEED,
        STREAM.to_vec(),
    )
    .unwrap();
    let mut g = gen(31);
    let mut handed: HashSet<(String, Vec<u8>)> = HashSet::new();
    let mut next = 0u32;
    for step in 0..3000 {
        let prize = if g.random_bool(0.5) { "g" } else { "h" };
        let e = match g.random_range(0..10) {
            0..=1 => {
                let k = g.random_range(1..6);
                let mut list: Vec<Vec<u8>> = (0..k)
                    .map(|_| {
                        next += 1;
                        format!("code-{}", next).into_bytes()
                    })
                    .collect();
                // Sometimes a code given before: in the pool, handed out, or removed.
                if next > 5 && g.random_bool(0.5) {
                    list.push(format!("code-{}", g.random_range(1..next)).into_bytes());
                }
                let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
                c.add_codes(prize.as_bytes(), &refs).unwrap().1
            }
            2 => {
                let pool: Vec<Vec<u8>> = c
                    .codes()
                    .get(c.prizes()[idx(&c, prize)].name)
                    .map(|p| p.iter_unused().map(<[u8]>::to_vec).collect())
                    .unwrap_or_default();
                let pick: Vec<Vec<u8>> = pool.into_iter().filter(|_| g.random_bool(0.2)).collect();
                let refs: Vec<&[u8]> = pick.iter().map(Vec::as_slice).collect();
                c.remove_codes(prize.as_bytes(), &refs).unwrap().1
            }
            _ => {
                let (rep, e) = draw(&mut c, &format!("u{}", step % 97), T0 + step, &mut g);
                let code = code_of(&e);
                let w = won(&c, &rep);
                assert_eq!(code.is_some(), w == "g" || w == "h", "step {step}");
                if let Some(code) = code {
                    assert!(
                        handed.insert((w, code)),
                        "step {step}: a code handed out twice"
                    );
                }
                Some(e)
            }
        };
        if let Some(e) = e {
            r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
        }
        check_stock(&c, "g");
        check_stock(&c, "h");
        check_stock(&r, "g");
        check_stock(&r, "h");
        assert_eq!(
            persist::fingerprint(&c),
            persist::fingerprint(&r),
            "step {step}"
        );
    }
    assert!(handed.len() > 300, "{}", handed.len());
}

#[test]
fn configure_keeps_unused_codes() {
    let mut c = create("PRIZE g 1 CODES PRIZE a 1 INF MAXWINS INF");
    add(&mut c, "g", &["c1", "c2"]);
    // Dropping g, or turning it into a counted prize, is refused while it has codes.
    assert_eq!(
        c.configure(&change("PRIZE a 1 INF")).unwrap_err(),
        ConfigError::CodesLeft(b"g".to_vec(), 2)
    );
    assert_eq!(
        c.configure(&change("PRIZE a 1 INF PRIZE g 1 5"))
            .unwrap_err(),
        ConfigError::CodesLeft(b"g".to_vec(), 2)
    );
    assert_eq!(
        c.configure(&change("PRIZE a 1 INF PRIZE g 1 INF"))
            .unwrap_err(),
        ConfigError::CodesLeft(b"g".to_vec(), 2)
    );
    // Kept as a code prize (another weight, another place): fine, the pool stays.
    c.configure(&change("PRIZE a 1 INF PRIZE g 7 CODES"))
        .unwrap();
    check_stock(&c, "g");
    assert_eq!(c.count_codes(b"g").unwrap(), 2);
    // One handed out, one removed: g may leave; back as CODES it has no codes, and the
    // handed-out one is still refused.
    let mut g = gen(32);
    let mut won_code = None;
    for i in 0..100 {
        let (_, e) = draw(&mut c, &format!("u{i}"), T0, &mut g);
        if let Some(code) = code_of(&e) {
            won_code = Some(code);
            break;
        }
    }
    let won_code = String::from_utf8(won_code.expect("g won")).unwrap();
    let other = if won_code == "c1" { "c2" } else { "c1" };
    assert_eq!(won_code, "c1", "oldest first");
    assert_eq!(remove(&mut c, "g", &[other]), 1);
    c.configure(&change("PRIZE a 1 INF")).unwrap();
    assert_eq!(c.prize_index(b"g"), None);
    c.configure(&change("PRIZE a 1 INF PRIZE g 1 CODES"))
        .unwrap();
    check_stock(&c, "g");
    assert_eq!(add(&mut c, "g", &[&won_code, other]), 1);
    check_stock(&c, "g");
    // Back as a counted prize, then as a code prize again: the pool was empty, so allowed.
    remove(&mut c, "g", &[other]);
    c.configure(&change("PRIZE a 1 INF PRIZE g 1 3")).unwrap();
    assert_eq!(c.prizes()[idx(&c, "g")].stock, Some(3));
    c.configure(&change("PRIZE a 1 INF PRIZE g 1 CODES"))
        .unwrap();
    check_stock(&c, "g");
    assert_eq!(add(&mut c, "g", &[&won_code]), 0);
}

#[test]
fn a_reqid_replay_keeps_the_code() {
    let mut c = create("PRIZE g 1 CODES MAXWINS INF IDEMPOTENCY 60000");
    add(&mut c, "g", &["c1", "c2", "c3"]);
    let mut g = gen(33);
    let u = ukey(&c, "u");
    let rk = c.request_key(u, b"r1");
    let (first, e) = draw_on(&mut c, "u", Some("r1"), None, T0, &mut g);
    assert_eq!(first.outcome, Outcome::Win);
    assert_eq!(code_of(&e), Some(b"c1".to_vec()));
    assert_eq!(c.reqs().code(rk), Some(&b"c1"[..]));
    let mut r = Campaign::create(
        &change("PRIZE g 1 CODES MAXWINS INF IDEMPOTENCY 60000"),
        SEED,
        STREAM.to_vec(),
    )
    .unwrap();
    add(&mut r, "g", &["c1", "c2", "c3"]);
    r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    assert_eq!(r.reqs().code(rk), Some(&b"c1"[..]));
    // Replays: the same reply, the same code, no code consumed.
    for t in [T0 + 1, T0 + 59_999] {
        let plan = c.plan_draw_tier(u, Some(rk), None, None, t, &mut g);
        assert_eq!(plan, Plan::Replay(first));
        assert_eq!(c.reqs().code(rk), Some(&b"c1"[..]));
        let e = c.count(&plan, t);
        r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
        assert_eq!(c.count_codes(b"g").unwrap(), 2);
    }
    // Another REQID draws the next code; after the window the first is forgotten.
    let (_, e) = draw_on(&mut c, "u", Some("r2"), None, T0 + 2, &mut g);
    assert_eq!(code_of(&e), Some(b"c2".to_vec()));
    r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    assert_eq!(persist::fingerprint(&c), persist::fingerprint(&r));
    let (_, e) = draw_on(&mut c, "v", None, None, T0 + 70_000, &mut g);
    r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    assert_eq!(c.reqs().code(rk), None);
    assert_eq!(persist::fingerprint(&c), persist::fingerprint(&r));
}

// ---- 6. replicas ----------------------------------------------------------------------------

/// Every rule on: tiers, a guarantee with a list, AFTER, TOTAL, PERIOD MONTH, a code prize.
const ALL_RULES: &str = "PRIZE a 5 40 PRIZE b 20 INF AFTER 3 PRIZE g 8 CODES PRIZE z 1 3 \
     NOTHING 60 MAXWINS INF DAILY 6 PERIOD MONTH DAYOFFSET 480 TOTAL 30 \
     GUARANTEE 4 PRIZES 2 a g SOLDOUT REDRAW IDEMPOTENCY 60000 \
     TIER vip PRIZE-WEIGHT a 40 PRIZE-WEIGHT g 20 NOTHING 10 TIER low PRIZE-WEIGHT b 0";

/// The master, a replica created from the `Config` effect of its first state, and one
/// created from its first `Configure` effect; every effect goes to both through its
/// encoding.
struct Replicated {
    master: Campaign,
    from_config: Campaign,
    from_configure: Campaign,
    effects: usize,
}

impl Replicated {
    fn new(opts: &str) -> Replicated {
        let master = create(opts);
        let config =
            Effect::decode(&Effect::Config(persist::encode_meta(&master)).encode()).unwrap();
        let configure = Effect::decode(
            &Effect::Configure {
                created: Some((SEED, STREAM.to_vec())),
                args: args(opts),
            }
            .encode(),
        )
        .unwrap();
        Replicated {
            from_config: created_campaign(&config).unwrap().unwrap(),
            from_configure: created_campaign(&configure).unwrap().unwrap(),
            master,
            effects: 0,
        }
    }

    fn send(&mut self, e: Effect) {
        let e = Effect::decode(&e.encode()).expect("effect decodes");
        self.from_config.apply(&e).expect("effect applies");
        self.from_configure.apply(&e).expect("effect applies");
        self.effects += 1;
    }

    fn configure(&mut self, opts: &str) -> Result<(), ConfigError> {
        self.master.configure(&change(opts))?;
        self.send(Effect::Configure {
            created: None,
            args: args(opts),
        });
        Ok(())
    }

    /// Also checks that the master's whole meta, applied as a `Config` effect over a copy of
    /// the replica (what CONFIGURE replicated before `Configure`), gives the same state.
    fn check_config_effect(&self, what: &str) {
        let mut r = self.from_configure.clone();
        let e = Effect::Config(persist::encode_meta(&self.master));
        r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
        assert!(
            persist::fingerprint(&r) == persist::fingerprint(&self.master),
            "{what}: Config"
        );
    }

    fn check(&self, what: &str) {
        let want = persist::fingerprint(&self.master);
        assert!(
            want == persist::fingerprint(&self.from_config),
            "{what}: replica (Config)"
        );
        assert!(
            want == persist::fingerprint(&self.from_configure),
            "{what}: replica (Configure)"
        );
    }
}

/// The configurations the workload switches between (each keeps `g` a code prize).
const CHANGES: &[&str] = &[
    "GUARANTEE OFF",
    "GUARANTEE 3 PRIZES 1 g",
    "GUARANTEE 4 PRIZES 2 a g",
    "GUARANTEE 2",
    "TOTAL INF",
    "TOTAL 12",
    "TOTAL 30",
    "PERIOD DAY",
    "PERIOD WEEK",
    "PERIOD MONTH",
    "TIER vip OFF",
    "TIER vip PRIZE-WEIGHT a 40 PRIZE-WEIGHT g 20 NOTHING 10",
    "TIER low PRIZE-WEIGHT b 0 PRIZE-WEIGHT z 30",
    "SOLDOUT LOSE",
    "SOLDOUT REDRAW",
    "SOLDOUT FALLBACK b",
    "PRIZE a 5 40 PRIZE b 20 INF PRIZE g 8 CODES PRIZE z 1 3",
    "PRIZE a 5 40 PRIZE b 20 INF AFTER 3 PRIZE g 8 CODES PRIZE z 1 3",
    "PRIZE a 9 10 PRIZE g 8 CODES PRIZE b 20 INF AFTER 6 PRIZE z 1 3",
    // Every lifetime rule off (the counts are dropped), then on again.
    "GUARANTEE OFF TOTAL INF PRIZE a 5 40 PRIZE b 20 INF PRIZE g 8 CODES PRIZE z 1 3",
    "GUARANTEE 4 PRIZES 2 a g TOTAL 30",
];

fn workload(seed: u64, steps: usize) -> Replicated {
    let mut p = Replicated::new(ALL_RULES);
    p.check("created");
    let mut g = gen(seed);
    let mut now = at(2026, 1, 30, 12, 0);
    let mut next_code = 0u32;
    let mut handed: HashSet<Vec<u8>> = HashSet::new();
    let mut layouts = [0usize; 2];
    let tiers = ["", "vip", "low", "gone"];
    for step in 0..steps {
        now += match g.random_range(0..1000) {
            0..=2 => g.random_range(5..40) * DAY_MS,
            3..=20 => g.random_range(0..6 * HOUR),
            _ => g.random_range(0..20_000),
        };
        let user = format!("user{}", g.random_range(0..15));
        if p.master.is_paused() && g.random_bool(0.2) {
            let e = p.master.set_paused(false);
            p.send(e);
        }
        match g.random_range(0..20) {
            0..=10 => {
                let t = tiers[g.random_range(0..tiers.len())];
                let t = p.master.rules().tier_index(t.as_bytes());
                let req = g
                    .random_bool(0.3)
                    .then(|| format!("r{}", g.random_range(0..2)));
                let (r, e) = draw_on(&mut p.master, &user, req.as_deref(), t, now, &mut g);
                if let Some(code) = code_of(&e) {
                    assert_eq!(won(&p.master, &r), "g");
                    assert!(handed.insert(code), "step {step}: a code handed out twice");
                }
                p.send(e);
                let u = ukey(&p.master, &user);
                assert_eq!(
                    p.master.user_view(u, now),
                    p.from_configure.user_view(u, now),
                    "step {step}"
                );
            }
            11 => {
                let u = ukey(&p.master, &user);
                let e = p.master.grant(u, g.random_range(1..4), Some(10)).1;
                p.send(e);
            }
            12..=13 => {
                let k = g.random_range(1..4);
                let mut list: Vec<Vec<u8>> = (0..k)
                    .map(|_| {
                        next_code += 1;
                        format!("code{next_code}").into_bytes()
                    })
                    .collect();
                if next_code > 3 && g.random_bool(0.3) {
                    list.push(format!("code{}", g.random_range(1..next_code)).into_bytes());
                }
                let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
                if let (_, Some(e)) = p.master.add_codes(b"g", &refs).unwrap() {
                    p.send(e);
                }
            }
            14 => {
                let name = p.master.prizes()[idx(&p.master, "g")].name;
                let pick: Vec<Vec<u8>> = p
                    .master
                    .codes()
                    .get(name)
                    .map(|x| x.iter_unused().map(<[u8]>::to_vec).collect())
                    .unwrap_or_default();
                let pick: Vec<Vec<u8>> = pick.into_iter().filter(|_| g.random_bool(0.3)).collect();
                let refs: Vec<&[u8]> = pick.iter().map(Vec::as_slice).collect();
                if let (_, Some(e)) = p.master.remove_codes(b"g", &refs).unwrap() {
                    p.send(e);
                }
            }
            15..=16 => {
                let opts = CHANGES[g.random_range(0..CHANGES.len())];
                let before = p.master.users().keeps_lifetime();
                if p.configure(opts).is_ok() {
                    let after = p.master.users().keeps_lifetime();
                    assert_eq!(after, p.master.needs_lifetime());
                    assert_eq!(after, p.from_config.users().keeps_lifetime());
                    if before != after {
                        layouts[usize::from(after)] += 1;
                    }
                    if !after {
                        // Dropped: every user's counts read 0.
                        assert_eq!(p.master.users().iter_life().count(), 0);
                        for (k, _) in p.master.users().iter().take(50) {
                            let v = p.master.user_view(k, now);
                            assert_eq!((v.draws_total, v.draws_since_win), (0, 0));
                        }
                    }
                }
            }
            17 => {
                if let Ok((_, e)) = p.master.restock(b"a", g.random_range(-2..5)) {
                    p.send(e);
                }
                assert!(p.master.restock(b"g", 1).is_err());
            }
            18 => {
                let u = ukey(&p.master, &user);
                let e = if g.random_bool(0.5) {
                    Some(p.master.ban(u, now + g.random_range(0..600_000)))
                } else {
                    p.master.unban(u, now).1
                };
                if let Some(e) = e {
                    p.send(e);
                }
            }
            _ => {
                let e = if g.random_bool(0.5) {
                    p.master.drain().2
                } else {
                    let pause = !p.master.is_paused() && g.random_bool(0.3);
                    p.master.set_paused(pause)
                };
                p.send(e);
            }
        }
        let gi = idx(&p.master, "g");
        assert_eq!(
            p.master.prizes()[gi].stock,
            Some(p.master.count_codes(b"g").unwrap()),
            "step {step}"
        );
        p.check(&format!("seed {seed} step {step}"));
        if step % 250 == 249 {
            let want = persist::fingerprint(&p.master);
            assert!(
                persist::fingerprint(&rdb_round_trip(&p.master)) == want,
                "step {step}: RDB"
            );
            assert!(
                persist::fingerprint(&aof_round_trip(&p.master)) == want,
                "step {step}: AOF"
            );
        }
    }
    assert!(
        layouts[0] > 0 && layouts[1] > 0,
        "the layout switched both ways: {layouts:?}"
    );
    assert!(!handed.is_empty());
    p
}

#[test]
fn replicas_follow_a_mixed_workload_with_every_rule() {
    let mut total_refusals = 0;
    for seed in 0..6 {
        let p = workload(seed, 1500);
        let c = p.master.counters();
        eprintln!(
            "seed {seed}: {} effects, {} draws, {} wins, {} replays, {} codes handed out, \
             rejected {:?}",
            p.effects,
            c.draws,
            c.wins,
            c.replays,
            p.master.prizes()[idx(&p.master, "g")].sold,
            c.rejected
        );
        assert!(c.wins > 50 && c.replays > 0);
        total_refusals += rejected(&p.master, Outcome::QuotaTotal);
    }
    assert!(total_refusals > 0, "TOTAL refused some draws");
}

/// Removing the last lifetime rule drops every user's counts; adding one starts them at 0.
/// Everything else a user has stays, and replicas follow.
#[test]
fn the_lifetime_layout_switches_with_configure() {
    let mut p = Replicated::new("PRIZE a 1 INF NOTHING 3 MAXWINS INF GUARANTEE 3");
    let mut g = gen(40);
    let users: Vec<String> = (0..200).map(|i| format!("u{i}")).collect();
    for (i, u) in users.iter().enumerate() {
        for k in 0..(i % 5) as i64 {
            let e = draw(&mut p.master, u, T0 + k, &mut g).1;
            p.send(e);
        }
    }
    let keys: Vec<u128> = users.iter().map(|u| ukey(&p.master, u)).collect();
    let view =
        |c: &Campaign| -> Vec<UserView> { keys.iter().map(|&k| c.user_view(k, T0 + 10)).collect() };
    let before = view(&p.master);
    assert!(p.master.users().keeps_lifetime());
    assert!(before.iter().any(|v| v.draws_total == 4));
    let bytes_life = p.master.users().mem_bytes();
    // GUARANTEE OFF: no rule needs the counts any more.
    p.configure("GUARANTEE OFF").unwrap();
    p.check("off");
    p.check_config_effect("off");
    assert!(!p.master.users().keeps_lifetime());
    let off = view(&p.master);
    for (a, b) in before.iter().zip(&off) {
        assert_eq!((b.draws_total, b.draws_since_win), (0, 0));
        let zeroed = UserView {
            draws_total: 0,
            draws_since_win: 0,
            ..*a
        };
        assert_eq!(*b, zeroed);
    }
    // The switch moved nothing: the records move over as writes come.
    assert_eq!(p.master.users().moving(), p.master.users().len());
    assert!(p.master.users().mem_bytes() >= bytes_life);
    // Draws while off are not counted.
    let e = draw(&mut p.master, "u1", T0 + 20, &mut g).1;
    p.send(e);
    // TOTAL on: counts start at 0 for everyone.
    p.configure("TOTAL 2").unwrap();
    p.check("on");
    p.check_config_effect("on");
    assert!(p.master.users().keeps_lifetime());
    for &k in &keys {
        let v = p.master.user_view(k, T0 + 30);
        assert_eq!(
            (v.draws_total, v.draws_since_win, v.chances_left),
            (0, 0, 2)
        );
    }
    for t in 0..3 {
        let (r, e) = draw(&mut p.master, "u4", T0 + 40 + t, &mut g);
        p.send(e);
        if t == 2 {
            assert_eq!(r.outcome, Outcome::QuotaTotal);
        }
    }
    assert_eq!(p.master.user_view(keys[4], T0 + 50).draws_total, 2);
    // AFTER alone keeps them too; without it and TOTAL they go again.
    p.configure("TOTAL INF PRIZE a 1 INF AFTER 2").unwrap();
    assert!(p.master.users().keeps_lifetime());
    assert_eq!(p.master.user_view(keys[4], T0 + 50).draws_total, 2);
    p.configure("PRIZE a 1 INF AFTER 1").unwrap();
    assert!(!p.master.users().keeps_lifetime(), "AFTER 1 is no lock");
    p.check("after");
}

// ---- 7. save and load ---------------------------------------------------------------------

/// Saves as the RDB does (meta, then chunks) and loads back.
fn rdb_round_trip(c: &Campaign) -> Campaign {
    let mut back = persist::decode_meta(&persist::encode_meta(c)).expect("meta loads");
    persist::for_each_chunk(c, |chunk| {
        persist::load_chunk(&mut back, chunk).expect("chunk loads")
    });
    back
}

/// Rewrites as the AOF rewrite does (effects through their encoding) and loads back.
fn aof_round_trip(c: &Campaign) -> Campaign {
    let first = Effect::decode(&Effect::Config(persist::encode_meta(c)).encode()).unwrap();
    let mut back = created_campaign(&first).unwrap().expect("config applies");
    persist::for_each_chunk(c, |chunk| {
        let e = Effect::decode(&Effect::Chunk(chunk.to_vec()).encode()).unwrap();
        back.apply(&e).expect("chunk applies");
    });
    back
}

fn chunks(c: &Campaign) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    persist::for_each_chunk(c, |b| out.push(b.to_vec()));
    out
}

/// A campaign with every rule and every kind of chunk: lifetime counts (7), unused codes (8),
/// handed-out codes (9) and the codes of remembered wins (10).
fn every_chunk_kind() -> Campaign {
    let mut c = create(&format!(
        "{ALL_RULES} TIER gonly PRIZE-WEIGHT a 0 PRIZE-WEIGHT b 0 PRIZE-WEIGHT z 0 NOTHING 0"
    ));
    let list: Vec<String> = (0..50).map(|i| format!("gift-{i:04}")).collect();
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    add(&mut c, "g", &refs);
    let mut g = gen(50);
    let gonly = tier(&c, "gonly");
    for i in 0..40 {
        let t = if i % 2 == 0 { gonly } else { None };
        let req = format!("req{i}");
        draw_on(
            &mut c,
            &format!("u{}", i % 25),
            Some(&req),
            t,
            T0 + i,
            &mut g,
        );
    }
    let kinds: HashSet<u8> = chunks(&c).iter().map(|b| b[1]).collect();
    for k in 1..=10u8 {
        if k != 3 && k != 5 && k != 6 {
            assert!(kinds.contains(&k), "chunk kind {k}: {kinds:?}");
        }
    }
    c
}

#[test]
fn every_rule_saves_and_loads_and_draws_on_the_same() {
    let c = every_chunk_kind();
    let want = persist::fingerprint(&c);
    let mut rdb = rdb_round_trip(&c);
    let mut aof = aof_round_trip(&c);
    assert!(persist::fingerprint(&rdb) == want);
    assert!(persist::fingerprint(&aof) == want);
    assert_eq!(rdb.rules(), c.rules());
    // The loaded copies draw exactly as the original (tables rebuilt the same, tiers too).
    let mut c = c;
    let tiers = [None, tier(&c, "vip"), tier(&c, "low"), tier(&c, "gonly")];
    let (mut g1, mut g2, mut g3) = (gen(51), gen(51), gen(51));
    for i in 0..600 {
        let user = format!("u{}", i % 60);
        let req = format!("q{}", i % 7);
        let t = tiers[i % 4];
        let now = T0 + 1000 + i as i64 * 7_000;
        let a = draw_on(&mut c, &user, Some(&req), t, now, &mut g1);
        let b = draw_on(&mut rdb, &user, Some(&req), t, now, &mut g2);
        let d = draw_on(&mut aof, &user, Some(&req), t, now, &mut g3);
        assert_eq!(a, b, "draw {i}");
        assert_eq!(a, d, "draw {i}");
    }
    assert!(persist::fingerprint(&rdb) == persist::fingerprint(&c));
    // And after the workload with every rule (and the layout switched back and forth).
    for seed in 10..13 {
        let p = workload(seed, 600);
        let want = persist::fingerprint(&p.master);
        assert!(persist::fingerprint(&rdb_round_trip(&p.master)) == want);
        assert!(persist::fingerprint(&aof_round_trip(&p.master)) == want);
    }
}

#[test]
fn truncated_or_corrupted_chunks_of_the_new_kinds_are_refused_cleanly() {
    let c = every_chunk_kind();
    let meta = persist::encode_meta(&c);
    let all = chunks(&c);
    let base = persist::decode_meta(&meta).unwrap();
    let before = persist::fingerprint(&base);
    let mut tried = 0;
    for chunk in all.iter().filter(|b| (7..=10).contains(&b[1])) {
        // Every proper prefix: refused, nothing loaded.
        for len in 0..chunk.len() {
            let mut x = base.clone();
            assert!(
                persist::load_chunk(&mut x, &chunk[..len]).is_err(),
                "kind {} len {len}",
                chunk[1]
            );
            assert!(
                persist::fingerprint(&x) == before,
                "a refused chunk changed nothing"
            );
            tried += 1;
        }
        // Trailing bytes: refused.
        let mut long = chunk.clone();
        long.push(0);
        assert!(persist::load_chunk(&mut base.clone(), &long).is_err());
        // Every byte flipped three ways: loads or is refused, never panics; refused changes
        // nothing.
        for pos in 0..chunk.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bad = chunk.clone();
                bad[pos] ^= mask;
                let mut x = base.clone();
                if persist::load_chunk(&mut x, &bad).is_err() {
                    assert!(persist::fingerprint(&x) == before);
                }
                tried += 1;
            }
        }
        // The same kind under version 4: unknown.
        let mut old = chunk.clone();
        old[0] = 4;
        assert!(persist::load_chunk(&mut base.clone(), &old).is_err());
    }
    assert!(tried > 1000, "{tried}");
    // Values the loader must refuse, one entry each.
    let entry = |kind: u8, body: &[u8]| {
        let mut b = vec![persist::ENCODING_VERSION, kind, 1, 0, 0, 0];
        b.extend_from_slice(body);
        b
    };
    let name = c.prizes()[idx(&c, "g")].name;
    let le = |v: u32| v.to_le_bytes().to_vec();
    let key = 7u128.to_le_bytes().to_vec();
    let zero = 0u128.to_le_bytes().to_vec();
    let code = |s: &[u8]| [le(s.len() as u32), s.to_vec()].concat();
    for (what, bad) in [
        (
            "life: zero key",
            entry(7, &[zero.clone(), le(1), le(1)].concat()),
        ),
        (
            "codes: no such name",
            entry(8, &[le(999), code(b"x")].concat()),
        ),
        ("codes: name 0", entry(8, &[le(0), code(b"x")].concat())),
        (
            "codes: empty code",
            entry(8, &[le(name), code(b"")].concat()),
        ),
        (
            "codes: too long",
            entry(8, &[le(name), code(&[b'x'; 513])].concat()),
        ),
        (
            "used: zero key",
            entry(9, &[le(name), zero.clone()].concat()),
        ),
        (
            "used: no such name",
            entry(9, &[le(999), key.clone()].concat()),
        ),
        (
            "req codes: zero key",
            entry(10, &[zero.clone(), code(b"x")].concat()),
        ),
        (
            "req codes: empty code",
            entry(10, &[key.clone(), code(b"")].concat()),
        ),
        ("kind 11", entry(11, &[key.clone()].concat())),
    ] {
        let mut x = base.clone();
        assert!(persist::load_chunk(&mut x, &bad).is_err(), "{what}");
        assert!(persist::fingerprint(&x) == before, "{what}");
    }
    // The same entries with good values load.
    for good in [
        entry(7, &[key.clone(), le(1), le(1)].concat()),
        entry(8, &[le(name), code(b"fresh")].concat()),
        entry(9, &[le(name), key.clone()].concat()),
        entry(10, &[key.clone(), code(b"x")].concat()),
    ] {
        assert!(persist::load_chunk(&mut base.clone(), &good).is_ok());
    }
}

#[test]
fn every_prefix_of_a_v5_meta_or_effect_is_refused() {
    let c = every_chunk_kind();
    let meta = persist::encode_meta(&c);
    assert_eq!(meta[0], persist::ENCODING_VERSION);
    for len in 0..meta.len() {
        assert!(
            persist::decode_meta(&meta[..len]).is_err(),
            "meta prefix {len}"
        );
    }
    assert!(persist::decode_meta(&meta).is_ok());
    let mut long = meta.clone();
    long.push(0);
    assert!(persist::decode_meta(&long).is_err());
    // Byte flips: decoded or refused, never a panic; what decodes can draw.
    for pos in 0..meta.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut bad = meta.clone();
            bad[pos] ^= mask;
            if let Ok(mut x) = persist::decode_meta(&bad) {
                let n = x.rules().tiers.len();
                for t in [None, Some(0), Some(n.saturating_sub(1))] {
                    let u = x.user_key(b"u");
                    x.plan_draw_tier(u, None, None, t, T0, &mut gen(1));
                }
            }
        }
    }
    // Effects of the new kinds: a draw with lifetime counts and a code, the codes a CODES
    // call added, a CONFIGURE with the new options.
    let mut c = c;
    let gonly = tier(&c, "gonly");
    let (_, draw_e) = draw_on(&mut c, "new", Some("rq"), gonly, T0 + 100, &mut gen(2));
    match &draw_e {
        Effect::Draw(d) => assert!(d.life.is_some() && d.code.is_some()),
        e => panic!("{e:?}"),
    }
    let codes_e = c.add_codes(b"g", &[b"one", b"two"]).unwrap().1.unwrap();
    let configure_e = Effect::Configure {
        created: Some((SEED, STREAM.to_vec())),
        args: args(ALL_RULES),
    };
    for e in [draw_e, codes_e, configure_e] {
        let b = e.encode();
        assert_eq!(Effect::decode(&b).unwrap(), e);
        for len in 0..b.len() {
            assert!(Effect::decode(&b[..len]).is_err(), "{e:?}: prefix {len}");
        }
    }
}

/// A version 4 meta record of `c` (a campaign with none of the version 5 rules): version
/// byte 4, 10 rejection counters, prizes without AFTER and CODES, no rules at the end.
fn downgrade_to_v4(c: &Campaign, meta: &[u8]) -> Vec<u8> {
    assert!(c.prizes().iter().all(|p| p.after == 0 && !p.codes));
    assert_eq!(rejected(c, Outcome::QuotaTotal), 0);
    let mut pos = 1usize;
    let mut out = vec![4u8];
    let u32_at = |b: &[u8], p: usize| u32::from_le_bytes(b[p..p + 4].try_into().unwrap()) as usize;
    let copy = |out: &mut Vec<u8>, pos: &mut usize, n: usize| {
        out.extend_from_slice(&meta[*pos..*pos + n]);
        *pos += n;
    };
    copy(&mut out, &mut pos, 16 + 4 + 8); // seed, NOTHING, COOLDOWN
    for _ in 0..2 {
        let n = if meta[pos] == 1 { 5 } else { 1 }; // DAILY, MAXWINS
        copy(&mut out, &mut pos, n);
    }
    copy(&mut out, &mut pos, 8); // DAYOFFSET
    let n = if meta[pos] == 1 { 17 } else { 1 }; // WINDOW
    copy(&mut out, &mut pos, n);
    copy(&mut out, &mut pos, 1); // SOLDOUT
    let n = if meta[pos] == 1 {
        5 + u32_at(meta, pos + 1)
    } else {
        1
    }; // fallback
    copy(&mut out, &mut pos, n);
    let n = 4 + u32_at(meta, pos); // stream
    copy(&mut out, &mut pos, n);
    copy(&mut out, &mut pos, 1 + 8 + 1); // stream_default, IDEMPOTENCY, paused
    copy(&mut out, &mut pos, 4 * 8 + 10 * 8); // counters but the last rejection counter
    pos += 8;
    copy(&mut out, &mut pos, 8); // drain seq
    let k = u32_at(meta, pos);
    copy(&mut out, &mut pos, 4);
    for _ in 0..k {
        let n = 4 + u32_at(meta, pos) + 8;
        copy(&mut out, &mut pos, n);
    }
    let k = u32_at(meta, pos); // names
    copy(&mut out, &mut pos, 4);
    for _ in 0..k {
        let n = 4 + u32_at(meta, pos);
        copy(&mut out, &mut pos, n);
    }
    for _ in 0..2 {
        // The prize table, then the retired prizes.
        let k = u32_at(meta, pos);
        copy(&mut out, &mut pos, 4);
        for _ in 0..k {
            let id = 4 + u32_at(meta, pos);
            copy(&mut out, &mut pos, id + 8);
            let stock = if meta[pos] == 1 { 9 } else { 1 };
            copy(&mut out, &mut pos, stock + 16 + 1);
            assert_eq!(&meta[pos..pos + 5], &[0, 0, 0, 0, 0], "AFTER 0, not CODES");
            pos += 5;
        }
    }
    // The rest up to the version 5 rules: GUARANTEE off, TOTAL INF, PERIOD DAY, no tier;
    // then version 6's VERIFIABLE, off.
    let end = meta.len() - 8;
    assert_eq!(&meta[end..], &[0, 0, 0, 0, 0, 0, 0, 0]);
    let rest = end - pos;
    copy(&mut out, &mut pos, rest);
    out
}

#[test]
fn a_version_4_save_still_loads() {
    // A campaign with what version 4 had: a window, a fallback, flow control, retired prizes,
    // a drain batch, users, winners, bans, REQIDs.
    let mut c = create(
        "PRIZE a 3 100 PRIZE b 1 INF PRIZE c 2 5 NOTHING 10 MAXWINS 3 DAILY 4 COOLDOWN 10 \
         WINDOW 1600000000000 1900000000000 SOLDOUT FALLBACK b RATE 1000 ADMIT 0.9 \
         CLIENTLIMIT 50 60000 PENALTY 1000 PACE a LINEAR",
    );
    let mut g = gen(60);
    for i in 0..300 {
        draw_on(
            &mut c,
            &format!("u{}", i % 90),
            Some(&format!("r{i}")),
            None,
            T0 + i * 50,
            &mut g,
        );
    }
    c.configure(&change("PRIZE b 1 INF PRIZE c 2 5 PRIZE d 4 9"))
        .unwrap();
    c.drain();
    let u = ukey(&c, "u1");
    c.ban(u, T0 + DAY_MS);
    assert!(c.winners().len() > 10 && c.reqs().len() > 10 && c.bans().len() == 1);
    assert!(!c.retired().is_empty() && !c.last_batch().is_empty());
    let meta = persist::encode_meta(&c);
    let v4 = downgrade_to_v4(&c, &meta);
    let mut back = persist::decode_meta(&v4).expect("a version 4 meta loads");
    for mut chunk in chunks(&c) {
        assert!(
            chunk[1] <= 6,
            "no chunk of a new kind for a campaign without the rules"
        );
        chunk[0] = 4;
        persist::load_chunk(&mut back, &chunk).expect("a version 4 chunk loads");
    }
    assert!(persist::fingerprint(&back) == persist::fingerprint(&c));
    assert!(!back.users().keeps_lifetime());
    assert_eq!(back.rules().period, Period::Day);
    assert!(back.rules().guarantee.is_none() && back.rules().total.is_none());
    // A version 4 save has no chunk of the new kinds: one is refused.
    let mut life = vec![4u8, 7, 1, 0, 0, 0];
    life.extend_from_slice(&7u128.to_le_bytes());
    life.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
    assert!(persist::load_chunk(&mut back, &life).is_err());
    life[0] = 5;
    assert!(
        persist::load_chunk(&mut back, &life).is_ok(),
        "ignored: no rule keeps the counts"
    );
    assert!(persist::fingerprint(&back) == persist::fingerprint(&c));
    // The loaded campaign takes the new rules.
    back.configure(&change("GUARANTEE 3 TOTAL 5 PERIOD WEEK"))
        .unwrap();
    assert!(back.users().keeps_lifetime());
    assert_eq!(back.user_view(u, T0).draws_total, 0);
}

/// A save cut short of its code chunks (a truncated AOF loads what it has) must not leave a
/// code prize whose stock counts codes its pool does not hold: a win would hand out no code.
/// The stock is the pool's, chunk by chunk.
#[test]
fn a_load_without_the_code_chunks_hands_out_no_codeless_win() {
    let c = every_chunk_kind();
    let all = chunks(&c);
    let code_chunks: Vec<&Vec<u8>> = all.iter().filter(|b| b[1] == 8).collect();
    let mut back = persist::decode_meta(&persist::encode_meta(&c)).unwrap();
    check_stock(&back, "g");
    for chunk in all.iter().filter(|b| b[1] != 8) {
        persist::load_chunk(&mut back, chunk).unwrap();
    }
    check_stock(&back, "g");
    let gonly = tier(&back, "gonly");
    let (r, e) = draw_on(&mut back, "late", None, gonly, T0 + 10, &mut gen(70));
    assert!(
        r.outcome != Outcome::Win || code_of(&e).is_some(),
        "a win of the code prize g with no code (stock {:?}, pool {})",
        back.prizes()[idx(&back, "g")].stock,
        back.count_codes(b"g").unwrap()
    );
    // The code chunks, then: the stock follows, and the copy is the original.
    let mut back = persist::decode_meta(&persist::encode_meta(&c)).unwrap();
    for chunk in all.iter().filter(|b| b[1] != 8) {
        persist::load_chunk(&mut back, chunk).unwrap();
    }
    for chunk in code_chunks {
        persist::load_chunk(&mut back, chunk).unwrap();
        check_stock(&back, "g");
    }
    assert!(persist::fingerprint(&back) == persist::fingerprint(&c));
    // A meta whose stock disagrees with the pool it is applied over (a Config effect): the
    // pool wins.
    let mut replica = rdb_round_trip(&c);
    let mut forged = c.clone();
    forged.prizes_mut()[idx(&c, "g")].stock = Some(1000);
    replica
        .apply(&Effect::Config(persist::encode_meta(&forged)))
        .unwrap();
    check_stock(&replica, "g");
    assert!(persist::fingerprint(&replica) == persist::fingerprint(&c));
}

// ---- 8. bytes per user ----------------------------------------------------------------------

/// `n` users drawing once each (scattered keys, as user ids hash); the users map's bytes.
fn users_bytes(opts: &str, n: u64) -> (usize, Campaign) {
    let mut c = create(opts);
    let mut g = gen(80);
    for i in 0..n {
        let u = c.user_key(&i.to_le_bytes());
        let plan = c.plan_draw_tier(u, None, None, None, T0, &mut g);
        match plan {
            Plan::Pass { prize, seq, .. } => {
                let id = prize.map(|_| StreamId { ms: T0 as u64, seq });
                c.commit_draw(u, None, T0, &plan, id);
            }
            p => panic!("{p:?}"),
        }
    }
    assert_eq!(c.users().len() as u64, n);
    assert_eq!(c.users().spilled(), 0);
    (c.users().mem_bytes(), c)
}

/// A campaign with none of the lifetime rules pays nothing for the new rules: its users
/// cost what a plain campaign's cost, byte for byte, whatever other new rule it has.
#[test]
fn campaigns_without_lifetime_rules_pay_nothing_per_user() {
    let n = if cfg!(debug_assertions) {
        200_000
    } else {
        1_000_000
    };
    let plain = "PRIZE a 1 INF NOTHING 9 MAXWINS INF";
    let (base, _) = users_bytes(plain, n);
    for extra in [
        "PERIOD WEEK",
        "PERIOD MONTH DAILY 5",
        "TIER vip PRIZE-WEIGHT a 5 TIER low NOTHING 100",
        "PRIZE g 1 CODES",
        "PRIZE g 1 CODES PERIOD MONTH TIER t NOTHING 1 PRIZE b 2 INF AFTER 1",
    ] {
        let (bytes, c) = users_bytes(&format!("{plain} {extra}"), n);
        assert!(!c.users().keeps_lifetime(), "{extra}");
        eprintln!(
            "{n} users, {extra}: {:.2} bytes a user (plain: {:.2})",
            bytes as f64 / n as f64,
            base as f64 / n as f64
        );
        assert_eq!(bytes, base, "{extra}");
    }
}

/// GUARANTEE or TOTAL: the wider record, under 40 bytes a user at a million users, a size
/// where the users map is at its sparsest.
#[test]
fn lifetime_counts_cost_under_40_bytes_a_user_at_a_million() {
    let n = 1_000_000;
    let plain = "PRIZE a 1 INF NOTHING 9 MAXWINS INF";
    let (base, _) = users_bytes(plain, n);
    eprintln!(
        "{n} users, plain: {:.2} bytes a user",
        base as f64 / n as f64
    );
    for extra in ["GUARANTEE 10", "TOTAL 100"] {
        let (bytes, c) = users_bytes(&format!("{plain} {extra}"), n);
        assert!(c.users().keeps_lifetime(), "{extra}");
        let per = bytes as f64 / n as f64;
        eprintln!("{n} users, {extra}: {per:.2} bytes a user");
        assert!(per < 40.0, "{extra}: {per:.2} bytes a user");
    }
}

/// The lifetime layout through campaigns with each rule that needs it, and the bytes a user
/// costs over a sweep of sizes (the users map's load varies with its size): every user's
/// counts kept, more bytes than a plain campaign, under 40 on average over the sweep.
#[test]
fn lifetime_counts_cost_about_38_bytes_a_user() {
    let n = 200_000;
    let plain = "PRIZE a 1 INF NOTHING 9 MAXWINS INF";
    let (base, _) = users_bytes(plain, n);
    for extra in [
        "GUARANTEE 10",
        "TOTAL 100",
        "GUARANTEE 5 PRIZES 1 a TOTAL 50 DAILY 3",
        "PRIZE b 1 INF AFTER 4",
    ] {
        let (bytes, c) = users_bytes(&format!("{plain} {extra}"), n);
        assert!(c.users().keeps_lifetime(), "{extra}");
        eprintln!(
            "{n} users, {extra}: {:.2} bytes a user (plain {:.2})",
            bytes as f64 / n as f64,
            base as f64 / n as f64
        );
        assert!(bytes > base, "{extra}: the counts take room");
        let k = c.user_key(&7u64.to_le_bytes());
        let v = c.user_view(k, T0);
        assert_eq!(v.draws_total, 1, "{extra}");
    }
    // The sweep, on the users maps alone (what a draw writes, without the draws).
    let (step, steps) = if cfg!(debug_assertions) {
        (100_000, 10)
    } else {
        (100_000, 20)
    };
    let day = lottery_engine::users::UserDay {
        last_draw_ms: T0,
        draws_today: 1,
        bonus: 0,
    };
    let life = lottery_engine::users::UserLife {
        draws: 1,
        since_win: 1,
    };
    let (mut a, mut b) = (
        lottery_engine::users::Users::new(),
        lottery_engine::users::Users::new(),
    );
    b.set_lifetime(true);
    let (mut sum, mut worst) = (0.0, (0.0, 0u128));
    let mut k = 0u128;
    for i in 1..=steps {
        let n = i * step;
        while k < n {
            k += 1;
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            a.commit_draw(key, day, None);
            b.commit_draw_life(key, day, None, life);
        }
        let (pa, pb) = (
            a.mem_bytes() as f64 / n as f64,
            b.mem_bytes() as f64 / n as f64,
        );
        eprintln!("{n} users: plain {pa:.2}, lifetime {pb:.2} bytes a user");
        sum += pb;
        if pb > worst.0 {
            worst = (pb, n);
        }
    }
    let mean = sum / steps as f64;
    eprintln!(
        "lifetime layout: mean {mean:.2}, worst {:.2} at {} users",
        worst.0, worst.1
    );
    assert!(mean < 40.0, "{mean}");
    assert_eq!(b.spilled(), 0);
}

// ---- more edges ---------------------------------------------------------------------------

/// The unused codes in order, and the codes ever handed out, as a plain model.
#[derive(Default)]
struct CodeModel {
    seq: u64,
    order: std::collections::BTreeMap<u64, Vec<u8>>,
    at: HashMap<Vec<u8>, u64>,
    used: HashSet<Vec<u8>>,
}

impl CodeModel {
    fn add(&mut self, code: &[u8]) -> bool {
        if self.used.contains(code) || self.at.contains_key(code) {
            return false;
        }
        self.seq += 1;
        self.order.insert(self.seq, code.to_vec());
        self.at.insert(code.to_vec(), self.seq);
        true
    }

    fn remove(&mut self, code: &[u8]) -> bool {
        match self.at.remove(code) {
            Some(s) => {
                self.order.remove(&s);
                true
            }
            None => false,
        }
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        let (_, code) = self.order.pop_first()?;
        self.at.remove(&code);
        self.used.insert(code.clone());
        Some(code)
    }
}

/// Thousands of codes of every length (many arena chunks), added, removed at random and
/// handed out by draws: always the model's oldest unused code, on the master, on a replica
/// and on a copy saved and loaded midway.
#[test]
fn code_pools_at_scale_match_a_model() {
    let opts = "PRIZE g 1 CODES MAXWINS INF";
    let mut c = create(opts);
    let mut replica = create(opts);
    let mut m = CodeModel::default();
    let mut g = gen(90);
    let random_code = |g: &mut Gen| -> Vec<u8> {
        let len = match g.random_range(0..10) {
            0 => 1,
            1 => 512,
            _ => g.random_range(1..64),
        };
        (0..len).map(|_| g.random_range(0..4u8) + b'a').collect()
    };
    let mut handed = 0;
    let mut loaded: Option<Campaign> = None;
    for step in 0..1500 {
        let e = match g.random_range(0..10) {
            0..=3 => {
                let k = g.random_range(1..200);
                let mut list: Vec<Vec<u8>> = (0..k).map(|_| random_code(&mut g)).collect();
                // Some handed-out or unused ones again.
                for _ in 0..g.random_range(0..5) {
                    if let Some(u) = m.used.iter().next() {
                        list.push(u.clone());
                    }
                    if let Some((_, u)) =
                        m.order.iter().nth(g.random_range(0..m.order.len().max(1)))
                    {
                        list.push(u.clone());
                    }
                }
                let want = list.iter().filter(|x| m.add(x)).count() as u64;
                let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
                let (n, e) = c.add_codes(b"g", &refs).unwrap();
                assert_eq!(n, want, "step {step}");
                e
            }
            4..=5 => {
                let mut list: Vec<Vec<u8>> = m
                    .order
                    .values()
                    .filter(|_| g.random_bool(0.05))
                    .cloned()
                    .collect();
                list.push(random_code(&mut g));
                let want = list.iter().filter(|x| m.remove(x)).count() as u64;
                let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
                let (n, e) = c.remove_codes(b"g", &refs).unwrap();
                assert_eq!(n, want, "step {step}");
                e
            }
            _ => {
                let want = m.take();
                let (r, e) = draw(&mut c, &format!("u{step}"), T0 + step, &mut g);
                assert_eq!(code_of(&e), want, "step {step}");
                assert_eq!(r.outcome == Outcome::Win, want.is_some());
                handed += usize::from(want.is_some());
                Some(e)
            }
        };
        if let Some(e) = e {
            let e = Effect::decode(&e.encode()).unwrap();
            replica.apply(&e).unwrap();
            if let Some(l) = loaded.as_mut() {
                l.apply(&e).unwrap();
            }
        }
        assert_eq!(
            c.count_codes(b"g").unwrap(),
            m.order.len() as u64,
            "step {step}"
        );
        check_stock(&c, "g");
        if step % 100 == 0 {
            if let Some(pool) = c.codes().get(c.prizes()[0].name) {
                assert!(
                    pool.iter_unused().eq(m.order.values().map(Vec::as_slice)),
                    "step {step}"
                );
                assert_eq!(pool.used(), m.used.len() as u64);
            }
            assert!(
                persist::fingerprint(&c) == persist::fingerprint(&replica),
                "step {step}"
            );
        }
        if step == 700 {
            loaded = Some(rdb_round_trip(&c));
        }
    }
    eprintln!("{handed} codes handed out, {} unused left", m.order.len());
    assert!(handed > 300, "{handed}");
    assert!(m.order.len() > 1000, "{}", m.order.len());
    let mut loaded = loaded.unwrap();
    assert!(persist::fingerprint(&c) == persist::fingerprint(&replica));
    assert!(persist::fingerprint(&c) == persist::fingerprint(&loaded));
    // Emptied by draws, the three hand out the same codes in the model's order.
    let mut i = 0;
    while let Some(want) = m.take() {
        for x in [&mut c, &mut replica, &mut loaded] {
            let (_, e) = draw(x, &format!("last{i}"), T0 + 10_000, &mut gen(1));
            assert_eq!(code_of(&e).as_ref(), Some(&want));
        }
        i += 1;
    }
    assert_eq!(c.count_codes(b"g").unwrap(), 0);
    assert!(persist::fingerprint(&c) == persist::fingerprint(&loaded));
}

/// `rejected_total` goes out with the batched statistics like every rejection counter.
#[test]
fn quota_total_refusals_batch_like_the_others() {
    let opts = "PRIZE a 1 INF NOTHING 1 MAXWINS INF TOTAL 1";
    let mut c = create(opts);
    let mut r = create(opts);
    let u = ukey(&c, "u");
    let (_, e) = draw(&mut c, "u", T0, &mut gen(3));
    r.apply(&e).unwrap();
    for i in 0..5 {
        let plan = c.plan_draw(u, None, T0 + 1 + i, &mut gen(3));
        assert!(matches!(plan, Plan::Reject(ref x, _) if x.outcome == Outcome::QuotaTotal));
        assert!(c.count_statistic(&plan));
    }
    assert_eq!(rejected(&c, Outcome::QuotaTotal), 5);
    // Not sent yet: a save holds what replicas hold.
    assert_eq!(
        c.sent_counters().rejected[Outcome::QuotaTotal.rejection_index().unwrap()],
        0
    );
    let e = Effect::decode(&c.stats_effect().encode()).unwrap();
    r.apply(&e).unwrap();
    assert_eq!(rejected(&r, Outcome::QuotaTotal), 5);
    assert!(persist::fingerprint(&c) == persist::fingerprint(&r));
}

#[test]
fn configure_checks_the_new_rules() {
    let mut c = create("PRIZE a 1 INF PRIZE b 1 INF");
    let err = |c: &mut Campaign, s: &str| c.configure(&change(s)).unwrap_err();
    assert_eq!(
        err(&mut c, "GUARANTEE 3 PRIZES 1 zz"),
        ConfigError::NotInTable("GUARANTEE", b"zz".to_vec())
    );
    assert_eq!(
        err(&mut c, "TIER t PRIZE-WEIGHT zz 1"),
        ConfigError::NotInTable("TIER", b"zz".to_vec())
    );
    assert_eq!(
        err(&mut c, "TIER t PRIZE-WEIGHT a 0 PRIZE-WEIGHT b 0 NOTHING 0"),
        ConfigError::TierAllZero(b"t".to_vec())
    );
    // A table that would leave a tier with nothing to draw is refused too.
    c.configure(&change("TIER t PRIZE-WEIGHT a 0 NOTHING 0"))
        .unwrap();
    assert_eq!(
        err(&mut c, "PRIZE a 1 INF PRIZE b 0 INF"),
        ConfigError::TierAllZero(b"t".to_vec())
    );
    let mut s = String::new();
    for i in 0..32 {
        s.push_str(&format!("TIER x{i} NOTHING 1 "));
    }
    // 32 tiers with t: one too many.
    assert_eq!(err(&mut c, &s), ConfigError::TooManyTiers);
    c.configure(&change("TIER t OFF")).unwrap();
    c.configure(&change(&s)).unwrap();
    assert_eq!(c.rules().tiers.len(), 32);
    assert_eq!(
        err(&mut c, "TIER one-more NOTHING 1"),
        ConfigError::TooManyTiers
    );
    // Replacing one is no new tier.
    c.configure(&change("TIER x0 NOTHING 5")).unwrap();
    // Nothing changed by a refused CONFIGURE.
    let before = persist::fingerprint(&c);
    assert!(c
        .configure(&change("TOTAL 3 GUARANTEE 2 PRIZES 1 zz"))
        .is_err());
    assert!(persist::fingerprint(&c) == before);
    assert!(!c.users().keeps_lifetime());
    // The parser's bounds.
    for bad in [
        "GUARANTEE 1",
        "GUARANTEE 1000001",
        "GUARANTEE 3 PRIZES 0",
        "GUARANTEE 3 PRIZES 2 a",
        "GUARANTEE 3 PRIZES 2 a a",
        "PRIZE a 1 1 AFTER 0",
        "PERIOD YEAR",
        "TOTAL -1",
        "TIER t PRIZE-WEIGHT a 1 PRIZE-WEIGHT a 2",
    ] {
        let a = args(bad);
        let o: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
        assert!(configure_args(&o).is_err(), "{bad}");
    }
}

/// GUARANTEE names prizes a later table drops: they are passed over, and count again when
/// they come back.
#[test]
fn guarantee_prizes_dropped_from_the_table_are_passed_over() {
    let mut c =
        create("PRIZE a 1 INF PRIZE b 3 INF NOTHING 100000 MAXWINS INF GUARANTEE 2 PRIZES 2 a b");
    lose(&mut c, "u", T0);
    c.configure(&change("PRIZE a 1 INF NOTHING 100000"))
        .unwrap();
    let a = idx(&c, "a");
    for x in 0..10 {
        let mut g = Counter::at(x);
        assert_eq!(planned(&mut c, "u", None, T0, &mut g), Some(a));
        assert_eq!(g.asked, vec![1]);
    }
    c.configure(&change("PRIZE b 3 INF PRIZE a 1 INF NOTHING 100000"))
        .unwrap();
    let mut counts = [0; 2];
    for x in 0..4 {
        let mut g = Counter::at(x);
        counts[planned(&mut c, "u", None, T0, &mut g).unwrap()] += 1;
        assert_eq!(g.asked, vec![4]);
    }
    assert_eq!(counts, [3, 1], "b 3, a 1");
}

/// Lifetime counts past 16 bits are kept whole (spilled), exact, on replicas and in saves: a
/// GUARANTEE and a TOTAL past 65,536 still hold.
#[test]
fn lifetime_counts_past_16_bits_stay_exact() {
    let opts = "PRIZE a 1 INF NOTHING 1000000 MAXWINS INF GUARANTEE 65537 TOTAL 70003";
    let mut c = create(opts);
    let mut r = create(opts);
    let u = ukey(&c, "u");
    // A chunk gives the user 70,000 draws, 65,535 of them since the last win.
    let mut chunk = vec![persist::ENCODING_VERSION, 7, 1, 0, 0, 0];
    chunk.extend_from_slice(&u.to_le_bytes());
    chunk.extend_from_slice(&70_000u32.to_le_bytes());
    chunk.extend_from_slice(&65_535u32.to_le_bytes());
    persist::load_chunk(&mut c, &chunk).unwrap();
    r.apply(&Effect::Chunk(chunk)).unwrap();
    assert_eq!(c.users().spilled(), 1);
    let v = c.user_view(u, T0);
    assert_eq!(
        (v.draws_total, v.draws_since_win, v.chances_left),
        (70_000, 65_535, 3)
    );
    // Draw 70,001 loses: 65,536 since a win (spilled again); draw 70,002 is guaranteed.
    let e = lose(&mut c, "u", T0);
    r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    let v = c.user_view(u, T0);
    assert_eq!((v.draws_total, v.draws_since_win), (70_001, 65_536));
    assert!(persist::fingerprint(&c) == persist::fingerprint(&r));
    assert!(persist::fingerprint(&rdb_round_trip(&c)) == persist::fingerprint(&c));
    let mut g = Counter::at(0);
    let (rep, e) = draw(&mut c, "u", T0 + 1, &mut g);
    assert_eq!(
        (rep.outcome, g.asked.clone()),
        (Outcome::Win, vec![1]),
        "guaranteed"
    );
    r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    let v = c.user_view(u, T0 + 1);
    assert_eq!((v.draws_total, v.draws_since_win), (70_002, 0));
    assert!(persist::fingerprint(&c) == persist::fingerprint(&r));
    assert!(persist::fingerprint(&rdb_round_trip(&c)) == persist::fingerprint(&c));
    assert_eq!(c.users().spilled(), 1, "70,002 draws do not fit in 16 bits");
    let (rep, e) = draw(&mut c, "u", T0 + 5, &mut gen(1));
    r.apply(&e).unwrap();
    assert!(matches!(rep.outcome, Outcome::Win | Outcome::Lose));
    assert_eq!(
        draw(&mut c, "u", T0 + 6, &mut gen(1)).0.outcome,
        Outcome::QuotaTotal
    );
    // Back under 16 bits (a load sets them): in place again.
    let mut chunk = vec![persist::ENCODING_VERSION, 7, 1, 0, 0, 0];
    chunk.extend_from_slice(&u.to_le_bytes());
    chunk.extend_from_slice(&[5, 0, 0, 0, 1, 0, 0, 0]);
    persist::load_chunk(&mut c, &chunk).unwrap();
    assert_eq!(c.users().spilled(), 0);
    assert_eq!(c.user_view(u, T0).draws_total, 5);
}

/// The odds docs/rules.md gives: with an ordinary win probability `p`, the first win comes at
/// draw `k < n` with probability `(1-p)^(k-1) p` and at draw `n` with `(1-p)^(n-1)`; the
/// win rate per draw is `p / (1 - (1-p)^n)`.
#[test]
fn the_guarantee_odds_are_the_documented_ones() {
    let n = 5u32;
    // p = 1/10.
    let mut c = create(&format!(
        "PRIZE a 1 INF NOTHING 9 MAXWINS INF GUARANTEE {n}"
    ));
    let mut g = gen(100);
    let draws = 200_000u64;
    let mut first_win_at = vec![0u64; n as usize + 1];
    let (mut since, mut wins) = (0usize, 0u64);
    for i in 0..draws {
        let (r, _) = draw(&mut c, "u", T0 + i as i64, &mut g);
        since += 1;
        if r.outcome == Outcome::Win {
            first_win_at[since] += 1;
            wins += 1;
            since = 0;
        }
        assert!(since < n as usize);
    }
    let p = 0.1f64;
    let rate = p / (1.0 - (1.0 - p).powi(n as i32));
    let got = wins as f64 / draws as f64;
    // The win count of a renewal process varies less than a binomial one: 5 binomial sd is
    // a loose bound.
    let sd = (rate * (1.0 - rate) / draws as f64).sqrt();
    assert!(
        (got - rate).abs() <= 5.0 * sd,
        "rate {got} against {rate} +- {sd}"
    );
    for (k, &count) in first_win_at.iter().enumerate().skip(1) {
        let pk = if k < n as usize {
            (1.0 - p).powi(k as i32 - 1) * p
        } else {
            (1.0 - p).powi(n as i32 - 1)
        };
        let mean = wins as f64 * pk;
        let sd = (wins as f64 * pk * (1.0 - pk)).sqrt();
        let x = count as f64;
        assert!(
            (x - mean).abs() <= 5.0 * sd,
            "k {k}: {x} against {mean:.0} +- {sd:.0}"
        );
    }
}

#[test]
fn pace_and_locked_fallbacks_do_not_qualify() {
    // Paced: at the window's start a has no allowance, so a guaranteed draw listing only a
    // is an ordinary one; later in the window it qualifies.
    let start = T0;
    let mut c = create(&format!(
        "PRIZE a 1 100 PRIZE b 1 INF NOTHING 1000000 MAXWINS INF GUARANTEE 2 PRIZES 1 a \
         WINDOW {start} {} PACE a LINEAR",
        start + 100 * HOUR
    ));
    lose(&mut c, "u", start + 1);
    let mut g = Counter::at(0);
    planned(&mut c, "u", None, start + 2, &mut g);
    assert_eq!(g.asked.len(), 2, "an ordinary pick: {:?}", g.asked);
    let mut g = Counter::at(0);
    let p = planned(&mut c, "u", None, start + 10 * HOUR, &mut g);
    assert_eq!((p, g.asked), (Some(idx(&c, "a")), vec![1]));
    // FALLBACK to a prize the user has not unlocked: a loss.
    let mut c = create(
        "PRIZE a 10 INF AFTER 5 PRIZE b 1 INF AFTER 3 NOTHING 1 SOLDOUT FALLBACK b MAXWINS INF",
    );
    let mut counts = [0u64; 3];
    for col in 0..3 {
        for r in 0..12 {
            let p = planned(&mut c, "fresh", None, T0, &mut Exact(vec![col, r], 0));
            counts[p.unwrap_or(2)] += 1;
        }
    }
    assert_eq!(
        counts,
        [0, 0, 36],
        "draw 1: a and b locked, the fallback too"
    );
    lose(&mut c, "v", T0);
    lose(&mut c, "v", T0);
    let mut counts = [0u64; 3];
    for col in 0..3 {
        for r in 0..12 {
            let p = planned(&mut c, "v", None, T0, &mut Exact(vec![col, r], 0));
            counts[p.unwrap_or(2)] += 1;
        }
    }
    assert_eq!(
        counts,
        [0, 33, 3],
        "draw 3: b unlocked, a's picks fall back to it"
    );
}

#[test]
fn a_month_period_crosses_the_year_in_its_zone() {
    let mut g = gen(24);
    // UTC+14: January 2027 starts at 2026-12-31 10:00 UTC.
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF DAILY 1 PERIOD MONTH DAYOFFSET 840");
    let jan = at(2026, 12, 31, 10, 0);
    draw(&mut c, "u", jan - 20 * DAY_MS, &mut g);
    let (r, _) = draw(&mut c, "u", jan - 1, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, 1));
    assert!(matches!(
        draw(&mut c, "u", jan, &mut g).0.outcome,
        Outcome::Win | Outcome::Lose
    ));
    let (r, _) = draw(&mut c, "u", jan + 1, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Quota, 31 * DAY_MS - 1));
}

#[test]
fn tiers_without_weights_save_and_load() {
    // The smallest tiers: no PRIZE-WEIGHT, no NOTHING, names of 1 to 4 bytes, one to 32 of
    // them. Each must load back from its meta record (RDB, DUMP) and as the first record of
    // an AOF rewrite.
    for names in [
        vec!["a"],
        vec!["vip"],
        vec!["a", "b"],
        vec!["t1", "\u{1F600}"],
    ]
    .into_iter()
    .chain(std::iter::once(
        (0..32).map(|i| ["x", "y", "z", "w"][i % 4]).collect(),
    )) {
        let mut opts = String::from("PRIZE p 1 5 NOTHING 1");
        let mut seen = HashSet::new();
        for (i, n) in names.iter().enumerate() {
            let n = if seen.insert(*n) {
                n.to_string()
            } else {
                format!("{n}{i}")
            };
            opts.push_str(&format!(" TIER {n}"));
        }
        let c = create(&opts);
        let meta = persist::encode_meta(&c);
        let back = persist::decode_meta(&meta)
            .unwrap_or_else(|e| panic!("{opts}: the meta record does not load: {e:?}"));
        assert_eq!(back.rules().tiers.len(), c.rules().tiers.len(), "{opts}");
        let e = Effect::decode(&Effect::Config(meta).encode()).unwrap();
        assert!(matches!(e, Effect::Config(_)));
        assert_eq!(
            persist::fingerprint(&back).0,
            persist::fingerprint(&c).0,
            "{opts}"
        );
    }
}

/// The tiers' PRIZE-WEIGHT entries are bounded over all tiers (the meta record a DUMP holds
/// stays under Redis's bulk limit), a removal in a command comes before its definitions (a
/// full set of tiers can swap one), and the loader refuses past the bound.
#[test]
fn tier_weights_are_bounded_and_removals_come_first() {
    use lottery_engine::configure::ConfigError;
    use lottery_engine::limits::{MAX_PRIZES, MAX_TIERS, MAX_TIER_WEIGHTS};
    let mut opts = String::from("NOTHING 1");
    for i in 0..MAX_PRIZES {
        opts += &format!(" PRIZE p{i} 1 INF");
    }
    let mut c = create(&opts);
    let full_tier = |name: &str| {
        let mut t = format!("TIER {name}");
        for i in 0..MAX_PRIZES {
            t += &format!(" PRIZE-WEIGHT p{i} 2");
        }
        t
    };
    let per = MAX_TIER_WEIGHTS / MAX_PRIZES;
    for k in 0..per {
        c.configure(&change(&full_tier(&format!("t{k}")))).unwrap();
    }
    assert_eq!(
        c.configure(&change(&full_tier("one-more"))),
        Err(ConfigError::TooManyTierWeights)
    );
    // Dropping one and defining another in the same command, in either order.
    c.configure(&change(&format!("{} TIER t0 OFF", full_tier("new"))))
        .unwrap();
    let has = |c: &Campaign, t: &str| c.rules().tier_index(t.as_bytes()).is_some();
    assert!(!has(&c, "t0") && has(&c, "new"));
    let meta = lottery_engine::persist::encode_meta(&c);
    assert!(meta.len() < 250 << 20);
    let back = lottery_engine::persist::decode_meta(&meta).unwrap();
    assert_eq!(back.rules().tiers.len(), per);
    // A full set of tiers (without weights): one out, one in, in one command.
    let mut d = create("PRIZE a 1 INF");
    for k in 0..MAX_TIERS {
        d.configure(&change(&format!("TIER t{k}"))).unwrap();
    }
    assert_eq!(
        d.configure(&change("TIER x")),
        Err(ConfigError::TooManyTiers)
    );
    d.configure(&change("TIER x TIER t3 OFF")).unwrap();
    assert!(has(&d, "x") && !has(&d, "t3"));
}
