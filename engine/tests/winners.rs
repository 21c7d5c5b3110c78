//! Winners live in the users' records: a winner with small values costs what any other user
//! costs, and every value stays exact whatever its size, through draws, loads (either section
//! first), saves, the AOF rewrite and replicas.

mod common;

use common::draw_full;
use lottery_engine::apply::created_campaign;
use lottery_engine::campaign::*;
use lottery_engine::codec::Writer;
use lottery_engine::effect::Effect;
use lottery_engine::limits::MAX_NAMES;
use lottery_engine::persist::{self, CHUNK_ENTRIES, ENCODING_VERSION};
use lottery_engine::users::{
    UserDay, UserWins, PACKED_MAX_PRIZE, PACKED_MAX_TIME, PACKED_MAX_WINS, PACKED_MIN_TIME,
};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Gen;

const T0: i64 = 1_700_000_000_000;

fn prize(id: &str, weight: u32, stock: Option<u64>) -> PrizeSpec {
    PrizeSpec {
        id: id.as_bytes().to_vec(),
        weight,
        stock,
        after: 0,
        codes: false,
    }
}

fn campaign(prizes: Vec<PrizeSpec>, nothing: u32, maxwins: Option<u32>) -> Campaign {
    let ch = ConfigChange {
        prizes: Some(prizes),
        nothing: Some(nothing),
        maxwins: Some(maxwins),
        ..Default::default()
    };
    Campaign::create(&ch, (1, 2), b"{c}:wins".to_vec()).unwrap()
}

/// The meta record then every chunk, as the RDB and DUMP write them.
fn save(c: &Campaign) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut chunks = Vec::new();
    persist::for_each_chunk(c, |b| chunks.push(b.to_vec()));
    (persist::encode_meta(c), chunks)
}

fn load(meta: &[u8], chunks: &[Vec<u8>]) -> Campaign {
    let mut c = persist::decode_meta(meta).unwrap();
    for ch in chunks {
        persist::load_chunk(&mut c, ch).unwrap();
    }
    c
}

/// Loads through the AOF rewrite's effects.
fn load_aof(meta: &[u8], chunks: &[Vec<u8>]) -> Campaign {
    let mut c = created_campaign(&Effect::Config(meta.to_vec()))
        .unwrap()
        .unwrap();
    for ch in chunks {
        let e = Effect::decode(&Effect::Chunk(ch.clone()).encode()).unwrap();
        c.apply(&e).unwrap();
    }
    c
}

/// Chunks of the users section, as the encoding writes them.
fn users_chunks(days: &[(u128, UserDay)]) -> Vec<Vec<u8>> {
    days.chunks(CHUNK_ENTRIES)
        .map(|part| {
            let mut w = Writer::new();
            w.u8(ENCODING_VERSION);
            w.u8(1);
            w.u32(part.len() as u32);
            for (k, d) in part {
                w.u128(*k);
                w.i64(d.last_draw_ms);
                w.u32(d.draws_today);
                w.u32(d.bonus);
            }
            w.buf
        })
        .collect()
}

/// Chunks of the winners section.
fn winners_chunks(wins: &[(u128, UserWins)]) -> Vec<Vec<u8>> {
    wins.chunks(CHUNK_ENTRIES)
        .map(|part| {
            let mut w = Writer::new();
            w.u8(ENCODING_VERSION);
            w.u8(2);
            w.u32(part.len() as u32);
            for (k, x) in part {
                w.u128(*k);
                w.u32(x.wins);
                w.u32(x.last_prize);
            }
            w.buf
        })
        .collect()
}

const TIMES: [i64; 15] = [
    i64::MIN,
    i64::MIN + 1,
    PACKED_MIN_TIME - 1,
    PACKED_MIN_TIME,
    -1,
    0,
    1,
    T0,
    PACKED_MAX_TIME,
    PACKED_MAX_TIME + 1,
    (1 << 48) - 1,
    1 << 48,
    (1 << 48) + 1,
    i64::MAX - 1,
    i64::MAX,
];
const COUNTS: [u32; 6] = [0, 1, 65_534, 65_535, 65_536, u32::MAX];

