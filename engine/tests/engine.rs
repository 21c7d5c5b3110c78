//! Engine tests: the campaign rules of docs/commands.md, without Redis.

mod common;

use lottery_engine::admin::OpError;
use lottery_engine::alias::Uniform;
use lottery_engine::campaign::*;
use lottery_engine::configure::ConfigError;
use lottery_engine::effect::Effect;
use lottery_engine::persist;

/// A generator that returns scripted values (mod n), for deterministic picks.
struct Script(Vec<u64>, usize);
impl Uniform for Script {
    fn below(&mut self, n: u64) -> u64 {
        let v = self
            .0
            .get(self.1 % self.0.len().max(1))
            .copied()
            .unwrap_or(0);
        self.1 += 1;
        v % n.max(1)
    }
}

/// A seeded real generator.
fn rng() -> rand_xoshiro::Xoshiro256PlusPlus {
    use rand::SeedableRng;
    rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7)
}

fn prize(id: &str, weight: u32, stock: Option<u64>) -> PrizeSpec {
    PrizeSpec {
        id: id.as_bytes().to_vec(),
        weight,
        stock,
        after: 0,
        codes: false,
    }
}

fn campaign(prizes: Vec<PrizeSpec>, f: impl FnOnce(&mut ConfigChange)) -> Campaign {
    let mut ch = ConfigChange {
        prizes: Some(prizes),
        ..Default::default()
    };
    f(&mut ch);
    Campaign::create(&ch, (1, 2), b"{c}:wins".to_vec()).unwrap()
}

/// Runs one whole draw as the command layer does (a fake stream ID for wins).
fn draw(c: &mut Campaign, user: &str, now: i64, g: &mut impl Uniform) -> (DrawReply, Effect) {
    draw_req(c, user, None, now, g)
}

fn draw_req(
    c: &mut Campaign,
    user: &str,
    req: Option<&str>,
    now: i64,
    g: &mut impl Uniform,
) -> (DrawReply, Effect) {
    common::draw_full(c, user.as_bytes(), req.map(str::as_bytes), None, now, g)
}

fn name(c: &Campaign, r: &DrawReply) -> String {
    String::from_utf8_lossy(c.name(r.prize).unwrap_or(b"-")).into_owned()
}

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

#[test]
fn win_sells_stock_and_lose_does_not() {
    let mut c = campaign(vec![prize("a", 1, Some(2))], |_| {});
    let mut g = rng();
    let (r, _) = draw(&mut c, "u1", T0, &mut g);
    assert_eq!(r.outcome, Outcome::Win);
    assert_eq!(name(&c, &r), "a");
    assert_eq!(
        r.win_id,
        Some(StreamId {
            ms: T0 as u64,
            seq: 1
        })
    );
    assert_eq!(c.prizes()[0].stock, Some(1));
    assert_eq!(c.prizes()[0].sold, 1);
    // MAXWINS 1 by default.
    let (r, _) = draw(&mut c, "u1", T0 + 1, &mut g);
    assert_eq!(r.outcome, Outcome::AlreadyWon);
    let (r, _) = draw(&mut c, "u2", T0, &mut g);
    assert_eq!(r.outcome, Outcome::Win);
    // Sold out: LOSE, stock stays 0, nothing oversold.
    let (r, _) = draw(&mut c, "u3", T0, &mut g);
    assert_eq!(r.outcome, Outcome::Lose);
    assert_eq!(c.prizes()[0].stock, Some(0));
    assert_eq!(c.prizes()[0].sold, 2);
    assert_eq!(c.counters().draws, 3);
    assert_eq!(c.counters().wins, 2);
    assert_eq!(c.counters().losses, 1);
    assert_eq!(
        c.counters().rejected[Outcome::AlreadyWon.rejection_index().unwrap()],
        1
    );
}

