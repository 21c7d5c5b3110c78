//! Entries of the wins stream that are not wins: the verifiable-draw log (`type epoch`,
//! `type table`, `type draw`, `type reveal`, and any other `type`). Each is stored as one row
//! of `lottery_verify_log`, whatever it holds: an unknown type, or an entry malformed for its
//! type, is stored as is (and reported), never dropped.

use crate::stream::{bytes, prize_text};
use redis::Value;

/// One typed entry, ready for `lottery_verify_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyEntry {
    pub id: String,
    /// The `type` value's text form.
    pub kind: String,
    /// `epoch` of an epoch or reveal entry.
    pub epoch: Option<i64>,
    /// `draw` of a draw entry; `from_draw` of an epoch or table entry.
    pub draw: Option<i64>,
    /// A JSON array `[name, value, ...]` of every field in entry order, each in the text form
    /// of `stream::prize_text`.
    pub fields: String,
}

/// Whether an entry's fields (`[name, value, ...]`) have a `type` field: then it is not a win.
pub fn is_typed(fields: &[Value]) -> bool {
    fields
        .chunks(2)
        .any(|kv| kv.len() == 2 && bytes(&kv[0]) == Some(&b"type"[..]))
}

/// A string as a JSON string literal.
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            // U+2028 / U+2029 are valid JSON, but not JavaScript: escaped for readers that
            // paste the column into a script.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Text shown in a reason: quoted, cut at `SHOWN` characters with its length in bytes when
/// longer.
fn shown(s: &str) -> String {
    const SHOWN: usize = 64;
    match s.char_indices().nth(SHOWN) {
        None => format!("{:?}", s),
        Some((end, _)) => format!("{:?}... ({} bytes)", &s[..end], s.len()),
    }
}

fn text(b: &[u8]) -> String {
    prize_text(b).0
}

