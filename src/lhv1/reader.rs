//! The bounds-checked reader of the graph section, and the matching writers.

use crate::error::{Error, Result};

/// A bounds-checked little-endian reader that knows its offset, so every
/// error can say where the bytes went wrong. `Clone` so that a section can
/// be checked in one pass and built in a second one from the same start.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Added to `pos` in messages (the offset of `buf` in the whole blob).
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn corrupt(&self, what: impl std::fmt::Display) -> Error {
        Error::Corrupt(format!("graph section at offset {}: {what}", self.offset()))
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.corrupt(format_args!(
                "{what} needs {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// `count * width` bytes, with the multiplication checked and the result
    /// checked against what remains, before the caller allocates anything.
    pub fn array(&mut self, count: u64, width: usize, what: &str) -> Result<&'a [u8]> {
        let n = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(width))
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| {
                self.corrupt(format_args!(
                    "{what}: {count} entries of {width} bytes do not fit in the {} bytes that remain",
                    self.remaining()
                ))
            })?;
        self.bytes(n, what)
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
