//! Parsing of the replies of XREADGROUP, XAUTOCLAIM, LOTTERY.STATS and LOTTERY.DRAIN.

use crate::verify_log::{self, VerifyEntry};
use redis::Value;

/// One win, as read from the wins stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Win {
    pub id: String,
    pub user: Vec<u8>,
    /// The prize id as text (escaped when it is not storable text: see `prize_text`).
    pub prize: String,
    /// The prize id's exact bytes when `prize` had to be escaped, else None.
    pub prize_raw: Option<Vec<u8>>,
    pub ts_ms: i64,
    pub draw_seq: i64,
    pub reqid: Option<Vec<u8>>,
    /// The code handed out, for a win of a code prize (`PRIZE id weight CODES`): any bytes.
    pub code: Option<Vec<u8>>,
}

/// What a read handed us: wins to store, typed entries to store, and the IDs of every entry
/// read (stored or not: entries deleted from the stream or malformed wins are acknowledged
/// without a row).
#[derive(Debug, Default)]
pub struct Batch {
    pub wins: Vec<Win>,
    pub ack: Vec<String>,
    pub deleted: usize,
    pub malformed: Vec<(String, String)>,
    /// Entries with a `type` field (the verifiable-draw log), for `lottery_verify_log`.
    pub verify: Vec<VerifyEntry>,
    /// Those of them malformed for their type, or of an unknown type (stored all the same).
    pub verify_malformed: Vec<(String, String)>,
    /// The last entry ID in the reply (for paging through the pending list).
    pub last_id: Option<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.ack.is_empty()
    }
}

pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        Value::Okay => Some(b"OK"),
        _ => None,
    }
}

/// A prize id as text a database can take, and its exact bytes when that text is not them.
/// Valid UTF-8 without NUL or backslash (the usual case) is kept as is; anything else is
/// escaped (`\0` for NUL, `\xNN` for each byte that is not UTF-8, a backslash doubled) and the
/// raw bytes are kept too, so nothing is lost: PostgreSQL `text` cannot hold NUL or invalid
/// UTF-8. The text is a key of `stock_drains`, so no two ids may share it: a text kept as is
/// has no backslash, an escaped one has one, and the escaping decodes one way only.
pub fn prize_text(b: &[u8]) -> (String, Option<Vec<u8>>) {
    if let Ok(s) = std::str::from_utf8(b) {
        if !s.contains(['\0', '\\']) {
            return (s.to_string(), None);
        }
    }
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\0' => out.push_str("\\0"),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{:02x}", x));
        }
    }
    (out, Some(b.to_vec()))
}

pub fn string(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => bytes(other).and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()),
    }
}

pub fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

fn bad(what: &str, v: &Value) -> String {
    format!("unexpected {} reply: {:?}", what, v)
}

/// Parses one `[id, [field, value, ...]]` entry (fields nil when the entry was deleted).
fn parse_entry(e: &Value, out: &mut Batch) -> Result<(), String> {
    let parts = array(e).ok_or_else(|| bad("stream entry", e))?;
    if parts.len() != 2 {
        return Err(bad("stream entry", e));
    }
    let id = string(&parts[0]).ok_or_else(|| bad("stream entry id", e))?;
    out.ack.push(id.clone());
    out.last_id = Some(id.clone());
    let fields = match &parts[1] {
        Value::Nil => {
            out.deleted += 1;
            return Ok(());
        }
        other => match array(other) {
            Some(f) => f,
            None => {
                out.malformed.push((id, "fields are not an array".into()));
                return Ok(());
            }
        },
    };
    if verify_log::is_typed(fields) {
        let (entry, why) = verify_log::parse(&id, fields);
        if let Some(why) = why {
            out.verify_malformed.push((id, why));
        }
        out.verify.push(entry);
        return Ok(());
    }
    let (mut user, mut prize, mut ts, mut draw, mut reqid, mut code) =
        (None, None, None, None, None, None);
    let mut ts_seen = false;
    for kv in fields.chunks(2) {
        if kv.len() != 2 {
            break;
        }
        let (Some(k), Some(val)) = (bytes(&kv[0]), bytes(&kv[1])) else {
            continue;
        };
        match k {
            b"user" => user = Some(val.to_vec()),
            b"prize" => prize = Some(val.to_vec()),
            b"ts" => {
                ts_seen = true;
                ts = std::str::from_utf8(val)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
            }
            b"draw" => {
                draw = std::str::from_utf8(val)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
            }
            b"reqid" => reqid = Some(val.to_vec()),
            b"code" => code = Some(val.to_vec()),
            _ => {}
        }
    }
    // The draw's time: the `ts` field when the entry has one (entries written before the
    // time moved into the ID, and entries whose ID could not carry it), else the ID's ms.
    let ts = if ts_seen { ts } else { id_ms(&id) };
    match (user, prize, ts, draw) {
        (Some(user), Some(prize), Some(ts_ms), Some(draw_seq)) => {
            let (prize, prize_raw) = prize_text(&prize);
            out.wins.push(Win {
                id,
                user,
                prize,
                prize_raw,
                ts_ms,
                draw_seq,
                reqid,
                code,
            });
        }
        _ => out
            .malformed
            .push((id, "missing or invalid user/prize/ts/draw".into())),
    }
    Ok(())
}

