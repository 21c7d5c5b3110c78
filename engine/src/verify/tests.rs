//! The construction against docs/verify-vectors.json (every vector), and the exactness of the
//! pick and of "uniform below n".

use super::*;

/// A JSON value, as far as the vectors need (a tiny parser for a trusted file).
#[derive(Debug)]
enum J {
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, k: &str) -> &J {
        match self {
            J::Obj(v) => &v.iter().find(|(n, _)| n == k).expect(k).1,
            _ => panic!("not an object"),
        }
    }
    fn arr(&self) -> &[J] {
        match self {
            J::Arr(v) => v,
            _ => panic!("not an array"),
        }
    }
    /// A number, or a string holding one.
    fn u64(&self) -> u64 {
        match self {
            J::Num(s) | J::Str(s) => s.parse().expect("integer"),
            _ => panic!("not a number"),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        match self {
            J::Str(s) => (0..s.len() / 2)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect(),
            _ => panic!("not a string"),
        }
    }
}

fn parse(s: &[u8], i: &mut usize) -> J {
    let ws = |i: &mut usize| {
        while s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    ws(i);
    match s[*i] {
        b'{' | b'[' => {
            let obj = s[*i] == b'{';
            *i += 1;
            let (mut o, mut a) = (Vec::new(), Vec::new());
            loop {
                ws(i);
                if s[*i] == b'}' || s[*i] == b']' {
                    *i += 1;
                    break;
                }
                if obj {
                    let J::Str(k) = parse(s, i) else { panic!() };
                    ws(i);
                    assert_eq!(s[*i], b':');
                    *i += 1;
                    o.push((k, parse(s, i)));
                } else {
                    a.push(parse(s, i));
                }
                ws(i);
                if s[*i] == b',' {
                    *i += 1;
                }
            }
            if obj {
                J::Obj(o)
            } else {
                J::Arr(a)
            }
        }
        b'"' => {
            let start = *i + 1;
            *i = start + s[start..].iter().position(|&c| c == b'"').unwrap();
            let v = String::from_utf8(s[start..*i].to_vec()).unwrap();
            *i += 1;
            J::Str(v)
        }
        _ => {
            let start = *i;
            while s[*i].is_ascii_digit() || s[*i] == b'-' {
                *i += 1;
            }
            J::Num(String::from_utf8(s[start..*i].to_vec()).unwrap())
        }
    }
}

fn vectors() -> J {
    let text = include_str!("../../../docs/verify-vectors.json");
    parse(text.as_bytes(), &mut 0)
}

fn seed_of(v: &J) -> [u8; SEED_LEN] {
    v.get("seed").bytes().try_into().unwrap()
}

#[test]
fn words_match_the_vectors() {
    let v = vectors();
    let words = v.get("words").arr();
    assert!(words.len() >= 30);
    for t in words {
        let (seed, key) = (seed_of(t), t.get("key_hex").bytes());
        let mut w = Words::new(&seed, &key, t.get("draw").u64());
        for (k, expect) in t.get("w").arr().iter().enumerate() {
            assert_eq!(w.word(k as u64), expect.u64(), "{t:?} k={k}");
            assert_eq!(w.next_word(), expect.u64());
        }
    }
}

#[test]
fn uniform_matches_the_vectors() {
    let v = vectors();
    let u = v.get("uniform").arr();
    assert!(!u.is_empty());
    for t in u {
        let (seed, key) = (seed_of(t), t.get("key_hex").bytes());
        let n = t.get("n").u64();
        let mut w = Words::new(&seed, &key, t.get("draw").u64());
        assert_eq!(w.below(n), t.get("first").u64(), "{t:?}");
        assert_eq!(w.below(n), t.get("second").u64(), "{t:?}");
    }
}

#[test]
fn picks_match_the_vectors() {
    let v = vectors();
    let p = v.get("picks").arr();
    assert!(!p.is_empty());
    for t in p {
        let (seed, key) = (seed_of(t), t.get("key_hex").bytes());
        let weights: Vec<u32> = t
            .get("weights")
            .arr()
            .iter()
            .map(|w| w.u64() as u32)
            .collect();
        let prefix = prefix_sums(&weights);
        let mut w = Words::new(&seed, &key, t.get("draw").u64());
        let total = *prefix.last().unwrap();
        let x = w.below(total);
        assert_eq!(x, t.get("x").u64(), "{t:?}");
        assert_eq!(prefix_pick(&prefix, x), Some(t.get("entry").u64() as usize));
        let mut w = Words::new(&seed, &key, t.get("draw").u64());
        assert_eq!(
            table_pick(&prefix, &mut w),
            Some(t.get("entry").u64() as usize)
        );
    }
}

#[test]
fn hmac_matches_rfc_4231() {
    // RFC 4231 test case 2 (a short key) and 6 (a key longer than the block).
    let m = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let mut h = [0; 64];
    hex_into(&m, &mut h);
    assert_eq!(
        &h[..],
        b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let m = hmac_sha256(
        &[0xaa; 131],
        b"Test Using Larger Than Block-Size Key - Hash Key First",
    );
    hex_into(&m, &mut h);
    assert_eq!(
        &h[..],
        b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn commitment_and_hex() {
    let seed = [0u8; 32];
    // SHA-256 of 32 zero bytes.
    assert_eq!(
        &commitment(&seed)[..],
        b"66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    );
    let s: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
    assert_eq!(parse_hex::<32>(&seed_hex(&s)), Some(s));
    assert_eq!(parse_hex::<32>(b"zz"), None);
    assert_eq!(parse_hex::<1>(b"g0"), None);
    assert_eq!(parse_hex::<1>(b"Ab"), Some([0xab]));
    let mut b = [0; 20];
    assert_eq!(decimal(0, &mut b), b"0");
    assert_eq!(decimal(u64::MAX, &mut b), b"18446744073709551615");
    assert_eq!(decimal(1000, &mut b), b"1000");
}

#[test]
fn rejection_limit() {
    // Powers of two (1 included): every word.
    for e in 0..64 {
        assert!(accepted(u64::MAX, 1 << e));
    }
    // n = 3: 2^64 = 3 * 6148914691236517205 + 1: the last word only is refused.
    assert!(accepted(u64::MAX - 1, 3));
    assert!(!accepted(u64::MAX, 3));
    // n = 2^63 + 1: one multiple fits, words from n on are refused.
    let n = (1u64 << 63) + 1;
    assert!(accepted(n - 1, n));
    assert!(!accepted(n, n));
    // n = u64::MAX: only u64::MAX itself is refused.
    assert!(accepted(u64::MAX - 1, u64::MAX));
    assert!(!accepted(u64::MAX, u64::MAX));
}

/// Words from a list, for exact checks of what a pick consumes.
struct Listed(Vec<u64>, usize);

impl Uniform for Listed {
    fn below(&mut self, n: u64) -> u64 {
        let v = self.0[self.1];
        self.1 += 1;
        assert!(v < n);
        v
    }
}

#[test]
fn prefix_pick_is_exact() {
    // Enumerate x over [0, W): entry i gets exactly its weight.
    for weights in [
        vec![1u32],
        vec![0, 3, 0, 1],
        vec![5, 0, 0],
        vec![2, 7, 1, 0, 4],
        vec![0, 0, 9],
    ] {
        let prefix = prefix_sums(&weights);
        let total = *prefix.last().unwrap();
        let mut count = vec![0u32; weights.len()];
        for x in 0..total {
            let i = table_pick(&prefix, &mut Listed(vec![x], 0)).unwrap();
            count[i] += 1;
        }
        assert_eq!(count, weights);
        assert_eq!(prefix_pick(&prefix, total), None);
    }
    assert_eq!(
        table_pick(&prefix_sums(&[0, 0]), &mut Listed(vec![], 0)),
        None
    );
    assert_eq!(table_pick(&[], &mut Listed(vec![], 0)), None);
}

#[test]
fn state_round_trips() {
    let v = Verifiable {
        log: SeedLog::All,
        epoch: 7,
        seed: [9; 32],
        from_draw: 12,
        revealed: true,
    };
    let mut w = Writer::new();
    Verifiable::encode_opt(Some(&v), &mut w);
    Verifiable::encode_opt(None, &mut w);
    let mut r = Reader::new(&w.buf);
    assert_eq!(Verifiable::decode_opt(&mut r), Ok(Some(v)));
    assert_eq!(Verifiable::decode_opt(&mut r), Ok(None));
    // A bad log, epoch 0, a short seed: refused.
    for bad in [
        vec![1u8, 2],
        [vec![1, 0], vec![0; 8]].concat(),
        [
            vec![1, 0],
            1u64.to_le_bytes().to_vec(),
            vec![3, 0, 0, 0, 1, 2, 3],
        ]
        .concat(),
    ] {
        assert!(Verifiable::decode_opt(&mut Reader::new(&bad)).is_err());
    }
}
