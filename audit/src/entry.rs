//! The entries the audit reads, from the stream or the writer's tables, in one shape: an ID
//! and the fields' bytes in order. Limits refuse absurd entries before they are kept.

/// A stream entry ID, `<ms>-<seq>`, ordered by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub u64, pub u64);

impl Id {
    pub fn parse(s: &str) -> Option<Id> {
        let (a, b) = s.split_once('-')?;
        Some(Id(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: Id,
    /// `[name, value, ...]` flattened into pairs.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn kind(&self) -> Option<&[u8]> {
        self.get(b"type")
    }
}

/// Fields of one entry at most: a table entry of 65,536 prizes has 131,078.
pub const MAX_FIELDS: usize = 262_144;
/// Bytes of one entry at most (its names and values).
pub const MAX_ENTRY_BYTES: usize = 32 << 20;

/// Checks an entry against the limits; the reason when it is refused.
pub fn check_limits(fields: usize, bytes: usize) -> Result<(), String> {
    if fields > MAX_FIELDS {
        return Err(format!("{} fields, more than {}", fields, MAX_FIELDS));
    }
    if bytes > MAX_ENTRY_BYTES {
        return Err(format!("{} bytes, more than {}", bytes, MAX_ENTRY_BYTES));
    }
    Ok(())
}

/// A decimal number as the module writes them: ASCII digits, no sign, no leading zero.
pub fn decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || (b.len() > 1 && b[0] == b'0') || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// lottery-writer's text form (`\0`, `\\`, `\xNN`) back to the bytes; None if it is not one.
pub fn from_text(s: &str) -> Option<Vec<u8>> {
    if !s.contains('\\') {
        return Some(s.as_bytes().to_vec());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'0' => {
                out.push(0);
                i += 2;
            }
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'x' => {
                let h = s.get(i + 2..i + 4)?;
                if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Bytes shown in a report: UTF-8 as is, other bytes as `\xNN` (the text form).
pub fn show(b: &[u8]) -> String {
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
    out
}

/// Bytes shown in a mismatch's reason: `show` of the first `SHOWN` bytes at most, and the
/// length when they are longer (a value may be megabytes).
pub fn short(b: &[u8]) -> String {
    if b.len() <= SHOWN {
        return show(b);
    }
    format!("{}... ({} bytes)", show(&b[..SHOWN]), b.len())
}

const SHOWN: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trip() {
        for b in [
            &b"plain"[..],
            b"a\\b",
            b"\xff\0\\x41",
            "é🎁".as_bytes(),
            b"",
        ] {
            assert_eq!(from_text(&show(b)).unwrap(), b);
        }
        assert_eq!(from_text("\\q"), None);
        assert_eq!(from_text("\\x4"), None);
        assert_eq!(from_text("\\x+1"), None);
        assert_eq!(from_text("\\"), None);
        assert_eq!(decimal(b"007"), None);
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"18446744073709551616"), None);
        assert_eq!(Id::parse("1-2"), Some(Id(1, 2)));
        assert_eq!(
            short(&[b'a'; 150]),
            format!("{}... (150 bytes)", "a".repeat(100))
        );
        assert!(Id(10, 0) > Id(9, 5));
    }
}