#[test]
fn soldout_policies() {
    // Entry order: a, b, NOTHING. Script picks column 0 with r=0: always lands on "a".
    let land_on_a = || Script(vec![0, 0], 0);
    // LOSE: landing on sold-out "a" is a loss.
    let mut c = campaign(vec![prize("a", 1, Some(0)), prize("b", 1, Some(5))], |ch| {
        ch.maxwins = Some(None)
    });
    let (r, _) = draw(&mut c, "u", T0, &mut land_on_a());
    assert_eq!(r.outcome, Outcome::Lose);
    // FALLBACK b: landing on sold-out "a" gives "b".
    let mut c = campaign(vec![prize("a", 1, Some(0)), prize("b", 1, Some(1))], |ch| {
        ch.maxwins = Some(None);
        ch.soldout = Some((SoldOut::Fallback, Some(b"b".to_vec())));
    });
    let (r, _) = draw(&mut c, "u", T0, &mut land_on_a());
    assert_eq!((r.outcome, name(&c, &r)), (Outcome::Win, "b".into()));
    // Fallback sold out too: a loss.
    let (r, _) = draw(&mut c, "v", T0, &mut land_on_a());
    assert_eq!(r.outcome, Outcome::Lose);
    // REDRAW: sold-out prizes leave the table; with NOTHING 0 every draw wins "b".
    let mut c = campaign(
        vec![prize("a", 5, Some(1)), prize("b", 1, Some(1000))],
        |ch| {
            ch.maxwins = Some(None);
            ch.soldout = Some((SoldOut::Redraw, None));
        },
    );
    let mut g = rng();
    let mut wins = [0; 2];
    for i in 0..500 {
        let (r, _) = draw(&mut c, &format!("u{i}"), T0, &mut g);
        assert_eq!(r.outcome, Outcome::Win);
        wins[usize::from(name(&c, &r) == "b")] += 1;
    }
    assert_eq!(wins, [1, 499]);
}

#[test]
fn fallback_must_exist() {
    let ch = ConfigChange {
        prizes: Some(vec![prize("a", 1, None)]),
        soldout: Some((SoldOut::Fallback, Some(b"zz".to_vec()))),
        ..Default::default()
    };
    assert_eq!(
        Campaign::create(&ch, (0, 0), vec![]).err(),
        Some(ConfigError::UnknownFallback(b"zz".to_vec()))
    );
}

#[test]
fn create_and_change_validation() {
    let ch = ConfigChange::default();
    assert_eq!(
        Campaign::create(&ch, (0, 0), vec![]).err(),
        Some(ConfigError::NeedPrize)
    );
    let ch = ConfigChange {
        prizes: Some(vec![prize("a", 0, None)]),
        ..Default::default()
    };
    assert_eq!(
        Campaign::create(&ch, (0, 0), vec![]).err(),
        Some(ConfigError::AllWeightsZero)
    );
    let ch = ConfigChange {
        prizes: Some(vec![prize("a", 1, None), prize("a", 1, None)]),
        ..Default::default()
    };
    assert!(matches!(
        Campaign::create(&ch, (0, 0), vec![]),
        Err(ConfigError::DuplicatePrize(_))
    ));
    // A failed change changes nothing.
    let mut c = campaign(vec![prize("a", 1, Some(3))], |_| {});
    let before = persist::encode_meta(&c);
    let bad = ConfigChange {
        prizes: Some(vec![prize("b", 0, None)]),
        cooldown_ms: Some(5),
        ..Default::default()
    };
    assert!(c.configure(&bad).is_err());
    assert_eq!(persist::encode_meta(&c), before);
}

#[test]
fn change_keeps_sold_by_id_and_user_state() {
    let mut c = campaign(vec![prize("a", 1, Some(3)), prize("b", 1, Some(3))], |ch| {
        ch.maxwins = Some(None)
    });
    let mut g = Script(vec![0, 0], 0); // always "a"
    draw(&mut c, "u", T0, &mut g);
    draw(&mut c, "u", T0, &mut g);
    let ch = ConfigChange {
        prizes: Some(vec![prize("c", 1, Some(1)), prize("a", 2, Some(10))]),
        cooldown_ms: Some(50),
        ..Default::default()
    };
    c.configure(&ch).unwrap();
    assert_eq!(c.prizes()[1].id, b"a");
    assert_eq!(c.prizes()[1].sold, 2);
    assert_eq!(c.prizes()[1].stock, Some(10));
    assert_eq!(c.prizes()[0].sold, 0);
    assert_eq!(c.rules().maxwins, None); // kept
    let v = c.user_view(c.user_key(b"u"), T0);
    assert_eq!(v.wins, 2);
    assert_eq!(c.name(v.last_prize), Some(&b"a"[..]));
    // "a" removed then restored keeps its sold count; its pending sales still drain.
    let ch = ConfigChange {
        prizes: Some(vec![prize("c", 1, Some(1))]),
        ..Default::default()
    };
    c.configure(&ch).unwrap();
    let (seq, batch, _) = c.drain();
    assert_eq!((seq, batch), (1, vec![(b"a".to_vec(), 2)]));
    let ch = ConfigChange {
        prizes: Some(vec![prize("a", 1, Some(1))]),
        ..Default::default()
    };
    c.configure(&ch).unwrap();
    assert_eq!(c.prizes()[0].sold, 2);
    assert_eq!(c.prizes()[0].pending, 0);
}

