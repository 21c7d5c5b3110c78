//! What can be saved can be loaded: random reachable campaign states, pushed to the limits
//! the commands accept (longest keys, ids, request ids, peers; many tables, transfers and
//! drains), each saved and loaded back (RDB/DUMP: meta + chunks; AOF rewrite: effects), and
//! rebuilt on a replica from the effects alone. Every way must give the same fingerprint. No
//! Redis: the module's data type callbacks are thin wrappers over these calls.

use lottery_engine::apply::created_campaign;
use lottery_engine::campaign::*;
use lottery_engine::draw::DrawKey;
use lottery_engine::effect::Effect;
use lottery_engine::keyslot::default_stream;
use lottery_engine::ledger::MAX_PEER_LEN;
use lottery_engine::limits::{
    MAX_ID_LEN, MAX_KEY_LEN, MAX_PRIZES, MAX_REQID_LEN, MAX_STREAM_KEY_LEN,
};
use lottery_engine::parse::configure_args;
use lottery_engine::persist;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus as Gen;

const T0: i64 = 1_700_000_000_000;

/// Random bytes of length `len`: arbitrary bytes, or UTF-8 from every plane.
fn id(g: &mut Gen, len: usize) -> Vec<u8> {
    if g.random_bool(0.5) {
        (0..len).map(|_| g.random()).collect()
    } else {
        let mut s = String::new();
        while s.len() < len {
            let c = match g.random_range(0..4) {
                0 => char::from_u32(g.random_range(0x20..0x7f)),
                1 => char::from_u32(g.random_range(0x4e00..0x9fff)),
                2 => char::from_u32(g.random_range(0x1f300..0x1faff)),
                _ => char::from_u32(g.random_range(0x80..0x800)),
            }
            .unwrap_or('x');
            if s.len() + c.len_utf8() > len {
                break;
            }
            s.push(c);
        }
        if s.is_empty() {
            s.push('x');
        }
        s.into_bytes()
    }
}

/// `id` of an extreme or random length up to `max`.
fn rid(g: &mut Gen, max: usize) -> Vec<u8> {
    let n = extreme_len(g, max);
    id(g, n)
}

fn extreme_len(g: &mut Gen, max: usize) -> usize {
    match g.random_range(0..4) {
        0 => 1,
        1 => max,
        _ => g.random_range(1..=max),
    }
}

/// CONFIGURE options for a table of `n` new prizes (unique ids), as a client sends them.
fn table_args(g: &mut Gen, n: usize, tag: usize) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    for i in 0..n {
        let mut pid = rid(g, MAX_ID_LEN - 12);
        pid.extend_from_slice(format!("#{tag}.{i}").as_bytes());
        args.push(b"PRIZE".to_vec());
        args.push(pid);
        args.push(g.random_range(0..5u32).to_string().into_bytes());
        args.push(if g.random_bool(0.2) {
            b"INF".to_vec()
        } else {
            g.random_range(0..1000u64).to_string().into_bytes()
        });
    }
    args.extend([b"NOTHING".to_vec(), b"1".to_vec()]);
    args
}

fn change(args: &[Vec<u8>]) -> ConfigChange {
    let opts: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    configure_args(&opts).unwrap()
}

