//! VERIFIABLE draws: the pick is the one anyone recomputes from the seed, the key and the
//! draw number (x from the words, prefix sums over the table in force); the rules
//! (GUARANTEE, SOLDOUT LOSE/REDRAW/FALLBACK) give their documented outcomes from the next
//! words; ADMIT's coin alone uses the module's generator; a plan changes nothing; epochs,
//! reveals and the log reach a replica through effects.

use lottery_engine::alias::Uniform;
use lottery_engine::apply::created_campaign;
use lottery_engine::campaign::*;
use lottery_engine::draw::{DrawKey, PickRule, VerifiedPick};
use lottery_engine::effect::Effect;
use lottery_engine::parse::configure_args;
use lottery_engine::persist;
use lottery_engine::verify::{self, SeedLog, Words};

const T0: i64 = 1_700_000_000_000;
const KEY: &[u8] = b"camp\x00\xff{t}";
const SEED: [u8; 32] = [42; 32];

fn args(s: &str) -> Vec<Vec<u8>> {
    s.split_whitespace()
        .map(|a| a.as_bytes().to_vec())
        .collect()
}

fn change(s: &str) -> ConfigChange {
    let a = args(s);
    let opts: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
    configure_args(&opts).unwrap_or_else(|e| panic!("{e}"))
}

/// A VERIFIABLE campaign with these options, in its first epoch with `SEED`.
fn create(s: &str) -> Campaign {
    let ch = change(&format!("{s} VERIFIABLE"));
    let mut c = Campaign::create(&ch, (1, 2), b"{t}:wins".to_vec()).unwrap();
    assert!(c.starts_verifiable(&ch));
    c.start_epoch(SEED, ch.verifiable.flatten());
    c
}

/// A generator that must not be used.
struct Unused;

impl Uniform for Unused {
    fn below(&mut self, _: u64) -> u64 {
        panic!("a verifiable pick used the module's generator")
    }
}

fn draw_with<U: Uniform>(
    c: &mut Campaign,
    user: &[u8],
    tier: Option<usize>,
    now: i64,
    rng: &mut U,
) -> (Plan, Option<VerifiedPick>) {
    let u = c.user_key(user);
    let dk = DrawKey {
        key: KEY,
        fresh_seed: None,
    };
    let (plan, picked) = c.plan_draw_verified(u, None, None, tier, now, rng, dk);
    if let Plan::Pass { prize, seq, .. } = plan {
        let w = prize.map(|_| StreamId {
            ms: now as u64,
            seq,
        });
        c.commit_draw(u, None, now, &plan, w);
    }
    (plan, picked)
}

fn draw(c: &mut Campaign, user: &[u8]) -> (Option<usize>, VerifiedPick) {
    match draw_with(c, user, None, T0, &mut Unused) {
        (Plan::Pass { prize, .. }, Some(p)) => (prize, p),
        other => panic!("not a verified pass: {other:?}"),
    }
}

/// The pick recomputed from the construction alone.
fn recompute(seed: &[u8; 32], weights: &[u32], s: u64) -> usize {
    let prefix = verify::prefix_sums(weights);
    let mut w = Words::new(seed, KEY, s);
    verify::prefix_pick(&prefix, w.below(*prefix.last().unwrap())).unwrap()
}

#[test]
fn the_pick_is_recomputed_from_the_words() {
    let mut c = create("PRIZE a 3 INF PRIZE b 0 INF PRIZE c 5 INF NOTHING 9 MAXWINS INF");
    let weights = [3, 0, 5, 9];
    let mut seen = [0u32; 4];
    for i in 0..400 {
        let (prize, p) = draw(&mut c, format!("u{i}").as_bytes());
        assert_eq!(p.draw, i + 1);
        assert_eq!(p.entry, recompute(&SEED, &weights, p.draw));
        assert_eq!(p.rule, None);
        assert_eq!(prize, (p.entry < 3).then_some(p.entry));
        seen[p.entry] += 1;
    }
    // A zero weight is never picked; the others are.
    assert_eq!(seen[1], 0);
    assert!(seen[0] > 0 && seen[2] > 0 && seen[3] > 0, "{seen:?}");
    // The first draw publishes the table; later draws on the same table do not.
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF");
    assert!(draw(&mut c, b"x").1.publish);
    c.note_published(None);
    assert!(!draw(&mut c, b"y").1.publish);
    assert_eq!(c.table_weights_in_force(None), &[1, 1]);
    // A new table publishes again.
    c.configure(&change("PRIZE a 2 INF")).unwrap();
    assert!(draw(&mut c, b"z").1.publish);
}

