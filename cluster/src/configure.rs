//! `LOTTERY.CONFIGURE` options given for a whole sharded campaign, and the split of each finite
//! stock over its shards. Pure.

use crate::descriptor::Stock;
use lottery_engine::parse::{shown, VERIFIABLE_OFF};
use lottery_engine::verify::SeedLog;

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
    /// `VERIFIABLE [LOG WINS|ALL]` when given: `Some(None)` without `LOG`.
    verifiable: Option<Option<SeedLog>>,
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
    /// user or per draw, and a user's draws all go to one shard. `VERIFIABLE [LOG WINS|ALL]`
    /// too: each shard is a campaign of its own, with its own seeds, epochs and stream entries;
    /// it is checked here as the module does (`VERIFIABLE OFF` refused in the module's words,
    /// `LOG` needing `WINS` or `ALL`, given once).
    pub fn parse(args: &[String]) -> Result<ConfigureOptions, String> {
        let mut prizes: Vec<(usize, String, Given)> = Vec::new();
        let mut verifiable: Option<Option<SeedLog>> = None;
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
                "VERIFIABLE" => {
                    // VERIFIABLE [LOG WINS|ALL]: the module's checks, in its order.
                    if verifiable.is_some() {
                        return Err("VERIFIABLE given twice".into());
                    }
                    i += 1;
                    if is(args.get(i), "OFF") {
                        return Err(VERIFIABLE_OFF.into());
                    }
                    let mut log = None;
                    if is(args.get(i), "LOG") {
                        need(i, 1, "LOG needs WINS or ALL")?;
                        let v = &args[i + 1];
                        log = Some(if v.eq_ignore_ascii_case("WINS") {
                            SeedLog::Wins
                        } else if v.eq_ignore_ascii_case("ALL") {
                            SeedLog::All
                        } else {
                            return Err(format!(
                                "invalid LOG '{}': expected WINS or ALL",
                                shown(v.as_bytes())
                            ));
                        });
                        i += 2;
                    }
                    verifiable = Some(log);
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
            verifiable,
        })
    }

    /// `VERIFIABLE` as given: `None` when absent, `Some(None)` without `LOG` (a campaign not
    /// verifiable yet gets `LOG WINS`; one that is keeps its log), `Some(Some(log))` with it.
    pub fn verifiable(&self) -> Option<Option<SeedLog>> {
        self.verifiable
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
mod tests;
