//! LOTTERY.TRANSFER in the engine: idempotent steps, stock conserved across crashes at every
//! step, replicated and persisted like everything else. No Redis.

use lottery_engine::admin::OpError;
use lottery_engine::alias::Uniform;
use lottery_engine::campaign::*;
use lottery_engine::effect::Effect;
use lottery_engine::ledger::{
    Direction, TransferState, MAX_PENDING_CODES, MAX_TRANSFERS, MAX_TRANSFER_CODES,
};
use lottery_engine::persist;
use lottery_engine::transfer::TransferError;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

fn shard(stock: u64) -> Campaign {
    let ch = ConfigChange {
        prizes: Some(vec![
            PrizeSpec {
                id: b"gold".to_vec(),
                weight: 1,
                stock: Some(stock),
                after: 0,
                codes: false,
            },
            PrizeSpec {
                id: b"pt".to_vec(),
                weight: 1,
                stock: None,
                after: 0,
                codes: false,
            },
        ]),
        nothing: Some(2),
        maxwins: Some(None),
        ..Default::default()
    };
    Campaign::create(&ch, (3, 4), b"{s}:wins".to_vec()).unwrap()
}

fn gold(c: &Campaign) -> (u64, u64) {
    let p = &c.prizes()[c.prize_index(b"gold").unwrap()];
    (p.stock.unwrap(), p.sold)
}

fn draw(c: &mut Campaign, user: &str, now: i64, g: &mut impl Uniform) -> Effect {
    let u = c.user_key(user.as_bytes());
    let plan = c.plan_draw(u, None, now, g);
    match plan {
        Plan::Replay(_) | Plan::Reject(..) => c.count(&plan, now),
        Plan::Pass { prize, seq, .. } => {
            let id = prize.map(|_| StreamId {
                ms: now as u64,
                seq,
            });
            c.commit_draw(u, None, now, &plan, id).1
        }
    }
}

#[test]
fn steps_are_idempotent_and_checked() {
    let mut a = shard(10);
    let mut b = shard(0);
    let (t, e) = a.transfer_out(b"x1", b"gold", 4, b"b").unwrap();
    assert_eq!((t, e.is_some()), (4, true));
    // A repeat answers the recorded units, whatever it asks for now, and changes nothing.
    assert_eq!(a.transfer_out(b"x1", b"gold", 9, b"b").unwrap(), (4, None));
    assert_eq!(gold(&a), (6, 0));
    assert_eq!(
        a.transfer_out(b"x1", b"gold", 4, b"c"),
        Err(TransferError::Mismatch(b"x1".to_vec()))
    );
    assert!(b.transfer_in(b"x1", b"gold", 4, b"a", None).unwrap().0);
    assert_eq!(
        b.transfer_in(b"x1", b"gold", 4, b"a", None).unwrap(),
        (false, None)
    );
    assert!(matches!(
        b.transfer_in(b"x1", b"gold", 5, b"a", None),
        Err(TransferError::Mismatch(_))
    ));
    assert_eq!(gold(&b), (4, 0));
    assert!(matches!(
        b.transfer_settle(b"x1"),
        Err(TransferError::NoOutgoing(_))
    ));
    assert!(a.transfer_settle(b"x1").unwrap().0);
    assert_eq!(a.transfer_settle(b"x1").unwrap(), (false, None));
    // Taking more than there is takes what there is; taking from nothing records 0.
    assert_eq!(a.transfer_out(b"x2", b"gold", 100, b"b").unwrap().0, 6);
    assert_eq!(a.transfer_out(b"x3", b"gold", 100, b"b").unwrap().0, 0);
    assert_eq!(gold(&a), (0, 0));
    assert!(matches!(
        a.transfer_out(b"x4", b"pt", 1, b"b"),
        Err(TransferError::Op(OpError::InfStock(_)))
    ));
    assert!(matches!(
        a.transfer_out(b"x4", b"nope", 1, b"b"),
        Err(TransferError::Op(OpError::NoSuchPrize(_)))
    ));
    assert!(matches!(
        b.transfer_in(b"x5", b"gold", i64::MAX as u64, b"a", None),
        Err(TransferError::Op(OpError::Overflow))
    ));
    let states: Vec<_> = a
        .transfers()
        .iter()
        .map(|t| (t.direction, t.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (Direction::Out, TransferState::Settled),
            (Direction::Out, TransferState::Pending),
            (Direction::Out, TransferState::Pending)
        ]
    );
}