#[test]
fn a_tier_draw_uses_the_tier_table_and_publishes_it_by_name() {
    let mut c = create(
        "PRIZE a 1 INF PRIZE b 1 INF NOTHING 0 MAXWINS INF TIER vip PRIZE-WEIGHT b 7 NOTHING 2",
    );
    c.note_published(None);
    let (plan, p) = draw_with(&mut c, b"u", Some(0), T0, &mut Unused);
    let p = p.unwrap();
    assert!(matches!(plan, Plan::Pass { .. }));
    assert_eq!(p.tier, Some(0));
    assert!(p.publish, "the tier's table was never published");
    assert_eq!(c.table_weights_in_force(Some(0)), &[1, 7, 2]);
    assert_eq!(p.entry, recompute(&SEED, &[1, 7, 2], p.draw));
    c.note_published(Some(0));
    let (_, p) = draw_with(&mut c, b"v", Some(0), T0, &mut Unused);
    assert!(!p.unwrap().publish);
}

#[test]
fn guarantee_picks_from_the_next_words_after_x() {
    // NOTHING weighs a million times the prize: x is NOTHING, the second draw is guaranteed.
    let mut c = create("PRIZE a 1 INF NOTHING 1000000 GUARANTEE 2 MAXWINS INF");
    let (prize, p) = draw(&mut c, b"u");
    assert_eq!((prize, p.entry, p.rule), (None, 1, None));
    let (prize, p) = draw(&mut c, b"u");
    assert_eq!(p.entry, recompute(&SEED, &[1, 1_000_000], p.draw));
    assert_eq!(p.entry, 1);
    assert_eq!((prize, p.rule), (Some(0), Some(PickRule::Guarantee)));
}

#[test]
fn soldout_rules_give_their_documented_outcomes() {
    // LOSE: the sold-out prize's pick is a loss.
    let mut c = create("PRIZE a 1000000 0 PRIZE b 1 INF MAXWINS INF");
    let (prize, p) = draw(&mut c, b"u");
    assert_eq!((prize, p.entry, p.rule), (None, 0, Some(PickRule::Soldout)));
    // FALLBACK: the fallback prize.
    let mut c = create("PRIZE a 1000000 0 PRIZE b 1 INF SOLDOUT FALLBACK b MAXWINS INF");
    let (prize, p) = draw(&mut c, b"u");
    assert_eq!(
        (prize, p.entry, p.rule),
        (Some(1), 0, Some(PickRule::Fallback))
    );
    // REDRAW past a prize locked by AFTER: the redraw's picks come from the next words and
    // never give the locked prize.
    let mut c =
        create("PRIZE a 1000000 INF AFTER 3 PRIZE b 1 INF NOTHING 1 SOLDOUT REDRAW MAXWINS INF");
    let (prize, p) = draw(&mut c, b"u");
    assert_eq!((p.entry, p.rule), (0, Some(PickRule::Redraw)));
    assert_ne!(prize, Some(0));
    // REDRAW's table holds a sold-out prize at weight 0: never picked, no rule.
    let mut c = create("PRIZE a 1000000 0 PRIZE b 1 INF NOTHING 1 SOLDOUT REDRAW MAXWINS INF");
    let (prize, p) = draw(&mut c, b"u");
    assert_eq!(c.table_weights_in_force(None), &[0, 1, 1]);
    assert_eq!(p.rule, None);
    assert_eq!(prize, (p.entry == 1).then_some(1));
}

