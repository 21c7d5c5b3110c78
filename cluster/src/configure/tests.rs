//! Unit tests of the option walk and the stock split.

use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn split_sums_and_is_even() {
    for (total, n) in [
        (0u64, 1u32),
        (10, 3),
        (2, 5),
        (1_000_003, 7),
        (u64::MAX >> 1, 16),
    ] {
        let parts: Vec<u64> = (0..n).map(|i| split(total, n, i)).collect();
        assert_eq!(parts.iter().sum::<u64>(), total);
        let (lo, hi) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
        assert!(hi - lo <= 1);
        assert!(parts.windows(2).all(|w| w[0] >= w[1]), "extras go first");
    }
    assert_eq!(split(10, 3, 0), 4);
    assert_eq!(split(10, 3, 2), 3);
    assert_eq!(split(5, 0, 0), 5); // never divides by zero
}

#[test]
fn configure_options() {
    let o = ConfigureOptions::parse(&s(&[
        "PRIZE", "phone", "1", "10", "prize", "pts", "5", "inf", "NOTHING", "100", "SOLDOUT",
        "FALLBACK", "pts", "WINDOW", "1", "2", "DAILY", "INF",
    ]))
    .unwrap();
    assert_eq!(
        o.prizes().collect::<Vec<_>>(),
        [
            ("phone", Given::Stock(Stock::Finite(10))),
            ("pts", Given::Stock(Stock::Inf))
        ]
    );
    assert_eq!(o.for_shard(0, 3)[3], "4");
    assert_eq!(o.for_shard(2, 3)[3], "3");
    assert_eq!(o.for_shard(2, 3)[7], "inf");
    // A prize called PRIZE is an id, not an option.
    let o = ConfigureOptions::parse(&s(&["PRIZE", "PRIZE", "1", "3"])).unwrap();
    assert_eq!(o.prizes().count(), 1);
    for bad in [
        &["PRIZE", "a", "1"][..],
        &["PRIZE", "a", "1", "x"],
        &["PRIZE", "a", "1", "-1"],
        &["PRIZE", "a", "1", "1", "PRIZE", "a", "1", "1"],
        &["STREAM", "s"],
        &["FOO", "1"],
        &["COOLDOWN"],
    ] {
        assert!(ConfigureOptions::parse(&s(bad)).is_err(), "{bad:?}");
    }
    assert!(!ConfigureOptions::parse(&s(&["DAILY", "3"]))
        .unwrap()
        .has_prizes());
}

