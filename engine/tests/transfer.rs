//! LOTTERY.TRANSFER in the engine: idempotent steps, stock conserved across crashes at every
//! step, replicated and persisted like everything else. No Redis.

use lottery_engine::admin::OpError;
use lottery_engine::alias::Uniform;
use lottery_engine::campaign::*;
use lottery_engine::effect::Effect;
use lottery_engine::ledger::{Direction, TransferState, MAX_TRANSFERS};
use lottery_engine::persist;
use lottery_engine::transfer::TransferError;
use rand::{Rng, SeedableRng};

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
    assert!(b.transfer_in(b"x1", b"gold", 4, b"a").unwrap().0);
    assert_eq!(
        b.transfer_in(b"x1", b"gold", 4, b"a").unwrap(),
        (false, None)
    );
    assert!(matches!(
        b.transfer_in(b"x1", b"gold", 5, b"a"),
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
        b.transfer_in(b"x5", b"gold", i64::MAX as u64, b"a"),
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
                        .transfer_in(&t.id, &t.prize, t.count, names[i])
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
                .transfer_in(id.as_bytes(), b"gold", t, names[src])
                .unwrap();
            shards[dst]
                .transfer_in(id.as_bytes(), b"gold", t, names[src])
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
                m.transfer_in(format!("i{i}").as_bytes(), b"gold", 2, b"peer")
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
