//! What an award request carries: its JSON body and its Idempotency-Key.
//!
//! Body: `{"campaign", "stream_id", "user", "prize", "code", "ts_ms", "draw"}`. `campaign`,
//! `user`, `prize` and `code` are bytes: valid UTF-8 is sent as a JSON string (every
//! character, NUL included, escaped as JSON requires); other bytes are sent as `null` in that
//! field plus `<field>_b64`, the standard base64 (with padding) of the exact bytes. `code` is
//! `null` without a `code_b64` when the win has no code.
//!
//! Idempotency-Key: `<campaign>:<stream id>`, with every byte of the campaign outside `!`..`~`
//! and `%` itself percent-encoded (`%XX`, upper case), so it is always a valid header value
//! and decodes back to the exact key (the stream id is the part after the last `:`).

use crate::award_store::AwardRow;
use base64::Engine as _;
use std::fmt::Write as _;

/// `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Control characters; U+2028/2029 too, for consumers that eval JavaScript.
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `"name":...` for bytes (see the module comment); `None` is `null`.
fn bytes_field(out: &mut String, name: &str, v: Option<&[u8]>) {
    let _ = write!(out, "\"{}\":", name);
    match v.map(std::str::from_utf8) {
        None => out.push_str("null"),
        Some(Ok(s)) => json_str(out, s),
        Some(Err(_)) => {
            let raw = v.unwrap_or_default();
            let _ = write!(
                out,
                "null,\"{}_b64\":\"{}\"",
                name,
                base64::engine::general_purpose::STANDARD.encode(raw)
            );
        }
    }
}

pub fn body(w: &AwardRow) -> String {
    let mut out = String::with_capacity(256);
    out.push('{');
    bytes_field(&mut out, "campaign", Some(w.campaign.as_bytes()));
    out.push_str(",\"stream_id\":");
    json_str(&mut out, &w.stream_id);
    out.push(',');
    bytes_field(&mut out, "user", Some(&w.user));
    out.push(',');
    bytes_field(&mut out, "prize", Some(&w.prize));
    out.push(',');
    bytes_field(&mut out, "code", w.code.as_deref());
    let _ = write!(out, ",\"ts_ms\":{},\"draw\":{}}}", w.ts_ms, w.draw_seq);
    out
}

pub fn idempotency_key(campaign: &[u8], stream_id: &str) -> String {
    let mut k = String::with_capacity(campaign.len() + stream_id.len() + 1);
    for &b in campaign {
        if b.is_ascii_graphic() && b != b'%' {
            k.push(b as char);
        } else {
            let _ = write!(k, "%{:02X}", b);
        }
    }
    k.push(':');
    for b in stream_id.bytes() {
        // Stream ids are `<ms>-<seq>`; anything else is encoded the same way.
        if b.is_ascii_graphic() && b != b'%' {
            k.push(b as char);
        } else {
            let _ = write!(k, "%{:02X}", b);
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &[u8], prize: &[u8], code: Option<&[u8]>) -> AwardRow {
        AwardRow {
            campaign: "c:{x}".into(),
            stream_id: "1-0".into(),
            user: user.to_vec(),
            prize: prize.to_vec(),
            code: code.map(|c| c.to_vec()),
            ts_ms: 1,
            draw_seq: -2,
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body(&row(b"u\"\\\n\x00\x1f", "p\u{2028}é😀".as_bytes(), None)),
            r#"{"campaign":"c:{x}","stream_id":"1-0","user":"u\"\\\n\u0000\u001f","prize":"p\u2028é😀","code":null,"ts_ms":1,"draw":-2}"#
        );
        assert_eq!(
            body(&row(b"\xff\x00", b"\xc3", Some(b"\x80"))),
            r#"{"campaign":"c:{x}","stream_id":"1-0","user":null,"user_b64":"/wA=","prize":null,"prize_b64":"ww==","code":null,"code_b64":"gA==","ts_ms":1,"draw":-2}"#
        );
        assert!(body(&row(b"", b"p", Some(b"C-1"))).contains(r#""code":"C-1""#));
    }

    #[test]
    fn keys() {
        assert_eq!(idempotency_key(b"shop:{a}", "17-3"), "shop:{a}:17-3");
        assert_eq!(
            idempotency_key("a b%\u{e9}\x00\x7f".as_bytes(), "1-0"),
            "a%20b%25%C3%A9%00%7F:1-0"
        );
    }
}
