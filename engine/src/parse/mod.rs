//! Argument parsing, in plain Rust on byte slices (no Redis types), so that every rule is
//! unit-tested and fuzzed. Every error names the offending argument; nothing here panics.
//!
//! - this file: single values (integers, counts, stocks, ids, probabilities) and `shown`, the
//!   safe rendering of client bytes in error messages;
//! - `configure`: LOTTERY.CONFIGURE's options;
//! - `commands`: every other command's arguments.

mod commands;
mod configure;

pub use commands::*;
pub use configure::{configure_args, VERIFIABLE_OFF};

use crate::flow::parse_ppm;
use crate::limits::{MAX_ID_LEN, MAX_REQID_LEN};

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

pub(crate) fn once<T>(slot: &Option<T>, name: &str) -> PResult<()> {
    if slot.is_some() {
        Err(format!("{name} given twice"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{ConfigChange, SoldOut};
    use crate::flow::{Rate, PPM};

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
        assert_eq!(invalid(draw_options(&w("a b c d e f g h"))), "arity");
        assert_eq!(
            invalid(draw_options(&w("a b c d e f"))),
            "unknown option 'a'"
        );
        let o = draw_options(&w("TIER vip CLIENT c REQID r")).unwrap();
        assert_eq!(o.tier, Some(&b"vip"[..]));
        assert_eq!(
            invalid(draw_options(&w("tier a TIER b"))),
            "TIER given twice"
        );
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
            "unknown TRANSFER subcommand 'MOVE' (expected OUT, IN, SETTLE, CODES or LIST)"
        );
        assert_eq!(
            invalid(transfer_args(b"k", &w("OUT t a 1 p CODES x"))),
            "arity"
        );
        assert_eq!(
            invalid(transfer_args(b"k", &w("IN t a 1 p CODES"))),
            "arity"
        );
        assert_eq!(
            invalid(transfer_args(b"k", &w("IN t a 1 p CODEZ x"))),
            "unknown option 'CODEZ'"
        );
        assert_eq!(
            transfer_args(b"k", &w("in t a 2 p codes x y")),
            Ok(TransferStep::In {
                id: b"t",
                prize: b"a".to_vec(),
                count: 2,
                peer: b"p",
                codes: Some(vec![b"x".as_slice(), b"y"]),
            })
        );
        assert_eq!(
            transfer_args(b"k", &w("codes t")),
            Ok(TransferStep::Codes { id: b"t" })
        );
        assert_eq!(invalid(transfer_args(b"k", &w("CODES"))), "arity");
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