#[test]
fn record_limit() {
    let mut a = shard(u64::from(u32::MAX));
    for i in 0..MAX_TRANSFERS {
        a.transfer_out(format!("t{i}").as_bytes(), b"gold", 1, b"b")
            .unwrap();
    }
    assert_eq!(
        a.transfer_out(b"one-more", b"gold", 1, b"b"),
        Err(TransferError::TooMany)
    );
    // Repeats of recorded ids still answer.
    assert_eq!(a.transfer_out(b"t7", b"gold", 1, b"b").unwrap(), (1, None));
}

/// One mover moving stock between three shards while they sell, dying at random points and
/// restarting with recovery: at every moment the units are conserved
/// (configured = remaining + sold + in flight), and after recovery nothing is in flight.
#[test]
fn stock_is_conserved_across_crashes_at_every_step() {
    const TOTAL: u64 = 3_000;
    let mut shards = [shard(1000), shard(1000), shard(1000)];
    let names = [b"s0".as_slice(), b"s1", b"s2"];
    let idx = |peer: &[u8]| names.iter().position(|n| *n == peer).unwrap();
    let mut g = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
    let mut ctl = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(12);
    let mut now = 1_700_000_000_000i64;
    let mut next_id = 0u64;

    let in_flight = |shards: &[Campaign; 3]| -> u64 {
        let mut f = 0;
        for s in shards.iter() {
            for t in s.transfers().iter() {
                if t.state == TransferState::Pending {
                    let peer = &shards[idx(&t.peer)];
                    if peer.transfers().get(&t.id).is_none() {
                        f += t.count;
                    }
                }
            }
        }
        f
    };
    let conserved = |shards: &[Campaign; 3]| {
        let held: u64 = shards.iter().map(|s| gold(s).0 + gold(s).1).sum();
        assert_eq!(held + in_flight(shards), TOTAL, "units conserved");
    };
    // Recovery as the mover does it on start: every pending OUT gets its IN, then SETTLE.
    let recover = |shards: &mut [Campaign; 3]| {
        for i in 0..3 {
            let pending: Vec<_> = shards[i]
                .transfers()
                .iter()
                .filter(|t| t.state == TransferState::Pending)
                .cloned()
                .collect();
            for t in pending {
                let p = idx(&t.peer);
                if t.count > 0 {
                    shards[p]
                        .transfer_in(&t.id, &t.prize, t.count, names[i], None)
                        .unwrap();
                }
                shards[i].transfer_settle(&t.id).unwrap();
            }
        }
    };

    let mut crashes = 0;
    for round in 0..3000 {
        // Demand lands mostly on shard 0, so it runs dry first.
        for _ in 0..3 {
            now += 1;
            let s = if ctl.random_range(0..10) < 7 {
                0
            } else {
                ctl.random_range(0..3)
            };
            draw(&mut shards[s], &format!("u{round}-{now}"), now, &mut g);
        }
        conserved(&shards);
        if round % 5 != 0 {
            continue;
        }
        recover(&mut shards);
        assert_eq!(in_flight(&shards), 0);
        // Move from the fullest to the emptiest shard; die after a random step.
        let mut order: Vec<usize> = (0..3).collect();
        order.sort_by_key(|&i| gold(&shards[i]).0);
        let (dst, src) = (order[0], order[2]);
        let want = (gold(&shards[src]).0 - gold(&shards[dst]).0) / 2;
        if want == 0 {
            continue;
        }
        next_id += 1;
        let id = format!("run.{next_id}");
        let crash_at = ctl.random_range(0..4); // 0: after OUT, 1: after IN, 2: after SETTLE, 3: none
        let (t, _) = shards[src]
            .transfer_out(id.as_bytes(), b"gold", want, names[dst])
            .unwrap();
        conserved(&shards);
        if crash_at == 0 {
            crashes += 1;
            continue;
        }
        // A retried step (the mover may not know whether its reply got lost) changes nothing.
        shards[src]
            .transfer_out(id.as_bytes(), b"gold", want, names[dst])
            .unwrap();
        if t > 0 {
            shards[dst]
                .transfer_in(id.as_bytes(), b"gold", t, names[src], None)
                .unwrap();
            shards[dst]
                .transfer_in(id.as_bytes(), b"gold", t, names[src], None)
                .unwrap();
        }
        conserved(&shards);
        if crash_at == 1 {
            crashes += 1;
            continue;
        }
        shards[src].transfer_settle(id.as_bytes()).unwrap();
        conserved(&shards);
    }
    recover(&mut shards);
    assert_eq!(in_flight(&shards), 0);
    conserved(&shards);
    assert!(crashes > 100, "the crash points were exercised ({crashes})");
    assert!(shards.iter().all(|s| gold(s).1 > 0));
}

