//! Redis Cluster key slots (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384).

/// The part of `key` that Redis Cluster hashes: the first non-empty `{...}` tag, else the key.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = key.get(open + 1..)?;
    let close = rest.iter().position(|&b| b == b'}')?;
    if close == 0 {
        None
    } else {
        rest.get(..close)
    }
}

pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) & 0x3FFF
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// How many bytes longer than its key a default wins stream name can be (`{`, `}:wins`).
pub const DEFAULT_STREAM_EXTRA: usize = 7;

/// The default wins stream of a campaign key: `<key>:wins` when the key has a non-empty hash
/// tag, else `{<key>}:wins`. Either way it lives in the campaign key's slot.
pub fn default_stream(key: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(key.len() + DEFAULT_STREAM_EXTRA);
    if hash_tag(key).is_some() {
        s.extend_from_slice(key);
    } else {
        s.push(b'{');
        s.extend_from_slice(key);
        s.push(b'}');
    }
    s.extend_from_slice(b":wins");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        // Values from the Redis Cluster specification / CLUSTER KEYSLOT.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
        assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
    }

    #[test]
    fn default_stream_shares_the_slot() {
        for k in [&b"camp"[..], b"camp:{x}", b"{a", b"\x00\xff"] {
            let s = default_stream(k);
            assert_eq!(
                key_slot(&s),
                key_slot(k),
                "{:?}",
                String::from_utf8_lossy(k)
            );
        }
        assert_eq!(default_stream(b"camp"), b"{camp}:wins");
        assert_eq!(default_stream(b"camp:{x}"), b"camp:{x}:wins");
        // A key holding '}' outside a valid tag has no same-slot default (the caller then
        // asks for an explicit STREAM).
        assert_ne!(key_slot(&default_stream(b"a}b")), key_slot(b"a}b"));
        assert_ne!(key_slot(&default_stream(b"a{}b")), key_slot(b"a{}b"));
    }
}