fn number(v: Option<&[u8]>) -> Option<i64> {
    let s = std::str::from_utf8(v?).ok()?;
    // Decimal, no sign, no leading zeros (as the module writes them).
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

fn hex64(v: Option<&[u8]>) -> bool {
    v.is_some_and(|v| v.len() == 64 && v.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The row of one typed entry, and why it is malformed for its type (None: well formed).
/// An unknown type is reported too (a newer module's entry, or a foreign one).
pub fn parse(id: &str, fields: &[Value]) -> (VerifyEntry, Option<String>) {
    let mut json = String::from("[");
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut why: Option<String> = None;
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            json.push_str(", ");
        }
        match bytes(f) {
            Some(b) => json_string(&text(b), &mut json),
            None => {
                json.push_str("null");
                why.get_or_insert_with(|| format!("field {} is not a string", i));
            }
        }
    }
    json.push(']');
    if !fields.len().is_multiple_of(2) {
        why.get_or_insert_with(|| "odd number of fields".into());
    }
    for kv in fields.chunks(2) {
        if let (Some(k), Some(v)) = (kv.first().and_then(bytes), kv.get(1).and_then(bytes)) {
            pairs.push((k, v));
        }
    }
    let get = |name: &[u8]| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let kind_bytes = get(b"type").unwrap_or_default();
    let kind = text(kind_bytes);
    if pairs.first().map(|(k, _)| *k) != Some(&b"type"[..]) {
        why.get_or_insert_with(|| "the first field is not type".into());
    }
    let (mut epoch, mut draw) = (None, None);
    let need = |names: &[&[u8]]| {
        for n in names {
            if get(n).is_none() {
                return Some(format!(
                    "{} entry without {}",
                    kind,
                    String::from_utf8_lossy(n)
                ));
            }
        }
        None
    };
    let check = match kind_bytes {
        b"epoch" => {
            epoch = number(get(b"epoch"));
            draw = number(get(b"from_draw"));
            need(&[b"epoch", b"commitment", b"from_draw"]).or_else(|| {
                if epoch.is_none() || draw.is_none() {
                    Some("epoch entry with a bad epoch or from_draw".into())
                } else if !hex64(get(b"commitment")) {
                    Some("epoch entry with a bad commitment".into())
                } else {
                    None
                }
            })
        }
        b"reveal" => {
            epoch = number(get(b"epoch"));
            need(&[b"epoch", b"seed"]).or_else(|| {
                if epoch.is_none() {
                    Some("reveal entry with a bad epoch".into())
                } else if !hex64(get(b"seed")) {
                    Some("reveal entry with a bad seed".into())
                } else {
                    None
                }
            })
        }
        b"draw" => {
            draw = number(get(b"draw"));
            need(&[b"draw", b"user", b"outcome", b"pick"]).or_else(|| {
                draw.is_none()
                    .then(|| "draw entry with a bad draw number".into())
            })
        }
        b"table" => {
            draw = number(get(b"from_draw"));
            need(&[b"from_draw", b"tier"]).or_else(|| {
                // type, from_draw, tier, then (prize, weight) pairs, NOTHING last.
                let prizes = pairs.get(3..).unwrap_or_default();
                if draw.is_none() {
                    Some("table entry with a bad from_draw".into())
                } else if prizes.last().map(|(k, _)| *k) != Some(&b"NOTHING"[..]) {
                    Some("table entry whose last pair is not NOTHING".into())
                } else if prizes.iter().any(|(_, w)| number(Some(w)).is_none()) {
                    Some("table entry with a bad weight".into())
                } else {
                    None
                }
            })
        }
        // The reason is logged: a `type` of megabytes is shown by its start and length.
        _ => Some(format!("unknown entry type {}", shown(&kind))),
    };
    if let Some(c) = check {
        why.get_or_insert(c);
    }
    (
        VerifyEntry {
            id: id.to_string(),
            kind,
            epoch,
            draw,
            fields: json,
        },
        why,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(fields: &[&[u8]]) -> Vec<Value> {
        fields
            .iter()
            .map(|f| Value::BulkString(f.to_vec()))
            .collect()
    }

    #[test]
    fn kinds_and_columns() {
        let h = "ab".repeat(32);
        let (e, why) = parse(
            "1-0",
            &v(&[
                b"type",
                b"epoch",
                b"epoch",
                b"2",
                b"commitment",
                h.as_bytes(),
                b"from_draw",
                b"11",
            ]),
        );
        assert_eq!(why, None);
        assert_eq!(
            (e.kind.as_str(), e.epoch, e.draw),
            ("epoch", Some(2), Some(11))
        );
        let (e, why) = parse(
            "1-1",
            &v(&[
                b"type",
                b"table",
                b"from_draw",
                b"3",
                b"tier",
                b"",
                b"gold",
                b"1",
                b"NOTHING",
                b"0",
            ]),
        );
        assert_eq!(why, None);
        assert_eq!((e.epoch, e.draw), (None, Some(3)));
        assert_eq!(
            e.fields,
            r#"["type", "table", "from_draw", "3", "tier", "", "gold", "1", "NOTHING", "0"]"#
        );
        let (e, why) = parse(
            "1-2",
            &v(&[
                b"type",
                b"draw",
                b"draw",
                b"7",
                b"user",
                b"\xff\0\"\\\n",
                b"outcome",
                b"",
                b"pick",
                b"",
            ]),
        );
        assert_eq!(why, None);
        assert_eq!(e.draw, Some(7));
        assert_eq!(
            e.fields,
            r#"["type", "draw", "draw", "7", "user", "\\xff\\0\"\\\\\n", "outcome", "", "pick", ""]"#
        );
        let (e, why) = parse(
            "1-3",
            &v(&[b"type", b"reveal", b"epoch", b"1", b"seed", h.as_bytes()]),
        );
        assert_eq!((why, e.epoch), (None, Some(1)));
    }

    #[test]
    fn malformed_and_unknown_are_kept() {
        let (e, why) = parse("1-0", &v(&[b"type", b"\xffnew", b"x", b"y"]));
        assert_eq!(e.kind, "\\xffnew");
        assert!(why.unwrap().contains("unknown"));
        let (e, why) = parse("1-0", &v(&[b"type", b"draw", b"draw", b"-1"]));
        assert_eq!(e.draw, None);
        assert!(why.is_some());
        let (_, why) = parse(
            "1-0",
            &v(&[
                b"type",
                b"epoch",
                b"epoch",
                b"1",
                b"commitment",
                b"x",
                b"from_draw",
                b"1",
            ]),
        );
        assert!(why.unwrap().contains("commitment"));
        let (_, why) = parse(
            "1-0",
            &v(&[
                b"type",
                b"table",
                b"from_draw",
                b"1",
                b"tier",
                b"",
                b"a",
                b"1",
            ]),
        );
        assert!(why.unwrap().contains("NOTHING"));
        let (_, why) = parse("1-0", &v(&[b"user", b"u", b"type", b"draw"]));
        assert!(why.is_some());
        assert!(is_typed(&v(&[b"user", b"u", b"type", b"draw"])));
        assert!(!is_typed(&v(&[b"user", b"type", b"prize", b"type"])));
        // Numbers beyond i64: the column is NULL, the entry malformed, still stored.
        let (e, why) = parse(
            "1-0",
            &v(&[
                b"type",
                b"draw",
                b"draw",
                b"18446744073709551615",
                b"user",
                b"u",
                b"outcome",
                b"",
                b"pick",
                b"",
            ]),
        );
        assert_eq!(e.draw, None);
        assert!(why.is_some());
    }

    /// A hostile entry: a `type` of 1 MB, 100,000 fields, NUL and invalid UTF-8 everywhere,
    /// `type` not first, duplicated fields. Stored whole; the reason (logged) stays short.
    #[test]
    fn hostile_entries_are_stored_whole_and_reasons_stay_short() {
        let big = vec![0xffu8; 1 << 20];
        let (e, why) = parse("1-0", &v(&[b"type", &big, b"x", b"\0"]));
        assert_eq!(e.kind.len(), 4 << 20);
        assert!(e.fields.len() > 5 << 20);
        let why = why.unwrap();
        assert!(why.len() < 300, "{} bytes", why.len());
        assert!(why.contains("unknown entry type"), "{why}");
        let mut many: Vec<Vec<u8>> = vec![b"type".to_vec(), b"table".to_vec()];
        for i in 0..50_000u32 {
            many.push(format!("p\0{i}").into_bytes());
            many.push(b"\x00\xff".to_vec());
        }
        let refs: Vec<&[u8]> = many.iter().map(|f| f.as_slice()).collect();
        let t = std::time::Instant::now();
        let (e, why) = parse("1-1", &v(&refs));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert!(why.unwrap().len() < 300);
        assert_eq!(e.kind, "table");
        // duplicated fields: the first one counts; `type` not first: malformed, still stored
        let (e, why) = parse(
            "1-2",
            &v(&[
                b"draw", b"7", b"type", b"draw", b"draw", b"8", b"user", b"u", b"outcome", b"",
                b"pick", b"", b"type", b"epoch",
            ]),
        );
        assert_eq!((e.kind.as_str(), e.draw), ("draw", Some(7)));
        assert!(why.unwrap().contains("first field"));
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_string("a\u{1}\u{7f}\u{2028}é🎁", &mut s);
        assert_eq!(s, "\"a\\u0001\\u007f\\u2028é🎁\"");
    }
}