fn wins_values() -> Vec<u32> {
    (0..=16).chain([u32::MAX - 1, u32::MAX]).collect()
}

fn prize_values() -> Vec<u32> {
    let m = MAX_NAMES as u32;
    vec![0, 1, 4094, 4095, 4096, 4097, m - 1, m]
}

/// A user's record: day state, wins record, either or both.
type Rec = (Option<UserDay>, Option<UserWins>);

/// Each field through its boundaries with the others typical, and every pairing of the
/// boundary times with the boundary wins records.
fn boundary_records() -> Vec<Rec> {
    let day = |t, d, b| UserDay {
        last_draw_ms: t,
        draws_today: d,
        bonus: b,
    };
    let win = |wins, last_prize| UserWins { wins, last_prize };
    let mut out: Vec<Rec> = Vec::new();
    for t in TIMES {
        for w in [None, Some(win(1, 1))] {
            out.push((Some(day(t, 1, 0)), w));
        }
    }
    for d in COUNTS {
        for b in COUNTS {
            out.push((Some(day(T0, d, b)), None));
            out.push((Some(day(T0, d, b)), Some(win(1, 2))));
        }
    }
    for n in wins_values() {
        for p in prize_values() {
            let w = Some(win(n, p));
            out.push((Some(day(T0, 1, 0)), w));
            out.push((None, w));
            for t in TIMES {
                out.push((Some(day(t, 65_535, 65_536)), w));
            }
        }
    }
    out.push((Some(UserDay::default()), None));
    out.push((Some(UserDay::default()), Some(UserWins::default())));
    out
}

fn fits(r: &Rec) -> bool {
    let Some(d) = r.0 else { return false };
    (PACKED_MIN_TIME..=PACKED_MAX_TIME).contains(&d.last_draw_ms)
        && d.draws_today <= 65_535
        && d.bonus <= 65_535
        && r.1
            .is_none_or(|w| (1..=PACKED_MAX_WINS).contains(&w.wins) && w.last_prize <= 4095)
}

/// A campaign whose interned names go up to `MAX_NAMES`, so a wins record may name any.
fn campaign_with_every_name() -> Campaign {
    let mut c = campaign(vec![prize("a", 1, None)], 0, None);
    let have = c.names().len();
    c.names_mut()
        .extend((have..MAX_NAMES).map(|i| format!("name-{i}").into_bytes()));
    persist::decode_meta(&persist::encode_meta(&c)).unwrap()
}

fn assert_records(c: &Campaign, recs: &[(u128, Rec)]) {
    for (k, r) in recs {
        assert_eq!(c.users().get(*k), r.0, "user {k}: {r:?}");
        assert_eq!(c.winners().get(*k), r.1, "user {k}: {r:?}");
        assert_eq!(c.users().get_both(*k), *r);
    }
    let days = recs.iter().filter(|(_, r)| r.0.is_some()).count();
    let wins = recs.iter().filter(|(_, r)| r.1.is_some()).count();
    assert_eq!(c.users().len(), days);
    assert_eq!(c.winners().len(), wins);
    assert_eq!(c.users().iter().count(), days);
    assert_eq!(c.winners().iter().count(), wins);
    assert_eq!(
        c.users().spilled(),
        recs.iter().filter(|(_, r)| !fits(r)).count()
    );
}