#[test]
fn cooldown() {
    let mut c = campaign(vec![prize("a", 0, None)], |ch| {
        ch.nothing = Some(1);
        ch.cooldown_ms = Some(1000);
    });
    let mut g = rng();
    let (r, _) = draw(&mut c, "u", T0, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Lose, 1000));
    let (r, _) = draw(&mut c, "u", T0 + 400, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Cooldown, 600));
    let (r, _) = draw(&mut c, "u", T0 + 999, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Cooldown, 1));
    let (r, _) = draw(&mut c, "u", T0 + 1000, &mut g);
    assert_eq!(r.outcome, Outcome::Lose);
    assert_eq!(
        c.user_view(c.user_key(b"u"), T0 + 1300).cooldown_left_ms,
        700
    );
}

#[test]
fn daily_quota_days_and_dayoffset() {
    // DAYOFFSET 480: days start at 16:00 UTC.
    let mut c = campaign(vec![prize("a", 0, None)], |ch| {
        ch.nothing = Some(1);
        ch.daily = Some(Some(2));
        ch.dayoffset_min = Some(480);
    });
    let mut g = rng();
    let day = 86_400_000i64;
    let midnight = (T0 / day) * day; // 00:00 UTC of T0's UTC day
    let before = midnight + 16 * 3_600_000 - 1000; // 15:59:59 UTC
    let (r, _) = draw(&mut c, "u", before - 5000, &mut g);
    assert_eq!((r.outcome, r.chances_left), (Outcome::Lose, 1));
    let (r, _) = draw(&mut c, "u", before - 4000, &mut g);
    assert_eq!((r.outcome, r.chances_left), (Outcome::Lose, 0));
    let (r, _) = draw(&mut c, "u", before, &mut g);
    assert_eq!(
        (r.outcome, r.chances_left, r.wait_ms),
        (Outcome::Quota, 0, 1000)
    );
    // 16:00 UTC is a new day at UTC+8.
    let (r, _) = draw(&mut c, "u", before + 1000, &mut g);
    assert_eq!((r.outcome, r.chances_left), (Outcome::Lose, 1));
    // Without the offset the same instants are one UTC day: quota until UTC midnight.
    let mut c = campaign(vec![prize("a", 0, None)], |ch| {
        ch.nothing = Some(1);
        ch.daily = Some(Some(1));
    });
    draw(&mut c, "u", before, &mut g);
    let (r, _) = draw(&mut c, "u", before + 1000, &mut g);
    assert_eq!(r.outcome, Outcome::Quota);
    assert_eq!(r.wait_ms, midnight + day - (before + 1000));
    assert_eq!(day_of(-1, 0), -1);
    assert_eq!(Period::Day.ms_to_next(0, 0), day);
}

#[test]
fn grants_after_free_chances_and_daily_zero() {
    let mut c = campaign(vec![prize("a", 0, None)], |ch| {
        ch.nothing = Some(1);
        ch.daily = Some(Some(1));
    });
    let mut g = rng();
    let u = c.user_key(b"u");
    assert_eq!(c.grant(u, 2, None).0, 2);
    let (r, _) = draw(&mut c, "u", T0, &mut g); // free chance first
    assert_eq!(r.chances_left, 2);
    assert_eq!(c.user_view(u, T0).bonus, 2);
    let (r, _) = draw(&mut c, "u", T0, &mut g);
    assert_eq!(r.chances_left, 1);
    let (r, _) = draw(&mut c, "u", T0, &mut g);
    assert_eq!(r.chances_left, 0);
    let (r, _) = draw(&mut c, "u", T0, &mut g);
    assert_eq!(r.outcome, Outcome::Quota);
    // CAP: capped in total, never taken away.
    assert_eq!(c.grant(u, 10, Some(3)).0, 3);
    assert_eq!(c.grant(u, 10, Some(1)).0, 3);
    assert_eq!(c.grant(u, u32::MAX, None).0, u32::MAX);
    // DAILY 0: only grants; QUOTA wait is -1.
    let mut c = campaign(vec![prize("a", 0, None)], |ch| {
        ch.nothing = Some(1);
        ch.daily = Some(Some(0));
    });
    let (r, _) = draw(&mut c, "v", T0, &mut g);
    assert_eq!(
        (r.outcome, r.chances_left, r.wait_ms),
        (Outcome::Quota, 0, -1)
    );
    let v = c.user_key(b"v");
    c.grant(v, 1, None);
    let (r, _) = draw(&mut c, "v", T0, &mut g);
    assert_eq!((r.outcome, r.chances_left), (Outcome::Lose, 0));
    // Bonus chances do not expire across days.
    c.grant(v, 1, None);
    let (r, _) = draw(&mut c, "v", T0 + 10 * 86_400_000, &mut g);
    assert_eq!(r.outcome, Outcome::Lose);
}