#[test]
fn transfers_replicate_and_persist() {
    let mut m = shard(500);
    let mut r = persist::decode_meta(&persist::encode_meta(&m)).unwrap();
    let mut g = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let mut effects = Vec::new();
    for i in 0..2_000i64 {
        let e = match i % 10 {
            0 => {
                m.transfer_out(format!("o{i}").as_bytes(), b"gold", 3, b"peer")
                    .unwrap()
                    .1
            }
            1 => {
                m.transfer_in(format!("i{i}").as_bytes(), b"gold", 2, b"peer", None)
                    .unwrap()
                    .1
            }
            2 => {
                m.transfer_settle(format!("o{}", i - 2).as_bytes())
                    .unwrap()
                    .1
            }
            _ => Some(draw(
                &mut m,
                &format!("u{i}"),
                1_700_000_000_000 + i,
                &mut g,
            )),
        };
        effects.extend(e);
    }
    for e in &effects {
        let d = Effect::decode(&e.encode()).unwrap();
        assert_eq!(&d, e);
        r.apply(&d).unwrap();
    }
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    assert_eq!(m.transfers().len(), 400);

    // Persistence: the records come back, and every truncation of the meta record is refused.
    let meta = persist::encode_meta(&m);
    let back = persist::decode_meta(&meta).unwrap();
    assert_eq!(
        back.transfers().iter().collect::<Vec<_>>(),
        m.transfers().iter().collect::<Vec<_>>()
    );
    for cut in 0..meta.len() {
        assert!(persist::decode_meta(&meta[..cut]).is_err());
    }
    for i in (0..meta.len()).step_by(3) {
        let mut b = meta.clone();
        b[i] ^= 0x5A;
        let _ = persist::decode_meta(&b);
    }
}

#[test]
fn transfer_effect_on_wrong_prize_is_refused() {
    let mut m = shard(10);
    let e = m.transfer_out(b"t", b"gold", 1, b"p").unwrap().1.unwrap();
    let mut other = shard(10);
    other
        .configure(&ConfigChange {
            prizes: Some(vec![PrizeSpec {
                id: b"pt".to_vec(),
                weight: 1,
                stock: Some(1),
                after: 0,
                codes: false,
            }]),
            ..Default::default()
        })
        .unwrap();
    let before = persist::fingerprint(&other);
    assert!(other.apply(&e).is_err());
    assert_eq!(persist::fingerprint(&other), before);
}

