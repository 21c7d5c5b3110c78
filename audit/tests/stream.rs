//! lottery-audit on streams laid out as the contract says, on a real redis-server: a clean
//! campaign passes, every kind of tampering is found.

mod common;

use common::*;

const KEY: &str = "抽奖:{v}";

fn draw_no(e: &Fields) -> u64 {
    std::str::from_utf8(get(e, b"draw").unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

fn stream_args<'a>(r: &'a str, stream: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--redis",
        r,
        "--campaign",
        KEY,
        "--stream",
        stream,
        "--json",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn clean_campaign_passes() {
    let r = Redis::start(None);
    let mut con = r.con();
    let c = Campaign::build(KEY.as_bytes());
    c.write(&mut con, b"s1");
    let url = r.url();
    let seed2 = c.seed_arg(2);
    let (code, out, err) = audit(&stream_args(&url, "s1", &["--seed", &seed2]));
    assert_eq!(code, 0, "{out}{err}");
    let j = json(&out);
    assert_eq!(j["mismatches"], 0, "{out}");
    assert_eq!(j["entries_read"], c.entries.len());
    assert_eq!(j["draws"], 57);
    assert_eq!(j["draws_checked"], 57);
    assert_eq!(j["draws_unverifiable"], 0);
    assert_eq!(j["wins_before_verifiable"], 3);
    let wins = c
        .entries
        .iter()
        .filter(|e| get(e, b"type").is_none())
        .count();
    assert_eq!(j["wins"], wins);
    assert_eq!(j["wins_checked"], wins - 3);
    assert!(wins > 10, "{wins}");
    let epochs = j["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!(epochs[0]["verified"], "yes");
    assert_eq!(epochs[1]["verified"], "yes");
    assert_eq!(epochs[1]["from_draw"], 41);
    assert_eq!(j["tables"].as_array().unwrap().len(), 3);

    // The text report, in small pages: the same numbers.
    let (code, text, _) = audit(&[
        "--redis",
        &url,
        "--campaign",
        KEY,
        "--stream",
        "s1",
        "--seed",
        &seed2,
        "--page",
        "7",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("draws checked: 57\n"), "{text}");
    assert!(text.contains("mismatches: 0\n"), "{text}");
    assert!(text.contains("result: ok"), "{text}");
    assert!(text.contains("epoch 2 from_draw 41 commitment"), "{text}");
}

#[test]
fn unrevealed_epoch_is_unverifiable_not_a_mismatch() {
    let r = Redis::start(None);
    let mut con = r.con();
    let c = Campaign::build(KEY.as_bytes());
    c.write(&mut con, b"s1");
    let url = r.url();
    let (code, out, err) = audit(&stream_args(&url, "s1", &[]));
    assert_eq!(code, 0, "{out}{err}");
    let j = json(&out);
    assert_eq!(j["mismatches"], 0);
    assert_eq!(j["draws_checked"], 37);
    assert_eq!(j["draws_unverifiable"], 20);
    assert_eq!(j["epochs"][1]["verified"], "unrevealed");
    assert_eq!(j["epochs"][0]["verified"], "yes");
}

/// One tampered copy of the campaign: the audit exits 1 and names `reason`.
fn tampered(r: &Redis, name: &str, c: &Campaign, extra: &[&str], reason: &str) {
    let mut con = r.con();
    c.write(&mut con, name.as_bytes());
    let url = r.url();
    let seed2 = c.seed_arg(2);
    let mut a = stream_args(&url, name, &["--seed", &seed2]);
    a.extend_from_slice(extra);
    let (code, out, err) = audit(&a);
    assert_eq!(code, 1, "{name}: {out}{err}");
    let j = json(&out);
    assert!(j["mismatches"].as_u64().unwrap() >= 1, "{name}: {out}");
    let reasons = j["first_mismatches"].to_string();
    assert!(reasons.contains(reason), "{name}: want {reason:?} in {out}");
}

#[test]
fn tampering_is_found() {
    let r = Redis::start(None);
    let clean = Campaign::build(KEY.as_bytes());
    let draw_of =
        |c: &Campaign, pred: &dyn Fn(&Fields) -> bool| c.find(|e| is_kind(e, b"draw") && pred(e));

    // A draw entry's outcome changed (a loss turned into a win, no rule).
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|e| {
        get(e, b"outcome") == Some(b"") && get(e, b"rule").is_none()
    });
    set(&mut c.entries[i], b"outcome", b"gold");
    tampered(&r, "outcome", &c, &[], "differs from its pick");

    // The pick changed along with the outcome.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|e| {
        get(e, b"pick") == Some(b"") && get(e, b"rule").is_none()
    });
    set(&mut c.entries[i], b"outcome", b"silver");
    set(&mut c.entries[i], b"pick", b"silver");
    tampered(&r, "pick", &c, &[], "recomputed");

    // A table entry's weight changed.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"table") && get(e, b"tier") == Some(b""));
    set(&mut c.entries[i], b"silver", b"4");
    tampered(&r, "weight", &c, &[], "recomputed");

    // A wrong seed for epoch 2 (on the command line), and a revealed seed of epoch 1 changed.
    let wrong = format!("2={}", "ab".repeat(32));
    tampered(
        &r,
        "seed",
        &clean,
        &["--seed", &wrong],
        "does not match its commitment",
    );
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"reveal"));
    set(&mut c.entries[i], b"seed", "cd".repeat(32).as_bytes());
    tampered(&r, "reveal", &c, &[], "does not match its commitment");

    // An epoch entry deleted (the first; then the last).
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"epoch"));
    c.entries.remove(i);
    tampered(&r, "epoch1", &c, &[], "the first epoch entry is epoch 2");
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"epoch") && get(e, b"epoch") == Some(b"2"));
    c.entries.remove(i);
    tampered(&r, "epoch2", &c, &[], "which has no epoch entry");

    // A table entry deleted (the tier's only one; the base table's change at 45).
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"table") && get(e, b"tier") == Some(b"vip"));
    c.entries.remove(i);
    tampered(&r, "table", &c, &[], "no table in force");
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| is_kind(e, b"table") && get(e, b"from_draw") == Some(b"46"));
    c.entries.remove(i);
    tampered(&r, "table2", &c, &[], "recomputed");

    // A win without its draw entry.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|e| get(e, b"outcome") != Some(b""));
    c.entries.remove(i);
    tampered(&r, "nodraw", &c, &[], "has no draw entry");

    // A win whose user differs from its draw entry's.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| get(e, b"type").is_none() && draw_no(e) >= 4);
    set(&mut c.entries[i], b"user", b"mallory");
    tampered(&r, "winuser", &c, &[], "differs from its draw entry");

    // A draw number repeated.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|_| true);
    let copy = c.entries[i].clone();
    c.entries.push(copy);
    tampered(&r, "dup", &c, &[], "appears twice");

    // A rule whose outcome is no prize of the table; an unknown rule.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|e| get(e, b"rule") == Some(b"redraw"));
    set(&mut c.entries[i], b"outcome", b"platinum");
    tampered(&r, "rule", &c, &[], "is not NOTHING nor a prize");
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|e| get(e, b"rule") == Some(b"redraw"));
    set(&mut c.entries[i], b"rule", b"luck");
    tampered(&r, "rule2", &c, &[], "unknown rule");

    // Every typed entry deleted: only wins are left, nothing is verifiable.
    let mut c = Campaign::build(KEY.as_bytes());
    c.entries.retain(|e| get(e, b"type").is_none());
    tampered(&r, "untyped", &c, &[], "no epoch entry");

    // A draw entry missing a field.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = draw_of(&c, &|_| true);
    c.entries[i].retain(|(k, _)| k != b"pick");
    tampered(&r, "malformed", &c, &[], "malformed draw entry");
}

