//! Statistics counted without an effect (`count_statistic`), sent later as one `Stats` effect,
//! or taken back (`forget_unsent_statistics`); and the version 4 draw effect that carries its
//! wins stream entry.

use lottery_engine::campaign::*;
use lottery_engine::effect::{entry_layout, DrawEffect, Effect, EntryField, WinEntry};
use lottery_engine::parse::configure_args;
use lottery_engine::persist;

const T0: i64 = 1_700_000_000_000;

fn rng() -> rand_xoshiro::Xoshiro256PlusPlus {
    use rand::SeedableRng;
    rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11)
}

fn campaign(opts: &str) -> Campaign {
    let v: Vec<&[u8]> = opts.split(' ').map(str::as_bytes).collect();
    Campaign::create(&configure_args(&v).unwrap(), (1, 2), b"{c}:wins".to_vec()).unwrap()
}

/// One draw as the command layer does it with batching on: a refusal that only counts is
/// counted by `count_statistic` (no effect); anything else gets its effect.
fn draw(c: &mut Campaign, user: &str, reqid: Option<&str>, now: i64) -> Option<Effect> {
    let u = c.user_key(user.as_bytes());
    let rk = reqid.map(|r| c.request_key(u, r.as_bytes()));
    let plan = c.plan_draw_from(u, rk, None, now, &mut rng());
    match plan {
        Plan::Replay(_) | Plan::Reject(..) if c.count_statistic(&plan) => None,
        Plan::Replay(_) | Plan::Reject(..) => Some(c.count(&plan, now)),
        Plan::Pass { prize, seq, .. } => {
            let id = prize.map(|_| StreamId {
                ms: now as u64,
                seq,
            });
            Some(c.commit_draw(u, rk, now, &plan, id).1)
        }
    }
}

#[test]
fn refusals_count_without_effects_and_one_stats_effect_brings_a_copy_level() {
    let mut m = campaign("PRIZE p 1 INF NOTHING 1 COOLDOWN 60000 MAXWINS INF");
    let mut r = m.clone();
    let mut effects = Vec::new();
    for i in 0..50 {
        effects.extend(draw(&mut m, &format!("u{i}"), Some(&format!("q{i}")), T0));
    }
    for e in &effects {
        r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
    }
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    // 500 repeat clicks (COOLDOWN) and 50 retries (replays): no effect at all
    for k in 0..500 {
        assert!(draw(&mut m, &format!("u{}", k % 50), None, T0 + 1).is_none());
    }
    for i in 0..50 {
        assert!(draw(&mut m, &format!("u{i}"), Some(&format!("q{i}")), T0 + 2).is_none());
    }
    let cooldown = Outcome::Cooldown.rejection_index().unwrap();
    assert_eq!(m.counters().rejected[cooldown], 500);
    assert_eq!(m.counters().replays, 50);
    assert_ne!(m.counters(), r.counters());
    let stats = m.stats_effect();
    assert_eq!(m.host.unsent, [0; REJECTION_COUNT + 1]);
    r.apply(&Effect::decode(&stats.encode()).unwrap()).unwrap();
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    assert_eq!(r.counters(), m.counters());
}

#[test]
fn a_refusal_that_changes_flow_state_is_never_only_counted() {
    // ADMIT: a user turned away is remembered, so the refusal needs an effect
    let mut m = campaign("PRIZE p 1 INF ADMIT 0.000001 MAXWINS INF");
    let mut refused = 0;
    for i in 0..20 {
        let e = draw(&mut m, &format!("b{i}"), None, T0);
        if let Some(Effect::Count { .. }) = e {
            refused += 1;
        }
    }
    assert!(refused > 0);
}

#[test]
fn saves_copies_and_digests_hold_the_counters_replicas_hold() {
    let mut m = campaign("PRIZE p 1 INF NOTHING 1 COOLDOWN 60000 MAXWINS INF");
    let mut r = m.clone();
    for i in 0..5 {
        if let Some(e) = draw(&mut m, &format!("u{i}"), Some("x"), T0) {
            r.apply(&e).unwrap();
        }
    }
    for i in 0..5 {
        assert!(draw(&mut m, &format!("u{i}"), None, T0 + 5).is_none());
        assert!(draw(&mut m, &format!("u{i}"), Some("x"), T0 + 5).is_none());
    }
    // the live counters have the refusals; what is saved and digested does not, yet
    assert_ne!(m.counters(), r.counters());
    assert_eq!(&m.sent_counters(), r.counters());
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    assert_eq!(persist::encode_meta(&m), persist::encode_meta(&r));
    let copy = m.clone_as_sent();
    assert_eq!(copy.counters(), r.counters());
    assert_eq!(copy.host, HostNotes::default());
    // once sent, everything holds them
    let stats = m.stats_effect();
    r.apply(&stats).unwrap();
    assert_eq!(&m.sent_counters(), m.counters());
    assert_eq!(persist::encode_meta(&m), persist::encode_meta(&r));
    assert_eq!(m.counters().replays, 5);
}