/// A CONFIGURE's effect carries the command's options, not the campaign's history: with
/// 5,000 transfer records (long peer names), `NOTHING 1` replicates a few bytes, and the copy
/// that applies it ends equal to the master.
#[test]
fn configure_effect_is_proportional_to_the_command() {
    let mut master = shard(1_000_000);
    let mut replica = shard(1_000_000);
    *replica.seed_mut() = master.seed();
    let peer = vec![b'p'; 4000];
    for i in 0..5000u32 {
        let id = format!("t{i}");
        let (_, e) = master
            .transfer_out(id.as_bytes(), b"gold", 1, &peer)
            .unwrap();
        replica.apply(&e.unwrap()).unwrap();
    }
    let args: Vec<Vec<u8>> = vec![b"NOTHING".to_vec(), b"1".to_vec()];
    let opts: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    master
        .configure(&lottery_engine::parse::configure_args(&opts).unwrap())
        .unwrap();
    let effect = Effect::Configure {
        created: None,
        args: args.clone(),
    };
    let blob = effect.encode();
    assert!(blob.len() < 64, "effect of {} bytes", blob.len());
    let back = Effect::decode(&blob).unwrap();
    assert_eq!(back, effect);
    replica.apply(&back).unwrap();
    assert_eq!(
        persist::fingerprint(&master),
        persist::fingerprint(&replica)
    );
    assert_eq!(replica.rules().nothing, 1);

    // A creating effect builds the same campaign as the master's CONFIGURE.
    let args: Vec<Vec<u8>> = [
        "PRIZE",
        "一等奖",
        "1",
        "5",
        "NOTHING",
        "3",
        "COOLDOWN",
        "10",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let opts: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let change = lottery_engine::parse::configure_args(&opts).unwrap();
    let made = Campaign::create(&change, (7, 9), b"{c}:wins".to_vec()).unwrap();
    let effect = Effect::Configure {
        created: Some(((7, 9), b"{c}:wins".to_vec())),
        args,
    };
    let applied =
        lottery_engine::apply::created_campaign(&Effect::decode(&effect.encode()).unwrap())
            .unwrap()
            .unwrap();
    assert_eq!(persist::fingerprint(&made), persist::fingerprint(&applied));
    // ... and refuses to re-create an existing one.
    assert!(replica.apply(&effect).is_err());
}

/// A shard with the counted prize `gold` (stock 10) and the code prize `card`, holding
/// `codes` in this order.
fn code_shard(seed: (u64, u64), codes: &[String]) -> Campaign {
    let ch = ConfigChange {
        prizes: Some(vec![
            PrizeSpec {
                id: b"gold".to_vec(),
                weight: 1,
                stock: Some(10),
                after: 0,
                codes: false,
            },
            PrizeSpec {
                id: b"card".to_vec(),
                weight: 3,
                stock: Some(0),
                after: 0,
                codes: true,
            },
        ]),
        nothing: Some(2),
        maxwins: Some(None),
        ..Default::default()
    };
    let mut c = Campaign::create(&ch, seed, b"{s}:wins".to_vec()).unwrap();
    let list: Vec<&[u8]> = codes.iter().map(|c| c.as_bytes()).collect();
    if !list.is_empty() {
        c.add_codes(b"card", &list).unwrap();
    }
    c
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// The unused codes of `card`, oldest first.
fn unused(c: &Campaign) -> Vec<String> {
    let p = &c.prizes()[c.prize_index(b"card").unwrap()];
    c.codes().get(p.name).map_or(Vec::new(), |pool| {
        pool.iter_unused()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    })
}

fn card_stock(c: &Campaign) -> u64 {
    c.prizes()[c.prize_index(b"card").unwrap()].stock.unwrap()
}

fn strs(codes: &[Vec<u8>]) -> Vec<String> {
    codes
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect()
}

fn refs(codes: &[Vec<u8>]) -> Vec<&[u8]> {
    codes.iter().map(Vec::as_slice).collect()
}

#[test]
fn code_prize_steps_move_codes_once() {
    let mut a = code_shard((3, 4), &names("a", 10));
    let mut b = code_shard((5, 6), &names("b", 2));
    // OUT takes the oldest codes out of the pool and keeps them in the record.
    let (t, e) = a.transfer_out(b"x1", b"card", 4, b"b").unwrap();
    assert_eq!((t, e.is_some()), (4, true));
    let taken = a.transfer_codes(b"x1").unwrap().to_vec();
    assert_eq!(strs(&taken), names("a", 4));
    assert_eq!(unused(&a), names("a", 10)[4..]);
    assert_eq!(card_stock(&a), 6);
    // A repeat answers the recorded count and takes nothing.
    assert_eq!(a.transfer_out(b"x1", b"card", 9, b"b").unwrap(), (4, None));
    assert_eq!(card_stock(&a), 6);
    // The codes taken are remembered as moved out: adding them there again is refused.
    assert_eq!(a.add_codes(b"card", &refs(&taken)).unwrap(), (0, None));
    let p = &a.prizes()[a.prize_index(b"card").unwrap()];
    assert_eq!(a.codes().moved(p.name), 4);
    assert_eq!(
        a.codes().get(p.name).unwrap().used(),
        0,
        "moved, not handed out"
    );
    assert_eq!(
        a.transfer_out(b"x2", b"card", MAX_TRANSFER_CODES as u64 + 1, b"b"),
        Err(TransferError::TooManyCodes)
    );
    assert!(a.transfers().get(b"x2").is_none());

    // IN of a code prize takes exactly its count of codes; a counted prize takes none.
    assert_eq!(
        b.transfer_in(b"x1", b"card", 4, b"a", None),
        Err(TransferError::CodesCount(4, 0))
    );
    assert_eq!(
        b.transfer_in(b"x1", b"card", 4, b"a", Some(&refs(&taken)[..3])),
        Err(TransferError::CodesCount(4, 3))
    );
    assert_eq!(
        b.transfer_in(b"x1", b"gold", 4, b"a", Some(&refs(&taken))),
        Err(TransferError::Op(OpError::NotCodePrize(b"gold".to_vec())))
    );
    assert!(b.transfers().is_empty());
    let (applied, e) = b
        .transfer_in(b"x1", b"card", 4, b"a", Some(&refs(&taken)))
        .unwrap();
    assert!(applied);
    let Some(Effect::Transfer { record, .. }) = e else {
        panic!("a transfer effect");
    };
    assert_eq!(record.codes, taken, "the effect carries the codes");
    assert!(b.transfers().get(b"x1").unwrap().codes.is_empty());
    let mut want = names("b", 2);
    want.extend(names("a", 4));
    assert_eq!(unused(&b), want);
    assert_eq!(card_stock(&b), 6);
    // A repeated IN adds nothing.
    assert_eq!(
        b.transfer_in(b"x1", b"card", 4, b"a", Some(&refs(&taken)))
            .unwrap(),
        (false, None)
    );
    assert_eq!(card_stock(&b), 6);
    assert!(matches!(
        b.transfer_codes(b"x1"),
        Err(TransferError::NoOutgoing(_))
    ));

    // SETTLE drops the codes from the record, and from its effect.
    let (settled, e) = a.transfer_settle(b"x1").unwrap();
    assert!(settled);
    let Some(Effect::Transfer { record, .. }) = e else {
        panic!("a transfer effect");
    };
    assert!(record.codes.is_empty());
    assert!(a.transfer_codes(b"x1").unwrap().is_empty());
    assert_eq!(a.transfers().pending_codes(), 0);

    // More than the pool holds takes what it holds; an empty pool records 0.
    assert_eq!(a.transfer_out(b"x3", b"card", 100, b"b").unwrap().0, 6);
    assert_eq!(a.transfer_codes(b"x3").unwrap().len(), 6);
    assert_eq!(a.transfer_out(b"x4", b"card", 100, b"b").unwrap().0, 0);
    assert!(a.transfer_codes(b"x4").unwrap().is_empty());
    assert_eq!(card_stock(&a), 0);
    assert_eq!(a.transfers().pending_codes(), 6);

    // An IN skips the codes the pool holds or handed out, as LOTTERY.CODES ADD does.
    let mut c = code_shard((7, 8), &names("a", 1));
    let x3 = a.transfer_codes(b"x3").unwrap().to_vec();
    let mut given = vec![b"a0000".to_vec()];
    given.extend(x3[..2].iter().cloned());
    assert!(
        c.transfer_in(b"x9", b"card", 3, b"a", Some(&refs(&given)))
            .unwrap()
            .0
    );
    assert_eq!(unused(&c), ["a0000", "a0004", "a0005"]);
    assert_eq!(card_stock(&c), 3);
}

#[test]
fn pending_codes_are_bounded() {
    let n = MAX_PENDING_CODES + 10;
    let mut a = code_shard((3, 4), &[]);
    let all = names("c", n);
    for part in all.chunks(MAX_TRANSFER_CODES) {
        let list: Vec<&[u8]> = part.iter().map(|c| c.as_bytes()).collect();
        a.add_codes(b"card", &list).unwrap();
    }
    assert_eq!(
        a.transfer_out(b"big", b"card", MAX_TRANSFER_CODES as u64, b"b")
            .unwrap()
            .0,
        MAX_TRANSFER_CODES as u64
    );
    assert_eq!(
        a.transfer_out(b"more", b"card", 1, b"b"),
        Err(TransferError::PendingCodes)
    );
    // Once settled, the codes leave the record and a new OUT may hold some.
    a.transfer_settle(b"big").unwrap();
    assert_eq!(a.transfer_out(b"more", b"card", 20, b"b").unwrap().0, 10);
    // Counted prizes are not bounded by it.
    assert_eq!(a.transfer_out(b"g", b"gold", 5, b"b").unwrap().0, 5);
    // What is saved loads: the pending codes come back.
    let back = persist::decode_meta(&persist::encode_meta(&a)).unwrap();
    assert_eq!(back.transfers().pending_codes(), 10);
    assert_eq!(
        back.transfer_codes(b"more").unwrap(),
        a.transfer_codes(b"more").unwrap()
    );
}

/// Where every code of `card` is: in a pool, in a PENDING record whose IN the peer has not
/// applied (in flight), or handed out by a win. No code is in two places.
fn code_places(
    shards: &[Campaign],
    names: &[&[u8]],
    handed: &[Vec<u8>],
) -> (BTreeSet<Vec<u8>>, usize) {
    let mut all = BTreeSet::new();
    let mut n = 0;
    let mut put = |c: Vec<u8>, all: &mut BTreeSet<Vec<u8>>| {
        n += 1;
        assert!(
            all.insert(c.clone()),
            "code {:?} in two places",
            String::from_utf8_lossy(&c)
        );
    };
    for s in shards {
        let p = &s.prizes()[s.prize_index(b"card").unwrap()];
        if let Some(pool) = s.codes().get(p.name) {
            assert_eq!(pool.unused(), p.stock.unwrap(), "stock = unused codes");
            for c in pool.iter_unused() {
                put(c.to_vec(), &mut all);
            }
        }
        for t in s.transfers().iter() {
            if t.state != TransferState::Pending {
                assert!(t.codes.is_empty(), "only a PENDING record holds codes");
                continue;
            }
            assert_eq!(t.codes.len() as u64, t.count);
            let peer = names.iter().position(|n| *n == t.peer).unwrap();
            if shards[peer].transfers().get(&t.id).is_none() {
                for c in &t.codes {
                    put(c.clone(), &mut all);
                }
            }
        }
    }
    for c in handed {
        put(c.clone(), &mut all);
    }
    (all, n)
}

/// The mover moving codes from the fullest shard to the emptiest (so some go back to a shard
/// they left) while all three hand out codes, dying after a random step and recovering on the next run (with every step
/// retried once, as a mover that lost a reply does): at every moment each code is in exactly
/// one place (a pool, an unapplied PENDING record, or a win), none is created or lost; after
/// recovery none is in flight. Each step's effect applied to a replica of each shard keeps it
/// equal to its master, and a save/load of each shard at any moment gives it back.
#[test]
fn codes_are_conserved_across_crashes_at_every_step() {
    let mut shards = vec![
        code_shard((1, 2), &names("s0-", 100)),
        code_shard((3, 4), &names("s1-", 400)),
        code_shard((5, 6), &names("s2-", 400)),
    ];
    let mut replicas: Vec<Campaign> = shards
        .iter()
        .map(|s| persist::decode_meta(&persist::encode_meta(s)).unwrap())
        .collect();
    for (s, r) in shards.iter().zip(replicas.iter_mut()) {
        persist::for_each_chunk(s, |ch| persist::load_chunk(r, ch).unwrap());
        assert_eq!(persist::fingerprint(s), persist::fingerprint(r));
    }
    let keys = [b"s0".as_slice(), b"s1", b"s2"];
    let (everything, total) = code_places(&shards, &keys, &[]);
    assert_eq!(total, 900);
    let mut handed: Vec<Vec<u8>> = Vec::new();
    let mut g = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(21);
    let mut ctl = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(22);
    let mut now = 1_700_000_000_000i64;
    let mut next_id = 0u64;

    // Applies a step's effect (if any) to the shard's replica.
    fn step(replicas: &mut [Campaign], i: usize, e: Option<Effect>) {
        if let Some(e) = e {
            let d = Effect::decode(&e.encode()).unwrap();
            assert_eq!(d, e);
            replicas[i].apply(&d).unwrap();
        }
    }
    let check = |shards: &[Campaign], replicas: &[Campaign], handed: &[Vec<u8>]| {
        let (set, _) = code_places(shards, &keys, handed);
        assert_eq!(set, everything, "codes conserved");
        for (s, r) in shards.iter().zip(replicas) {
            assert_eq!(persist::fingerprint(s), persist::fingerprint(r));
        }
    };
    // Recovery as the mover does it: every pending OUT gets its IN with the record's codes,
    // then its SETTLE.
    let recover = |shards: &mut [Campaign], replicas: &mut [Campaign]| {
        for i in 0..3 {
            let pending: Vec<_> = shards[i]
                .transfers()
                .iter()
                .filter(|t| t.state == TransferState::Pending)
                .cloned()
                .collect();
            for t in pending {
                let p = keys.iter().position(|n| *n == t.peer).unwrap();
                let codes = shards[i].transfer_codes(&t.id).unwrap().to_vec();
                if t.count > 0 {
                    let (_, e) = shards[p]
                        .transfer_in(&t.id, &t.prize, t.count, keys[i], Some(&refs(&codes)))
                        .unwrap();
                    step(replicas, p, e);
                }
                let (_, e) = shards[i].transfer_settle(&t.id).unwrap();
                step(replicas, i, e);
            }
        }
    };

    // The shards each code has left, and how many codes arrived at a shard they had left.
    let mut left: std::collections::BTreeMap<Vec<u8>, BTreeSet<usize>> = Default::default();
    let mut back = 0;
    let mut crashes = 0;
    for round in 0..1500 {
        // Demand lands mostly on shard 0, so it runs dry first.
        for _ in 0..3 {
            now += 1;
            let s = if ctl.random_range(0..10) < 7 {
                0
            } else {
                ctl.random_range(0..3)
            };
            let e = draw(&mut shards[s], &format!("u{round}-{now}"), now, &mut g);
            if let Effect::Draw(d) = &e {
                handed.extend(d.code.clone());
            }
            step(&mut replicas, s, Some(e));
        }
        check(&shards, &replicas, &handed);
        if round % 5 != 0 {
            continue;
        }
        recover(&mut shards, &mut replicas);
        check(&shards, &replicas, &handed);
        assert!(shards.iter().all(|s| s.transfers().pending_codes() == 0));
        // From the fullest shard to the emptiest (codes may go back to a shard they left).
        // Die after a random step.
        let mut order: Vec<usize> = (0..3).collect();
        order.sort_by_key(|&i| card_stock(&shards[i]));
        let (dst, src) = (order[0], order[2]);
        let want = card_stock(&shards[src]).saturating_sub(card_stock(&shards[dst])) / 2;
        if want == 0 {
            continue;
        }
        next_id += 1;
        let id = format!("run.{next_id}");
        let crash_at = ctl.random_range(0..4); // 0: after OUT, 1: after IN, 2: after SETTLE, 3: none
        let (t, e) = shards[src]
            .transfer_out(id.as_bytes(), b"card", want, keys[dst])
            .unwrap();
        step(&mut replicas, src, e);
        for c in shards[src].transfer_codes(id.as_bytes()).unwrap() {
            let gone = left.entry(c.clone()).or_default();
            back += usize::from(gone.contains(&dst));
            gone.insert(src);
        }
        check(&shards, &replicas, &handed);
        // A save/load while codes are in flight gives the shard back.
        let back = persist::decode_meta(&persist::encode_meta(&shards[src])).unwrap();
        assert_eq!(
            back.transfers().iter().collect::<Vec<_>>(),
            shards[src].transfers().iter().collect::<Vec<_>>()
        );
        if crash_at == 0 {
            crashes += 1;
            continue;
        }
        let (again, e) = shards[src]
            .transfer_out(id.as_bytes(), b"card", want, keys[dst])
            .unwrap();
        assert_eq!((again, e), (t, None));
        if t > 0 {
            let codes = shards[src].transfer_codes(id.as_bytes()).unwrap().to_vec();
            assert_eq!(codes.len() as u64, t);
            for _ in 0..2 {
                let (_, e) = shards[dst]
                    .transfer_in(id.as_bytes(), b"card", t, keys[src], Some(&refs(&codes)))
                    .unwrap();
                step(&mut replicas, dst, e);
            }
        }
        check(&shards, &replicas, &handed);
        if crash_at == 1 {
            crashes += 1;
            continue;
        }
        for _ in 0..2 {
            let (_, e) = shards[src].transfer_settle(id.as_bytes()).unwrap();
            step(&mut replicas, src, e);
        }
        check(&shards, &replicas, &handed);
    }
    recover(&mut shards, &mut replicas);
    check(&shards, &replicas, &handed);
    assert!(crashes > 50, "the crash points were exercised ({crashes})");
    assert!(next_id > 100, "transfers were made ({next_id})");
    assert!(
        back > 0,
        "codes went back to a shard they had left ({back})"
    );
    assert!(
        handed.len() > 300,
        "codes were handed out ({})",
        handed.len()
    );
    // Save/load of every shard, pools included, gives it back.
    for s in &shards {
        let mut back = persist::decode_meta(&persist::encode_meta(s)).unwrap();
        persist::for_each_chunk(s, |ch| persist::load_chunk(&mut back, ch).unwrap());
        assert_eq!(persist::fingerprint(s), persist::fingerprint(&back));
    }
}

/// A code prize's transfer records replicate and persist with their codes; every truncation
/// of the meta record holding them is refused.
#[test]
fn code_transfers_replicate_and_persist() {
    let mut m = code_shard((3, 4), &names("c", 50));
    let mut r = persist::decode_meta(&persist::encode_meta(&m)).unwrap();
    persist::for_each_chunk(&m, |ch| persist::load_chunk(&mut r, ch).unwrap());
    let incoming = names("in", 6);
    let incoming: Vec<&[u8]> = incoming.iter().map(|c| c.as_bytes()).collect();
    let mut effects = Vec::new();
    effects.extend(m.transfer_out(b"o1", b"card", 3, b"peer").unwrap().1);
    effects.extend(m.transfer_out(b"o2", b"card", 2, b"peer").unwrap().1);
    effects.extend(m.transfer_out(b"o3", b"gold", 2, b"peer").unwrap().1);
    effects.extend(
        m.transfer_in(b"i1", b"card", 6, b"peer", Some(&incoming))
            .unwrap()
            .1,
    );
    effects.extend(m.transfer_settle(b"o1").unwrap().1);
    for e in &effects {
        let d = Effect::decode(&e.encode()).unwrap();
        assert_eq!(&d, e);
        r.apply(&d).unwrap();
    }
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&r));
    assert_eq!(
        r.transfer_codes(b"o2").unwrap(),
        m.transfer_codes(b"o2").unwrap()
    );
    assert_eq!(m.transfers().pending_codes(), 2);
    assert_eq!(card_stock(&m), 50 - 5 + 6);

    let meta = persist::encode_meta(&m);
    let mut back = persist::decode_meta(&meta).unwrap();
    persist::for_each_chunk(&m, |ch| persist::load_chunk(&mut back, ch).unwrap());
    assert_eq!(persist::fingerprint(&m), persist::fingerprint(&back));
    assert_eq!(back.transfers().pending_codes(), 2);
    for cut in 0..meta.len() {
        assert!(persist::decode_meta(&meta[..cut]).is_err());
    }
    for i in 0..meta.len() {
        let mut b = meta.clone();
        b[i] ^= 0x5A;
        let _ = persist::decode_meta(&b);
    }
    // A transfer effect carrying codes for a counted prize is refused and changes nothing.
    let Some(Effect::Transfer { record, stock }) =
        m.transfer_out(b"o4", b"gold", 1, b"peer").unwrap().1
    else {
        panic!("a transfer effect");
    };
    let mut record = *record;
    record.count = 1;
    record.codes = vec![b"x".to_vec()];
    let bad = Effect::Transfer {
        record: Box::new(record),
        stock,
    };
    let before = persist::fingerprint(&r);
    assert!(r.apply(&Effect::decode(&bad.encode()).unwrap()).is_err());
    assert_eq!(persist::fingerprint(&r), before);
}

