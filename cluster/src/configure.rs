//! `LOTTERY.CONFIGURE` options given for a whole sharded campaign, and the split of each finite
//! stock over its shards. Pure.

use crate::descriptor::Stock;

/// Part `i` of `total` split over `n`: total/n, plus one for the first total%n parts.
pub fn split(total: u64, n: u32, i: u32) -> u64 {
    let n64 = u64::from(n.max(1));
    total / n64 + u64::from(u64::from(i) < total % n64)
}

/// What a `PRIZE` clause gives as its stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// A number of units, or `INF`: a finite one is split over the shards.
    Stock(Stock),
    /// `CODES`: the stock is the prize's pool of codes, added with `LOTTERY.CODES`; nothing to
    /// split (the codes are split when they are added: `lottery-shards codes add`).
    Codes,
}

/// Most ids a `GUARANTEE ... PRIZES count` list may give (the prize table's limit).
pub const MAX_PRIZES: usize = 65536;

/// `LOTTERY.CONFIGURE` options as given on the command line, with the PRIZE clauses found, so
/// that each shard can get its part of every finite stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureOptions {
    args: Vec<String>,
    /// (index of the stock argument in `args`, prize id, stock)
    prizes: Vec<(usize, String, Given)>,
}

fn is(arg: Option<&String>, keyword: &str) -> bool {
    arg.is_some_and(|a| a.eq_ignore_ascii_case(keyword))
}

