//! The construction against docs/verify-vectors.json (computed independently, in Python):
//! every vector's words, uniform integers and table picks.

use lottery_audit::construction::{draw_pick, Words};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/verify-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn case(v: &Value) -> (Vec<u8>, Vec<u8>, u64) {
    (
        hex(v["seed"].as_str().unwrap()),
        hex(v["key_hex"].as_str().unwrap()),
        num(&v["draw"]),
    )
}

#[test]
fn words() {
    let all = vectors();
    let list = all["words"].as_array().unwrap();
    assert!(list.len() >= 30);
    for v in list {
        let (seed, key, draw) = case(v);
        let mut w = Words::new(&seed, &key, draw);
        let want: Vec<u64> = v["w"].as_array().unwrap().iter().map(num).collect();
        let got: Vec<u64> = want.iter().map(|_| w.next_word()).collect();
        assert_eq!(got, want, "{v}");
    }
}

#[test]
fn uniform() {
    let all = vectors();
    let list = all["uniform"].as_array().unwrap();
    assert!(!list.is_empty());
    for v in list {
        let (seed, key, draw) = case(v);
        let n = num(&v["n"]);
        let mut w = Words::new(&seed, &key, draw);
        let first = w.uniform(n).unwrap();
        let second = w.uniform(n).unwrap();
        assert_eq!(
            (first, second),
            (num(&v["first"]), num(&v["second"])),
            "{v}"
        );
    }
}

#[test]
fn picks() {
    let all = vectors();
    let list = all["picks"].as_array().unwrap();
    assert!(!list.is_empty());
    for v in list {
        let (seed, key, draw) = case(v);
        let weights: Vec<u64> = v["weights"].as_array().unwrap().iter().map(num).collect();
        let (x, i) = draw_pick(&seed, &key, draw, &weights).unwrap();
        assert_eq!((x, i as u64), (num(&v["x"]), num(&v["entry"])), "{v}");
    }
}
