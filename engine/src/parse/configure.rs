//! LOTTERY.CONFIGURE's options, after the key, into a `ConfigChange`.

use super::*;
use crate::campaign::{ConfigChange, Guarantee, Period, PrizeSpec, SoldOut, Tier};
use crate::flow::{parse_ppm, Rate, MAX_RATE, PPM};
use crate::limits::{
    MAX_DAYOFFSET_MIN, MAX_GUARANTEE, MAX_IDEMPOTENCY_MS, MAX_KEY_LEN, MAX_PRIZES, MAX_TIERS,
    MAX_TIER_NAME_LEN,
};
use crate::verify::SeedLog;
use std::collections::HashSet;

/// The refusal of `VERIFIABLE OFF`.
pub const VERIFIABLE_OFF: &str =
    "VERIFIABLE cannot be turned off: a published seed commitment cannot be withdrawn";

/// Parses the options of LOTTERY.CONFIGURE (everything after the key).
pub fn configure_args(args: &[&[u8]]) -> PResult<ConfigChange> {
    let mut c = ConfigChange::default();
    let mut prizes: Vec<PrizeSpec> = Vec::new();
    // Prize ids given PACE so far (a set: a command may have one clause per prize).
    let mut paced: HashSet<&[u8]> = HashSet::new();
    let mut i = 0;
    let need = |i: usize, n: usize, what: &str| -> PResult<()> {
        if i + n < args.len() {
            Ok(())
        } else {
            Err(what.to_string())
        }
    };
    // Option names are short: upper-cased on the stack (a longer one is unknown anyway).
    let mut up = [0u8; 16];
    while i < args.len() {
        let opt: &[u8] = match up.get_mut(..args[i].len()) {
            Some(u) => {
                u.copy_from_slice(args[i]);
                u.make_ascii_uppercase();
                u
            }
            None => b"",
        };
        match opt {
            b"PRIZE" => {
                need(i, 3, "PRIZE needs id weight stock")?;
                if prizes.len() >= MAX_PRIZES {
                    return Err(format!("too many prizes (at most {MAX_PRIZES})"));
                }
                let codes = args[i + 3].eq_ignore_ascii_case(b"CODES");
                let mut p = PrizeSpec {
                    id: id_arg(args[i + 1], "prize id")?,
                    weight: u32_arg(args[i + 2], "weight")?,
                    stock: if codes { None } else { stock_arg(args[i + 3])? },
                    after: 0,
                    codes,
                };
                i += 4;
                if args
                    .get(i)
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"AFTER"))
                {
                    need(i, 1, "AFTER needs a draw count")?;
                    p.after = match int_in(args[i + 1], "AFTER", 1, u32::MAX.into()) {
                        Ok(v) => v as u32,
                        Err(_) => {
                            return Err(format!(
                                "invalid AFTER '{}': expected 1..4294967295",
                                shown(args[i + 1])
                            ))
                        }
                    };
                    i += 2;
                }
                prizes.push(p);
            }
            b"GUARANTEE" => {
                need(i, 1, "GUARANTEE needs a draw count or OFF")?;
                once(&c.guarantee, "GUARANTEE")?;
                if args[i + 1].eq_ignore_ascii_case(b"OFF") {
                    c.guarantee = Some(None);
                    i += 2;
                } else {
                    let n = match int_in(args[i + 1], "GUARANTEE", 2, MAX_GUARANTEE.into()) {
                        Ok(v) => v as u32,
                        Err(_) => {
                            return Err(format!(
                                "invalid GUARANTEE '{}': expected 2..{MAX_GUARANTEE} or OFF",
                                shown(args[i + 1])
                            ))
                        }
                    };
                    i += 2;
                    let mut g = Guarantee {
                        n,
                        prizes: Vec::new(),
                    };
                    if args
                        .get(i)
                        .is_some_and(|a| a.eq_ignore_ascii_case(b"PRIZES"))
                    {
                        need(i, 1, "PRIZES needs a count and the prize ids")?;
                        let k = match int_in(args[i + 1], "PRIZES count", 1, MAX_PRIZES as i128) {
                            Ok(v) => v as usize,
                            Err(_) => {
                                return Err(format!(
                                    "invalid PRIZES count '{}': expected 1..{MAX_PRIZES}",
                                    shown(args[i + 1])
                                ))
                            }
                        };
                        if args.len() - (i + 2) < k {
                            return Err(format!("PRIZES {k} needs {k} prize ids"));
                        }
                        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(k);
                        for a in &args[i + 2..i + 2 + k] {
                            let id = id_arg(a, "GUARANTEE prize id")?;
                            if !seen.insert(a) {
                                return Err(format!(
                                    "GUARANTEE lists prize '{}' twice",
                                    shown(&id)
                                ));
                            }
                            g.prizes.push(id);
                        }
                        i += 2 + k;
                    }
                    c.guarantee = Some(Some(g));
                }
            }
            b"TOTAL" => {
                need(i, 1, "TOTAL needs a count or INF")?;
                once(&c.total, "TOTAL")?;
                c.total = Some(u32_or_inf(args[i + 1], "TOTAL")?);
                i += 2;
            }
            b"PERIOD" => {
                need(i, 1, "PERIOD needs DAY, WEEK or MONTH")?;
                once(&c.period, "PERIOD")?;
                c.period = Some(match args[i + 1].to_ascii_uppercase().as_slice() {
                    b"DAY" => Period::Day,
                    b"WEEK" => Period::Week,
                    b"MONTH" => Period::Month,
                    _ => {
                        return Err(format!(
                            "invalid PERIOD '{}': expected DAY, WEEK or MONTH",
                            shown(args[i + 1])
                        ))
                    }
                });
                i += 2;
            }
            b"TIER" => {
                need(i, 1, "TIER needs a name")?;
                let name = args[i + 1];
                if name.is_empty() || name.len() > MAX_TIER_NAME_LEN {
                    return Err(format!(
                        "invalid tier name: must be 1..{MAX_TIER_NAME_LEN} bytes"
                    ));
                }
                if c.tiers.iter().any(|(n, _)| n.as_slice() == name) {
                    return Err(format!("TIER '{}' given twice", shown(name)));
                }
                if c.tiers.len() >= MAX_TIERS {
                    return Err(format!("too many tiers (at most {MAX_TIERS})"));
                }
                i += 2;
                if args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"OFF")) {
                    c.tiers.push((name.to_vec(), None));
                    i += 1;
                    continue;
                }
                let mut t = Tier {
                    name: name.to_vec(),
                    weights: Vec::new(),
                    nothing: None,
                };
                let mut ids: HashSet<&[u8]> = HashSet::new();
                while let Some(a) = args.get(i) {
                    if a.eq_ignore_ascii_case(b"PRIZE-WEIGHT") {
                        need(i, 2, "PRIZE-WEIGHT needs a prize id and a weight")?;
                        if t.weights.len() >= MAX_PRIZES {
                            return Err(format!("too many prizes (at most {MAX_PRIZES})"));
                        }
                        let id = id_arg(args[i + 1], "tier prize id")?;
                        if !ids.insert(args[i + 1]) {
                            return Err(format!(
                                "TIER '{}' weighs prize '{}' twice",
                                shown(name),
                                shown(&id)
                            ));
                        }
                        t.weights.push((id, u32_arg(args[i + 2], "tier weight")?));
                        i += 3;
                    } else if a.eq_ignore_ascii_case(b"NOTHING") && t.nothing.is_none() {
                        need(i, 1, "NOTHING needs a weight")?;
                        t.nothing = Some(u32_arg(args[i + 1], "tier NOTHING weight")?);
                        i += 2;
                    } else {
                        break;
                    }
                }
                c.tiers.push((name.to_vec(), Some(t)));
            }
            b"NOTHING" => {
                need(i, 1, "NOTHING needs a weight")?;
                once(&c.nothing, "NOTHING")?;
                c.nothing = Some(u32_arg(args[i + 1], "NOTHING weight")?);
                i += 2;
            }
            b"COOLDOWN" => {
                need(i, 1, "COOLDOWN needs milliseconds")?;
                once(&c.cooldown_ms, "COOLDOWN")?;
                c.cooldown_ms = Some(u64_arg(args[i + 1], "COOLDOWN", i64::MAX as u64)?);
                i += 2;
            }
            b"DAILY" => {
                need(i, 1, "DAILY needs a count or INF")?;
                once(&c.daily, "DAILY")?;
                c.daily = Some(u32_or_inf(args[i + 1], "DAILY")?);
                i += 2;
            }
            b"MAXWINS" => {
                need(i, 1, "MAXWINS needs a count or INF")?;
                once(&c.maxwins, "MAXWINS")?;
                c.maxwins = Some(u32_or_inf(args[i + 1], "MAXWINS")?);
                i += 2;
            }
            b"DAYOFFSET" => {
                need(i, 1, "DAYOFFSET needs minutes")?;
                once(&c.dayoffset_min, "DAYOFFSET")?;
                let m = MAX_DAYOFFSET_MIN as i64;
                c.dayoffset_min = Some(i64_arg(args[i + 1], "DAYOFFSET", -m, m)? as i32);
                i += 2;
            }
            b"WINDOW" => {
                need(i, 2, "WINDOW needs start-ms end-ms")?;
                once(&c.window, "WINDOW")?;
                let s = i64_arg(args[i + 1], "WINDOW start", 0, i64::MAX)?;
                let e = i64_arg(args[i + 2], "WINDOW end", 0, i64::MAX)?;
                if s >= e {
                    return Err("WINDOW start must be before its end".into());
                }
                c.window = Some((s, e));
                i += 3;
            }
            b"SOLDOUT" => {
                need(i, 1, "SOLDOUT needs LOSE, REDRAW or FALLBACK id")?;
                once(&c.soldout, "SOLDOUT")?;
                let p = args[i + 1].to_ascii_uppercase();
                match p.as_slice() {
                    b"LOSE" => {
                        c.soldout = Some((SoldOut::Lose, None));
                        i += 2;
                    }
                    b"REDRAW" => {
                        c.soldout = Some((SoldOut::Redraw, None));
                        i += 2;
                    }
                    b"FALLBACK" => {
                        need(i, 2, "SOLDOUT FALLBACK needs a prize id")?;
                        let id = id_arg(args[i + 2], "FALLBACK prize id")?;
                        c.soldout = Some((SoldOut::Fallback, Some(id)));
                        i += 3;
                    }
                    _ => {
                        return Err(format!(
                            "invalid SOLDOUT '{}': expected LOSE, REDRAW or FALLBACK id",
                            shown(args[i + 1])
                        ))
                    }
                }
            }
            b"STREAM" => {
                need(i, 1, "STREAM needs a key")?;
                once(&c.stream, "STREAM")?;
                let k = args[i + 1];
                if k.is_empty() || k.len() > MAX_KEY_LEN {
                    return Err(format!(
                        "invalid STREAM key: must be 1..{MAX_KEY_LEN} bytes"
                    ));
                }
                c.stream = Some(k.to_vec());
                i += 2;
            }
            b"IDEMPOTENCY" => {
                need(i, 1, "IDEMPOTENCY needs milliseconds")?;
                once(&c.idempotency_ms, "IDEMPOTENCY")?;
                c.idempotency_ms = Some(u64_arg(args[i + 1], "IDEMPOTENCY", MAX_IDEMPOTENCY_MS)?);
                i += 2;
            }
            b"RATE" => {
                need(i, 1, "RATE needs draws per second or OFF")?;
                once(&c.rate, "RATE")?;
                if args[i + 1].eq_ignore_ascii_case(b"OFF") {
                    c.rate = Some(None);
                    i += 2;
                } else {
                    let per_sec = u64_arg(args[i + 1], "RATE", MAX_RATE)?;
                    if per_sec == 0 {
                        return Err("invalid RATE '0': expected 1..1000000000 or OFF".into());
                    }
                    i += 2;
                    let mut burst = per_sec;
                    if i < args.len() && args[i].eq_ignore_ascii_case(b"BURST") {
                        need(i, 1, "BURST needs a count")?;
                        burst = u64_arg(args[i + 1], "BURST", MAX_RATE)?;
                        if burst == 0 {
                            return Err("invalid BURST '0': expected 1..1000000000".into());
                        }
                        i += 2;
                    }
                    c.rate = Some(Some(Rate { per_sec, burst }));
                }
            }
            b"ADMIT" => {
                need(i, 1, "ADMIT needs a probability or OFF")?;
                once(&c.admit, "ADMIT")?;
                if args[i + 1].eq_ignore_ascii_case(b"OFF") {
                    c.admit = Some(None);
                    i += 2;
                } else {
                    let p1 = ppm_arg(args[i + 1], "ADMIT probability")?;
                    i += 2;
                    // p2 is optional: the next argument is one if it reads as a probability.
                    let mut p2 = PPM;
                    if let Some(v) = args.get(i).and_then(|a| parse_ppm(a)) {
                        p2 = v;
                        i += 1;
                    }
                    c.admit = Some(Some((p1, p2)));
                }
            }
            b"CLIENTLIMIT" => {
                need(i, 1, "CLIENTLIMIT needs n window-ms, or OFF")?;
                once(&c.client_limit, "CLIENTLIMIT")?;
                if args[i + 1].eq_ignore_ascii_case(b"OFF") {
                    c.client_limit = Some(None);
                    i += 2;
                } else {
                    need(i, 2, "CLIENTLIMIT needs n window-ms")?;
                    let n = u32_arg(args[i + 1], "CLIENTLIMIT count")?;
                    let w = u64_arg(args[i + 2], "CLIENTLIMIT window", i64::MAX as u64)?;
                    if w == 0 {
                        return Err(
                            "invalid CLIENTLIMIT window '0': expected 1..9223372036854775807"
                                .into(),
                        );
                    }
                    c.client_limit = Some(Some((n, w)));
                    i += 3;
                }
            }
            b"PENALTY" => {
                need(i, 1, "PENALTY needs milliseconds")?;
                once(&c.penalty_ms, "PENALTY")?;
                c.penalty_ms = Some(u64_arg(args[i + 1], "PENALTY", i64::MAX as u64)?);
                i += 2;
            }
            b"PACE" => {
                need(i, 2, "PACE needs a prize id and LINEAR or NONE")?;
                let id = id_arg(args[i + 1], "PACE prize id")?;
                let on = match args[i + 2].to_ascii_uppercase().as_slice() {
                    b"LINEAR" => true,
                    b"NONE" => false,
                    _ => {
                        return Err(format!(
                            "invalid PACE '{}': expected LINEAR or NONE",
                            shown(args[i + 2])
                        ))
                    }
                };
                if !paced.insert(args[i + 1]) {
                    return Err(format!("PACE given twice for prize '{}'", shown(&id)));
                }
                c.pace.push((id, on));
                i += 3;
            }
            b"VERIFIABLE" => {
                once(&c.verifiable, "VERIFIABLE")?;
                i += 1;
                if args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"OFF")) {
                    return Err(VERIFIABLE_OFF.into());
                }
                let mut log = None;
                if args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"LOG")) {
                    need(i, 1, "LOG needs WINS or ALL")?;
                    log = Some(match args[i + 1].to_ascii_uppercase().as_slice() {
                        b"WINS" => SeedLog::Wins,
                        b"ALL" => SeedLog::All,
                        _ => {
                            return Err(format!(
                                "invalid LOG '{}': expected WINS or ALL",
                                shown(args[i + 1])
                            ))
                        }
                    });
                    i += 2;
                }
                c.verifiable = Some(log);
            }
            _ => return Err(format!("unknown option '{}'", shown(args[i]))),
        }
    }
    if !prizes.is_empty() {
        c.prizes = Some(prizes);
    }
    Ok(c)
}
