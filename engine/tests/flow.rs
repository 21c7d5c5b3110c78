//! Flow control and anti-abuse in the engine (RATE, ADMIT, CLIENTLIMIT/PENALTY, PACE): the
//! rules, their place in the check order, and their state through effects and persistence.
//! No Redis.

mod common;

use lottery_engine::alias::Uniform;
use lottery_engine::campaign::*;
use lottery_engine::configure::ConfigError;
use lottery_engine::effect::Effect;
use lottery_engine::flow::{Rate, Swept};
use lottery_engine::parse;
use lottery_engine::persist;
use rand::SeedableRng;

const T0: i64 = 1_700_000_000_000;

fn camp(opts: &str) -> Campaign {
    let v: Vec<&[u8]> = opts.split_whitespace().map(|x| x.as_bytes()).collect();
    let ch = parse::configure_args(&v).unwrap();
    Campaign::create(&ch, (5, 6), b"{c}:wins".to_vec()).unwrap()
}

fn change(c: &mut Campaign, opts: &str) -> Result<(), ConfigError> {
    let v: Vec<&[u8]> = opts.split_whitespace().map(|x| x.as_bytes()).collect();
    c.configure(&parse::configure_args(&v).unwrap())
}

fn rng(seed: u64) -> rand_xoshiro::Xoshiro256PlusPlus {
    rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// One whole draw as the command layer does it; returns the outcome and the effect.
fn draw(
    c: &mut Campaign,
    user: &str,
    client: Option<&str>,
    now: i64,
    g: &mut impl Uniform,
) -> (Outcome, i64, Effect) {
    let (r, e) = common::draw_full(c, user.as_bytes(), None, client.map(str::as_bytes), now, g);
    (r.outcome, r.wait_ms, e)
}

fn rejected(c: &Campaign, o: Outcome) -> u64 {
    c.counters().rejected[o.rejection_index().unwrap()]
}

#[test]
fn rate_limits_the_campaign_and_busy_consumes_nothing() {
    let mut c = camp("PRIZE p 1 INF RATE 10 BURST 5 MAXWINS INF");
    let mut g = rng(1);
    let mut ok = 0;
    for i in 0..50 {
        let (o, wait, _) = draw(&mut c, &format!("u{i}"), None, T0, &mut g);
        if o == Outcome::Busy {
            assert_eq!(wait, 100, "the next token in one interval");
        } else {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "the burst, at one instant");
    assert_eq!(rejected(&c, Outcome::Busy), 45);
    assert_eq!(c.users().len(), 5, "a BUSY draw creates no user state");
    // 10 per second afterwards.
    let mut ok = 0;
    for ms in (0..=2000).step_by(10) {
        for i in 0..3 {
            if draw(&mut c, &format!("v{ms}-{i}"), None, T0 + ms, &mut g).0 != Outcome::Busy {
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 20, "rate x 2 s");
    // Per-user rules come first: a user in cooldown gets COOLDOWN and takes no token.
    let mut c = camp("PRIZE p 1 INF RATE 1 BURST 1 COOLDOWN 1000 MAXWINS INF");
    assert_eq!(draw(&mut c, "a", None, T0, &mut g).0, Outcome::Win);
    assert_eq!(draw(&mut c, "a", None, T0 + 1, &mut g).0, Outcome::Cooldown);
    assert_eq!(draw(&mut c, "b", None, T0 + 1, &mut g).0, Outcome::Busy);
    assert_eq!(draw(&mut c, "b", None, T0 + 1000, &mut g).0, Outcome::Win);
    change(&mut c, "RATE OFF").unwrap();
    assert_eq!(draw(&mut c, "c", None, T0 + 1000, &mut g).0, Outcome::Win);
}

#[test]
fn admission_remembers_who_was_turned_away() {
    let mut c = camp("PRIZE p 1 INF ADMIT 0.25 1 MAXWINS INF");
    let mut g = rng(2);
    let n = 40_000;
    let mut first_pass = 0;
    for i in 0..n {
        let (o, _, _) = draw(&mut c, &format!("u{i}"), None, T0 + i, &mut g);
        match o {
            Outcome::Win => first_pass += 1,
            Outcome::Retry => {}
            o => panic!("{o:?}"),
        }
    }
    // 25% +- 5 sigma
    let sd = ((n as f64) * 0.25 * 0.75).sqrt();
    assert!(
        ((first_pass as f64) - n as f64 * 0.25).abs() < 5.0 * sd,
        "{first_pass}"
    );
    assert_eq!(c.waiting().len() as i64, n - first_pass);
    assert_eq!(rejected(&c, Outcome::Retry), (n - first_pass) as u64);
    // Everyone turned away passes on the next try (p2 = 1), and is forgotten.
    for i in 0..n {
        let u = format!("u{i}");
        let k = c.user_key(u.as_bytes());
        if c.user_view(k, T0).admit_waiting {
            assert_eq!(draw(&mut c, &u, None, T0 + n + i, &mut g).0, Outcome::Win);
            assert!(!c.user_view(k, T0).admit_waiting);
        }
    }
    assert!(c.waiting().is_empty());
    // p2 = 0: a turned-away user never passes; ADMIT OFF lets them through and forgets them.
    let mut c = camp("PRIZE p 1 INF ADMIT 0 0 MAXWINS INF");
    assert_eq!(draw(&mut c, "a", None, T0, &mut g).0, Outcome::Retry);
    assert_eq!(draw(&mut c, "a", None, T0 + 1, &mut g).0, Outcome::Retry);
    assert_eq!(c.waiting().len(), 1);
    assert!(c.users().is_empty(), "RETRY consumes nothing");
    change(&mut c, "ADMIT OFF").unwrap();
    assert_eq!(draw(&mut c, "a", None, T0 + 2, &mut g).0, Outcome::Win);
    assert!(c.waiting().is_empty());
}

#[test]
fn client_limit_and_the_penalty_box() {
    let mut c = camp("PRIZE p 1 INF MAXWINS INF CLIENTLIMIT 3 1000");
    let mut g = rng(3);
    for i in 0..3 {
        assert_eq!(
            draw(&mut c, &format!("u{i}"), Some("10.0.0.1"), T0 + i, &mut g).0,
            Outcome::Win
        );
    }
    let (o, wait, _) = draw(&mut c, "u9", Some("10.0.0.1"), T0 + 500, &mut g);
    assert_eq!((o, wait), (Outcome::Limited, 500));
    assert_eq!(
        draw(&mut c, "u9", Some("10.0.0.2"), T0 + 500, &mut g).0,
        Outcome::Win
    );
    assert_eq!(
        draw(&mut c, "u8", None, T0 + 500, &mut g).0,
        Outcome::Win,
        "no CLIENT: no check"
    );
    assert_eq!(
        draw(&mut c, "u7", Some("10.0.0.1"), T0 + 1000, &mut g).0,
        Outcome::Win,
        "new window"
    );
    // PENALTY: the client and the user go to the box.
    change(&mut c, "PENALTY 60000").unwrap();
    for i in 0..2 {
        draw(&mut c, "x", Some("bot"), T0 + 2000 + i, &mut g);
    }
    draw(&mut c, "y", Some("bot"), T0 + 2002, &mut g);
    let (o, wait, _) = draw(&mut c, "bad", Some("bot"), T0 + 2003, &mut g);
    assert_eq!((o, wait), (Outcome::Limited, 60_000));
    let bad = c.user_key(b"bad");
    assert_eq!(c.user_view(bad, T0 + 2004).banned_until_ms, T0 + 62_003);
    assert_eq!(
        draw(&mut c, "bad", Some("clean"), T0 + 3000, &mut g).0,
        Outcome::Banned
    );
    assert_eq!(
        draw(&mut c, "z", Some("bot"), T0 + 30_000, &mut g).0,
        Outcome::Limited
    );
    assert_eq!(c.penalized_clients(T0 + 30_000), 1);
    // UNBAN lifts both.
    assert!(c.unban(bad, T0 + 30_000).0);
    let bot = c.client_key(b"bot");
    assert!(c.unban_client(bot, T0 + 30_000).0);
    assert_eq!(
        draw(&mut c, "bad", Some("bot"), T0 + 30_001, &mut g).0,
        Outcome::Win
    );
    assert_eq!(rejected(&c, Outcome::Limited), 3);
}

#[test]
fn pacing_releases_stock_evenly_over_the_window() {
    // 100 units over 100 s: at most 1 per elapsed second.
    let w0 = T0;
    let mut c = camp(&format!(
        "PRIZE gold 1 100 MAXWINS INF WINDOW {w0} {} PACE gold LINEAR",
        w0 + 100_000
    ));
    let mut g = rng(4);
    let mut won = 0;
    for (k, t) in [
        0i64,
        500,
        999,
        1000,
        1500,
        30_000,
        30_001,
        99_999,
        100_000 - 1,
    ]
    .into_iter()
    .enumerate()
    {
        for i in 0..200 {
            if draw(&mut c, &format!("u{k}-{i}"), None, w0 + t, &mut g).0 == Outcome::Win {
                won += 1;
            }
        }
        let allowed = (100 * t / 100_000) as u64;
        assert_eq!(c.prizes()[0].sold, allowed, "at +{t} ms");
        assert_eq!(won, allowed);
    }
    // FALLBACK gets the consolation prize while gold is held back; REDRAW never picks it.
    let mut c = camp(&format!(
        "PRIZE gold 1 100 PRIZE pt 1 INF WINDOW {w0} {} PACE gold LINEAR SOLDOUT FALLBACK pt MAXWINS INF",
        w0 + 100_000
    ));
    let mut outs = std::collections::HashMap::new();
    for i in 0..100 {
        let u = c.user_key(format!("f{i}").as_bytes());
        let plan = c.plan_draw(u, None, w0 + 10, &mut g);
        if let Plan::Pass { prize, .. } = plan {
            *outs.entry(prize).or_insert(0) += 1;
        }
    }
    assert_eq!(outs.len(), 1, "only pt: {outs:?}");
    let mut c = camp(&format!(
        "PRIZE gold 1000 100 PRIZE pt 1 INF WINDOW {w0} {} PACE gold LINEAR SOLDOUT REDRAW MAXWINS INF",
        w0 + 100_000
    ));
    for i in 0..100 {
        assert_eq!(
            draw(&mut c, &format!("r{i}"), None, w0 + 10, &mut g).0,
            Outcome::Win
        );
    }
    assert_eq!(c.prizes()[0].sold, 0);
    assert_eq!(c.prizes()[1].sold, 100);
    // Validation.
    let mut c = camp("PRIZE gold 1 100 PRIZE pt 1 INF");
    assert_eq!(
        change(&mut c, "PACE gold LINEAR"),
        Err(ConfigError::PaceNeedsWindow)
    );
    assert!(matches!(
        change(&mut c, "WINDOW 1 2 PACE pt LINEAR"),
        Err(ConfigError::BadPace(..))
    ));
    assert!(matches!(
        change(&mut c, "WINDOW 1 2 PACE nope LINEAR"),
        Err(ConfigError::BadPace(..))
    ));
    change(&mut c, "WINDOW 1 2 PACE gold LINEAR").unwrap();
    assert!(c.prizes()[0].paced);
    change(&mut c, "PRIZE gold 1 50 PRIZE pt 1 INF").unwrap();
    assert!(c.prizes()[0].paced, "kept by id when the table changes");
}

#[test]
fn flow_state_replicates_and_persists() {
    let mut m = camp(&format!(
        "PRIZE gold 2 300 PRIZE pt 5 INF NOTHING 5 MAXWINS 3 RATE 500 BURST 20 ADMIT 0.5 0.8 \
         CLIENTLIMIT 20 1000 PENALTY 5000 WINDOW {T0} {} PACE gold LINEAR",
        T0 + 20_000
    ));
    let mut r = persist::decode_meta(&persist::encode_meta(&m)).unwrap();
    let mut g = rng(5);
    let mut effects = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..20_000i64 {
        let now = T0 + i;
        let client = format!("ip{}", i % 37);
        let e = match i % 500 {
            0 => m.ban_client(m.client_key(b"ip3"), now + 100),
            1 => m
                .unban_client(m.client_key(b"ip3"), now)
                .1
                .unwrap_or(Effect::Paused(false)),
            _ => {
                let (o, _, e) = draw(&mut m, &format!("u{}", i % 900), Some(&client), now, &mut g);
                seen.insert(o);
                e
            }
        };
        effects.push(e);
    }
    for o in [
        Outcome::Win,
        Outcome::Lose,
        Outcome::Busy,
        Outcome::Retry,
        Outcome::Limited,
        Outcome::Banned,
    ] {
        assert!(seen.contains(&o), "{o:?} never happened: {seen:?}");
    }
    for e in &effects {
        let d = Effect::decode(&e.encode()).unwrap();
        assert_eq!(&d, e);
        r.apply(&d).unwrap();
    }
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    assert!(!m.clients().is_empty() && !m.waiting().is_empty() && m.tat_ns() > 0);
    // Persistence round trip, and every truncation refused.
    let meta = persist::encode_meta(&m);
    let mut back = persist::decode_meta(&meta).unwrap();
    persist::for_each_chunk(&m, |ch| persist::load_chunk(&mut back, ch).unwrap());
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&back));
    assert_eq!(
        back.rules().rate,
        Some(Rate {
            per_sec: 500,
            burst: 20
        })
    );
    for cut in 0..meta.len() {
        assert!(persist::decode_meta(&meta[..cut]).is_err());
    }
    for i in 0..meta.len() {
        let mut b = meta.clone();
        b[i] ^= 0x3C;
        let _ = persist::decode_meta(&b);
    }
}

#[test]
fn older_encodings_still_load() {
    // A version-2 meta record: v3's trailing flow-control section absent, 7 rejection
    // counters, no paced flag per prize. Built by hand from the v3 encoding of a campaign
    // with no flow control.
    let c = camp("PRIZE a 1 10 PRIZE b 1 INF");
    let v3 = persist::encode_meta(&c);
    assert_eq!(
        v3[0],
        persist::ENCODING_VERSION,
        "4 changed only the REQID chunks"
    );
    // The v3 tail: rate tag, admit tag, clientlimit tag, penalty, tat, 2 size hints.
    let tail = 1 + 1 + 1 + 8 + 8 + 8 + 8;
    let body = &v3[..v3.len() - tail];
    // Counters: after seed(16) + rules; easier to check through the effect version instead:
    // version-1 effects (what an older AOF holds) must still apply.
    assert!(
        persist::decode_meta(body).is_err(),
        "a truncated v3 record is refused"
    );
    let mut e = Effect::Paused(true).encode();
    e[0] = 1;
    assert_eq!(Effect::decode(&e).unwrap(), Effect::Paused(true));
    let mut e = Effect::Count {
        now: 5,
        which: Outcome::Quota as u8,
        value: 3,
        gate: None,
        swept: Swept::default(),
    }
    .encode();
    // v1 had no gate byte (nor v3's two swept counts).
    e.truncate(e.len() - 3);
    e[0] = 1;
    assert_eq!(
        Effect::decode(&e).unwrap(),
        Effect::Count {
            now: 5,
            which: Outcome::Quota as u8,
            value: 3,
            gate: None,
            swept: Swept::default(),
        }
    );
}