#[test]
fn maxwins_and_check_order() {
    let mut c = campaign(vec![prize("a", 1, None)], |ch| {
        ch.maxwins = Some(Some(2));
        ch.cooldown_ms = Some(10);
        ch.window = Some((T0, T0 + 1000));
    });
    let mut g = rng();
    let (r, _) = draw(&mut c, "u", T0 - 5, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::NotStarted, 5));
    draw(&mut c, "u", T0, &mut g);
    let (r, _) = draw(&mut c, "u", T0 + 1, &mut g);
    assert_eq!(r.outcome, Outcome::Cooldown);
    draw(&mut c, "u", T0 + 20, &mut g);
    let (r, _) = draw(&mut c, "u", T0 + 21, &mut g);
    assert_eq!(r.outcome, Outcome::AlreadyWon); // before cooldown
    let u = c.user_key(b"u");
    c.ban(u, T0 + 500);
    let (r, _) = draw(&mut c, "u", T0 + 22, &mut g);
    assert_eq!((r.outcome, r.wait_ms), (Outcome::Banned, 478)); // before MAXWINS
    c.set_paused(true);
    let (r, _) = draw(&mut c, "u", T0 + 22, &mut g);
    assert_eq!(r.outcome, Outcome::Paused); // before ban
    let (r, _) = draw(&mut c, "u", T0 + 1000, &mut g);
    assert_eq!(r.outcome, Outcome::Ended); // window before pause
    assert!(c.unban(u, T0 + 22).0);
    assert!(!c.unban(u, T0 + 22).0);
    // MAXWINS 0: everybody ALREADY_WON.
    let mut c = campaign(vec![prize("a", 1, None)], |ch| ch.maxwins = Some(Some(0)));
    assert_eq!(draw(&mut c, "x", T0, &mut g).0.outcome, Outcome::AlreadyWon);
}

#[test]
fn reqid_replay_and_window_eviction() {
    let mut c = campaign(vec![prize("a", 1, Some(100))], |ch| {
        ch.nothing = Some(1);
        ch.maxwins = Some(None);
        ch.idempotency_ms = Some(1000);
    });
    let mut g = rng();
    let (first, _) = draw_req(&mut c, "u", Some("r1"), T0, &mut g);
    let snapshot = (c.counters().draws, c.prizes()[0].stock);
    let (again, _) = draw_req(&mut c, "u", Some("r1"), T0 + 999, &mut g);
    assert_eq!(first, again);
    assert_eq!((c.counters().draws, c.prizes()[0].stock), snapshot);
    assert_eq!(c.counters().replays, 1);
    // Another user with the same request id is a different request.
    draw_req(&mut c, "v", Some("r1"), T0, &mut g);
    assert_eq!(c.counters().draws, 2);
    // After the window the same id draws anew.
    draw_req(&mut c, "u", Some("r1"), T0 + 1000, &mut g);
    assert_eq!(c.counters().draws, 3);
    // Eviction bounds memory: 10,000 requests then time moves on.
    for i in 0..10_000 {
        draw_req(&mut c, "w", Some(&format!("q{i}")), T0 + 2000, &mut g);
    }
    assert!(c.reqs().len() >= 10_000);
    for i in 0..200 {
        draw(&mut c, "z", T0 + 10_000 + i, &mut g);
    }
    assert_eq!(
        c.reqs().len(),
        0,
        "all expired requests evicted as draws go by"
    );
    // Rejections are not remembered.
    let mut c = campaign(vec![prize("a", 1, None)], |ch| {
        ch.cooldown_ms = Some(100);
        ch.maxwins = Some(None);
    });
    draw(&mut c, "u", T0, &mut g);
    let (r, _) = draw_req(&mut c, "u", Some("x"), T0 + 1, &mut g);
    assert_eq!(r.outcome, Outcome::Cooldown);
    assert!(c.reqs().is_empty());
}

