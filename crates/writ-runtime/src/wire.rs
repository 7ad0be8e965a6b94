//! The bytes of a bundle: a bounds-checked reader and a writer.
//!
//! Every read checks its length against what is left, and counts are
//! checked against the bytes that would hold them before anything is
//! allocated, so a corrupt bundle yields an error, never a panic or a huge
//! allocation.
//!
//! Counts and lengths are LEB128 varints. Past the body's first fields,
//! strings are interned: a string table (count, each length, then all
//! the bytes, checked as UTF-8 once) and each string written as its index.

use rustc_hash::FxHashMap;

use crate::error::LoadError;

/// A body's string table, as positions into the body.
#[derive(Clone, Copy, Debug)]
pub struct Strings<'a> {
    /// Where the table's bytes start in the body.
    pub at: u32,
    /// The end of each string, relative to `at`.
    pub ends: &'a [u32],
    /// The table's bytes as text, when the caller has them checked: a
    /// string is then sliced from it (its bounds checked as character
    /// boundaries) rather than checked as UTF-8 again.
    pub text: Option<&'a str>,
}

impl<'a> Strings<'a> {
    /// The table of a body whose table starts at `at`, with `text` when
    /// its bytes read as UTF-8 (one check for the whole table).
    #[must_use]
    pub fn of(body: &'a [u8], at: u32, ends: &'a [u32]) -> Strings<'a> {
        let len = ends.last().copied().unwrap_or(0) as usize;
        let text = body
            .get(at as usize..(at as usize).saturating_add(len))
            .and_then(|b| std::str::from_utf8(b).ok());
        Strings { at, ends, text }
    }
}

/// Reads little-endian values from a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    /// Everything, for positions and seeking.
    all: &'a [u8],
    /// What is left to read.
    rest: &'a [u8],
    /// Once the string table is read, strings are indices into it.
    strings: Option<Strings<'a>>,
}

