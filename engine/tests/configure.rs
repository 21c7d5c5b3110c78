//! CONFIGURE on large prize tables: every lookup by prize id stays consistent through
//! creation, no-op changes, re-sent and all-new tables, PACE on every prize, a save and a
//! load; the number of distinct ids a campaign keeps is bounded by `MAX_NAMES`, enforced by
//! CONFIGURE with an error, and whatever CONFIGURE accepts loads again.

use lottery_engine::campaign::*;
use lottery_engine::configure::ConfigError;
use lottery_engine::limits::{MAX_NAMES, MAX_PRIZES};
use lottery_engine::parse::configure_args;
use lottery_engine::persist;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

fn table(prefix: &str, n: usize, stock: Option<u64>) -> Vec<PrizeSpec> {
    (0..n)
        .map(|i| PrizeSpec {
            id: format!("{prefix}{i}").into_bytes(),
            weight: 1 + (i % 7) as u32,
            stock,
            after: 0,
            codes: false,
        })
        .collect()
}

fn with_prizes(p: Vec<PrizeSpec>) -> ConfigChange {
    ConfigChange {
        prizes: Some(p),
        ..Default::default()
    }
}

/// What the lookups by id must agree with: the table, the retired prizes (sorted by id) and
/// the interned names.
fn check_index(c: &Campaign) {
    for (i, p) in c.prizes().iter().enumerate() {
        assert_eq!(c.prize_index(&p.id), Some(i));
        assert_eq!(c.name_of(&p.id), Some(p.name));
        assert_eq!(c.name(p.name), Some(p.id.as_slice()));
    }
    for w in c.retired().windows(2) {
        assert!(w[0].id < w[1].id, "retired prizes sorted by id, unique");
    }
    for p in c.retired() {
        assert_eq!(c.prize_index(&p.id), None);
        assert_eq!(c.name_of(&p.id), Some(p.name));
        assert_eq!(c.name(p.name), Some(p.id.as_slice()));
    }
    assert!(c.names().len() <= MAX_NAMES);
    assert!(c.prizes().len() + c.retired().len() <= c.names().len());
}

/// Saves and loads the meta record: the same bytes again, the same lookups.
fn roundtrip(c: &Campaign) -> Campaign {
    let meta = persist::encode_meta(c);
    let d = persist::decode_meta(&meta).expect("what CONFIGURE accepted loads");
    assert_eq!(persist::encode_meta(&d), meta);
    check_index(&d);
    d
}