#[test]
fn restock_and_drain() {
    let mut c = campaign(vec![prize("a", 1, Some(1)), prize("i", 1, None)], |ch| {
        ch.maxwins = Some(None);
        ch.soldout = Some((SoldOut::Redraw, None));
    });
    assert_eq!(c.restock(b"a", -1).unwrap().0, 0);
    assert_eq!(c.restock(b"a", -1).err(), Some(OpError::BelowZero));
    assert_eq!(
        c.restock(b"i", 1).err(),
        Some(OpError::InfStock(b"i".to_vec()))
    );
    assert_eq!(
        c.restock(b"zz", 1).err(),
        Some(OpError::NoSuchPrize(b"zz".to_vec()))
    );
    assert_eq!(c.restock(b"a", i64::MAX).unwrap().0, i64::MAX as u64);
    assert_eq!(c.restock(b"a", 1).err(), Some(OpError::Overflow));
    assert_eq!(c.restock(b"a", -(i64::MAX - 3)).unwrap().0, 3);
    let mut g = Script(vec![0, 0], 0);
    for u in ["x", "y"] {
        draw(&mut c, u, T0, &mut g);
    }
    let (seq, batch, _) = c.drain();
    assert_eq!((seq, batch), (1, vec![(b"a".to_vec(), 2)]));
    let (seq, batch, _) = c.drain();
    assert_eq!((seq, batch.len()), (2, 0));
    assert_eq!(c.last_batch().len(), 0);
}

/// Feeds every effect of a random workload to a replica: both end identical.
#[test]
fn effects_rebuild_identical_state() {
    let mut m = campaign(
        vec![
            prize("a", 3, Some(40)),
            prize("b", 5, Some(5)),
            prize("c", 1, None),
        ],
        |ch| {
            ch.nothing = Some(10);
            ch.maxwins = Some(Some(2));
            ch.daily = Some(Some(3));
            ch.cooldown_ms = Some(5);
            ch.soldout = Some((SoldOut::Redraw, None));
            ch.idempotency_ms = Some(50);
        },
    );
    let mut r = persist::decode_meta(&persist::encode_meta(&m)).unwrap();
    let mut g = rng();
    let mut effects = Vec::new();
    for i in 0..20_000i64 {
        let now = T0 + i * 3;
        let user = format!("u{}", i % 700);
        let e = match i % 50 {
            0 => m.grant(m.user_key(user.as_bytes()), 2, Some(4)).1,
            1 => m
                .restock(b"b", 1)
                .map(|x| x.1)
                .unwrap_or(Effect::Paused(false)),
            2 => m.ban(m.user_key(user.as_bytes()), now + 20),
            3 => m
                .unban(m.user_key(user.as_bytes()), now)
                .1
                .unwrap_or(Effect::Paused(false)),
            4 => m.drain().2,
            5 if i % 1000 == 5 => {
                let ch = ConfigChange {
                    prizes: Some(vec![
                        prize("b", 5, Some(9)),
                        prize("d", 2, Some(3)),
                        prize("a", 3, Some(9)),
                    ]),
                    ..Default::default()
                };
                m.configure(&ch).unwrap();
                Effect::Config(persist::encode_meta(&m))
            }
            _ => {
                let req = (i % 3 == 0).then(|| format!("r{}", i % 97));
                draw_req(&mut m, &user, req.as_deref(), now, &mut g).1
            }
        };
        effects.push(e);
    }
    for e in &effects {
        let bytes = e.encode();
        let decoded = Effect::decode(&bytes).unwrap();
        assert_eq!(&decoded, e);
        r.apply(&decoded).unwrap();
    }
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    assert!(m.counters().wins > 0 && m.counters().losses > 0);
}