/// The milliseconds part of a stream entry ID (`<ms>-<seq>`).
fn id_ms(id: &str) -> Option<i64> {
    id.split_once('-')?.0.parse().ok()
}

fn parse_entries(list: &Value, out: &mut Batch) -> Result<(), String> {
    if matches!(list, Value::Nil) {
        return Ok(());
    }
    for e in array(list).ok_or_else(|| bad("entry list", list))? {
        parse_entry(e, out)?;
    }
    Ok(())
}

/// XREADGROUP ... STREAMS <one stream> <id>: nil on timeout, else `[[stream, [entries]]]`
/// (RESP2) or a map (RESP3).
pub fn parse_xreadgroup(v: &Value) -> Result<Batch, String> {
    let mut out = Batch::default();
    match v {
        Value::Nil => {}
        Value::Array(streams) => {
            for s in streams {
                let pair = array(s).ok_or_else(|| bad("XREADGROUP", v))?;
                if pair.len() != 2 {
                    return Err(bad("XREADGROUP", v));
                }
                parse_entries(&pair[1], &mut out)?;
            }
        }
        Value::Map(streams) => {
            for (_, entries) in streams {
                parse_entries(entries, &mut out)?;
            }
        }
        other => return Err(bad("XREADGROUP", other)),
    }
    Ok(out)
}

/// XAUTOCLAIM reply: `[next-cursor, [entries], [deleted ids]]` (the third only in Redis 7).
pub fn parse_xautoclaim(v: &Value) -> Result<(String, Batch), String> {
    let parts = array(v).ok_or_else(|| bad("XAUTOCLAIM", v))?;
    if parts.len() < 2 {
        return Err(bad("XAUTOCLAIM", v));
    }
    let cursor = string(&parts[0]).ok_or_else(|| bad("XAUTOCLAIM cursor", v))?;
    let mut out = Batch::default();
    parse_entries(&parts[1], &mut out)?;
    if let Some(deleted) = parts.get(2).and_then(array) {
        // Redis 7 already removed these from the pending list.
        out.deleted += deleted.len();
    }
    Ok((cursor, out))
}

/// Finds `field` in a flat field/value reply (LOTTERY.STATS).
pub fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Array(a) => a
            .chunks(2)
            .find(|kv| kv.len() == 2 && bytes(&kv[0]) == Some(name.as_bytes()))
            .map(|kv| &kv[1]),
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| bytes(k) == Some(name.as_bytes()))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// One prize's count in a drain batch (`prize`, `prize_raw` as in `Win`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sold {
    pub prize: String,
    pub prize_raw: Option<Vec<u8>>,
    pub n: i64,
}

/// One LOTTERY.DRAIN batch: `[seq, [prize-id, count, ...]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    pub seq: i64,
    pub sold: Vec<Sold>,
}