#[test]
fn full_table_sequence() {
    let n = MAX_PRIZES;
    let mut c =
        Campaign::create(&with_prizes(table("p", n, Some(10))), (1, 2), b"s".to_vec()).unwrap();
    assert_eq!(c.prizes().len(), n);
    assert_eq!(c.names().len(), n);
    check_index(&c);
    // Counters to carry: sold and pending on a spread of prizes.
    for i in (0..n).step_by(97) {
        c.prizes_mut()[i].sold = i as u64 + 1;
        c.prizes_mut()[i].pending = 1;
    }
    let before: Vec<Prize> = c.prizes().to_vec();

    // A change that leaves the table alone.
    let change = ConfigChange {
        nothing: Some(5),
        ..Default::default()
    };
    c.configure(&change).unwrap();
    assert_eq!(c.rules().nothing, 5);
    assert_eq!(c.prizes(), before);
    assert!(c.retired().is_empty());
    check_index(&c);

    // The same table again: nothing moves, counters kept.
    c.configure(&with_prizes(table("p", n, Some(10)))).unwrap();
    assert_eq!(c.prizes(), before);
    assert_eq!(c.names().len(), n);
    assert!(c.retired().is_empty());
    check_index(&c);

    // The same table in reverse order: counters follow the ids.
    let mut rev = table("p", n, Some(10));
    rev.reverse();
    c.configure(&with_prizes(rev)).unwrap();
    for (i, p) in c.prizes().iter().enumerate() {
        assert_eq!(*p, before[n - 1 - i]);
    }
    check_index(&c);
    c.configure(&with_prizes(table("p", n, Some(10)))).unwrap();
    assert_eq!(c.prizes(), before);

    // PACE on every prize, as the command parser reads it.
    let mut args: Vec<Vec<u8>> = vec![b"WINDOW".to_vec(), b"1000".to_vec(), b"2000".to_vec()];
    for p in &before {
        args.extend([b"PACE".to_vec(), p.id.clone(), b"LINEAR".to_vec()]);
    }
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let change = configure_args(&argv).unwrap();
    assert_eq!(change.pace.len(), n);
    c.configure(&change).unwrap();
    assert!(c.prizes().iter().all(|p| p.paced));
    // PACE given twice for one prize is refused, at the end of a long list too.
    let mut twice = argv.clone();
    twice.extend([b"PACE".as_slice(), b"p0", b"NONE"]);
    assert_eq!(
        configure_args(&twice).unwrap_err(),
        "PACE given twice for prize 'p0'"
    );
    // Pacing stays by id through a re-sent table; INF stock stops it.
    let mut t = table("p", n, Some(10));
    t[3].stock = None;
    c.configure(&with_prizes(t)).unwrap();
    assert!(!c.prizes()[3].paced);
    assert_eq!(c.prizes().iter().filter(|p| p.paced).count(), n - 1);
    check_index(&c);
    let d = roundtrip(&c);
    assert_eq!(d.prizes(), c.prizes());

    // An all-new table: every old prize retires with its counters.
    c.configure(&with_prizes(table("q", n, Some(3)))).unwrap();
    assert_eq!(c.prizes().len(), n);
    assert!(c.prizes().iter().all(|p| p.sold == 0 && !p.paced));
    assert_eq!(c.retired().len(), n);
    assert_eq!(c.names().len(), 2 * n);
    for b in &before {
        let r = &c.retired()[c.retired().binary_search_by(|p| p.id.cmp(&b.id)).unwrap()];
        assert_eq!((r.sold, r.pending, r.name), (b.sold, b.pending, b.name));
        assert_eq!((r.weight, r.stock, r.paced), (0, Some(0), false));
    }
    check_index(&c);
    roundtrip(&c);

    // Half of the old ids come back: their sold counts with them, the rest stays retired.
    let mut mixed = table("q", n / 2, Some(3));
    mixed.extend(table("p", n, Some(4)).into_iter().step_by(2));
    c.configure(&with_prizes(mixed)).unwrap();
    assert_eq!(c.names().len(), 2 * n);
    assert_eq!(c.retired().len(), n);
    for p in c.prizes().iter().filter(|p| p.id.starts_with(b"p")) {
        let b = &before[c.name_of(&p.id).unwrap() as usize - 1];
        assert_eq!((&p.id, p.sold, p.pending), (&b.id, b.sold, b.pending));
        assert_eq!(p.stock, Some(4));
    }
    check_index(&c);
    roundtrip(&c);

    // A prize index works for RESTOCK and FALLBACK on any prize of the table.
    let last = c.prizes().last().unwrap().id.clone();
    assert_eq!(c.restock(&last, 1).unwrap().0, 5);
    c.configure(&ConfigChange {
        soldout: Some((SoldOut::Fallback, Some(last.clone()))),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        c.configure(&ConfigChange {
            soldout: Some((SoldOut::Fallback, Some(b"q40000".to_vec()))),
            ..Default::default()
        }),
        Err(ConfigError::UnknownFallback(b"q40000".to_vec()))
    );
}

#[test]
fn names_are_bounded() {
    let n = MAX_PRIZES;
    let tables = MAX_NAMES / n;
    assert_eq!(tables * n, MAX_NAMES);
    let mut c = Campaign::create(
        &with_prizes(table("t0-", n, Some(1))),
        (1, 2),
        b"s".to_vec(),
    )
    .unwrap();
    for k in 1..tables {
        c.configure(&with_prizes(table(&format!("t{k}-"), n, Some(1))))
            .unwrap();
    }
    assert_eq!(c.names().len(), MAX_NAMES);
    assert_eq!(c.retired().len(), MAX_NAMES - n);
    check_index(&c);
    roundtrip(&c);
    let meta = persist::encode_meta(&c);

    // One more new id is refused, and changes nothing.
    let mut t = table(&format!("t{}-", tables - 1), n, Some(1));
    t[7].id = b"brand-new".to_vec();
    assert_eq!(c.configure(&with_prizes(t)), Err(ConfigError::TooManyNames));
    let more = with_prizes(table("u", n, Some(1)));
    assert_eq!(c.configure(&more), Err(ConfigError::TooManyNames));
    assert!(ConfigError::TooManyNames
        .to_string()
        .contains(&MAX_NAMES.to_string()));
    assert_eq!(persist::encode_meta(&c), meta);

    // Ids the campaign already had are still fine, in any mix.
    let mut old: Vec<PrizeSpec> = table("t0-", n / 2, Some(2));
    old.extend(table("t2-", n / 2, Some(2)));
    c.configure(&with_prizes(old)).unwrap();
    assert_eq!(c.names().len(), MAX_NAMES);
    check_index(&c);

    // A DRAIN batch naming every prize of four tables saves and loads.
    for p in c.all_prizes_mut() {
        p.pending = 1;
    }
    let (_, batch, _) = c.drain();
    assert_eq!(batch.len(), MAX_NAMES);
    let d = roundtrip(&c);
    assert_eq!(d.last_batch().len(), MAX_NAMES);
}

#[test]
fn loader_refuses_more_names_than_configure_allows() {
    let mut c =
        Campaign::create(&with_prizes(table("a", 2, Some(1))), (1, 2), b"s".to_vec()).unwrap();
    // Forge a record with one name too many (CONFIGURE cannot make one).
    c.names_mut()
        .extend((0..MAX_NAMES - 1).map(|i| format!("x{i}").into_bytes()));
    let meta = persist::encode_meta(&c);
    assert!(persist::decode_meta(&meta).is_err());
    c.names_mut().pop();
    let meta = persist::encode_meta(&c);
    assert!(persist::decode_meta(&meta).is_ok());
}

#[test]
fn loader_refuses_duplicate_names() {
    let mut c =
        Campaign::create(&with_prizes(table("a", 2, Some(1))), (1, 2), b"s".to_vec()).unwrap();
    c.names_mut().push(b"a0".to_vec());
    assert!(persist::decode_meta(&persist::encode_meta(&c)).is_err());
}

/// Random tables over a small set of ids against a plain model of what CONFIGURE keeps:
/// counters by id, retired prizes sorted by id, names in order of first use.
#[test]
fn random_tables_match_a_model() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let ids: Vec<Vec<u8>> = (0..40).map(|i| format!("id{i}").into_bytes()).collect();
    let mut c: Option<Campaign> = None;
    // Model: counters (sold, pending) by id; names in order.
    let mut counters: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut names: Vec<Vec<u8>> = Vec::new();
    for round in 0..400 {
        let mut pick: Vec<Vec<u8>> = ids
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .cloned()
            .collect();
        if pick.is_empty() {
            pick.push(ids[round % ids.len()].clone());
        }
        // Shuffle.
        for i in (1..pick.len()).rev() {
            pick.swap(i, rng.random_range(0..=i));
        }
        let specs: Vec<PrizeSpec> = pick
            .iter()
            .map(|id| PrizeSpec {
                id: id.clone(),
                weight: 1,
                stock: Some(rng.random_range(0..5)),
                after: 0,
                codes: false,
            })
            .collect();
        match c.as_mut() {
            None => c = Some(Campaign::create(&with_prizes(specs), (5, 6), b"s".to_vec()).unwrap()),
            Some(c) => c.configure(&with_prizes(specs)).unwrap(),
        }
        let c = c.as_mut().unwrap();
        for id in &pick {
            if !names.contains(id) {
                names.push(id.clone());
            }
        }
        assert_eq!(c.names(), names);
        let mut expect_retired: Vec<&Vec<u8>> =
            names.iter().filter(|id| !pick.contains(id)).collect();
        expect_retired.sort();
        let got: Vec<&Vec<u8>> = c.retired().iter().map(|p| &p.id).collect();
        assert_eq!(got, expect_retired);
        for p in c.prizes().iter().chain(c.retired().iter()) {
            assert_eq!(
                (p.sold, p.pending),
                counters.get(&p.id).copied().unwrap_or((0, 0))
            );
        }
        assert_eq!(
            c.prizes().iter().map(|p| &p.id).collect::<Vec<_>>(),
            pick.iter().collect::<Vec<_>>()
        );
        check_index(c);
        if round % 50 == 0 {
            *c = roundtrip(c);
        }
        // New counters for the next round.
        for p in c.prizes_mut().iter_mut() {
            p.sold += rng.random_range(0..3);
            p.pending = rng.random_range(0..3);
            counters.insert(p.id.clone(), (p.sold, p.pending));
        }
    }
}
