//! The bytes of a bundle: a bounds-checked reader and a writer.
//!
//! Every read checks its length against what is left, and counts are
//! checked against the bytes that would hold them before anything is
//! allocated, so a corrupt bundle yields an error, never a panic or a huge
//! allocation.

use crate::LoadError;

/// Reads little-endian values from a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn corrupt(&self, what: &str) -> LoadError {
        LoadError::Corrupt(format!("{what} at byte {}", self.at))
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// When fewer than `n` bytes are left.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], LoadError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| self.corrupt("truncated"))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| self.corrupt("truncated"))?;
        self.at = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, LoadError> {
        self.take(1)?
            .first()
            .copied()
            .ok_or_else(|| self.corrupt("truncated"))
    }

    pub fn u32(&mut self) -> Result<u32, LoadError> {
        let b = self.take(4)?;
        let arr: [u8; 4] = b.try_into().map_err(|_| self.corrupt("truncated"))?;
        Ok(u32::from_le_bytes(arr))
    }

    pub fn u64(&mut self) -> Result<u64, LoadError> {
        let b = self.take(8)?;
        let arr: [u8; 8] = b.try_into().map_err(|_| self.corrupt("truncated"))?;
        Ok(u64::from_le_bytes(arr))
    }

    pub fn f64(&mut self) -> Result<f64, LoadError> {
        Ok(f64::from_bits(self.u64()?))
    }

    pub fn bool(&mut self) -> Result<bool, LoadError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("bad boolean")),
        }
    }

    /// A count of items each at least `min_size` bytes long; rejected when
    /// the rest of the bundle could not hold that many.
    pub fn count(&mut self, min_size: usize) -> Result<usize, LoadError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size.max(1)) > self.bytes.len().saturating_sub(self.at) {
            return Err(self.corrupt("count larger than the bundle"));
        }
        Ok(n)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], LoadError> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<String, LoadError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| self.corrupt("invalid UTF-8"))
    }

    pub fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, LoadError>,
    ) -> Result<Option<T>, LoadError> {
        if self.bool()? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn vec<T>(
        &mut self,
        min_size: usize,
        mut read: impl FnMut(&mut Self) -> Result<T, LoadError>,
    ) -> Result<Vec<T>, LoadError> {
        let n = self.count(min_size)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }

    pub fn strs(&mut self) -> Result<Vec<String>, LoadError> {
        self.vec(4, Self::str)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), LoadError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

/// Writes little-endian values.
#[derive(Debug, Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.out.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub fn opt<T>(&mut self, v: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match v {
            Some(v) => {
                self.bool(true);
                write(self, v);
            }
            None => self.bool(false),
        }
    }
    pub fn vec<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        for i in items {
            write(self, i);
        }
    }
    pub fn strs(&mut self, items: &[String]) {
        self.vec(items, |w, s| w.str(s));
    }
}
