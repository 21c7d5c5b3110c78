//! `LOTTERY.CONFIGURE` options given for a whole sharded campaign, and the split of each finite
//! stock over its shards. Pure.

use crate::descriptor::Stock;

/// Part `i` of `total` split over `n`: total/n, plus one for the first total%n parts.
pub fn split(total: u64, n: u32, i: u32) -> u64 {
    let n64 = u64::from(n.max(1));
    total / n64 + u64::from(u64::from(i) < total % n64)
}

/// `LOTTERY.CONFIGURE` options as given on the command line, with the PRIZE clauses found, so
/// that each shard can get its part of every finite stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureOptions {
    args: Vec<String>,
    /// (index of the stock argument in `args`, prize id, stock)
    prizes: Vec<(usize, String, Stock)>,
}

impl ConfigureOptions {
    /// Walks the options with the arity of each (docs/commands.md). Values are checked by the
    /// servers, except the stocks, which are split here. `STREAM` is refused: every shard keeps
    /// its default wins stream (one stream key cannot be in every shard's slot).
    pub fn parse(args: &[String]) -> Result<ConfigureOptions, String> {
        let mut prizes = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            let arity = match opt.as_str() {
                "PRIZE" => 3,
                "NOTHING" | "COOLDOWN" | "DAILY" | "MAXWINS" | "DAYOFFSET" | "IDEMPOTENCY" => 1,
                "WINDOW" => 2,
                "SOLDOUT" => match args.get(i + 1) {
                    Some(m) if m.eq_ignore_ascii_case("FALLBACK") => 2,
                    _ => 1,
                },
                "STREAM" => {
                    return Err("STREAM is not allowed for a sharded campaign: every shard \
                                writes to its own default wins stream (<shard key>:wins)"
                        .into())
                }
                _ => return Err(format!("unknown option '{}'", args[i])),
            };
            if i + arity >= args.len() {
                return Err(match opt.as_str() {
                    "PRIZE" => "PRIZE needs id weight stock".to_string(),
                    _ => format!("{opt} needs {arity} value(s)"),
                });
            }
            if opt == "PRIZE" {
                let id = args[i + 1].clone();
                let s = &args[i + 3];
                let stock = Stock::parse(s).ok_or_else(|| {
                    format!(
                        "invalid stock '{s}': expected an integer in 0..9223372036854775807 or INF"
                    )
                })?;
                if prizes.iter().any(|(_, p, _)| *p == id) {
                    return Err(format!("duplicate prize '{id}'"));
                }
                prizes.push((i + 3, id, stock));
            }
            i += arity + 1;
        }
        Ok(ConfigureOptions {
            args: args.to_vec(),
            prizes,
        })
    }

    /// Prize ids and the stock given for the whole campaign, in order.
    pub fn prizes(&self) -> impl Iterator<Item = (&str, Stock)> {
        self.prizes.iter().map(|(_, id, s)| (id.as_str(), *s))
    }

    pub fn has_prizes(&self) -> bool {
        !self.prizes.is_empty()
    }

    /// The options for shard `i` of `n`: each finite stock replaced by its part.
    pub fn for_shard(&self, i: u32, n: u32) -> Vec<String> {
        let mut a = self.args.clone();
        for (pos, _, stock) in &self.prizes {
            if let Stock::Finite(s) = stock {
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
            [("phone", Stock::Finite(10)), ("pts", Stock::Inf)]
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
}