#[test]
fn persistence_roundtrip_and_corruption() {
    let mut c = campaign(vec![prize("a", 1, Some(1000)), prize("b", 1, None)], |ch| {
        ch.nothing = Some(2);
        ch.maxwins = Some(None);
        ch.window = Some((1, i64::MAX));
    });
    let mut g = rng();
    for i in 0..10_000 {
        draw_req(&mut c, &format!("u{i}"), Some("r"), T0 + i, &mut g);
    }
    c.ban(c.user_key(b"u1"), T0 * 2);
    let meta = persist::encode_meta(&c);
    let mut chunks = Vec::new();
    persist::for_each_chunk(&c, |b| chunks.push(b.to_vec()));
    assert!(chunks.len() >= 4, "users are saved in bounded chunks");
    let mut back = persist::decode_meta(&meta).unwrap();
    for ch in &chunks {
        persist::load_chunk(&mut back, ch).unwrap();
    }
    assert_eq!(persist::fingerprint(&c), persist::fingerprint(&back));
    // Every truncation and a byte flip in many places is refused or decodes to something
    // valid; nothing panics.
    for cut in 0..meta.len() {
        assert!(persist::decode_meta(&meta[..cut]).is_err());
    }
    for i in 0..meta.len() {
        let mut m = meta.clone();
        m[i] ^= 0xA5;
        let _ = persist::decode_meta(&m);
    }
    let mut m = meta.clone();
    m[0] = persist::ENCODING_VERSION + 1;
    assert!(
        persist::decode_meta(&m).is_err(),
        "a newer version is refused"
    );
    let small = &chunks[chunks.len() - 1];
    for cut in 0..small.len().min(400) {
        let mut t = back.clone();
        assert!(persist::load_chunk(&mut t, &small[..cut]).is_err());
    }
    for cut in 0..40 {
        assert!(Effect::decode(&Effect::Paused(true).encode()[..cut.min(2)]).is_err() || cut >= 3);
    }
}