/// Counts the generator's calls.
struct Counted(u64);

impl Uniform for Counted {
    fn below(&mut self, n: u64) -> u64 {
        self.0 += 1;
        let _ = n;
        0
    }
}

#[test]
fn admit_alone_uses_the_generator_and_a_plan_changes_nothing() {
    let mut c = create("PRIZE a 1 INF NOTHING 1 ADMIT 0.5 0.5 MAXWINS INF");
    let before = persist::fingerprint(&c);
    let u = c.user_key(b"u");
    let dk = DrawKey {
        key: KEY,
        fresh_seed: None,
    };
    let mut g = Counted(0);
    let (plan, p) = c.plan_draw_verified(u, None, None, None, T0, &mut g, dk);
    assert_eq!(g.0, 1, "ADMIT's coin, and nothing else");
    assert!(matches!(plan, Plan::Pass { .. }));
    assert!(p.is_some());
    assert_eq!(persist::fingerprint(&c), before);
    // The same plan again: the same pick (the words depend on the draw number only).
    let (plan2, p2) = c.plan_draw_verified(u, None, None, None, T0, &mut Counted(0), dk);
    assert_eq!((plan, p), (plan2, p2));
    // A refused draw has no verified pick.
    let mut c = create("PRIZE a 1 INF WINDOW 1 2");
    let (plan, p) = c.plan_draw_verified(u, None, None, None, T0, &mut Unused, dk);
    assert!(matches!(plan, Plan::Reject(..)));
    assert_eq!(p, None);
    // A campaign that is not VERIFIABLE draws with the generator, as before.
    let mut c = Campaign::create(&change("PRIZE a 1 INF"), (1, 2), b"w".to_vec()).unwrap();
    let mut g = Counted(0);
    let (_, p) = c.plan_draw_verified(u, None, None, None, T0, &mut g, dk);
    assert_eq!(p, None);
    assert!(g.0 > 0);
}

#[test]
fn a_revealed_seed_never_decides_a_draw() {
    let mut c = create("PRIZE a 1 INF NOTHING 5 MAXWINS INF WINDOW 1 2000000000000");
    draw(&mut c, b"u");
    assert!(c.reveal_seed().is_some());
    assert!(c.reveal_seed().is_none(), "a second reveal changes nothing");
    let fresh = [9u8; 32];
    let u = c.user_key(b"v");
    let dk = DrawKey {
        key: KEY,
        fresh_seed: Some(&fresh),
    };
    let (plan, p) = c.plan_draw_verified(u, None, None, None, T0, &mut Unused, dk);
    let p = p.unwrap();
    assert!(p.new_epoch);
    assert_eq!(p.draw, 2);
    assert_eq!(p.entry, recompute(&fresh, &[1, 5], 2));
    let Effect::Seed(v) = c.start_epoch(fresh, None) else {
        panic!()
    };
    assert_eq!(
        (v.epoch, v.from_draw, v.revealed, v.log),
        (2, 2, false, SeedLog::Wins)
    );
    c.commit_draw(u, None, T0, &plan, None);
}