#[test]
fn rule_outcomes_are_accepted_as_specified() {
    // guarantee: a prize of the table with a weight; fallback: any prize of the table (gold at
    // weight 0 after draw 45); soldout: NOTHING.
    let r = Redis::start(None);
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| {
        is_kind(e, b"draw")
            && get(e, b"pick") == Some(b"silver")
            && get(e, b"rule").is_none()
            && get(e, b"tier").is_none()
    });
    set(&mut c.entries[i], b"outcome", b"gold");
    c.entries[i].push((b"rule".to_vec(), b"guarantee".to_vec()));
    let s = get(&c.entries[i], b"draw").unwrap().to_vec();
    // Its win entry says gold too.
    let w = c.find(|e| get(e, b"type").is_none() && get(e, b"draw") == Some(&s));
    set(&mut c.entries[w], b"prize", b"gold");
    let mut con = r.con();
    c.write(&mut con, b"rules");
    let url = r.url();
    let seed2 = c.seed_arg(2);
    let (code, out, err) = audit(&stream_args(&url, "rules", &["--seed", &seed2]));
    assert_eq!(code, 0, "{out}{err}");
    // guarantee to a prize of weight 0 (gold after draw 45 in the base table): refused.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| {
        is_kind(e, b"draw")
            && get(e, b"pick") == Some(b"silver")
            && get(e, b"rule").is_none()
            && get(e, b"tier").is_none()
            && std::str::from_utf8(get(e, b"draw").unwrap())
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 45
    });
    set(&mut c.entries[i], b"outcome", b"gold");
    c.entries[i].push((b"rule".to_vec(), b"guarantee".to_vec()));
    let s = get(&c.entries[i], b"draw").unwrap().to_vec();
    let w = c.find(|e| get(e, b"type").is_none() && get(e, b"draw") == Some(&s));
    set(&mut c.entries[w], b"prize", b"gold");
    tampered(
        &r,
        "guarantee0",
        &c,
        &[],
        "is not a prize of the table with a weight",
    );
    // ... but a fallback to it is allowed.
    set(&mut c.entries[i], b"rule", b"fallback");
    c.write(&mut con, b"fallback0");
    let (code, out, err) = audit(&stream_args(&url, "fallback0", &["--seed", &seed2]));
    assert_eq!(code, 0, "{out}{err}");
}