#[test]
fn unsent_counts_are_taken_back_exactly() {
    let mut m = campaign("PRIZE p 1 INF NOTHING 1 COOLDOWN 60000 MAXWINS INF");
    let mut r = m.clone();
    for i in 0..10 {
        if let Some(e) = draw(&mut m, &format!("u{i}"), Some("x"), T0) {
            r.apply(&e).unwrap();
        }
    }
    for i in 0..10 {
        assert!(draw(&mut m, &format!("u{i}"), None, T0 + 5).is_none());
        assert!(draw(&mut m, &format!("u{i}"), Some("x"), T0 + 5).is_none());
    }
    let before = *m.counters();
    m.forget_unsent_statistics();
    assert_eq!(m.counters(), r.counters());
    assert_ne!(&before, m.counters());
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    // a Count effect sends its counter's absolute value: that counter is no longer unsent
    let mut m = campaign("PRIZE p 1 INF NOTHING 1 COOLDOWN 60000 MAXWINS INF");
    draw(&mut m, "u", None, T0);
    assert!(draw(&mut m, "u", None, T0 + 1).is_none());
    let u = m.user_key(b"u");
    let plan = m.plan_draw_from(u, None, None, T0 + 2, &mut rng());
    let _ = m.count(&plan, T0 + 2);
    let cooldown = Outcome::Cooldown.rejection_index().unwrap();
    assert_eq!(m.host.unsent[cooldown], 0);
    m.forget_unsent_statistics();
    assert_eq!(m.counters().rejected[cooldown], 2);
    // applying absolute counters from elsewhere clears a copy's own unsent counts
    let mut a = campaign("PRIZE p 1 INF NOTHING 1 COOLDOWN 60000 MAXWINS INF");
    draw(&mut a, "u", None, T0);
    assert!(draw(&mut a, "u", None, T0 + 1).is_none());
    let mut rejected = [0; REJECTION_COUNT];
    rejected[cooldown] = 7;
    a.apply(&Effect::Stats {
        replays: 3,
        rejected,
    })
    .unwrap();
    a.forget_unsent_statistics();
    assert_eq!(
        (a.counters().replays, a.counters().rejected[cooldown]),
        (3, 7)
    );
}

#[test]
fn draw_effect_v4_carries_the_entry_and_older_versions_still_decode() {
    let mut m = campaign("PRIZE p 1 INF MAXWINS INF");
    let e = draw(&mut m, "u", None, T0).unwrap();
    let Effect::Draw(mut d) = e else {
        panic!("a win")
    };
    for entry in [
        WinEntry {
            ms: T0 as u64,
            seq: 0,
            draw: 1,
            reqid: false,
            ts: None,
        },
        WinEntry {
            ms: u64::MAX,
            seq: u64::MAX,
            draw: u64::MAX,
            reqid: true,
            ts: Some(i64::MIN),
        },
    ] {
        d.entry = Some(entry);
        let e = Effect::Draw(d.clone());
        let bytes = e.encode();
        assert_eq!(Effect::decode(&bytes).unwrap(), e);
        for cut in 0..bytes.len() {
            assert!(Effect::decode(&bytes[..cut]).is_err());
        }
    }
    // a version 4 draw effect (no lifetime counts, no code: two bytes less before the entry)
    // and a version 3 one (no entry byte either) decode with none of them
    d.entry = None;
    let mut v5 = Effect::Draw(d.clone()).encode();
    assert_eq!(v5.split_off(v5.len() - 3), vec![0, 0, 0]);
    let mut v4 = v5.clone();
    v4.push(0);
    v4[0] = 4;
    assert_eq!(Effect::decode(&v4).unwrap(), Effect::Draw(d.clone()));
    let mut v3 = v5;
    v3[0] = 3;
    let back = Effect::decode(&v3).unwrap();
    let Effect::Draw(b) = back else { panic!() };
    assert_eq!(*b, DrawEffect { entry: None, ..*d });
    // Stats is version 4 only; too many counters are refused
    let s = Effect::Stats {
        replays: 1,
        rejected: [2; REJECTION_COUNT],
    };
    let mut bytes = s.encode();
    assert_eq!(Effect::decode(&bytes).unwrap(), s);
    bytes[0] = 3;
    assert!(Effect::decode(&bytes).is_err());
    bytes[0] = 4;
    bytes[10] = REJECTION_COUNT as u8 + 1;
    assert!(Effect::decode(&bytes).is_err());
}

#[test]
fn entry_layout_orders_the_fields() {
    let names = |r, t| {
        let (f, n) = entry_layout(false, r, t);
        f[..n].iter().map(|(name, _)| *name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(false, false),
        [&b"user"[..], b"prize", b"draw"].to_vec()
    );
    assert_eq!(
        names(true, false),
        [&b"user"[..], b"prize", b"draw", b"reqid"].to_vec()
    );
    assert_eq!(
        names(false, true),
        [&b"user"[..], b"prize", b"draw", b"ts"].to_vec()
    );
    assert_eq!(
        names(true, true),
        [&b"user"[..], b"prize", b"draw", b"reqid", b"ts"].to_vec()
    );
    let (f, n) = entry_layout(true, true, true);
    assert_eq!(
        f[..n].iter().map(|(_, k)| *k).collect::<Vec<_>>(),
        vec![
            EntryField::User,
            EntryField::Prize,
            EntryField::Draw,
            EntryField::Code,
            EntryField::Reqid,
            EntryField::Ts
        ]
    );
    let (f, n) = entry_layout(true, false, false);
    assert_eq!(
        f[..n].iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        [&b"user"[..], b"prize", b"draw", b"code"].to_vec()
    );
}