/// Writes the fuzzers' seed inputs (valid encodings) into fuzz/seeds/. Run by hand:
/// `cargo test -p lottery-engine --test engine write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let dp = root.join("decode_payload");
    let pa = root.join("parse_args");
    std::fs::create_dir_all(&dp).unwrap();
    std::fs::create_dir_all(&pa).unwrap();
    let mut c = campaign(vec![prize("a", 1, Some(1000)), prize("b", 1, None)], |ch| {
        ch.nothing = Some(2);
        ch.maxwins = Some(None);
        ch.soldout = Some((SoldOut::Fallback, Some(b"b".to_vec())));
    });
    let mut g = rng();
    let mut effects = Vec::new();
    for i in 0..40 {
        effects.push(draw_req(&mut c, &format!("u{i}"), Some("r"), T0 + i, &mut g).1);
    }
    effects.push(c.grant(c.user_key(b"u1"), 3, Some(5)).1);
    effects.push(c.ban(c.user_key(b"u2"), T0 * 2));
    effects.push(c.drain().2);
    let put = |name: String, sel: u8, body: &[u8]| {
        let mut v = vec![sel];
        v.extend_from_slice(body);
        std::fs::write(dp.join(name), v).unwrap();
    };
    put("meta".into(), 0, &persist::encode_meta(&c));
    let mut n = 0;
    persist::for_each_chunk(&c, |b| {
        n += 1;
        put(format!("chunk{n}"), 1, b);
    });
    for (i, e) in effects
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0 || *i >= 40)
    {
        put(format!("effect{i}"), 2, &e.encode());
    }
    // A campaign with every flow-control rule, clients and a transfer record.
    let opts = "PRIZE a 1 100 PRIZE b 1 INF NOTHING 2 MAXWINS INF RATE 50 BURST 5 ADMIT 0.5 0.9 CLIENTLIMIT 3 1000 PENALTY 5000 WINDOW 1 9999999999999 PACE a LINEAR";
    let v: Vec<&[u8]> = opts.split(' ').map(str::as_bytes).collect();
    let mut f = Campaign::create(
        &lottery_engine::parse::configure_args(&v).unwrap(),
        (3, 4),
        b"{f}:wins".to_vec(),
    )
    .unwrap();
    f.transfer_out(b"t1", b"a", 3, b"{g}").unwrap();
    for i in 0..60 {
        let u = f.user_key(format!("u{}", i % 9).as_bytes());
        let ck = f.client_key(format!("ip{}", i % 4).as_bytes());
        let plan = f.plan_draw_from(u, None, Some(ck), T0 + i * 7, &mut g);
        let e = match plan {
            Plan::Replay(_) | Plan::Reject(..) => f.count(&plan, T0 + i * 7),
            Plan::Pass { prize, seq, .. } => {
                let id = prize.map(|_| StreamId { ms: 1, seq });
                f.commit_draw(u, None, T0 + i * 7, &plan, id).1
            }
        };
        if i % 6 == 0 {
            put(format!("flow-effect{i}"), 2, &e.encode());
        }
    }
    // A refusal whose sweep removes the clients (their window is over), an UNBAN CLIENT that
    // removes a record, a settled transfer.
    let ck = f.client_key(b"banned");
    f.ban_client(ck, T0 + 100_000);
    put(
        "flow-unban-client".into(),
        2,
        &f.unban_client(ck, T0).1.unwrap().encode(),
    );
    let u = f.user_key(b"late");
    let plan = f.plan_draw_from(u, None, None, T0 + 10_000, &mut g);
    let e = match plan {
        Plan::Pass { prize, seq, .. } => {
            let id = prize.map(|_| StreamId { ms: 1, seq });
            f.commit_draw(u, None, T0 + 10_000, &plan, id).1
        }
        _ => f.count(&plan, T0 + 10_000),
    };
    put("flow-sweep".into(), 2, &e.encode());
    put(
        "transfer-settle".into(),
        2,
        &f.transfer_settle(b"t1").unwrap().1.unwrap().encode(),
    );
    put("flow-meta".into(), 0, &persist::encode_meta(&f));
    // CONFIGURE effects (version 3): a creation and a change.
    let words = |s: &str| {
        s.split(' ')
            .map(|w| w.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    let created = Effect::Configure {
        created: Some(((3, 4), b"{f}:wins".to_vec())),
        args: words(opts),
    };
    put("configure-create".into(), 2, &created.encode());
    let change = Effect::Configure {
        created: None,
        args: words("NOTHING 7 PRIZE a 1 5 PRIZE b 2 INF COOLDOWN 10"),
    };
    put("configure-change".into(), 2, &change.encode());
    let mut n = 0;
    persist::for_each_chunk(&f, |b| {
        n += 1;
        put(format!("flow-chunk{n}"), 1, b);
    });
    let args = [
        "PRIZE a 1 10 PRIZE b 2 INF NOTHING 5 COOLDOWN 100 DAILY 3 MAXWINS INF DAYOFFSET 480 WINDOW 1 9999999999999 SOLDOUT FALLBACK b STREAM s IDEMPOTENCY 0",
        "PRIZE x 4294967295 9223372036854775807 SOLDOUT REDRAW",
        opts,
        "RATE OFF ADMIT OFF CLIENTLIMIT OFF PENALTY 0 PACE a NONE",
    ];
    for (i, a) in args.iter().enumerate() {
        std::fs::write(pa.join(format!("args{i}")), a.replace(' ', "\0")).unwrap();
    }
    // VERIFIABLE (encoding and effect version 6): a campaign in its second epoch, revealed,
    // and its epoch effect.
    let vopts = "PRIZE a 1 5 PRIZE b 2 INF NOTHING 3 MAXWINS INF TIER t PRIZE-WEIGHT a 4 VERIFIABLE LOG ALL";
    let vargs: Vec<&[u8]> = vopts.split(' ').map(str::as_bytes).collect();
    let vch = lottery_engine::parse::configure_args(&vargs).unwrap();
    let mut v = Campaign::create(&vch, (5, 6), b"{v}:wins".to_vec()).unwrap();
    v.start_epoch([1; 32], vch.verifiable.flatten());
    put(
        "verifiable-epoch".into(),
        2,
        &v.start_epoch([2; 32], None).encode(),
    );
    put(
        "verifiable-reveal".into(),
        2,
        &v.reveal_seed().unwrap().encode(),
    );
    put("verifiable-meta".into(), 0, &persist::encode_meta(&v));
    std::fs::write(pa.join("verifiable"), vopts.replace(' ', "\0")).unwrap();
    // One seed per command parser (the arguments after the campaign key).
    for (name, a) in PARSER_SEEDS {
        std::fs::write(pa.join(name), a.replace(' ', "\0")).unwrap();
    }
}

/// Arguments each command parser accepts, seeds of the parse_args fuzz target.
const PARSER_SEEDS: [(&str, &str); 8] = [
    ("draw", "REQID r1 CLIENT ip1"),
    ("ban", "CLIENT ip1 60000"),
    ("unban", "CLIENT ip1"),
    ("grant", "u1 3 CAP 5"),
    ("restock", "a -2"),
    ("drain", "LAST"),
    ("transfer", "OUT t1 a 3 {g}"),
    ("debug", "CLOCK 1700000000000"),
];

/// Each parser seed parses with its own parser.
#[test]
fn parser_seeds_parse() {
    use lottery_engine::parse;
    for (name, a) in PARSER_SEEDS {
        let args: Vec<&[u8]> = a.split(' ').map(str::as_bytes).collect();
        let ok = match name {
            "draw" => parse::draw_options(&args).is_ok(),
            "ban" => parse::ban_args(&args).is_ok(),
            "unban" => parse::unban_args(&args).is_ok(),
            "grant" => parse::grant_args(&args).is_ok(),
            "restock" => parse::restock_args(&args).is_ok(),
            "drain" => parse::drain_args(&args).is_ok(),
            "transfer" => parse::transfer_args(b"k", &args).is_ok(),
            "debug" => parse::debug_args(&args).is_ok(),
            _ => false,
        };
        assert!(ok, "{name}: {a}");
        let on_disk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds/parse_args")
            .join(name);
        assert_eq!(
            std::fs::read(&on_disk).ok(),
            Some(a.replace(' ', "\0").into_bytes()),
            "{} is missing or stale: cargo test --test engine write_fuzz_seeds -- --ignored",
            on_disk.display()
        );
    }
}

/// Inputs the fuzzers found (fuzz/regressions/) and the seeds, through the fuzz targets'
/// own checks: none may panic.
#[test]
fn fuzz_regressions() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["regressions/decode_payload", "seeds/decode_payload"] {
        for f in std::fs::read_dir(root.join(dir)).unwrap() {
            lottery_engine::fuzz_checks::decode_payload(&std::fs::read(f.unwrap().path()).unwrap());
            n += 1;
        }
    }
    for dir in ["regressions/parse_args", "seeds/parse_args"] {
        for f in std::fs::read_dir(root.join(dir)).unwrap() {
            lottery_engine::fuzz_checks::parse_args(&std::fs::read(f.unwrap().path()).unwrap());
            n += 1;
        }
    }
    assert!(n >= 3);
}