/// Every boundary record loads exactly whichever section comes first, saves, loads back (RDB
/// and AOF) to the same state, and saves again to the same bytes.
#[test]
fn boundary_records_load_save_and_resave_byte_identical() {
    let base = campaign_with_every_name();
    assert_eq!(base.names().len(), MAX_NAMES);
    let recs: Vec<(u128, Rec)> = boundary_records()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            (
                (i as u128 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                r,
            )
        })
        .collect();
    assert!(recs.len() < 8000, "{} records: one segment", recs.len());
    let days: Vec<(u128, UserDay)> = recs.iter().filter_map(|(k, r)| Some((*k, r.0?))).collect();
    let wins: Vec<(u128, UserWins)> = recs.iter().filter_map(|(k, r)| Some((*k, r.1?))).collect();
    let (u, w) = (users_chunks(&days), winners_chunks(&wins));

    let mut users_first = base.clone();
    for ch in u.iter().chain(w.iter()) {
        persist::load_chunk(&mut users_first, ch).unwrap();
    }
    let mut winners_first = base.clone();
    for ch in w.iter().chain(u.iter()) {
        persist::load_chunk(&mut winners_first, ch).unwrap();
    }
    assert_records(&users_first, &recs);
    assert_records(&winners_first, &recs);
    let want = persist::fingerprint(&users_first);
    assert_eq!(persist::fingerprint(&winners_first), want);
    assert!(users_first.users().spilled() > 0);
    assert!(users_first.users().spilled() < recs.len());

    let (meta, chunks) = save(&users_first);
    let back = load(&meta, &chunks);
    assert_records(&back, &recs);
    assert_eq!(persist::fingerprint(&back), want);
    assert_eq!(
        save(&back),
        (meta.clone(), chunks.clone()),
        "re-save differs"
    );
    let aof = load_aof(&meta, &chunks);
    assert_records(&aof, &recs);
    assert_eq!(save(&aof), (meta, chunks));
    assert_eq!(
        persist::fingerprint(&load_aof(&save(&winners_first).0, &save(&winners_first).1)),
        want
    );
}

/// The wins count and the last prize past what fits in place, and draws at the boundary
/// times, through real draws: exact in LOTTERY.USER's view, the same on a replica fed the
/// effects, saved by both to the same bytes.
#[test]
fn draws_past_the_packed_limits_stay_exact() {
    // 5000 prizes: only the last one can be won, and its interned name is 5000.
    let mut prizes: Vec<PrizeSpec> = (0..4999)
        .map(|i| prize(&format!("p{i}"), 0, Some(1)))
        .collect();
    prizes.push(prize("last", 1, None));
    let mut m = campaign(prizes, 0, None);
    let last = m.name_of(b"last").unwrap();
    assert_eq!(last, 5000);
    assert!(last > PACKED_MAX_PRIZE);
    let mut r = load(&persist::encode_meta(&m), &[]);
    let mut g = Gen::seed_from_u64(1);
    let mut feed = |m: &mut Campaign, r: &mut Campaign, user: &str, now: i64| {
        let (reply, e) = draw_full(m, user.as_bytes(), None, None, now, &mut g);
        r.apply(&Effect::decode(&e.encode()).unwrap()).unwrap();
        reply
    };
    // One user wins again and again.
    for n in 1..=20u32 {
        let reply = feed(&mut m, &mut r, "many", T0 + i64::from(n));
        assert_eq!(reply.outcome, Outcome::Win);
        let v = m.user_view(m.user_key(b"many"), T0 + 100);
        assert_eq!((v.wins, v.last_prize), (n, last));
        assert_eq!(v.draws_today, n);
        assert_eq!(m.users().spilled(), 1, "a last prize of 5000 never fits");
    }
    // A user per boundary time.
    for (i, t) in TIMES.iter().enumerate() {
        let user = format!("t{i}");
        let reply = feed(&mut m, &mut r, &user, *t);
        assert_eq!(reply.outcome, Outcome::Win, "at {t}");
        let k = m.user_key(user.as_bytes());
        let d = m.users().get(k).unwrap();
        assert_eq!(d.last_draw_ms, *t);
        assert_eq!(d.draws_today, 1);
        assert_eq!(
            m.winners().get(k),
            Some(UserWins {
                wins: 1,
                last_prize: last
            })
        );
    }
    assert_eq!(m.users().len(), 1 + TIMES.len());
    assert_eq!(m.winners().len(), 1 + TIMES.len());
    assert_eq!(persist::fingerprint(&r), persist::fingerprint(&m));
    assert_eq!(save(&r), save(&m), "master and replica save the same bytes");
    let (meta, chunks) = save(&m);
    assert_eq!(
        persist::fingerprint(&load(&meta, &chunks)),
        persist::fingerprint(&m)
    );
}

