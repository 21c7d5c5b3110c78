//! Argument parsing, in plain Rust on byte slices (no Redis types), so that every rule is
//! unit-tested and fuzzed. Every error names the offending argument; nothing here panics.

use crate::campaign::{ConfigChange, PrizeSpec, SoldOut};
use crate::flow::{parse_ppm, Rate, MAX_RATE, PPM};
use crate::ledger::{MAX_PEER_LEN, MAX_TRANSFER_ID_LEN};
use crate::limits::{
    MAX_DAYOFFSET_MIN, MAX_IDEMPOTENCY_MS, MAX_ID_LEN, MAX_KEY_LEN, MAX_PRIZES, MAX_REQID_LEN,
};
use std::collections::HashSet;

/// An error message without the leading `ERR `.
pub type PResult<T> = Result<T, String>;

/// Renders client bytes for an error message: valid UTF-8 as is (any plane), control
/// characters, quotes, backslashes and bytes that are not UTF-8 as `\xNN`; cut to 64
/// characters. No error reply or log line can carry CR, LF or NUL.
pub fn shown(b: &[u8]) -> String {
    const MAX_CHARS: usize = 64;
    let mut s = String::new();
    let mut n = 0;
    let escape = |s: &mut String, bytes: &[u8]| {
        for c in bytes {
            s.push_str(&format!("\\x{c:02x}"));
        }
    };
    for chunk in b.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if n == MAX_CHARS {
                s.push_str("...");
                return s;
            }
            n += 1;
            if ch.is_control() || ch == '\'' || ch == '\\' {
                let mut buf = [0u8; 4];
                escape(&mut s, ch.encode_utf8(&mut buf).as_bytes());
            } else {
                s.push(ch);
            }
        }
        for &c in chunk.invalid() {
            if n == MAX_CHARS {
                s.push_str("...");
                return s;
            }
            n += 1;
            escape(&mut s, &[c]);
        }
    }
    s
}

/// A strict decimal integer: optional '-', digits only, no leading '+', no spaces.
fn parse_i128(b: &[u8]) -> Option<i128> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        v = v * 10 + i128::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