/// Loading a large campaign back must cost about what building it did (report only).
#[test]
fn load_time_is_proportional() {
    let mut c = campaign(vec![prize("a", 1, None)], |ch| {
        ch.nothing = Some(1000);
        ch.maxwins = Some(None);
    });
    let n: usize = std::env::var("LOAD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            50_000
        } else {
            1_000_000
        });
    let t = std::time::Instant::now();
    for i in 0..n {
        let u = c.user_key(format!("user:{i}").as_bytes());
        c.grant(u, 1, None);
    }
    let build = t.elapsed();
    let meta = persist::encode_meta(&c);
    let mut chunks = Vec::new();
    persist::for_each_chunk(&c, |b| chunks.push(b.to_vec()));
    let t = std::time::Instant::now();
    let mut back = persist::decode_meta(&meta).unwrap();
    for ch in &chunks {
        persist::load_chunk(&mut back, ch).unwrap();
    }
    let load = t.elapsed();
    assert_eq!(back.users().len(), n);
    println!("{n} users: build {build:?}, load {load:?}");
}

/// Counts past 65,535 (kept outside the 12-byte user record) survive effects and reloads.
#[test]
fn huge_counts_survive_effects_and_persistence() {
    let mut c = campaign(vec![prize("a", 0, None)], |ch| {
        ch.nothing = Some(1);
        ch.daily = Some(Some(u32::MAX));
    });
    let mut replica = persist::decode_meta(&persist::encode_meta(&c)).unwrap();
    let u = c.user_key(b"whale");
    let (bonus, e) = c.grant(u, u32::MAX - 1, None);
    assert_eq!(bonus, u32::MAX - 1);
    replica.apply(&e).unwrap();
    let mut g = rng();
    for i in 0..70_000i64 {
        let (_, e) = draw(&mut c, "whale", T0 + i, &mut g);
        replica.apply(&e).unwrap();
    }
    let v = c.user_view(u, T0 + 70_000);
    assert_eq!(v.draws_today, 70_000);
    assert_eq!(v.bonus, u32::MAX - 1);
    assert_eq!(persist::fingerprint(&c), persist::fingerprint(&replica));
    let meta = persist::encode_meta(&c);
    let mut back = persist::decode_meta(&meta).unwrap();
    persist::for_each_chunk(&c, |b| persist::load_chunk(&mut back, b).unwrap());
    assert_eq!(back.user_view(u, T0 + 70_000), v);
    assert_eq!(persist::fingerprint(&c), persist::fingerprint(&back));
}

/// The save order visits every entry exactly once, whatever the table sizes.
#[test]
fn scattered_order_is_a_permutation() {
    use lottery_engine::segmap::SegMap;
    for n in [0u64, 1, 3, 100, 5_000, 60_000] {
        let mut m: SegMap<u64> = SegMap::new();
        let mut s: u64 = 9;
        for i in 0..n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            m.insert((u128::from(s) << 64) | u128::from(i + 1), i);
        }
        let mut a: Vec<_> = m.iter().collect();
        let mut b: Vec<_> = m.iter_scattered().collect();
        assert_eq!(b.len() as u64, n);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