/// MAXWINS reads the wins from the user's record; a bonus past 65,535 spills and a grant
/// back under it does not change the wins.
#[test]
fn maxwins_and_bonus_with_wins_in_the_record() {
    let mut c = campaign(vec![prize("a", 1, None)], 0, Some(PACKED_MAX_WINS + 2));
    let mut g = Gen::seed_from_u64(2);
    let u = c.user_key(b"u");
    for n in 1..=PACKED_MAX_WINS + 2 {
        let (reply, _) = draw_full(&mut c, b"u", None, None, T0 + i64::from(n), &mut g);
        assert_eq!(reply.outcome, Outcome::Win);
        assert_eq!(c.winners().get(u).unwrap().wins, n);
        assert_eq!(c.users().spilled(), usize::from(n > PACKED_MAX_WINS));
    }
    let (reply, _) = draw_full(&mut c, b"u", None, None, T0 + 100, &mut g);
    assert_eq!(reply.outcome, Outcome::AlreadyWon);
    let (bonus, _) = c.grant(u, 70_000, None);
    assert_eq!(bonus, 70_000);
    assert_eq!(c.user_view(u, T0 + 100).wins, PACKED_MAX_WINS + 2);
    // A user with small wins and a huge bonus.
    let v = c.user_key(b"v");
    draw_full(&mut c, b"v", None, None, T0, &mut g);
    c.grant(v, 65_535, None);
    assert_eq!(c.users().spilled(), 1, "65,535 fits");
    c.grant(v, 1, None);
    assert_eq!(c.users().spilled(), 2, "65,536 does not");
    let view = c.user_view(v, T0 + 1);
    assert_eq!((view.bonus, view.wins, view.last_prize), (65_536, 1, 1));
    // A ban gives a new user day state, not a wins record.
    let b = c.user_key(b"banned");
    c.ban(b, T0 + 1000);
    assert_eq!(c.users().get(b), Some(UserDay::default()));
    assert_eq!(c.winners().get(b), None);
}

/// A flash sale: 100,000 buyers each win once (MAXWINS 1). The users map takes the same
/// bytes as for 100,000 users who lost, and nothing spills.
#[test]
fn a_hundred_thousand_winners_cost_what_as_many_losers_do() {
    let n = 100_000u32;
    let mut sale = campaign(vec![prize("voucher", 1, Some(u64::from(n)))], 0, Some(1));
    let mut lost = campaign(vec![prize("voucher", 0, Some(1))], 1, Some(1));
    let mut g = Gen::seed_from_u64(3);
    for i in 0..n {
        let user = format!("buyer:{i}");
        let now = T0 + i64::from(i);
        let (a, _) = draw_full(&mut sale, user.as_bytes(), None, None, now, &mut g);
        let (b, _) = draw_full(&mut lost, user.as_bytes(), None, None, now, &mut g);
        assert_eq!((a.outcome, b.outcome), (Outcome::Win, Outcome::Lose));
    }
    assert_eq!(sale.users().len(), n as usize);
    assert_eq!(sale.winners().len(), n as usize);
    assert_eq!(lost.users().len(), n as usize);
    assert_eq!(lost.winners().len(), 0);
    assert_eq!(sale.users().spilled(), 0);
    assert_eq!(lost.users().spilled(), 0);
    assert_eq!(sale.users().mem_bytes(), lost.users().mem_bytes());
    let per = sale.users().mem_bytes() as f64 / f64::from(n);
    assert!(per < 38.0, "{per} bytes per buyer");
    // The campaigns differ only in their per-user values: MEMORY USAGE agrees.
    assert_eq!(sale.mem_bytes(), lost.mem_bytes());
    // A second click is refused: the win is in the record.
    let (again, _) = draw_full(&mut sale, b"buyer:7", None, None, T0 + 1, &mut g);
    assert_eq!(again.outcome, Outcome::AlreadyWon);
    // After a save and load, still all in place.
    let (meta, chunks) = save(&sale);
    let back = load(&meta, &chunks);
    assert_eq!(back.winners().len(), n as usize);
    assert_eq!(back.users().spilled(), 0);
    assert_eq!(persist::fingerprint(&back), persist::fingerprint(&sale));
}