/// An integer in `lo..=hi`, or an error naming `what`.
pub fn int_in(b: &[u8], what: &str, lo: i128, hi: i128) -> PResult<i128> {
    match parse_i128(b) {
        Some(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(format!(
            "invalid {what} '{}': expected an integer in {lo}..{hi}",
            shown(b)
        )),
    }
}

pub fn u32_arg(b: &[u8], what: &str) -> PResult<u32> {
    int_in(b, what, 0, i128::from(u32::MAX)).map(|v| v as u32)
}

pub fn u64_arg(b: &[u8], what: &str, max: u64) -> PResult<u64> {
    int_in(b, what, 0, i128::from(max)).map(|v| v as u64)
}

pub fn i64_arg(b: &[u8], what: &str, lo: i64, hi: i64) -> PResult<i64> {
    int_in(b, what, i128::from(lo), i128::from(hi)).map(|v| v as i64)
}

fn is_inf(b: &[u8]) -> bool {
    b.eq_ignore_ascii_case(b"inf")
}

/// A count that may be `INF` (None).
pub fn u32_or_inf(b: &[u8], what: &str) -> PResult<Option<u32>> {
    if is_inf(b) {
        Ok(None)
    } else {
        u32_arg(b, what).map(Some)
    }
}

pub fn stock_arg(b: &[u8]) -> PResult<Option<u64>> {
    if is_inf(b) {
        Ok(None)
    } else {
        u64_arg(b, "stock", i64::MAX as u64).map(Some)
    }
}

pub fn id_arg(b: &[u8], what: &str) -> PResult<Vec<u8>> {
    if b.is_empty() || b.len() > MAX_ID_LEN {
        return Err(format!("invalid {what}: must be 1..{MAX_ID_LEN} bytes"));
    }
    Ok(b.to_vec())
}

/// A probability in 0..1 with at most 6 decimals, as parts per million.
pub fn ppm_arg(b: &[u8], what: &str) -> PResult<u32> {
    parse_ppm(b).ok_or_else(|| {
        format!(
            "invalid {what} '{}': expected 0..1 with at most 6 decimals (0.25, 1)",
            shown(b)
        )
    })
}

/// A CLIENT id: 1..=256 bytes.
pub fn client_arg(b: &[u8]) -> PResult<&[u8]> {
    if b.is_empty() || b.len() > MAX_ID_LEN {
        return Err(format!("invalid CLIENT: must be 1..{MAX_ID_LEN} bytes"));
    }
    Ok(b)
}

pub fn reqid_arg(b: &[u8]) -> PResult<&[u8]> {
    if b.is_empty() || b.len() > MAX_REQID_LEN {
        return Err(format!("invalid REQID: must be 1..{MAX_REQID_LEN} bytes"));
    }
    Ok(b)
}

fn once<T>(slot: &Option<T>, name: &str) -> PResult<()> {
    if slot.is_some() {
        Err(format!("{name} given twice"))
    } else {
        Ok(())
    }
}

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
                prizes.push(PrizeSpec {
                    id: id_arg(args[i + 1], "prize id")?,
                    weight: u32_arg(args[i + 2], "weight")?,
                    stock: stock_arg(args[i + 3])?,
                });
                i += 4;
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
            _ => return Err(format!("unknown option '{}'", shown(args[i]))),
        }
    }
    if !prizes.is_empty() {
        c.prizes = Some(prizes);
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// The other commands' arguments. Each parser takes the arguments after the campaign key (after
// the command name for LOTTERY.DEBUG) and checks them in the order the command always has, so
// the first error a client gets is the same; `ArgError::Arity` stands for the server's own
// wrong-number-of-arguments reply.

/// Why a command's arguments were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    /// The number of arguments: the caller replies Redis's wrong-arity error.
    Arity,
    /// An error message without the leading `ERR `.
    Invalid(String),
}

impl From<String> for ArgError {
    fn from(m: String) -> ArgError {
        ArgError::Invalid(m)
    }
}

pub type AResult<T> = Result<T, ArgError>;

fn unknown_option(b: &[u8]) -> ArgError {
    ArgError::Invalid(format!("unknown option '{}'", shown(b)))
}

/// LOTTERY.DRAW's options, after the key and the user.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DrawOptions<'a> {
    /// The REQID value and its position among the options (the command passes that very
    /// argument on to the wins stream).
    pub reqid: Option<(usize, &'a [u8])>,
    pub client: Option<&'a [u8]>,
}

/// `[REQID request-id] [CLIENT client-id]`, in any order, each at most once.
pub fn draw_options<'a>(opts: &[&'a [u8]]) -> AResult<DrawOptions<'a>> {
    if opts.len() > 4 || !opts.len().is_multiple_of(2) {
        return Err(ArgError::Arity);
    }
    let mut o = DrawOptions::default();
    for (i, pair) in opts.chunks_exact(2).enumerate() {
        let (opt, val) = (pair[0], pair[1]);
        if opt.eq_ignore_ascii_case(b"REQID") && o.reqid.is_none() {
            o.reqid = Some((2 * i + 1, reqid_arg(val)?));
        } else if opt.eq_ignore_ascii_case(b"CLIENT") && o.client.is_none() {
            o.client = Some(client_arg(val)?);
        } else if opt.eq_ignore_ascii_case(b"REQID") || opt.eq_ignore_ascii_case(b"CLIENT") {
            return Err(ArgError::Invalid(format!(
                "{} given twice",
                shown(&opt.to_ascii_uppercase())
            )));
        } else {
            return Err(unknown_option(opt));
        }
    }
    Ok(o)
}