impl<'a> Reader<'a> {
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            all: bytes,
            rest: bytes,
            strings: None,
        }
    }

    /// A reader of `bytes` whose strings are indices into `strings`.
    #[must_use]
    pub fn with_strings(bytes: &'a [u8], strings: Strings<'a>) -> Self {
        Reader {
            all: bytes,
            rest: bytes,
            strings: Some(strings),
        }
    }

    /// Reads a string table here and returns the end of each string (the
    /// caller keeps it and passes it to [`Reader::use_strings`]). The
    /// table's bytes are checked as UTF-8 once, and every string's bounds
    /// must fall on character boundaries.
    ///
    /// # Errors
    /// When the table is malformed.
    pub fn string_table(&mut self) -> Result<(u32, Vec<u32>), LoadError> {
        let n = self.count(1)?;
        let mut ends = Vec::with_capacity(n);
        let mut end: u32 = 0;
        for _ in 0..n {
            end = end
                .checked_add(self.varint()?)
                .ok_or_else(|| self.corrupt("string table too long"))?;
            ends.push(end);
        }
        let at = u32::try_from(self.position()).map_err(|_| self.corrupt("bundle too long"))?;
        let blob = self.take(end as usize)?;
        let text = std::str::from_utf8(blob).map_err(|_| self.corrupt("invalid UTF-8"))?;
        if !ends.iter().all(|e| text.is_char_boundary(*e as usize)) {
            return Err(self.corrupt("a string ends inside a character"));
        }
        Ok((at, ends))
    }

    /// From here on, strings are indices into `strings`.
    pub fn use_strings(&mut self, strings: Strings<'a>) {
        self.strings = Some(strings);
    }

    /// The (start, length) in the bytes of the next string.
    #[inline(always)]
    fn next_str(&mut self) -> Result<(usize, usize), LoadError> {
        match self.strings {
            Some(table) => {
                let id = self.varint()? as usize;
                let (Some(&end), start) = (
                    table.ends.get(id),
                    match id.checked_sub(1) {
                        None => Some(&0),
                        Some(prev) => table.ends.get(prev),
                    },
                ) else {
                    return Err(self.corrupt("string index out of range"));
                };
                let start = start.copied().unwrap_or(0);
                Ok((
                    table.at as usize + start as usize,
                    end.saturating_sub(start) as usize,
                ))
            }
            None => {
                let n = self.count(1)?;
                let start = self.position();
                self.take(n)?;
                Ok((start, n))
            }
        }
    }

    /// An LEB128 unsigned number of at most 32 bits.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u32, LoadError> {
        // Most numbers (counts, lengths, string indices below 2^21)
        // take one to three bytes.
        match *self.rest {
            [b, ..] if b < 0x80 => {
                self.rest = self.rest.get(1..).unwrap_or(&[]);
                Ok(u32::from(b))
            }
            [b, c, ..] if c < 0x80 => {
                self.rest = self.rest.get(2..).unwrap_or(&[]);
                Ok(u32::from(b & 0x7f) | u32::from(c) << 7)
            }
            [b, c, d, ..] if d < 0x80 => {
                self.rest = self.rest.get(3..).unwrap_or(&[]);
                Ok(u32::from(b & 0x7f) | u32::from(c & 0x7f) << 7 | u32::from(d) << 14)
            }
            _ => self.varint_long(),
        }
    }

    /// [`Reader::varint`] past its first byte's fast path.
    #[inline(never)]
    fn varint_long(&mut self) -> Result<u32, LoadError> {
        let mut v: u32 = 0;
        for shift in [0u32, 7, 14, 21, 28] {
            let [b] = self.array::<1>()?;
            if shift == 28 && b > 0x0f {
                return Err(self.corrupt("number too large"));
            }
            v |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt("number too large"))
    }

    #[cold]
    #[inline(never)]
    fn corrupt(&self, what: &str) -> LoadError {
        LoadError::Corrupt(format!("{what} at byte {}", self.position()))
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// When fewer than `n` bytes are left.
    #[inline(always)]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], LoadError> {
        match self.rest.split_at_checked(n) {
            Some((out, rest)) => {
                self.rest = rest;
                Ok(out)
            }
            None => Err(self.corrupt("truncated")),
        }
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], LoadError> {
        match self.rest.split_first_chunk::<N>() {
            Some((out, rest)) => {
                self.rest = rest;
                Ok(*out)
            }
            None => Err(self.corrupt("truncated")),
        }
    }

    /// A little-endian `u16`, read as one (two bytes read one by one and
    /// put together are stored apart and loaded as one, a stalled load).
    #[inline(always)]
    pub fn u16(&mut self) -> Result<u16, LoadError> {
        match self.rest.split_first_chunk::<2>() {
            Some((out, rest)) => {
                self.rest = rest;
                Ok(u16::from_le_bytes(*out))
            }
            None => Err(self.corrupt("truncated")),
        }
    }

    #[inline(always)]
    pub fn u8(&mut self) -> Result<u8, LoadError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    #[inline(always)]
    pub fn u32(&mut self) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    #[inline(always)]
    pub fn u64(&mut self) -> Result<u64, LoadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    #[inline(always)]
    pub fn f64(&mut self) -> Result<f64, LoadError> {
        Ok(f64::from_bits(self.u64()?))
    }

    #[inline(always)]
    pub fn bool(&mut self) -> Result<bool, LoadError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("bad boolean")),
        }
    }

    /// A count of items each at least `min_size` bytes long; rejected when
    /// the rest of the bundle could not hold that many.
    #[inline(always)]
    pub fn count(&mut self, min_size: usize) -> Result<usize, LoadError> {
        let n = self.varint()? as usize;
        if n.saturating_mul(min_size.max(1)) > self.rest.len() {
            return Err(self.corrupt("count larger than the bundle"));
        }
        Ok(n)
    }

    #[inline(always)]
    pub fn bytes(&mut self) -> Result<&'a [u8], LoadError> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// A string, borrowed from the bundle.
    #[inline]
    pub fn str_ref(&mut self) -> Result<&'a str, LoadError> {
        let (start, len) = self.next_str()?;
        self.str_at(start, len)
            .ok_or_else(|| self.corrupt("invalid string"))
    }

    /// The `len` bytes at `start` as text: sliced from the string table's
    /// checked text when they lie in it, else checked here.
    #[inline]
    fn str_at(&self, start: usize, len: usize) -> Option<&'a str> {
        let end = start.checked_add(len)?;
        if let Some(Strings {
            at,
            text: Some(text),
            ..
        }) = self.strings
            && let Some(from) = start.checked_sub(at as usize)
            && let Some(s) = text.get(from..end - at as usize)
        {
            return Some(s);
        }
        self.all
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Skips a string. Interned strings were checked with their table;
    /// others are checked here (most are ASCII, checked a word at a time).
    #[inline(always)]
    pub fn skip_str(&mut self) -> Result<(), LoadError> {
        match self.strings {
            Some(table) => {
                if self.varint()? as usize >= table.ends.len() {
                    return Err(self.corrupt("string index out of range"));
                }
                Ok(())
            }
            None => self.str_span().map(|_| ()),
        }
    }

    /// A string's place in the bytes being read: (start, length).
    #[inline(always)]
    pub fn str_span(&mut self) -> Result<(u32, u32), LoadError> {
        let interned = self.strings.is_some();
        let (start, len) = self.next_str()?;
        if !interned {
            let b = self.all.get(start..start + len).unwrap_or(&[]);
            if !(b.is_ascii() || std::str::from_utf8(b).is_ok()) {
                return Err(self.corrupt("invalid UTF-8"));
            }
        }
        match (u32::try_from(start), u32::try_from(len)) {
            (Ok(s), Ok(l)) => Ok((s, l)),
            _ => Err(self.corrupt("bundle too long")),
        }
    }

    /// The next byte, not consumed.
    #[inline(always)]
    #[must_use]
    pub fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Where the reader is.
    #[must_use]
    #[inline]
    pub fn position(&self) -> usize {
        self.all.len() - self.rest.len()
    }

    /// Moves the reader to `at` (for reading a record found earlier).
    ///
    /// # Errors
    /// When `at` is past the end.
    pub fn seek(&mut self, at: usize) -> Result<(), LoadError> {
        let Some(rest) = self.all.get(at..) else {
            return Err(self.corrupt("offset past the end"));
        };
        self.rest = rest;
        Ok(())
    }

    pub fn str(&mut self) -> Result<String, LoadError> {
        self.str_ref().map(str::to_owned)
    }

    /// The string at a place [`Reader::str_span`] returned.
    ///
    /// # Errors
    /// When the place is not a string of these bytes.
    pub fn text(&self, (start, len): (u32, u32)) -> Result<&'a str, LoadError> {
        self.str_at(start as usize, len as usize)
            .ok_or_else(|| self.corrupt("invalid string"))
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
        self.vec(1, Self::str)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), LoadError> {
        if self.rest.is_empty() {
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
    /// When set, strings are interned and written as indices.
    interned: Option<FxHashMap<String, u32>>,
    /// The interned strings, in index order.
    strings: Vec<String>,
}

impl Writer {
    /// A writer that interns strings; see [`Writer::string_table`].
    #[must_use]
    pub fn interning() -> Self {
        Writer {
            interned: Some(FxHashMap::default()),
            ..Writer::default()
        }
    }

    /// A writer for a separate section that shares this writer's strings;
    /// give it back with [`Writer::absorb`].
    #[must_use]
    pub fn sub(&mut self) -> Writer {
        Writer {
            out: Vec::new(),
            interned: self.interned.take(),
            strings: std::mem::take(&mut self.strings),
        }
    }

    /// Appends a section written by [`Writer::sub`] and takes back the
    /// strings.
    pub fn absorb(&mut self, sub: Writer) {
        self.out.extend_from_slice(&sub.out);
        self.interned = sub.interned;
        self.strings = sub.strings;
    }

    /// Writes the string table of `interned` here.
    pub fn string_table(&mut self, interned: &Writer) {
        self.len(interned.strings.len());
        for s in &interned.strings {
            self.len(s.len());
        }
        for s in &interned.strings {
            self.out.extend_from_slice(s.as_bytes());
        }
    }

    #[inline(always)]
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    #[inline(always)]
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// An LEB128 varint.
    pub fn varint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    pub fn len(&mut self, n: usize) {
        self.varint(u32::try_from(n).unwrap_or(u32::MAX));
    }
    #[inline(always)]
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    #[inline(always)]
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    #[inline(always)]
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    #[inline(always)]
    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.out.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        let Some(interned) = &mut self.interned else {
            self.bytes(s.as_bytes());
            return;
        };
        let next = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        let id = *interned.entry(s.to_owned()).or_insert_with(|| {
            self.strings.push(s.to_owned());
            next
        });
        self.varint(id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [
            0u32,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            (1 << 21) - 1,
            1 << 21,
            (1 << 28) - 1,
            1 << 28,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let mut w = Writer::default();
            w.varint(v);
            let mut r = Reader::new(&w.out);
            assert_eq!(r.varint().ok(), Some(v), "{v}");
            assert!(r.finish().is_ok());
            // Followed by more bytes (the one- to three-byte paths look
            // ahead), read to its own end and no further.
            w.out.extend_from_slice(&[0x05, 0x81]);
            let mut r = Reader::new(&w.out);
            assert_eq!(r.varint().ok(), Some(v), "{v}, then more");
            assert_eq!(r.u8().ok(), Some(0x05), "{v}: the next byte");
            // Cut anywhere short of its end, refused.
            let len = w.out.len() - 2;
            for cut in 0..len {
                assert!(
                    Reader::new(&w.out[..cut]).varint().is_err(),
                    "{v} cut at {cut}"
                );
            }
        }
        // Six bytes, and five whose last byte overflows 32 bits.
        for bad in [
            &[0x80u8, 0x80, 0x80, 0x80, 0x80, 0x01][..],
            &[0xff, 0xff, 0xff, 0xff, 0x1f],
        ] {
            assert!(Reader::new(bad).varint().is_err(), "{bad:?}");
        }
        assert!(Reader::new(&[0x80]).varint().is_err(), "cut short");
    }

    #[test]
    fn interned_strings_are_written_once_and_read_back() {
        let mut w = Writer::interning();
        for s in ["amount", "é", "amount", "", "é"] {
            w.str(s);
        }
        let mut table = Writer::default();
        table.string_table(&w);
        let prefix = table.out.len();
        table.out.extend_from_slice(&w.out);
        let mut r = Reader::new(&table.out);
        let (at, ends) = r.string_table().unwrap_or_default();
        assert_eq!(ends.len(), 3, "three distinct strings");
        let mut r = Reader::with_strings(&table.out, Strings::of(&table.out, at, &ends));
        assert!(r.seek(prefix).is_ok());
        let read: Vec<String> = (0..5).filter_map(|_| r.str().ok()).collect();
        assert_eq!(read, ["amount", "é", "amount", "", "é"]);
        // An index past the table is refused.
        let mut bad = table.out.clone();
        bad.push(9);
        let mut r = Reader::with_strings(&bad, Strings::of(&bad, at, &ends));
        assert!(r.seek(bad.len() - 1).is_ok());
        assert!(r.str().is_err());
    }

    #[test]
    fn a_string_table_cutting_a_character_is_refused() {
        // Two strings of one byte each over the two bytes of "é": the
        // table's bytes are valid UTF-8, the split between them is not.
        let bytes = [2u8, 1, 1, 0xc3, 0xa9];
        assert!(Reader::new(&bytes).string_table().is_err());
        let whole = [1u8, 2, 0xc3, 0xa9];
        assert!(Reader::new(&whole).string_table().is_ok());
    }

    /// `Reader::text` slices the table's checked text, and still refuses
    /// a place that cuts a character or is not UTF-8 outside the table.
    #[test]
    fn text_is_sliced_from_the_table_only_on_character_boundaries() {
        // A table of one string, "aé", then bytes after it: "b", a lone
        // continuation byte.
        let bytes = [1u8, 3, b'a', 0xc3, 0xa9, b'b', 0xa9];
        let mut r = Reader::new(&bytes);
        let (at, ends) = r.string_table().unwrap_or_default();
        let strings = Strings::of(&bytes, at, &ends);
        assert_eq!(strings.text, Some("aé"));
        let r = Reader::with_strings(&bytes, strings);
        assert_eq!(r.text((2, 3)).ok(), Some("aé"));
        assert_eq!(r.text((3, 2)).ok(), Some("é"));
        assert!(r.text((2, 2)).is_err(), "cuts é");
        assert!(r.text((4, 1)).is_err(), "starts inside é");
        assert_eq!(r.text((5, 1)).ok(), Some("b"), "past the table");
        assert!(r.text((5, 2)).is_err(), "not UTF-8 past the table");
        assert!(r.text((4, 9)).is_err(), "past the bytes");
        // Without the table's text, the same answers.
        let plain = Reader::with_strings(
            &bytes,
            Strings {
                at,
                ends: &ends,
                text: None,
            },
        );
        for place in [(2, 3), (3, 2), (2, 2), (4, 1), (5, 1), (5, 2), (4, 9)] {
            assert_eq!(plain.text(place).ok(), r.text(place).ok(), "{place:?}");
        }
    }
}
