//! The other commands' arguments. Each parser takes the arguments after the campaign key (after
//! the command name for LOTTERY.DEBUG) and checks them in the order the command always has, so
//! the first error a client gets is the same; `ArgError::Arity` stands for the server's own
//! wrong-number-of-arguments reply.

use super::*;
use crate::ledger::{MAX_PEER_LEN, MAX_TRANSFER_ID_LEN};

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
    /// The tier's name (looked up in the campaign).
    pub tier: Option<&'a [u8]>,
}

/// `[REQID request-id] [CLIENT client-id] [TIER name]`, in any order, each at most once.
pub fn draw_options<'a>(opts: &[&'a [u8]]) -> AResult<DrawOptions<'a>> {
    if opts.len() > 6 || !opts.len().is_multiple_of(2) {
        return Err(ArgError::Arity);
    }
    let mut o = DrawOptions::default();
    for (i, pair) in opts.chunks_exact(2).enumerate() {
        let (opt, val) = (pair[0], pair[1]);
        if opt.eq_ignore_ascii_case(b"REQID") && o.reqid.is_none() {
            o.reqid = Some((2 * i + 1, reqid_arg(val)?));
        } else if opt.eq_ignore_ascii_case(b"CLIENT") && o.client.is_none() {
            o.client = Some(client_arg(val)?);
        } else if opt.eq_ignore_ascii_case(b"TIER") && o.tier.is_none() {
            if val.is_empty() || val.len() > crate::limits::MAX_TIER_NAME_LEN {
                return Err(ArgError::Invalid(format!(
                    "invalid tier name: must be 1..{} bytes",
                    crate::limits::MAX_TIER_NAME_LEN
                )));
            }
            o.tier = Some(val);
        } else if opt.eq_ignore_ascii_case(b"REQID")
            || opt.eq_ignore_ascii_case(b"CLIENT")
            || opt.eq_ignore_ascii_case(b"TIER")
        {
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

/// LOTTERY.CODES: what to do with a code prize's pool.
#[derive(Debug, PartialEq, Eq)]
pub enum CodesOp<'a> {
    Add(Vec<&'a [u8]>),
    Remove(Vec<&'a [u8]>),
    Count,
}

/// LOTTERY.CODES's arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Codes<'a> {
    pub prize: &'a [u8],
    pub op: CodesOp<'a>,
}

/// `prize ADD code [code ...]`, `prize REMOVE code [code ...]` or `prize COUNT`. Codes are
/// 1..=MAX_CODE_LEN bytes, at most MAX_CODES_PER_CALL a call.
pub fn codes_args<'a>(args: &[&'a [u8]]) -> AResult<Codes<'a>> {
    use crate::limits::{MAX_CODES_PER_CALL, MAX_CODE_LEN};
    let [prize, op, rest @ ..] = args else {
        return Err(ArgError::Arity);
    };
    let list = || -> AResult<Vec<&'a [u8]>> {
        if rest.is_empty() {
            return Err(ArgError::Arity);
        }
        if rest.len() > MAX_CODES_PER_CALL {
            return Err(ArgError::Invalid(format!(
                "too many codes in one call (at most {MAX_CODES_PER_CALL})"
            )));
        }
        if let Some(c) = rest.iter().find(|c| c.is_empty() || c.len() > MAX_CODE_LEN) {
            return Err(ArgError::Invalid(format!(
                "invalid code of {} bytes: must be 1..{MAX_CODE_LEN} bytes",
                c.len()
            )));
        }
        Ok(rest.to_vec())
    };
    let op = if op.eq_ignore_ascii_case(b"ADD") {
        CodesOp::Add(list()?)
    } else if op.eq_ignore_ascii_case(b"REMOVE") {
        CodesOp::Remove(list()?)
    } else if op.eq_ignore_ascii_case(b"COUNT") {
        if !rest.is_empty() {
            return Err(ArgError::Arity);
        }
        CodesOp::Count
    } else {
        return Err(ArgError::Invalid(format!(
            "unknown subcommand '{}': expected ADD, REMOVE or COUNT",
            shown(op)
        )));
    };
    Ok(Codes { prize, op })
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
        /// `CODES code ...`: the codes of a code prize's transfer.
        codes: Option<Vec<&'a [u8]>>,
    },
    Settle {
        id: &'a [u8],
    },
    /// The codes an OUT record holds.
    Codes {
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

/// `CODES code [code ...]` after an IN: 1..=MAX_TRANSFER_CODES codes of 1..=MAX_CODE_LEN bytes.
fn transfer_codes<'a>(rest: &[&'a [u8]]) -> AResult<Option<Vec<&'a [u8]>>> {
    use crate::ledger::MAX_TRANSFER_CODES;
    use crate::limits::MAX_CODE_LEN;
    let Some((kw, codes)) = rest.split_first() else {
        return Ok(None);
    };
    if !kw.eq_ignore_ascii_case(b"CODES") {
        return Err(unknown_option(kw));
    }
    if codes.is_empty() {
        return Err(ArgError::Arity);
    }
    if codes.len() > MAX_TRANSFER_CODES {
        return Err(ArgError::Invalid(format!(
            "too many codes in one transfer (at most {MAX_TRANSFER_CODES})"
        )));
    }
    if let Some(c) = codes
        .iter()
        .find(|c| c.is_empty() || c.len() > MAX_CODE_LEN)
    {
        return Err(ArgError::Invalid(format!(
            "invalid code of {} bytes: must be 1..{MAX_CODE_LEN} bytes",
            c.len()
        )));
    }
    Ok(Some(codes.to_vec()))
}

/// `OUT id prize count peer`, `IN id prize count peer [CODES code ...]`, `SETTLE id`,
/// `CODES id` or `LIST [PENDING]` (`key`: the campaign key, which a peer must not be).
pub fn transfer_args<'a>(key: &[u8], args: &[&'a [u8]]) -> AResult<TransferStep<'a>> {
    let Some(sub) = args.first() else {
        return Err(ArgError::Arity);
    };
    let upper = sub.to_ascii_uppercase();
    match upper.as_slice() {
        b"OUT" | b"IN" => {
            let out = upper == b"OUT";
            let (head, rest) = args.split_at(args.len().min(5));
            let [_, id, prize, count, peer] = *head else {
                return Err(ArgError::Arity);
            };
            if out && !rest.is_empty() {
                return Err(ArgError::Arity);
            }
            let codes = transfer_codes(rest)?;
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
                    codes,
                }
            })
        }
        b"SETTLE" => match *args {
            [_, id] => Ok(TransferStep::Settle {
                id: transfer_id(id)?,
            }),
            _ => Err(ArgError::Arity),
        },
        b"CODES" => match *args {
            [_, id] => Ok(TransferStep::Codes {
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
            "unknown TRANSFER subcommand '{}' (expected OUT, IN, SETTLE, CODES or LIST)",
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