/// Whom BAN and UNBAN are about.
#[derive(Debug, PartialEq, Eq)]
pub enum Banned<'a> {
    User(&'a [u8]),
    Client(&'a [u8]),
}

/// LOTTERY.BAN's arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Ban<'a> {
    pub who: Banned<'a>,
    pub ms: i64,
}

/// The CLIENT forms are told apart by their argument count (one more than the user forms), so
/// a user may well be called "CLIENT".
fn is_client(args: &[&[u8]]) -> bool {
    args.first()
        .is_some_and(|a| a.eq_ignore_ascii_case(b"CLIENT"))
}

/// `user ms` or `CLIENT client-id ms`.
pub fn ban_args<'a>(args: &[&'a [u8]]) -> AResult<Ban<'a>> {
    match *args {
        [user, ms] => Ok(Ban {
            ms: i64_arg(ms, "ms", 1, i64::MAX)?,
            who: Banned::User(user),
        }),
        [_, id, ms] if is_client(args) => {
            let ms = i64_arg(ms, "ms", 1, i64::MAX)?;
            Ok(Ban {
                who: Banned::Client(client_arg(id)?),
                ms,
            })
        }
        _ => Err(ArgError::Arity),
    }
}

/// `user` or `CLIENT client-id`.
pub fn unban_args<'a>(args: &[&'a [u8]]) -> AResult<Banned<'a>> {
    match *args {
        [user] => Ok(Banned::User(user)),
        [_, id] if is_client(args) => Ok(Banned::Client(client_arg(id)?)),
        _ => Err(ArgError::Arity),
    }
}

/// LOTTERY.GRANT's arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant<'a> {
    pub user: &'a [u8],
    pub n: u32,
    pub cap: Option<u32>,
}

/// `user n [CAP m]`.
pub fn grant_args<'a>(args: &[&'a [u8]]) -> AResult<Grant<'a>> {
    let (user, n, cap) = match *args {
        [user, n] => (user, n, None),
        [user, n, opt, m] if opt.eq_ignore_ascii_case(b"CAP") => {
            (user, n, Some(u32_arg(m, "CAP")?))
        }
        [_, _, opt, _] => return Err(unknown_option(opt)),
        _ => return Err(ArgError::Arity),
    };
    let n = int_in(n, "n", 1, i128::from(u32::MAX))? as u32;
    Ok(Grant { user, n, cap })
}

/// LOTTERY.RESTOCK's arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Restock<'a> {
    pub prize: &'a [u8],
    pub delta: i64,
}

/// `prize delta`.
pub fn restock_args<'a>(args: &[&'a [u8]]) -> AResult<Restock<'a>> {
    match *args {
        [prize, delta] => Ok(Restock {
            prize,
            delta: i64_arg(delta, "delta", -i64::MAX, i64::MAX)?,
        }),
        _ => Err(ArgError::Arity),
    }
}

/// LOTTERY.DRAIN: a new batch, or the previous one again.
#[derive(Debug, PartialEq, Eq)]
pub enum Drain {
    Next,
    Last,
}

/// `[LAST]`.
pub fn drain_args(args: &[&[u8]]) -> AResult<Drain> {
    match *args {
        [] => Ok(Drain::Next),
        [last] if last.eq_ignore_ascii_case(b"LAST") => Ok(Drain::Last),
        [opt] => Err(unknown_option(opt)),
        _ => Err(ArgError::Arity),
    }
}

/// One step of LOTTERY.TRANSFER.
#[derive(Debug, PartialEq, Eq)]
pub enum TransferStep<'a> {
    Out {
        id: &'a [u8],
        prize: Vec<u8>,
        count: u64,
        peer: &'a [u8],
    },
    In {
        id: &'a [u8],
        prize: Vec<u8>,
        count: u64,
        peer: &'a [u8],
    },
    Settle {
        id: &'a [u8],
    },
    List {
        pending_only: bool,
    },
}

fn transfer_id(b: &[u8]) -> PResult<&[u8]> {
    if b.is_empty() || b.len() > MAX_TRANSFER_ID_LEN {
        return Err(format!(
            "invalid transfer id: must be 1..{MAX_TRANSFER_ID_LEN} bytes"
        ));
    }
    Ok(b)
}