#[test]
fn epochs_reach_a_replica_and_verifiable_cannot_be_turned_off() {
    let a = args("PRIZE a 1 INF NOTHING 1");
    let ch = {
        let opts: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
        configure_args(&opts).unwrap()
    };
    let mut m = Campaign::create(&ch, (1, 2), b"w".to_vec()).unwrap();
    let mut r = created_campaign(&Effect::Configure {
        created: Some(((1, 2), b"w".to_vec())),
        args: a,
    })
    .unwrap()
    .unwrap();
    let on = args("VERIFIABLE LOG ALL");
    let ch = change("VERIFIABLE LOG ALL");
    assert!(m.starts_verifiable(&ch));
    m.configure(&ch).unwrap();
    let e1 = Effect::Configure {
        created: None,
        args: on,
    };
    let e2 = m.start_epoch(SEED, ch.verifiable.flatten());
    for e in [e1, e2] {
        r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    }
    assert_eq!(r.verifiable(), m.verifiable());
    assert_eq!(m.verifiable().unwrap().log, SeedLog::All);
    // VERIFIABLE again changes nothing; a LOG changes the log alone; the epoch stays.
    let before = persist::fingerprint(&m);
    m.configure(&change("VERIFIABLE")).unwrap();
    assert_eq!(m.verifiable().unwrap().log, SeedLog::All);
    assert_eq!(persist::fingerprint(&m), before);
    let ch = change("VERIFIABLE LOG WINS");
    assert!(!m.starts_verifiable(&ch));
    m.configure(&ch).unwrap();
    r.apply(&Effect::Configure {
        created: None,
        args: args("VERIFIABLE LOG WINS"),
    })
    .unwrap();
    let v = *m.verifiable().unwrap();
    assert_eq!((v.log, v.epoch, v.seed), (SeedLog::Wins, 1, SEED));
    assert_eq!(r.verifiable(), m.verifiable());
    let e = m.reveal_seed().unwrap();
    r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    assert_eq!(persist::fingerprint(&r), persist::fingerprint(&m));
    // No VERIFIABLE OFF, no LOG of another kind, no VERIFIABLE twice.
    for bad in [
        "VERIFIABLE OFF",
        "VERIFIABLE off",
        "VERIFIABLE LOG NONE",
        "VERIFIABLE LOG",
        "VERIFIABLE VERIFIABLE",
    ] {
        let a = args(bad);
        let opts: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
        assert!(configure_args(&opts).is_err(), "{bad}");
    }
    // REVEAL needs a WINDOW that has ended.
    assert!(!m.may_reveal(T0));
    m.configure(&change("WINDOW 1 5")).unwrap();
    assert!(m.may_reveal(5) && !m.may_reveal(4));
}

/// The fuzz targets' checks over mutations of the VERIFIABLE seeds (arguments with tiers,
/// rules and reveals; the version 6 meta record and effects): nothing panics.
#[test]
fn mutated_verifiable_inputs_never_panic() {
    use lottery_engine::fuzz_checks::{decode_payload, parse_args};
    use rand::{Rng, SeedableRng};
    let mut g = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(6);
    let args = b"PRIZE\0a\x001\x005\0PRIZE\0b\x002\0INF\0NOTHING\x000\0GUARANTEE\x002\0SOLDOUT\0REDRAW\0PRIZE\0c\x009\x000\0AFTER\x003\0TIER\0t\0PRIZE-WEIGHT\0a\x004\0VERIFIABLE\0LOG\0ALL".to_vec();
    parse_args(&args);
    let mut v = Campaign::create(
        &change("PRIZE a 1 5 NOTHING 1 VERIFIABLE"),
        (1, 2),
        b"w".to_vec(),
    )
    .unwrap();
    v.start_epoch(SEED, None);
    let meta = [vec![0u8], persist::encode_meta(&v)].concat();
    let eff = [vec![2u8], v.start_epoch([3; 32], None).encode()].concat();
    for _ in 0..3000 {
        for base in [&args, &meta, &eff] {
            let mut m = base.clone();
            for _ in 0..g.random_range(1..4) {
                let i = g.random_range(0..m.len());
                m[i] = g.random();
            }
            if base == &args {
                parse_args(&m);
            } else {
                decode_payload(&m);
            }
        }
    }
}

