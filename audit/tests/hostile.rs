//! Entries of any shape never make the audit panic: random fields drawn from the names and
//! values the checks look at, and from hostile bytes, in random order.

use lottery_audit::check::audit;
use lottery_audit::construction::{commitment, hex};
use lottery_audit::entry::{Entry, Id};

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, from: &[&'a [u8]]) -> &'a [u8] {
        from[(self.next() % from.len() as u64) as usize]
    }
}

#[test]
fn random_entries_never_panic() {
    let seed = [3u8; 32];
    let c = commitment(&seed);
    let h = hex(&seed);
    let names: &[&[u8]] = &[
        b"type",
        b"epoch",
        b"commitment",
        b"from_draw",
        b"tier",
        b"draw",
        b"user",
        b"outcome",
        b"pick",
        b"rule",
        b"seed",
        b"prize",
        b"NOTHING",
        b"gold",
        b"",
    ];
    let values: Vec<&[u8]> = vec![
        b"epoch",
        b"table",
        b"draw",
        b"reveal",
        b"win",
        b"0",
        b"1",
        b"2",
        b"01",
        b"-1",
        b"18446744073709551615",
        b"18446744073709551616",
        b"9223372036854775808",
        b"",
        b"gold",
        b"NOTHING",
        b"vip",
        b"soldout",
        b"fallback",
        b"redraw",
        b"guarantee",
        b"\xff\x00\\x",
        c.as_bytes(),
        h.as_bytes(),
        b"ABCDEF",
        "🎁".as_bytes(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let n = (rng.next() % 60) as usize;
        let mut entries = Vec::new();
        for i in 0..n {
            let k = (rng.next() % 12) as usize;
            let mut fields = Vec::new();
            if !rng.next().is_multiple_of(4) {
                fields.push((b"type".to_vec(), rng.pick(&values).to_vec()));
            }
            for _ in 0..k {
                fields.push((rng.pick(names).to_vec(), rng.pick(&values).to_vec()));
            }
            entries.push(Entry {
                id: Id(round, i as u64),
                fields,
            });
        }
        let seeds = vec![(1, h.clone()), (rng.next() % 3, "ab".repeat(32))];
        let r = audit(b"k", &entries, &seeds, &[]);
        assert_eq!(r.entries_read, n);
        assert!(r.listed.len() <= 10);
        assert!(r.draws_checked + r.draws_unverifiable <= r.draws);
        let _ = lottery_audit::report::text(&r);
        let _ = lottery_audit::report::json(&r);
    }
}

#[test]
fn huge_values_are_shown_short() {
    let big = vec![0xffu8; 1 << 20];
    let e = Entry {
        id: Id(1, 0),
        fields: vec![
            (b"user".to_vec(), big.clone()),
            (b"prize".to_vec(), big),
            (b"draw".to_vec(), b"5".to_vec()),
        ],
    };
    let epoch = Entry {
        id: Id(0, 0),
        fields: vec![
            (b"type".to_vec(), b"epoch".to_vec()),
            (b"epoch".to_vec(), b"1".to_vec()),
            (b"commitment".to_vec(), commitment(&[1; 32]).into_bytes()),
            (b"from_draw".to_vec(), b"1".to_vec()),
        ],
    };
    let f = |x: &[(&str, &[u8])]| {
        x.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect::<Vec<_>>()
    };
    let table = Entry {
        id: Id(0, 1),
        fields: f(&[
            ("type", b"table"),
            ("from_draw", b"1"),
            ("tier", b""),
            ("NOTHING", b"1"),
        ]),
    };
    let draw = Entry {
        id: Id(1, 1),
        fields: f(&[
            ("type", b"draw"),
            ("draw", b"5"),
            ("user", b"someone else"),
            ("outcome", b""),
            ("pick", b""),
        ]),
    };
    let r = audit(b"k", &[epoch, table, e, draw], &[], &[]);
    assert_eq!(r.mismatches, 1, "{:?}", r.listed);
    assert!(r.listed[0].1.contains("differs from its draw entry"));
    assert!(r.listed[0].1.contains("(1048576 bytes)"));
    assert!(r.listed[0].1.len() < 2000, "{}", r.listed[0].1.len());
}