fn peer_arg(b: &[u8]) -> PResult<&[u8]> {
    if b.is_empty() || b.len() > MAX_PEER_LEN {
        return Err(format!("invalid peer: must be 1..{MAX_PEER_LEN} bytes"));
    }
    Ok(b)
}

/// `OUT id prize count peer`, `IN id prize count peer`, `SETTLE id` or `LIST [PENDING]`
/// (`key`: the campaign key, which a peer must not be).
pub fn transfer_args<'a>(key: &[u8], args: &[&'a [u8]]) -> AResult<TransferStep<'a>> {
    let Some(sub) = args.first() else {
        return Err(ArgError::Arity);
    };
    let upper = sub.to_ascii_uppercase();
    match upper.as_slice() {
        b"OUT" | b"IN" => {
            let [_, id, prize, count, peer] = *args else {
                return Err(ArgError::Arity);
            };
            let out = upper == b"OUT";
            let id = transfer_id(id)?;
            let prize = id_arg(prize, "prize id")?;
            let min = if out { 1 } else { 0 };
            let count = int_in(count, "count", min, i128::from(i64::MAX))? as u64;
            let peer = peer_arg(peer)?;
            if peer == key {
                return Err(ArgError::Invalid(
                    "a transfer's peer must be another key".into(),
                ));
            }
            Ok(if out {
                TransferStep::Out {
                    id,
                    prize,
                    count,
                    peer,
                }
            } else {
                TransferStep::In {
                    id,
                    prize,
                    count,
                    peer,
                }
            })
        }
        b"SETTLE" => match *args {
            [_, id] => Ok(TransferStep::Settle {
                id: transfer_id(id)?,
            }),
            _ => Err(ArgError::Arity),
        },
        b"LIST" => match *args {
            [_] => Ok(TransferStep::List {
                pending_only: false,
            }),
            [_, p] if p.eq_ignore_ascii_case(b"PENDING") => {
                Ok(TransferStep::List { pending_only: true })
            }
            [_, opt] => Err(unknown_option(opt)),
            _ => Err(ArgError::Arity),
        },
        _ => Err(ArgError::Invalid(format!(
            "unknown TRANSFER subcommand '{}' (expected OUT, IN, SETTLE or LIST)",
            shown(sub)
        ))),
    }
}

/// LOTTERY.DEBUG's subcommands.
#[derive(Debug, PartialEq, Eq)]
pub enum Debug {
    /// Pin the module clock at this time, or (None) return to the real clock.
    Clock(Option<i64>),
    Panic,
}