/// Parses, checks the prizes found, and that only their finite stocks change per shard.
fn shard_args(args: &[&str], n: u32) -> (Vec<(String, Given)>, Vec<Vec<String>>) {
    let o = ConfigureOptions::parse(&s(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let prizes = o.prizes().map(|(p, g)| (p.to_string(), g)).collect();
    let per = (0..n).map(|i| o.for_shard(i, n)).collect::<Vec<_>>();
    for a in &per {
        assert_eq!(a.len(), args.len());
    }
    (prizes, per)
}

#[test]
fn codes_and_after() {
    let (p, per) = shard_args(
        &[
            "PRIZE", "card", "5", "CODES", "PRIZE", "phone", "1", "10", "AFTER", "3", "PRIZE",
            "vip", "1", "codes", "after", "20", "PRIZE", "pts", "9", "INF", "AFTER", "2",
        ],
        3,
    );
    assert_eq!(
        p,
        [
            ("card".into(), Given::Codes),
            ("phone".into(), Given::Stock(Stock::Finite(10))),
            ("vip".into(), Given::Codes),
            ("pts".into(), Given::Stock(Stock::Inf)),
        ]
    );
    // CODES passes through; the numeric stock is split and AFTER kept.
    assert_eq!(
        per[0],
        s(&[
            "PRIZE", "card", "5", "CODES", "PRIZE", "phone", "1", "4", "AFTER", "3", "PRIZE",
            "vip", "1", "codes", "after", "20", "PRIZE", "pts", "9", "INF", "AFTER", "2",
        ])
    );
    assert_eq!(per[2][7], "3");
    // An AFTER value that reads as a number of an option is still AFTER's value; a prize
    // whose id is AFTER or CODES is an id.
    let (p, per) = shard_args(
        &[
            "PRIZE", "AFTER", "1", "7", "AFTER", "PRIZE", "PRIZE", "CODES", "1", "8",
        ],
        2,
    );
    // "AFTER PRIZE": AFTER's value is the word PRIZE (the server refuses it), so the
    // arguments after it are an option again: "PRIZE CODES 1 8" is prize CODES.
    assert_eq!(
        p,
        [
            ("AFTER".into(), Given::Stock(Stock::Finite(7))),
            ("CODES".into(), Given::Stock(Stock::Finite(8))),
        ]
    );
    assert_eq!((per[0][3].as_str(), per[1][3].as_str()), ("4", "3"));
    assert_eq!((per[0][9].as_str(), per[1][9].as_str()), ("4", "4"));
    for bad in [
        &["PRIZE", "a", "1", "10", "AFTER"][..],
        &["PRIZE", "a", "1", "CODE"],
        &["PRIZE", "a", "1", "CODES", "PRIZE", "a", "1", "3"],
        &["PRIZE", "a", "1", "3", "AFTER", "2", "AFTER", "3"],
    ] {
        assert!(ConfigureOptions::parse(&s(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn guarantee_total_period_pass_through() {
    // The PRIZES list is as long as its count, whatever its ids: PRIZE and TIER here are
    // prize ids, not options.
    let args = [
        "GUARANTEE",
        "10",
        "PRIZES",
        "3",
        "PRIZE",
        "TIER",
        "x",
        "PRIZE",
        "PRIZE",
        "1",
        "9",
        "TOTAL",
        "INF",
        "PERIOD",
        "WEEK",
        "PRIZE",
        "TIER",
        "1",
        "5",
    ];
    let (p, per) = shard_args(&args, 2);
    assert_eq!(
        p,
        [
            ("PRIZE".into(), Given::Stock(Stock::Finite(9))),
            ("TIER".into(), Given::Stock(Stock::Finite(5))),
        ]
    );
    assert_eq!(per[0][10], "5");
    assert_eq!(per[1][10], "4");
    assert_eq!(per[0][18], "3");
    assert_eq!(per[1][18], "2");
    // Everything else is as given, on every shard.
    for a in &per {
        for (k, (x, y)) in a.iter().zip(args).enumerate() {
            if k != 10 && k != 18 {
                assert_eq!(x, y);
            }
        }
    }
    for ok in [
        &["GUARANTEE", "OFF"][..],
        &["GUARANTEE", "5", "TOTAL", "3", "PERIOD", "MONTH"],
        &["guarantee", "5", "prizes", "1", "GUARANTEE"],
        &["TOTAL", "0", "PERIOD", "DAY", "DAILY", "INF"],
    ] {
        shard_args(ok, 3);
    }
    for bad in [
        &["GUARANTEE"][..],
        &["GUARANTEE", "5", "PRIZES"],
        &["GUARANTEE", "5", "PRIZES", "0"],
        &["GUARANTEE", "5", "PRIZES", "x", "a"],
        &["GUARANTEE", "5", "PRIZES", "-1", "a"],
        &["GUARANTEE", "5", "PRIZES", "65537", "a"],
        &["GUARANTEE", "5", "PRIZES", "2", "a"],
        &["TOTAL"],
        &["PERIOD"],
    ] {
        assert!(ConfigureOptions::parse(&s(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn tiers_pass_through() {
    let args = [
        "PRIZE",
        "phone",
        "1",
        "10",
        "NOTHING",
        "90",
        "TIER",
        "vip",
        "PRIZE-WEIGHT",
        "phone",
        "5",
        "NOTHING",
        "10",
        "TIER",
        "PRIZE",
        "PRIZE-WEIGHT",
        "PRIZE",
        "2",
        "TIER",
        "old",
        "OFF",
        "TIER",
        "NOTHING",
        "NOTHING",
        "3",
        "NOTHING",
        "4",
        "PRIZE",
        "TIER",
        "2",
        "7",
    ];
    let (p, per) = shard_args(&args, 3);
    // Tier names and PRIZE-WEIGHT ids are taken by position: the tier "PRIZE" with a
    // PRIZE-WEIGHT for prize "PRIZE" is no PRIZE clause; the second NOTHING after a tier's
    // own ends the clause (it is the campaign's, which the server then refuses as given
    // twice), so "PRIZE TIER 2 7" is a prize again.
    assert_eq!(
        p,
        [
            ("phone".into(), Given::Stock(Stock::Finite(10))),
            ("TIER".into(), Given::Stock(Stock::Finite(7))),
        ]
    );
    assert_eq!(
        per.iter().map(|a| a[3].as_str()).collect::<Vec<_>>(),
        ["4", "3", "3"]
    );
    assert_eq!(
        per.iter().map(|a| a[30].as_str()).collect::<Vec<_>>(),
        ["3", "2", "2"]
    );
    for a in &per {
        for (k, (x, y)) in a.iter().zip(args).enumerate() {
            if k != 3 && k != 30 {
                assert_eq!(x, y);
            }
        }
    }
    // A tier with no entries, a tier at the end, keywords in any case.
    shard_args(&["TIER", "t"], 2);
    shard_args(
        &[
            "tier",
            "t",
            "prize-weight",
            "p",
            "1",
            "nothing",
            "0",
            "DAILY",
            "3",
        ],
        2,
    );
    for bad in [
        &["TIER"][..],
        &["TIER", "t", "PRIZE-WEIGHT", "p"],
        &["TIER", "t", "NOTHING"],
        &["TIER", "t", "PRIZE-WEIGHT", "p", "1", "FOO"],
    ] {
        assert!(ConfigureOptions::parse(&s(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn flow_control_options() {
    let args = [
        "RATE",
        "100",
        "BURST",
        "50",
        "ADMIT",
        "0.3",
        "0.9",
        "CLIENTLIMIT",
        "5",
        "1000",
        "PENALTY",
        "10",
        "PACE",
        "PRIZE",
        "LINEAR",
        "PRIZE",
        "PRIZE",
        "1",
        "6",
        "ADMIT",
    ];
    // ADMIT at the end lacks its value.
    assert!(ConfigureOptions::parse(&s(&args)).is_err());
    let args = &args[..args.len() - 1];
    let (p, per) = shard_args(args, 2);
    assert_eq!(p, [("PRIZE".into(), Given::Stock(Stock::Finite(6)))]);
    assert_eq!((per[0][18].as_str(), per[1][18].as_str()), ("3", "3"));
    // ADMIT's second probability is optional: the next argument is an option here.
    let (p, _) = shard_args(
        &[
            "ADMIT",
            "1",
            "PRIZE",
            "a",
            "1",
            "2",
            "RATE",
            "OFF",
            "CLIENTLIMIT",
            "OFF",
        ],
        2,
    );
    assert_eq!(p.len(), 1);
    shard_args(&["RATE", "5", "ADMIT", "OFF", "PRIZE", "b", "1", "1"], 2);
    for bad in [
        &["RATE", "5", "BURST"][..],
        &["CLIENTLIMIT", "5"],
        &["PACE", "p"],
        &["RATE", "OFF", "BURST", "3"],
    ] {
        assert!(ConfigureOptions::parse(&s(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn verifiable_passes_through() {
    // VERIFIABLE [LOG WINS|ALL] is the same on every shard, wherever it stands; the stocks
    // around it are still split.
    let args = [
        "PRIZE",
        "phone",
        "1",
        "10",
        "VERIFIABLE",
        "LOG",
        "ALL",
        "NOTHING",
        "90",
    ];
    let (p, per) = shard_args(&args, 3);
    assert_eq!(p, [("phone".into(), Given::Stock(Stock::Finite(10)))]);
    for (i, a) in per.iter().enumerate() {
        let mut want = s(&args);
        want[3] = split(10, 3, i as u32).to_string();
        assert_eq!(*a, want);
    }
    let v = |a: &[&str]| ConfigureOptions::parse(&s(a)).unwrap().verifiable();
    assert_eq!(v(&args), Some(Some(SeedLog::All)));
    assert_eq!(v(&["verifiable", "log", "wins"]), Some(Some(SeedLog::Wins)));
    assert_eq!(v(&["DAILY", "3", "VERIFIABLE"]), Some(None));
    assert_eq!(v(&["DAILY", "3"]), None);
    // Without LOG the next argument is an option again: a prize here, whose stock is split.
    let (p, per) = shard_args(&["VERIFIABLE", "PRIZE", "LOG", "1", "7"], 2);
    assert_eq!(p, [("LOG".into(), Given::Stock(Stock::Finite(7)))]);
    assert_eq!((per[0][4].as_str(), per[1][4].as_str()), ("4", "3"));
    // A tier's clause ends before VERIFIABLE; a prize id or tier name VERIFIABLE is an id.
    let (p, per) = shard_args(
        &[
            "TIER",
            "VERIFIABLE",
            "PRIZE-WEIGHT",
            "VERIFIABLE",
            "2",
            "VERIFIABLE",
            "PRIZE",
            "VERIFIABLE",
            "1",
            "5",
        ],
        2,
    );
    assert_eq!(p, [("VERIFIABLE".into(), Given::Stock(Stock::Finite(5)))]);
    assert_eq!(per[1][9], "2");
}

#[test]
fn verifiable_refusals_are_the_modules() {
    let err = |a: &[&str]| ConfigureOptions::parse(&s(a)).unwrap_err();
    // No way back, in the module's own words, however it is spelled and wherever it stands.
    for off in [
        &["VERIFIABLE", "OFF"][..],
        &["verifiable", "off"],
        &["PRIZE", "a", "1", "2", "VERIFIABLE", "Off", "DAILY", "3"],
    ] {
        assert_eq!(err(off), VERIFIABLE_OFF, "{off:?}");
    }
    assert!(VERIFIABLE_OFF.contains("cannot be turned off"));
    assert_eq!(err(&["VERIFIABLE", "LOG"]), "LOG needs WINS or ALL");
    assert_eq!(
        err(&["VERIFIABLE", "LOG", "SOME"]),
        "invalid LOG 'SOME': expected WINS or ALL"
    );
    // The value is shown safely: control characters escaped, long values cut.
    let e = err(&["VERIFIABLE", "LOG", "a\r\nb\0"]);
    assert!(!e.contains(['\r', '\n', '\0']), "{e}");
    let long = "x".repeat(10_000);
    assert!(err(&["VERIFIABLE", "LOG", &long]).len() < 200);
    assert_eq!(
        err(&["VERIFIABLE", "DAILY", "3", "VERIFIABLE", "LOG", "ALL"]),
        "VERIFIABLE given twice"
    );
    // STREAM stays refused next to VERIFIABLE: every shard keeps its own default stream.
    assert!(err(&["VERIFIABLE", "STREAM", "s"]).starts_with("STREAM is not allowed"));
}