impl ConfigureOptions {
    /// Walks the options by position, with the arity of each (docs/commands.md,
    /// docs/rules.md), as the module does: a prize id, a tier name or a value is taken where the
    /// syntax puts one, whatever its bytes (a prize called `PRIZE` or `TIER` is an id), and a
    /// list is as long as its count says. Values are checked by the servers, except the stocks,
    /// which are split here. `STREAM` is refused: every shard keeps its default wins stream
    /// (one stream key cannot be in every shard's slot).
    ///
    /// Everything but the stocks goes to every shard as given: `AFTER`, `GUARANTEE` (with its
    /// `PRIZES` list), `TOTAL`, `PERIOD`, `TIER` clauses and the flow-control options are per
    /// user or per draw, and a user's draws all go to one shard.
    pub fn parse(args: &[String]) -> Result<ConfigureOptions, String> {
        let mut prizes: Vec<(usize, String, Given)> = Vec::new();
        let need = |i: usize, n: usize, what: &str| -> Result<(), String> {
            if i + n < args.len() {
                Ok(())
            } else {
                Err(what.to_string())
            }
        };
        let mut i = 0;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            match opt.as_str() {
                "PRIZE" => {
                    need(i, 3, "PRIZE needs id weight stock (a count, INF or CODES)")?;
                    let id = args[i + 1].clone();
                    let s = &args[i + 3];
                    let given = if s.eq_ignore_ascii_case("CODES") {
                        Given::Codes
                    } else {
                        Given::Stock(Stock::parse(s).ok_or_else(|| {
                            format!(
                                "invalid stock '{s}': expected an integer in \
                                 0..9223372036854775807, INF or CODES"
                            )
                        })?)
                    };
                    if prizes.iter().any(|(_, p, _)| *p == id) {
                        return Err(format!("duplicate prize '{id}'"));
                    }
                    prizes.push((i + 3, id, given));
                    i += 4;
                    // PRIZE id weight stock AFTER n
                    if is(args.get(i), "AFTER") {
                        need(i, 1, "AFTER needs a draw count")?;
                        i += 2;
                    }
                }
                "NOTHING" | "COOLDOWN" | "DAILY" | "MAXWINS" | "DAYOFFSET" | "IDEMPOTENCY"
                | "PENALTY" | "TOTAL" | "PERIOD" => {
                    need(i, 1, &format!("{opt} needs a value"))?;
                    i += 2;
                }
                "WINDOW" => {
                    need(i, 2, "WINDOW needs start-ms end-ms")?;
                    i += 3;
                }
                "PACE" => {
                    need(i, 2, "PACE needs a prize id and LINEAR or NONE")?;
                    i += 3;
                }
                "SOLDOUT" => {
                    need(i, 1, "SOLDOUT needs LOSE, REDRAW or FALLBACK id")?;
                    if args[i + 1].eq_ignore_ascii_case("FALLBACK") {
                        need(i, 2, "SOLDOUT FALLBACK needs a prize id")?;
                        i += 3;
                    } else {
                        i += 2;
                    }
                }
                "RATE" => {
                    // RATE n [BURST b] | RATE OFF
                    need(i, 1, "RATE needs draws per second or OFF")?;
                    let off = args[i + 1].eq_ignore_ascii_case("OFF");
                    i += 2;
                    if !off && is(args.get(i), "BURST") {
                        need(i, 1, "BURST needs a count")?;
                        i += 2;
                    }
                }
                "ADMIT" => {
                    // ADMIT p1 [p2] | ADMIT OFF: p2 is there when the next argument reads as a
                    // probability (the module's own test; no option name does).
                    need(i, 1, "ADMIT needs a probability or OFF")?;
                    let off = args[i + 1].eq_ignore_ascii_case("OFF");
                    i += 2;
                    if !off
                        && args.get(i).is_some_and(|a| {
                            lottery_engine::flow::parse_ppm(a.as_bytes()).is_some()
                        })
                    {
                        i += 1;
                    }
                }
                "CLIENTLIMIT" => {
                    // CLIENTLIMIT n window-ms | CLIENTLIMIT OFF
                    need(i, 1, "CLIENTLIMIT needs n window-ms, or OFF")?;
                    if args[i + 1].eq_ignore_ascii_case("OFF") {
                        i += 2;
                    } else {
                        need(i, 2, "CLIENTLIMIT needs n window-ms")?;
                        i += 3;
                    }
                }
                "GUARANTEE" => {
                    // GUARANTEE n|OFF [PRIZES count id ...]: a count, not a list up to the next
                    // keyword, because a prize id may be a keyword.
                    need(i, 1, "GUARANTEE needs a draw count or OFF")?;
                    i += 2;
                    if is(args.get(i), "PRIZES") {
                        need(i, 1, "PRIZES needs a count and that many prize ids")?;
                        let c = &args[i + 1];
                        let count = c
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=MAX_PRIZES).contains(n) && !c.starts_with('+'))
                            .ok_or_else(|| {
                                format!("invalid PRIZES count '{c}': expected 1..{MAX_PRIZES}")
                            })?;
                        need(
                            i + 1,
                            count,
                            &format!("PRIZES {count} needs {count} prize ids after the count"),
                        )?;
                        i += 2 + count;
                    }
                }
                "TIER" => {
                    // TIER name OFF | TIER name [PRIZE-WEIGHT id w]... [NOTHING w]: the clause
                    // ends at the first argument that is neither PRIZE-WEIGHT nor the tier's
                    // own (first) NOTHING.
                    need(i, 1, "TIER needs a name")?;
                    i += 2;
                    if is(args.get(i), "OFF") {
                        i += 1;
                        continue;
                    }
                    let mut nothing = false;
                    loop {
                        if is(args.get(i), "PRIZE-WEIGHT") {
                            need(i, 2, "PRIZE-WEIGHT needs a prize id and a weight")?;
                            i += 3;
                        } else if !nothing && is(args.get(i), "NOTHING") {
                            need(i, 1, "NOTHING needs a weight")?;
                            nothing = true;
                            i += 2;
                        } else {
                            break;
                        }
                    }
                }
                "STREAM" => {
                    return Err("STREAM is not allowed for a sharded campaign: every shard \
                                writes to its own default wins stream (<shard key>:wins)"
                        .into())
                }
                _ => return Err(format!("unknown option '{}'", args[i])),
            }
        }
        Ok(ConfigureOptions {
            args: args.to_vec(),
            prizes,
        })
    }

    /// Prize ids and the stock given for the whole campaign, in order.
    pub fn prizes(&self) -> impl Iterator<Item = (&str, Given)> {
        self.prizes.iter().map(|(_, id, s)| (id.as_str(), *s))
    }

    pub fn has_prizes(&self) -> bool {
        !self.prizes.is_empty()
    }

    /// The options for shard `i` of `n`: each finite stock replaced by its part (`INF` and
    /// `CODES` as given, every other option as given).
    pub fn for_shard(&self, i: u32, n: u32) -> Vec<String> {
        let mut a = self.args.clone();
        for (pos, _, given) in &self.prizes {
            if let Given::Stock(Stock::Finite(s)) = given {
                a[*pos] = split(*s, n, i).to_string();
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
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
}