/// Saves as the RDB does and loads back.
fn rdb_round_trip(c: &Campaign) -> Campaign {
    let meta = persist::encode_meta(c);
    let mut back = persist::decode_meta(&meta).expect("meta loads");
    persist::for_each_chunk(c, |chunk| {
        persist::load_chunk(&mut back, chunk).expect("chunk loads");
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

struct Pair {
    master: Campaign,
    replica: Option<Campaign>,
}

impl Pair {
    fn effect(&mut self, e: Effect) {
        let e = Effect::decode(&e.encode()).expect("effect decodes");
        match &mut self.replica {
            Some(r) => r.apply(&e).expect("effect applies"),
            None => self.replica = Some(created_campaign(&e).unwrap().expect("creates")),
        }
    }
}

/// Returns whether the campaign ended VERIFIABLE.
fn run(seed: u64) -> bool {
    let mut g = Gen::seed_from_u64(seed);
    let key = rid(&mut g, MAX_KEY_LEN);
    let n = g.random_range(1..40);
    let mut args = table_args(&mut g, n, 0);
    if g.random_bool(0.3) {
        // An explicit stream of the longest length.
        let mut s = b"{x}".to_vec();
        s.resize(MAX_KEY_LEN, b's');
        args.extend([b"STREAM".to_vec(), s]);
    }
    args.extend([b"MAXWINS".to_vec(), b"INF".to_vec()]);
    let seeds = (g.random(), g.random());
    let c = Campaign::create(&change(&args), seeds, default_stream(&key)).unwrap();
    let mut p = Pair {
        master: c,
        replica: None,
    };
    p.effect(Effect::Configure {
        created: Some((seeds, default_stream(&key))),
        args,
    });
    let mut gen = Gen::seed_from_u64(seed ^ 0x5eed);
    let mut now = T0;
    for step in 0..400 {
        now += g.random_range(0..5_000);
        match g.random_range(0..13) {
            0..=4 => {
                let user = rid(&mut g, 64);
                let u = p.master.user_key(&user);
                let rk = if g.random_bool(0.5) {
                    Some(p.master.request_key(u, &rid(&mut g, MAX_REQID_LEN)))
                } else {
                    None
                };
                let ck = if g.random_bool(0.3) {
                    Some(p.master.client_key(&rid(&mut g, MAX_ID_LEN)))
                } else {
                    None
                };
                let (plan, picked) = if p.master.verifiable().is_some() {
                    let fresh: [u8; 32] = g.random();
                    let dk = DrawKey {
                        key: &key,
                        fresh_seed: Some(&fresh),
                    };
                    let r = p
                        .master
                        .plan_draw_verified(u, rk, ck, None, now, &mut gen, dk);
                    if r.1.is_some_and(|v| v.new_epoch) {
                        let e = p.master.start_epoch(fresh, None);
                        p.effect(e);
                    }
                    r
                } else {
                    (p.master.plan_draw_from(u, rk, ck, now, &mut gen), None)
                };
                if picked.is_some_and(|v| v.publish) {
                    p.master.note_published(None);
                }
                let e = match plan {
                    Plan::Replay(_) | Plan::Reject(..) => p.master.count(&plan, now),
                    Plan::Pass { prize, seq, .. } => {
                        let w = prize.map(|_| StreamId {
                            ms: now as u64,
                            seq,
                        });
                        p.master.commit_draw(u, rk, now, &plan, w).1
                    }
                };
                p.effect(e);
            }
            5 => {
                // A new table: ids retire, names accumulate.
                let n = g.random_range(1..60);
                let args = table_args(&mut g, n, step);
                if p.master.configure(&change(&args)).is_ok() {
                    p.effect(Effect::Configure {
                        created: None,
                        args,
                    });
                }
            }
            6 => {
                let (_, _, e) = p.master.drain();
                p.effect(e);
            }
            7 => {
                let pid = p.master.prizes()[g.random_range(0..p.master.prizes().len())]
                    .id
                    .clone();
                let tid = rid(&mut g, 128);
                let peer = rid(&mut g, MAX_PEER_LEN);
                if let Ok((_, Some(e))) = p.master.transfer_out(&tid, &pid, 1, &peer) {
                    p.effect(e);
                }
                if g.random_bool(0.5) {
                    if let Ok((_, Some(e))) = p.master.transfer_settle(&tid) {
                        p.effect(e);
                    }
                }
            }
            8 => {
                let u = p.master.user_key(&id(&mut g, 8));
                let e = p.master.ban(u, now + g.random_range(0..100_000));
                p.effect(e);
            }
            9 => {
                let u = p.master.user_key(&id(&mut g, 8));
                let e = p.master.grant(u, g.random_range(0..u32::MAX), None).1;
                p.effect(e);
            }
            10 => {
                let args: Vec<Vec<u8>> = [
                    &b"CLIENTLIMIT"[..],
                    b"3",
                    b"60000",
                    b"PENALTY",
                    b"1000",
                    b"ADMIT",
                    b"0.5",
                    b"RATE",
                    b"1000",
                ]
                .iter()
                .map(|a| a.to_vec())
                .collect();
                p.master.configure(&change(&args)).unwrap();
                p.effect(Effect::Configure {
                    created: None,
                    args,
                });
            }
            11 => {
                // VERIFIABLE: turned on (an epoch starts), its log changed, a new epoch, a
                // reveal.
                let log = if g.random_bool(0.5) {
                    &b"WINS"[..]
                } else {
                    b"ALL"
                };
                let args = vec![b"VERIFIABLE".to_vec(), b"LOG".to_vec(), log.to_vec()];
                let ch = change(&args);
                let starts = p.master.starts_verifiable(&ch);
                match g.random_range(0..3) {
                    0 => {
                        p.master.configure(&ch).unwrap();
                        p.effect(Effect::Configure {
                            created: None,
                            args,
                        });
                        if starts {
                            let e = p.master.start_epoch(g.random(), ch.verifiable.flatten());
                            p.effect(e);
                        }
                    }
                    1 if !starts => {
                        let e = p.master.start_epoch(g.random(), None);
                        p.effect(e);
                    }
                    _ => {
                        if let Some(e) = p.master.reveal_seed() {
                            p.effect(e);
                        }
                    }
                }
            }
            _ => {
                let e = p.master.set_paused(g.random_bool(0.5));
                p.effect(e);
            }
        }
        if step % 100 == 99 || step == 399 {
            let want = persist::fingerprint(&p.master);
            assert_eq!(
                persist::fingerprint(&rdb_round_trip(&p.master)),
                want,
                "seed {seed}: RDB"
            );
            assert_eq!(
                persist::fingerprint(&aof_round_trip(&p.master)),
                want,
                "seed {seed}: AOF"
            );
            let replica = p.replica.as_ref().unwrap();
            assert_eq!(persist::fingerprint(replica), want, "seed {seed}: replica");
        }
    }
    // COPY to the longest key follows it; the copy still saves and loads.
    let mut copy = p.master.clone();
    let to = vec![b'k'; MAX_KEY_LEN];
    copy.follow_key(&to);
    assert_eq!(copy.verifiable(), p.master.verifiable());
    assert!(copy.rules().stream.len() <= MAX_STREAM_KEY_LEN);
    assert_eq!(
        persist::fingerprint(&rdb_round_trip(&copy)),
        persist::fingerprint(&copy)
    );
    p.master.verifiable().is_some()
}

#[test]
fn random_extreme_states_round_trip_every_way() {
    let verifiable = (0..12).filter(|&seed| run(seed)).count();
    assert!(verifiable >= 6, "{verifiable} of 12 runs ended VERIFIABLE");
}

/// A meta record of version 5 (no VERIFIABLE state at its end) loads as not verifiable; the
/// same state in version 6 keeps it.
#[test]
fn a_version_5_record_loads_as_not_verifiable() {
    let args: Vec<Vec<u8>> = [&b"PRIZE"[..], b"a", b"1", b"5", b"NOTHING", b"3"]
        .iter()
        .map(|a| a.to_vec())
        .collect();
    let mut c = Campaign::create(&change(&args), (1, 2), b"{c}:wins".to_vec()).unwrap();
    let plain = persist::encode_meta(&c);
    assert_eq!(plain[0], 6);
    assert_eq!(plain.last(), Some(&0));
    let mut v5 = plain[..plain.len() - 1].to_vec();
    v5[0] = 5;
    let back = persist::decode_meta(&v5).expect("a version 5 record loads");
    assert!(back.verifiable().is_none());
    assert_eq!(persist::encode_meta(&back), plain);
    // A version 5 record with the version 6 tail is refused (trailing bytes).
    c.start_epoch([7; 32], None);
    let mut v = persist::encode_meta(&c);
    v[0] = 5;
    assert!(persist::decode_meta(&v).is_err());
    v[0] = 6;
    let back = persist::decode_meta(&v).unwrap();
    let s = back.verifiable().unwrap();
    assert_eq!(
        (s.epoch, s.seed, s.from_draw, s.revealed),
        (1, [7; 32], 1, false)
    );
}

#[test]
fn the_longest_key_gives_a_default_stream_the_loader_accepts() {
    for key in [vec![b'k'; MAX_KEY_LEN], {
        let mut k = b"{t}".to_vec();
        k.resize(MAX_KEY_LEN, b'x');
        k
    }] {
        let s = default_stream(&key);
        assert!(s.len() <= MAX_STREAM_KEY_LEN);
        let ch = change(&[
            b"PRIZE".to_vec(),
            b"a".to_vec(),
            b"1".to_vec(),
            b"1".to_vec(),
        ]);
        let c = Campaign::create(&ch, (1, 2), s).unwrap();
        assert_eq!(
            persist::fingerprint(&rdb_round_trip(&c)),
            persist::fingerprint(&c)
        );
    }
}

/// A drain batch names every prize with pending sales, current or retired: however many
/// tables came and went, the loader takes the batch back.
#[test]
fn a_drain_batch_of_many_retired_prizes_loads() {
    let mut g = Gen::seed_from_u64(99);
    let mut args = table_args(&mut g, 3000, 0);
    args.extend([b"MAXWINS".to_vec(), b"INF".to_vec()]);
    let mut c = Campaign::create(&change(&args), (1, 2), b"{c}:wins".to_vec()).unwrap();
    for t in 1..=60 {
        for p in c.prizes_mut().iter_mut() {
            p.pending = 1;
        }
        let args = table_args(&mut g, 3000, t);
        c.configure(&change(&args)).unwrap();
    }
    let (_, batch, e) = c.drain();
    assert!(batch.len() > 2 * MAX_PRIZES, "{}", batch.len());
    let back = Effect::decode(&e.encode()).unwrap();
    assert_eq!(back, e);
    assert_eq!(
        persist::fingerprint(&rdb_round_trip(&c)),
        persist::fingerprint(&c)
    );
}