/// A transfer effect of version 4 and older has no codes: it still decodes, as the version 5
/// one without its (empty) list of codes.
#[test]
fn older_transfer_effects_still_decode() {
    let mut m = shard(10);
    let e = m.transfer_out(b"t", b"gold", 3, b"p").unwrap().1.unwrap();
    let v5 = e.encode();
    // The record's code count (4 bytes) comes before the stock: tag, index and value.
    let at = v5.len() - 13 - 4;
    assert_eq!(v5[at..at + 4], [0, 0, 0, 0]);
    for v in 1..=4u8 {
        let mut old = v5.clone();
        old.drain(at..at + 4);
        old[0] = v;
        assert_eq!(Effect::decode(&old).unwrap(), e, "version {v}");
        // ... and a version 4 effect with a list of codes has bytes too many.
        let mut bad = v5.clone();
        bad[0] = v;
        assert!(Effect::decode(&bad).is_err());
    }
}

/// A code moved out of a shard and later moved back into it is in its pool again (not lost),
/// while LOTTERY.CODES ADD of a code a shard moved out stays refused there; the memory of the
/// codes moved out is saved and replicated.
#[test]
fn codes_moved_back_return_to_the_pool() {
    let mut a = code_shard((3, 4), &names("a", 6));
    let mut b = code_shard((5, 6), &[]);
    let mut ra = persist::decode_meta(&persist::encode_meta(&a)).unwrap();
    persist::for_each_chunk(&a, |ch| persist::load_chunk(&mut ra, ch).unwrap());
    let apply = |e: Option<Effect>, r: &mut Campaign| {
        r.apply(&Effect::decode(&e.unwrap().encode()).unwrap())
            .unwrap();
    };
    let (_, e) = a.transfer_out(b"t1", b"card", 4, b"b").unwrap();
    apply(e, &mut ra);
    let codes = a.transfer_codes(b"t1").unwrap().to_vec();
    b.transfer_in(b"t1", b"card", 4, b"a", Some(&refs(&codes)))
        .unwrap();
    apply(a.transfer_settle(b"t1").unwrap().1, &mut ra);
    assert_eq!(a.add_codes(b"card", &refs(&codes)).unwrap().0, 0);
    // Saved and loaded, the shard still refuses them.
    let mut back = persist::decode_meta(&persist::encode_meta(&a)).unwrap();
    persist::for_each_chunk(&a, |ch| persist::load_chunk(&mut back, ch).unwrap());
    assert_eq!(persist::fingerprint(&a), persist::fingerprint(&back));
    assert_eq!(back.add_codes(b"card", &refs(&codes)).unwrap().0, 0);
    assert_eq!(persist::fingerprint(&a), persist::fingerprint(&ra));
    // b hands out the oldest of them, then sends the other three back.
    let mut g = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    let mut handed = None;
    for i in 0..100 {
        if let Effect::Draw(d) = draw(&mut b, &format!("u{i}"), 1_700_000_000_000 + i, &mut g) {
            if d.code.is_some() {
                handed = d.code;
                break;
            }
        }
    }
    assert_eq!(handed.as_deref(), Some(b"a0000".as_slice()));
    assert_eq!(b.transfer_out(b"t2", b"card", 9, b"a").unwrap().0, 3);
    let again = b.transfer_codes(b"t2").unwrap().to_vec();
    assert_eq!(strs(&again), ["a0001", "a0002", "a0003"]);
    let (_, e) = a
        .transfer_in(b"t2", b"card", 3, b"b", Some(&refs(&again)))
        .unwrap();
    apply(e, &mut ra);
    assert_eq!(persist::fingerprint(&a), persist::fingerprint(&ra));
    // Back in a's pool, behind the codes it kept; a0000 (handed out on b) stays moved out.
    assert_eq!(unused(&a), ["a0004", "a0005", "a0001", "a0002", "a0003"]);
    assert_eq!(card_stock(&a), 5);
    let p = &a.prizes()[a.prize_index(b"card").unwrap()];
    assert_eq!(a.codes().moved(p.name), 1);
    assert_eq!(a.add_codes(b"card", &[b"a0000".as_slice()]).unwrap().0, 0);
    // b now refuses the three it moved out, as a did.
    assert_eq!(b.add_codes(b"card", &refs(&again)).unwrap().0, 0);
}