/// The published-table notes hold one entry per tier at most (plus the base table), however
/// many tiers come and go.
#[test]
fn published_notes_stay_bounded() {
    let mut c = create("PRIZE a 1 INF NOTHING 1 MAXWINS INF");
    let mut early = 0;
    for i in 0..200 {
        if i == 20 {
            early = c.mem_bytes();
        }
        c.configure(&change(&format!(
            "TIER t{i} NOTHING 2 TIER t{} OFF",
            i + 1000
        )))
        .unwrap();
        if i > 0 {
            c.configure(&change(&format!("TIER t{} OFF", i - 1)))
                .unwrap();
        }
        let (_, p) = draw_with(&mut c, b"u", Some(0), T0, &mut Unused);
        let p = p.unwrap();
        assert!(p.publish);
        c.note_published(p.tier);
        c.note_published(None);
    }
    // Forgetting nothing would hold 180 more names (over 7 KB).
    let late = c.mem_bytes();
    assert!(late <= early + 1024, "{early} -> {late}");
}

/// Under SOLDOUT REDRAW every sell-out (and every PACE flip) republishes the whole table, so a
/// VERIFIABLE campaign with REDRAW is held to `MAX_VERIFIABLE_REDRAW_PRIZES` prizes: refused
/// at creation, when it becomes VERIFIABLE, when it turns to REDRAW and when its table grows,
/// nothing changed; LOSE and FALLBACK (whose tables do not change as prizes sell) keep the
/// full table size, and so does a campaign that is not VERIFIABLE.
#[test]
fn verifiable_redraw_tables_are_bounded() {
    use lottery_engine::configure::ConfigError;
    use lottery_engine::limits::{MAX_PRIZES, MAX_VERIFIABLE_REDRAW_PRIZES};
    let table = |n: usize| -> String { (0..n).map(|i| format!("PRIZE p{i} 1 1 ")).collect() };
    let max = MAX_VERIFIABLE_REDRAW_PRIZES;
    let ch = |s: &str| change(s);
    // At creation.
    let ok = ch(&format!("{} SOLDOUT REDRAW VERIFIABLE", table(max)));
    assert!(Campaign::create(&ok, (1, 2), b"w".to_vec()).is_ok());
    let big = ch(&format!("{} SOLDOUT REDRAW VERIFIABLE", table(max + 1)));
    let Err(e) = Campaign::create(&big, (1, 2), b"w".to_vec()) else {
        panic!("created");
    };
    assert_eq!(e, ConfigError::VerifiableRedrawTooLarge);
    assert!(e.to_string().contains(&max.to_string()), "{e}");
    // Without REDRAW, or without VERIFIABLE: the full table.
    for s in [
        "SOLDOUT LOSE VERIFIABLE",
        "SOLDOUT FALLBACK p0 VERIFIABLE",
        "SOLDOUT REDRAW",
    ] {
        let c = ch(&format!("{} {s}", table(MAX_PRIZES)));
        assert!(Campaign::create(&c, (1, 2), b"w".to_vec()).is_ok(), "{s}");
    }
    // A large REDRAW campaign becoming VERIFIABLE; a large VERIFIABLE one turning to REDRAW;
    // a VERIFIABLE REDRAW one growing past the limit: refused, unchanged.
    let mut c = Campaign::create(
        &ch(&format!("{} SOLDOUT REDRAW", table(max + 1))),
        (1, 2),
        b"w".to_vec(),
    )
    .unwrap();
    let n = c.prizes().len();
    assert_eq!(
        c.configure(&ch("VERIFIABLE")),
        Err(ConfigError::VerifiableRedrawTooLarge)
    );
    assert!(c.verifiable().is_none() && c.prizes().len() == n);
    let mut c = create(&table(max + 1));
    assert_eq!(
        c.configure(&ch("SOLDOUT REDRAW")),
        Err(ConfigError::VerifiableRedrawTooLarge)
    );
    assert_eq!(c.rules().soldout, SoldOut::Lose);
    let mut c = create(&format!("{} SOLDOUT REDRAW", table(max)));
    assert_eq!(
        c.configure(&ch(&table(max + 1))),
        Err(ConfigError::VerifiableRedrawTooLarge)
    );
    assert_eq!(c.prizes().len(), max);
    assert!(c.configure(&ch("SOLDOUT LOSE")).is_ok());
    assert!(c.configure(&ch(&table(max + 1))).is_ok());
}