/// `c` with three more draws (61-63, epoch 2) on a base table whose weights are all 0 (every
/// prize sold out under REDRAW, NOTHING 0): each a loss that took no word, pick and outcome
/// empty, no rule.
fn with_zero_table() -> Campaign {
    let mut c = Campaign::build(KEY.as_bytes());
    let zero: Fields = [
        ("type", "table"),
        ("from_draw", "61"),
        ("tier", ""),
        ("gold", "0"),
        ("silver", "0"),
        ("NOTHING", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    c.entries.push(zero);
    for s in 61..=63u64 {
        let (n, u) = (s.to_string(), user(s));
        let d = [
            (&b"type"[..], &b"draw"[..]),
            (b"draw", n.as_bytes()),
            (b"user", &u),
            (b"outcome", b""),
            (b"pick", b""),
        ];
        c.entries
            .push(d.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect());
    }
    c
}

#[test]
fn a_table_whose_weights_sum_to_0_gives_losses_only() {
    let r = Redis::start(None);
    let mut con = r.con();
    let c = with_zero_table();
    c.write(&mut con, b"zero");
    let url = r.url();
    let seed2 = c.seed_arg(2);
    let (code, out, err) = audit(&stream_args(&url, "zero", &["--seed", &seed2]));
    assert_eq!(code, 0, "{out}{err}");
    let j = json(&out);
    assert_eq!(j["draws_checked"], 60, "{out}");
    assert_eq!(j["tables"].as_array().unwrap().len(), 4, "{out}");
    // Anything but pick "", outcome "" and no rule is a mismatch.
    let last = |c: &Campaign| c.entries.len() - 1;
    let mut t = with_zero_table();
    let i = last(&t);
    set(&mut t.entries[i], b"pick", b"silver");
    set(&mut t.entries[i], b"outcome", b"silver");
    tampered(&r, "zero-pick", &t, &[], "x = none: the weights sum to 0");
    for (rule, outcome, why) in [
        ("fallback", "gold", "follows a picked prize"),
        (
            "guarantee",
            "silver",
            "is not a prize of the table with a weight",
        ),
        ("soldout", "", "follows a picked prize"),
    ] {
        let mut t = with_zero_table();
        let i = last(&t);
        set(&mut t.entries[i], b"outcome", outcome.as_bytes());
        t.entries[i].push((b"rule".to_vec(), rule.as_bytes().to_vec()));
        if !outcome.is_empty() {
            let w = [
                (&b"user"[..], user(63)),
                (b"prize", outcome.as_bytes().to_vec()),
                (b"draw", b"63".to_vec()),
            ];
            t.entries
                .insert(i, w.iter().map(|(k, v)| (k.to_vec(), v.clone())).collect());
        }
        tampered(&r, &format!("zero-{rule}"), &t, &[], why);
    }
}

#[test]
fn a_draw_that_won_needs_its_win_entry() {
    let r = Redis::start(None);
    // A win entry deleted (XDEL): its draw entry's prize is not in the stream.
    let mut c = Campaign::build(KEY.as_bytes());
    let i = c.find(|e| get(e, b"type").is_none() && draw_no(e) > 4);
    let s = draw_no(&c.entries[i]);
    c.entries.remove(i);
    tampered(&r, "nowin", &c, &[], &format!("draw {s} won"));
    // ... unless the draw entry is the first entry read (the stream trimmed between the two):
    // counted apart, not a mismatch.
    let mut c = Campaign::build(KEY.as_bytes());
    let d = c.find(|e| is_kind(e, b"draw") && get(e, b"outcome") != Some(b""));
    let s = draw_no(&c.entries[d]);
    let first = c.entries.remove(d);
    c.entries.remove(d - 1); // its win entry, right before it
    c.entries.insert(0, first);
    let mut con = r.con();
    c.write(&mut con, b"trimmed");
    let url = r.url();
    let seed2 = c.seed_arg(2);
    let (code, out, err) = audit(&stream_args(&url, "trimmed", &["--seed", &seed2]));
    assert_eq!(code, 0, "draw {s}: {out}{err}");
    let j = json(&out);
    assert_eq!(j["draw_wins_unchecked"], 1, "{out}");
    assert_eq!(j["draws_checked"], 57, "{out}");
    // soldout gives a loss: a prize under soldout (its win entry agreeing) is a mismatch.
    let mut c = Campaign::build(KEY.as_bytes());
    let d = c.find(|e| get(e, b"rule") == Some(b"soldout"));
    let pick = get(&c.entries[d], b"pick").unwrap().to_vec();
    let other: &[u8] = if pick == b"gold" { b"silver" } else { b"gold" };
    set(&mut c.entries[d], b"outcome", other);
    let s = get(&c.entries[d], b"draw").unwrap().to_vec();
    let u = get(&c.entries[d], b"user").unwrap().to_vec();
    let w = vec![
        (b"user".to_vec(), u),
        (b"prize".to_vec(), other.to_vec()),
        (b"draw".to_vec(), s),
    ];
    c.entries.insert(d, w);
    tampered(&r, "soldout-prize", &c, &[], "soldout gives a loss");
}

#[test]
fn errors_and_limits() {
    let r = Redis::start(None);
    let url = r.url();
    // Usage and connection errors: exit 2.
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let (code, _, err) = audit(&["--redis", &closed, "--campaign", KEY, "--stream", "s"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = audit(&[
        "--redis",
        &url,
        "--campaign",
        KEY,
        "--stream",
        "s",
        "--seed",
        "1=zz",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("64 lowercase hex"), "{err}");
    let (code, _, _) = audit(&["--campaign", KEY]);
    assert_eq!(code, 2);
    let (code, _, err) = audit(&["--db", "nosuch://x", "--campaign", KEY]);
    assert_eq!(code, 2, "{err}");
    // No LOTTERY module: the stream cannot be found by itself.
    let (code, _, err) = audit(&["--redis", &url, "--campaign", KEY]);
    assert_eq!(code, 2, "{err}");

    // An absurd entry (more fields than any table has) is refused, reported, not kept.
    let mut con = r.con();
    let c = Campaign::build(KEY.as_bytes());
    c.write(&mut con, b"big");
    let mut x = redis::cmd("XADD");
    x.arg("big").arg("*").arg("type").arg("table");
    for i in 0..(lottery_audit::entry::MAX_FIELDS / 2 + 1) {
        x.arg(i).arg(1);
    }
    let _: String = x.query(&mut con).unwrap();
    let seed2 = c.seed_arg(2);
    let (code, out, _) = audit(&stream_args(&url, "big", &["--seed", &seed2]));
    assert_eq!(code, 1, "{out}");
    let j = json(&out);
    assert_eq!(j["mismatches"], 1, "{out}");
    assert!(
        j["first_mismatches"].to_string().contains("entry refused"),
        "{out}"
    );
}

#[test]
fn a_table_of_65536_prizes_and_20000_draws() {
    use lottery_audit::construction::{commitment, hex, pick_index, Words};
    let r = Redis::start(None);
    let mut con = r.con();
    let seed = [7u8; 32];
    let n = 65_536u64;
    let weights: Vec<u64> = (0..n).map(|i| i % 5).chain([3]).collect();
    let mut x = redis::cmd("XADD");
    x.arg("big")
        .arg("*")
        .arg(&["type", "epoch", "epoch", "1", "commitment"]);
    x.arg(commitment(&seed)).arg(&["from_draw", "1"]);
    let _: String = x.query(&mut con).unwrap();
    let mut t = redis::cmd("XADD");
    t.arg("big")
        .arg("*")
        .arg(&["type", "table", "from_draw", "1", "tier", ""]);
    for (i, w) in weights.iter().enumerate() {
        if i as u64 == n {
            t.arg("NOTHING").arg(*w);
        } else {
            t.arg(format!("p{i}")).arg(*w);
        }
    }
    let _: String = t.query(&mut con).unwrap();
    let draws = 20_000u64;
    let prefix: Vec<u64> = weights
        .iter()
        .scan(0u64, |a, w| {
            *a += w;
            Some(*a)
        })
        .collect();
    let total = *prefix.last().unwrap();
    let mut p = redis::pipe();
    for s in 1..=draws {
        let x = Words::new(&seed, KEY.as_bytes(), s).uniform(total).unwrap();
        let i = prefix.partition_point(|&p| p <= x);
        if s <= 3 {
            assert_eq!(pick_index(&weights, x), Some(i));
        }
        let pick = if i as u64 == n {
            String::new()
        } else {
            format!("p{i}")
        };
        if !pick.is_empty() {
            // The win entry, right before its draw entry.
            p.cmd("XADD")
                .arg("big")
                .arg("*")
                .arg("user")
                .arg(format!("u{s}"))
                .arg("prize")
                .arg(&pick)
                .arg("draw")
                .arg(s);
        }
        p.cmd("XADD")
            .arg("big")
            .arg("*")
            .arg(&["type", "draw", "draw"])
            .arg(s)
            .arg("user")
            .arg(format!("u{s}"))
            .arg("outcome")
            .arg(&pick)
            .arg("pick")
            .arg(&pick);
    }
    let _: Vec<String> = p.query(&mut con).unwrap();
    let url = r.url();
    let seed_arg = format!("1={}", hex(&seed));
    let start = std::time::Instant::now();
    let (code, out, err) = audit(&stream_args(&url, "big", &["--seed", &seed_arg]));
    let took = start.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    let j = json(&out);
    assert_eq!(j["draws_checked"], draws);
    assert_eq!(j["tables"][0]["entries"], n + 1);
    assert!(j["wins_checked"].as_u64().unwrap() > draws / 2, "{out}");
    eprintln!("65,537-entry table, {draws} draws: audited in {took:?}");
}