/// `CLOCK ms|REAL` or `PANIC` (the arguments after the command name).
pub fn debug_args(args: &[&[u8]]) -> AResult<Debug> {
    match *args {
        [p] if p.eq_ignore_ascii_case(b"PANIC") => Ok(Debug::Panic),
        [sub, v] => {
            if !sub.eq_ignore_ascii_case(b"CLOCK") {
                return Err(ArgError::Invalid(format!(
                    "unknown subcommand '{}'",
                    shown(sub)
                )));
            }
            if v.eq_ignore_ascii_case(b"REAL") {
                Ok(Debug::Clock(None))
            } else {
                Ok(Debug::Clock(Some(i64_arg(v, "ms", 1, i64::MAX)?)))
            }
        }
        _ => Err(ArgError::Arity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PResult<ConfigChange> {
        let v: Vec<&[u8]> = s.split_whitespace().map(|x| x.as_bytes()).collect();
        configure_args(&v)
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(u32_arg(b"0", "x"), Ok(0));
        assert_eq!(u32_arg(b"4294967295", "x"), Ok(u32::MAX));
        for bad in [
            &b"4294967296"[..],
            b"-1",
            b"+5",
            b" 5",
            b"5.0",
            b"",
            b"0x10",
            b"1e3",
            b"-",
            b"99999999999999999999999",
        ] {
            assert!(u32_arg(bad, "x").is_err(), "{bad:?}");
        }
        assert_eq!(stock_arg(b"inf"), Ok(None));
        assert_eq!(stock_arg(b"9223372036854775807"), Ok(Some(i64::MAX as u64)));
        assert!(stock_arg(b"9223372036854775808").is_err());
        assert_eq!(i64_arg(b"-1440", "d", -1440, 1440), Ok(-1440));
        assert!(i64_arg(b"-1441", "d", -1440, 1440).is_err());
    }

    #[test]
    fn configure_full() {
        let c = p("PRIZE a 1 10 prize b 2 inf NOTHING 5 COOLDOWN 100 DAILY 3 MAXWINS INF DAYOFFSET 480 WINDOW 1 2 SOLDOUT fallback b STREAM s IDEMPOTENCY 0").unwrap();
        let pr = c.prizes.unwrap();
        assert_eq!(pr.len(), 2);
        assert_eq!(pr[1].stock, None);
        assert_eq!(c.nothing, Some(5));
        assert_eq!(c.daily, Some(Some(3)));
        assert_eq!(c.maxwins, Some(None));
        assert_eq!(c.dayoffset_min, Some(480));
        assert_eq!(c.window, Some((1, 2)));
        assert_eq!(c.soldout, Some((SoldOut::Fallback, Some(b"b".to_vec()))));
        assert_eq!(c.idempotency_ms, Some(0));
    }

    #[test]
    fn configure_flow_control() {
        let c = p("RATE 100 BURST 20 ADMIT 0.3 0.9 CLIENTLIMIT 5 1000 PENALTY 60000 PACE a LINEAR PACE b none").unwrap();
        assert_eq!(
            c.rate,
            Some(Some(Rate {
                per_sec: 100,
                burst: 20
            }))
        );
        assert_eq!(c.admit, Some(Some((300_000, 900_000))));
        assert_eq!(c.client_limit, Some(Some((5, 1000))));
        assert_eq!(c.penalty_ms, Some(60_000));
        assert_eq!(c.pace, vec![(b"a".to_vec(), true), (b"b".to_vec(), false)]);
        let c = p("RATE 7 ADMIT 0.5 NOTHING 3").unwrap();
        assert_eq!(
            c.rate,
            Some(Some(Rate {
                per_sec: 7,
                burst: 7
            }))
        );
        assert_eq!(c.admit, Some(Some((500_000, PPM))));
        assert_eq!(c.nothing, Some(3));
        let c = p("RATE off ADMIT OFF CLIENTLIMIT off").unwrap();
        assert_eq!(
            (c.rate, c.admit, c.client_limit),
            (Some(None), Some(None), Some(None))
        );
    }

    #[test]
    fn configure_errors() {
        for bad in [
            "PRIZE a 1",
            "PRIZE a 1 -1",
            "PRIZE a 4294967296 1",
            "NOTHING",
            "FOO 1",
            "COOLDOWN 1 COOLDOWN 2",
            "WINDOW 5 5",
            "WINDOW 5",
            "SOLDOUT MAYBE",
            "SOLDOUT FALLBACK",
            "DAYOFFSET 2000",
            "IDEMPOTENCY 86400001",
            "RATE 0",
            "RATE 1000000001",
            "RATE 5 BURST 0",
            "RATE 5 BURST",
            "RATE 1 RATE 2",
            "ADMIT 1.5",
            "ADMIT",
            "ADMIT 0.1234567",
            "CLIENTLIMIT 5",
            "CLIENTLIMIT 5 0",
            "CLIENTLIMIT x 10",
            "PENALTY -1",
            "PACE a",
            "PACE a FAST",
            "PACE a LINEAR PACE a NONE",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(p("").unwrap().prizes.is_none());
    }

    #[test]
    fn shown_is_safe() {
        assert_eq!(shown(b"a\r\n\0'"), "a\\x0d\\x0a\\x00\\x27");
        // UTF-8 of every plane as is; C1 controls and bytes that are not UTF-8 escaped.
        assert_eq!(shown("一等奖 Ā 😀 é".as_bytes()), "一等奖 Ā 😀 é");
        assert_eq!(shown(b"\xff\xe4\xb8"), "\\xff\\xe4\\xb8");
        assert_eq!(shown("a\u{85}b".as_bytes()), "a\\xc2\\x85b");
        let long = "奖".repeat(100);
        assert_eq!(shown(long.as_bytes()), format!("{}...", "奖".repeat(64)));
        for b in 0..=255u8 {
            let s = shown(&[b, b'x', b]);
            assert!(!s.contains(['\0', '\r', '\n']), "{b}");
        }
        assert!(shown(&[b'x'; 100]).ends_with("..."));
    }

    fn w(s: &str) -> Vec<&[u8]> {
        s.split_whitespace().map(str::as_bytes).collect()
    }

    fn invalid<T>(r: AResult<T>) -> String {
        match r {
            Err(ArgError::Invalid(m)) => m,
            Err(ArgError::Arity) => "arity".into(),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn draw_options_in_any_order_once() {
        let o = draw_options(&w("CLIENT c REQID r")).unwrap();
        assert_eq!((o.reqid, o.client), (Some((3, &b"r"[..])), Some(&b"c"[..])));
        assert_eq!(
            invalid(draw_options(&w("reqid a REQID b"))),
            "REQID given twice"
        );
        assert_eq!(invalid(draw_options(&w("X a"))), "unknown option 'X'");
        assert_eq!(invalid(draw_options(&w("REQID"))), "arity");
        assert_eq!(invalid(draw_options(&w("a b c d e f"))), "arity");
    }

    #[test]
    fn command_parsers_keep_their_error_order() {
        // BAN checks ms before the client id; a user may be called CLIENT.
        assert_eq!(
            invalid(ban_args(&w("CLIENT x 0"))),
            "invalid ms '0': expected an integer in 1..9223372036854775807"
        );
        assert_eq!(
            ban_args(&w("CLIENT 5")).unwrap().who,
            Banned::User(b"CLIENT")
        );
        assert_eq!(invalid(unban_args(&w("NOTCLIENT x"))), "arity");
        // GRANT: an unknown option before n.
        assert_eq!(
            invalid(grant_args(&w("u 0 CAPX 1"))),
            "unknown option 'CAPX'"
        );
        assert_eq!(
            grant_args(&w("u 2 cap 3")).unwrap(),
            Grant {
                user: b"u",
                n: 2,
                cap: Some(3)
            }
        );
        assert_eq!(restock_args(&w("a -5")).unwrap().delta, -5);
        assert_eq!(drain_args(&w("last")), Ok(Drain::Last));
        assert_eq!(invalid(drain_args(&w("x y"))), "arity");
        assert_eq!(
            invalid(transfer_args(b"k", &w("OUT t a 1 k"))),
            "a transfer's peer must be another key"
        );
        assert_eq!(invalid(transfer_args(b"k", &w("IN t a 1"))), "arity");
        assert_eq!(
            invalid(transfer_args(b"k", &w("MOVE"))),
            "unknown TRANSFER subcommand 'MOVE' (expected OUT, IN, SETTLE or LIST)"
        );
        assert_eq!(
            transfer_args(b"k", &w("list pending")),
            Ok(TransferStep::List { pending_only: true })
        );
        assert_eq!(debug_args(&w("clock real")), Ok(Debug::Clock(None)));
        assert_eq!(debug_args(&w("panic")), Ok(Debug::Panic));
        assert_eq!(
            invalid(debug_args(&w("CLOCKS 1"))),
            "unknown subcommand 'CLOCKS'"
        );
        assert_eq!(invalid(debug_args(&w("CLOCK"))), "arity");
    }
}