pub fn parse_drain(v: &Value) -> Result<Drain, String> {
    let parts = array(v).ok_or_else(|| bad("LOTTERY.DRAIN", v))?;
    if parts.len() != 2 {
        return Err(bad("LOTTERY.DRAIN", v));
    }
    let seq = int(&parts[0]).ok_or_else(|| bad("LOTTERY.DRAIN seq", v))?;
    let mut sold = Vec::new();
    let list = array(&parts[1]).ok_or_else(|| bad("LOTTERY.DRAIN counts", v))?;
    for kv in list.chunks(2) {
        if kv.len() != 2 {
            return Err(bad("LOTTERY.DRAIN counts", v));
        }
        let prize = bytes(&kv[0]).ok_or_else(|| bad("LOTTERY.DRAIN prize", v))?;
        let n = int(&kv[1]).ok_or_else(|| bad("LOTTERY.DRAIN count", v))?;
        let (prize, prize_raw) = prize_text(prize);
        sold.push(Sold {
            prize,
            prize_raw,
            n,
        });
    }
    Ok(Drain { seq, sold })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn xreadgroup_entries_deleted_and_malformed() {
        let v = Value::Array(vec![Value::Array(vec![
            b("s"),
            Value::Array(vec![
                Value::Array(vec![
                    b("1-0"),
                    Value::Array(vec![
                        b("user"),
                        Value::BulkString(vec![0xff, 0]),
                        b("prize"),
                        b("gold"),
                        b("ts"),
                        b("1"),
                        b("draw"),
                        b("7"),
                        b("reqid"),
                        b("r"),
                    ]),
                ]),
                Value::Array(vec![b("2-0"), Value::Nil]),
                Value::Array(vec![b("3-0"), Value::Array(vec![b("user"), b("x")])]),
            ]),
        ])]);
        let out = parse_xreadgroup(&v).unwrap();
        assert_eq!(out.ack, vec!["1-0", "2-0", "3-0"]);
        assert_eq!(out.deleted, 1);
        assert_eq!(out.malformed.len(), 1);
        assert_eq!(
            out.wins,
            vec![Win {
                id: "1-0".into(),
                user: vec![0xff, 0],
                prize: "gold".into(),
                prize_raw: None,
                ts_ms: 1,
                draw_seq: 7,
                reqid: Some(b"r".to_vec()),
                code: None
            }]
        );
        assert_eq!(out.last_id.as_deref(), Some("3-0"));
        assert!(parse_xreadgroup(&Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn time_from_the_entry_id_unless_a_ts_field_is_there() {
        let entry = |id: &str, fields: &[&str]| {
            Value::Array(vec![
                b(id),
                Value::Array(fields.iter().map(|f| b(f)).collect()),
            ])
        };
        let v = Value::Array(vec![Value::Array(vec![
            b("s"),
            Value::Array(vec![
                // no ts: the ID's milliseconds (a user named "ts" changes nothing)
                entry(
                    "1700000000123-4",
                    &["user", "ts", "prize", "p", "draw", "9"],
                ),
                // a ts field wins over the ID
                entry(
                    "1700000000200-0",
                    &["user", "u", "prize", "p", "draw", "10", "ts", "5"],
                ),
                // a ts field that is not a number is malformed, not replaced by the ID
                entry(
                    "1700000000300-0",
                    &["user", "u", "prize", "p", "draw", "11", "ts", "x"],
                ),
            ]),
        ])]);
        let out = parse_xreadgroup(&v).unwrap();
        let got: Vec<(Vec<u8>, i64, i64)> = out
            .wins
            .iter()
            .map(|w| (w.user.clone(), w.ts_ms, w.draw_seq))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"ts".to_vec(), 1_700_000_000_123, 9),
                (b"u".to_vec(), 5, 10)
            ]
        );
        assert_eq!(out.malformed.len(), 1);
        assert_eq!(out.malformed[0].0, "1700000000300-0");
    }

    #[test]
    fn code_field_of_a_code_prize_win() {
        let entry = |id: &str, fields: Vec<Value>| Value::Array(vec![b(id), Value::Array(fields)]);
        let v = Value::Array(vec![Value::Array(vec![
            b("s"),
            Value::Array(vec![
                // user prize draw code reqid ts, the code any bytes (NUL, not UTF-8)
                entry(
                    "1700000000000-0",
                    vec![
                        b("user"),
                        b("u"),
                        b("prize"),
                        b("card"),
                        b("draw"),
                        b("1"),
                        b("code"),
                        Value::BulkString(b"\0A\xff\r\n".to_vec()),
                        b("reqid"),
                        b("r1"),
                        b("ts"),
                        b("42"),
                    ],
                ),
                // no code: a win of a counted prize
                entry(
                    "1700000000001-0",
                    vec![b("user"), b("code"), b("prize"), b("p"), b("draw"), b("2")],
                ),
            ]),
        ])]);
        let out = parse_xreadgroup(&v).unwrap();
        assert!(out.malformed.is_empty());
        assert_eq!(out.wins.len(), 2);
        assert_eq!(out.wins[0].code.as_deref(), Some(&b"\0A\xff\r\n"[..]));
        assert_eq!(out.wins[0].reqid.as_deref(), Some(&b"r1"[..]));
        assert_eq!(out.wins[0].ts_ms, 42);
        // a user named "code" is a user, not a code
        assert_eq!(out.wins[1].user, b"code".to_vec());
        assert_eq!(out.wins[1].code, None);
    }

    #[test]
    fn prize_ids_that_are_not_text() {
        assert_eq!(prize_text(b"gold"), ("gold".into(), None));
        assert_eq!(
            prize_text(b"a\\b"),
            ("a\\\\b".into(), Some(b"a\\b".to_vec()))
        );
        // Two ids, one text before: the four characters `\xff` and the byte 0xff.
        assert_ne!(prize_text(b"\\xff").0, prize_text(b"\xff").0);
        assert_eq!(prize_text(b"\xff").0, "\\xff");
        assert_eq!(
            prize_text(b"a\0b\xff\\"),
            ("a\\0b\\xff\\\\".into(), Some(b"a\0b\xff\\".to_vec()))
        );
    }

    #[test]
    fn drain_and_autoclaim() {
        let d = parse_drain(&Value::Array(vec![
            Value::Int(3),
            Value::Array(vec![b("gold"), Value::Int(2)]),
        ]))
        .unwrap();
        assert_eq!(
            d,
            Drain {
                seq: 3,
                sold: vec![Sold {
                    prize: "gold".into(),
                    prize_raw: None,
                    n: 2
                }]
            }
        );
        let d = parse_drain(&Value::Array(vec![Value::Int(0), Value::Array(vec![])])).unwrap();
        assert_eq!(d.seq, 0);
        let (c, out) = parse_xautoclaim(&Value::Array(vec![
            b("0-0"),
            Value::Array(vec![]),
            Value::Array(vec![b("5-0")]),
        ]))
        .unwrap();
        assert_eq!(c, "0-0");
        assert_eq!(out.deleted, 1);
        assert!(out.is_empty());
    }
}
