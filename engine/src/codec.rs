//! A small binary encoding with a decoder that never panics.
//!
//! Used for the RDB payload, DUMP/RESTORE, the AOF rewrite and the replicated effects. Every
//! read is bounds-checked and returns `Err` on truncated or malformed input; lengths are
//! checked against what is left before anything is allocated, so a hostile length prefix
//! cannot make the decoder reserve gigabytes.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt lottery payload: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub type DResult<T> = Result<T, DecodeError>;

#[derive(Default, Debug)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }
    pub fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Length-prefixed (u32) bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        // Callers never write more than u32::MAX bytes in one field (ids are capped far
        // below); saturate rather than wrap so a bug could only truncate, never corrupt.
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.buf.extend_from_slice(&v[..len as usize]);
    }
    pub fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
        }
    }
    pub fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u32(x);
            }
        }
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn is_done(&self) -> bool {
        self.remaining() == 0
    }
    /// Errors unless every byte was consumed: trailing garbage is corruption too.
    pub fn finish(&self) -> DResult<()> {
        if self.is_done() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
    fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> DResult<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self) -> DResult<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn bool(&mut self) -> DResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad bool")),
        }
    }
    pub fn u32(&mut self) -> DResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> DResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> DResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn u128(&mut self) -> DResult<u128> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    /// Length-prefixed bytes of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> DResult<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError("field too long"));
        }
        self.take(len)
    }
    pub fn opt_u64(&mut self) -> DResult<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }
    pub fn opt_u32(&mut self) -> DResult<Option<u32>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u32()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }
    /// A count of items that each take at least `min_item` bytes: refuses counts that the
    /// remaining input cannot possibly hold, so nothing is pre-allocated from a lie.
    pub fn count(&mut self, min_item: usize, max: usize) -> DResult<usize> {
        let n = self.u32()? as usize;
        if n > max || n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(DecodeError("bad count"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut w = Writer::new();
        w.u8(7);
        w.u32(0xDEAD_BEEF);
        w.i64(-5);
        w.u128(u128::MAX - 3);
        w.bytes(b"hello");
        w.opt_u64(None);
        w.opt_u64(Some(9));
        let buf = w.buf;
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 0xDEAD_BEEF);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.u128().unwrap(), u128::MAX - 3);
        assert_eq!(r.bytes(10).unwrap(), b"hello");
        assert_eq!(r.opt_u64().unwrap(), None);
        assert_eq!(r.opt_u64().unwrap(), Some(9));
        r.finish().unwrap();
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut]);
            let ok = (|| -> DResult<()> {
                r.u8()?;
                r.u32()?;
                r.i64()?;
                r.u128()?;
                r.bytes(10)?;
                r.opt_u64()?;
                r.opt_u64()?;
                Ok(())
            })();
            assert!(ok.is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let mut r = Reader::new(&w.buf);
        assert!(r.bytes(usize::MAX).is_err());
        let mut r = Reader::new(&w.buf);
        assert!(r.count(1, usize::MAX).is_err());
        let mut r = Reader::new(&[5, 0, 0, 0, 1]);
        assert!(r.bytes(4).is_err());
    }
}
