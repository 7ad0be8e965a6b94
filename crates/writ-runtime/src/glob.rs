//! Globs as a bundle carries them and the runtime matches them: a glob
//! program (its alternatives expanded by the compiler into variants, each
//! a run of literals, `?`, classes and `*`), its one reader, and a matcher
//! whose time is linear in the string for a given pattern.
//!
//! The compiler expands `{a,b}` into variants (at most
//! [`MAX_GLOB_VARIANTS`]), merges adjacent characters into literals and
//! collapses runs of `*`; the runtime never sees an alternative. A variant
//! is matched as its `*`-separated segments: the first anchored at the
//! start, the last anchored at the end, and each one between at its
//! leftmost place after the one before it. Within a segment every unit
//! consumes exactly one character (a literal, one per character it
//! holds), so a segment matched from a given place has one outcome, and
//! the leftmost start gives the earliest end: the greedy choice never
//! loses a match. A variant costs O(characters × units) at worst, and a
//! segment that starts with a literal is found with a substring search.
//!
//! Semantics (docs/language.md): `*` matches any run of characters,
//! newlines included; `?` and a class match one Unicode scalar value; a
//! pattern that ignores case (host patterns) folds ASCII letters only. The
//! reference evaluator implements them independently (`writ_ir::glob`),
//! and the differential tests hold the two to each other.

use crate::error::LoadError;
use crate::vocab::GlobUnitTag;
use crate::wire::{Reader, Writer};

/// The most variants one glob may expand to (its alternatives' product).
/// The compiler refuses a glob past it (E0209) and the runtime refuses a
/// bundle that holds one.
pub const MAX_GLOB_VARIANTS: usize = 256;

/// One unit of a variant, as the compiler writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobUnit {
    /// One or more plain characters.
    Lit(String),
    /// `?`: one character.
    Any,
    /// `*`: any run of characters (never two in a row).
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A glob the runtime matches without an program: its text (for
/// messages), whether it ignores ASCII case, and its variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobPattern {
    pub text: String,
    pub case_insensitive: bool,
    pub variants: Vec<Vec<GlobUnit>>,
}

/// What the glob reader reports, unit by unit: the one reader of a glob
/// program serves checking (a sink that keeps nothing), decoding into the
/// owned [`GlobPattern`] and building the runtime's [`Glob`].
pub trait GlobSink {
    /// Whether the sink takes the literals' text (checking does not: the
    /// string table was checked as a whole).
    fn wants_text(&self) -> bool {
        true
    }
    fn case_insensitive(&mut self, yes: bool);
    fn variant(&mut self);
    fn lit(&mut self, s: &str);
    fn any(&mut self);
    fn star(&mut self);
    fn class(&mut self, negated: bool, ranges: &[(char, char)]);
}

/// Checks only.
impl GlobSink for () {
    fn wants_text(&self) -> bool {
        false
    }
    fn case_insensitive(&mut self, _: bool) {}
    fn variant(&mut self) {}
    fn lit(&mut self, _: &str) {}
    fn any(&mut self) {}
    fn star(&mut self) {}
    fn class(&mut self, _: bool, _: &[(char, char)]) {}
}

impl GlobSink for GlobPattern {
    fn case_insensitive(&mut self, yes: bool) {
        self.case_insensitive = yes;
    }
    fn variant(&mut self) {
        self.variants.push(Vec::new());
    }
    fn lit(&mut self, s: &str) {
        if let Some(v) = self.variants.last_mut() {
            v.push(GlobUnit::Lit(s.to_owned()));
        }
    }
    fn any(&mut self) {
        if let Some(v) = self.variants.last_mut() {
            v.push(GlobUnit::Any);
        }
    }
    fn star(&mut self) {
        if let Some(v) = self.variants.last_mut() {
            v.push(GlobUnit::Star);
        }
    }
    fn class(&mut self, negated: bool, ranges: &[(char, char)]) {
        if let Some(v) = self.variants.last_mut() {
            v.push(GlobUnit::Class {
                negated,
                ranges: ranges.to_vec(),
            });
        }
    }
}

const CASE_INSENSITIVE: u8 = 1;

/// Writes a glob program (after its text, which the pattern record holds).
pub fn w_glob(w: &mut Writer, g: &GlobPattern) {
    w.u8(if g.case_insensitive {
        CASE_INSENSITIVE
    } else {
        0
    });
    w.len(g.variants.len());
    for v in &g.variants {
        w.len(v.len());
        for u in v {
            match u {
                GlobUnit::Lit(s) => {
                    w.u8(GlobUnitTag::Lit.to_byte());
                    w.str(s);
                }
                GlobUnit::Any => w.u8(GlobUnitTag::Any.to_byte()),
                GlobUnit::Star => w.u8(GlobUnitTag::Star.to_byte()),
                GlobUnit::Class { negated, ranges } => {
                    w.u8(GlobUnitTag::Class.to_byte());
                    w.bool(*negated);
                    w.len(ranges.len());
                    for (lo, hi) in ranges {
                        w.varint(u32::from(*lo));
                        w.varint(u32::from(*hi));
                    }
                }
            }
        }
    }
}

fn corrupt(why: &str) -> LoadError {
    LoadError::Corrupt(format!("glob: {why}"))
}

fn char_at(r: &mut Reader<'_>) -> Result<char, LoadError> {
    char::from_u32(r.varint()?).ok_or_else(|| corrupt("a class bound is not a character"))
}

/// Reads a glob program, reporting it to `sink`. Everything the matcher
/// relies on is checked here: at least one and at most
/// [`MAX_GLOB_VARIANTS`] variants, no empty literal, no two `*` in a row,
/// classes with at least one range, each a character range in order.
///
/// # Errors
/// [`LoadError`] for any program the compiler would not write.
pub fn r_glob(r: &mut Reader<'_>, sink: &mut impl GlobSink) -> Result<(), LoadError> {
    let flags = r.u8()?;
    if flags & !CASE_INSENSITIVE != 0 {
        return Err(corrupt("unknown flags"));
    }
    sink.case_insensitive(flags & CASE_INSENSITIVE != 0);
    let variants = r.count(1)?;
    if variants == 0 || variants > MAX_GLOB_VARIANTS {
        return Err(corrupt("bad number of variants"));
    }
    // A class's ranges: a few on the stack, more on the heap.
    let mut few = [('\0', '\0'); 8];
    let mut more: Vec<(char, char)> = Vec::new();
    for _ in 0..variants {
        sink.variant();
        let units = r.count(1)?;
        let mut after_star = false;
        for _ in 0..units {
            let tag = GlobUnitTag::from_byte(r.u8()?)?;
            after_star = match tag {
                GlobUnitTag::Lit => {
                    let span = r.str_span()?;
                    if span.1 == 0 {
                        return Err(corrupt("an empty literal"));
                    }
                    if sink.wants_text() {
                        sink.lit(r.text(span)?);
                    }
                    false
                }
                GlobUnitTag::Any => {
                    sink.any();
                    false
                }
                GlobUnitTag::Star => {
                    if after_star {
                        return Err(corrupt("two `*` in a row"));
                    }
                    sink.star();
                    true
                }
                GlobUnitTag::Class => {
                    let negated = r.bool()?;
                    let n = r.count(2)?;
                    if n == 0 {
                        return Err(corrupt("an empty class"));
                    }
                    more.clear();
                    let inline = n <= few.len();
                    for i in 0..n {
                        let lo = char_at(r)?;
                        let hi = char_at(r)?;
                        if lo > hi {
                            return Err(corrupt("a reversed class range"));
                        }
                        match few.get_mut(i) {
                            Some(slot) if inline => *slot = (lo, hi),
                            _ => more.push((lo, hi)),
                        }
                    }
                    let ranges = if inline {
                        few.get(..n).unwrap_or(&[])
                    } else {
                        &more
                    };
                    sink.class(negated, ranges);
                    false
                }
            };
        }
    }
    Ok(())
}

/// A unit of the runtime's glob: literals are ranges of the glob's text
/// buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Lit {
        start: u32,
        len: u32,
    },
    Any,
    Star,
    /// A class: negated or not, and its ranges' place in `ranges`.
    Class {
        negated: bool,
        start: u32,
        len: u32,
    },
    /// Ends a variant.
    End,
}

/// A glob prepared for matching: every variant's units one after the
/// other (each variant closed by [`Unit::End`]), its literals in one
/// buffer.
#[derive(Clone, Debug, Default)]
pub struct Glob {
    pub(crate) case_insensitive: bool,
    pub(crate) variants: u32,
    pub(crate) lits: String,
    pub(crate) units: Vec<Unit>,
    /// The ranges of every class, one class after the other.
    pub(crate) ranges: Vec<(char, char)>,
}

/// Builds a [`Glob`] from the reader's report.
impl GlobSink for Glob {
    fn case_insensitive(&mut self, yes: bool) {
        self.case_insensitive = yes;
    }
    fn variant(&mut self) {
        if self.variants > 0 {
            self.units.push(Unit::End);
        }
        self.variants += 1;
    }
    fn lit(&mut self, s: &str) {
        let start = u32::try_from(self.lits.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.lits.push_str(s);
        self.units.push(Unit::Lit { start, len });
    }
    fn any(&mut self) {
        self.units.push(Unit::Any);
    }
    fn star(&mut self) {
        self.units.push(Unit::Star);
    }
    fn class(&mut self, negated: bool, ranges: &[(char, char)]) {
        let start = u32::try_from(self.ranges.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
        self.ranges.extend_from_slice(ranges);
        self.units.push(Unit::Class {
            negated,
            start,
            len,
        });
    }
}

/// A literal key of a variant, for indexing: where it is anchored and its
/// text (folded to lower case when the glob ignores case is the caller's
/// business: [`Glob::case_insensitive`] says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'g> {
    /// The variant is exactly this literal.
    Exact(&'g str),
    /// Every match starts with it.
    Prefix(&'g str),
    /// Every match ends with it.
    Suffix(&'g str),
    /// Every match contains it.
    Inner(&'g str),
    /// No literal: every string must be tried.
    None,
}

impl Glob {
    /// Reads a glob program into a matcher.
    ///
    /// # Errors
    /// As [`r_glob`].
    pub fn read(r: &mut Reader<'_>) -> Result<Glob, LoadError> {
        let mut g = Glob::default();
        r_glob(r, &mut g)?;
        g.units.push(Unit::End);
        Ok(g)
    }

    /// The matcher of an owned glob (as [`Glob::read`] would build it).
    #[must_use]
    pub fn from_pattern(p: &GlobPattern) -> Glob {
        let mut g = Glob::default();
        g.feed(p);
        g.units.push(Unit::End);
        g
    }

    /// Reports an owned glob to this glob as the reader would (its last
    /// variant left open).
    pub(crate) fn feed(&mut self, p: &GlobPattern) {
        self.case_insensitive(p.case_insensitive);
        for v in &p.variants {
            GlobSink::variant(self);
            for u in v {
                match u {
                    GlobUnit::Lit(s) => self.lit(s),
                    GlobUnit::Any => self.any(),
                    GlobUnit::Star => self.star(),
                    GlobUnit::Class { negated, ranges } => self.class(*negated, ranges),
                }
            }
        }
    }

    /// The lengths of the units, literals and ranges (to undo a read).
    pub(crate) fn marks(&self) -> (usize, usize, usize) {
        (self.units.len(), self.lits.len(), self.ranges.len())
    }

    /// Drops what came after `marks`.
    pub(crate) fn undo(&mut self, (units, lits, ranges): (usize, usize, usize)) {
        self.units.truncate(units);
        self.lits.truncate(lits);
        self.ranges.truncate(ranges);
    }

    #[must_use]
    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// How many variants the glob has.
    #[must_use]
    pub fn variant_count(&self) -> usize {
        self.variants as usize
    }

    /// The glob as a view (what matching works on).
    #[must_use]
    pub fn view(&self) -> GlobView<'_> {
        GlobView {
            case_insensitive: self.case_insensitive,
            variants: self.variants,
            lits: &self.lits,
            units: &self.units,
            ranges: &self.ranges,
        }
    }

    /// See [`GlobView::key`].
    #[must_use]
    pub fn key(&self, i: usize) -> Key<'_> {
        self.view().key(i)
    }

    /// Whether all of `s` matches some variant.
    #[must_use]
    pub fn is_match(&self, s: &str) -> bool {
        self.view().is_match(s)
    }
}

/// A glob's units, literals and class ranges, borrowed from a [`Glob`] or
/// from the arena of a glob set (whose units' places are into the whole
/// arena): what matching works on.
#[derive(Clone, Copy, Debug)]
pub struct GlobView<'a> {
    pub(crate) case_insensitive: bool,
    pub(crate) variants: u32,
    pub(crate) lits: &'a str,
    pub(crate) units: &'a [Unit],
    pub(crate) ranges: &'a [(char, char)],
}

impl<'a> GlobView<'a> {
    /// The variants, each as a slice of units.
    fn variants(&self) -> impl Iterator<Item = &'a [Unit]> + use<'a> {
        let units: &'a [Unit] = self.units;
        let count = self.variant_count();
        units.split(|u| *u == Unit::End).take(count)
    }

    /// How many variants the glob has.
    #[must_use]
    pub fn variant_count(&self) -> usize {
        self.variants as usize
    }

    fn variant(&self, i: usize) -> Option<&'a [Unit]> {
        self.variants().nth(i)
    }

    fn lit_text(&self, start: u32, len: u32) -> &'a str {
        let start = start as usize;
        let lits: &'a str = self.lits;
        lits.get(start..start.saturating_add(len as usize))
            .unwrap_or("")
    }

    /// Where `key`, a literal of this glob as [`GlobView::key`] returns
    /// it, sits in the literals buffer: (start, length).
    #[must_use]
    pub fn place_of(&self, key: &str) -> Option<(u32, u32)> {
        if key.is_empty() {
            return Some((0, 0));
        }
        let start = key.as_ptr().addr().checked_sub(self.lits.as_ptr().addr())?;
        self.lits.get(start..start.checked_add(key.len())?)?;
        Some((u32::try_from(start).ok()?, u32::try_from(key.len()).ok()?))
    }

    /// The most selective literal of variant `i` for an index: the whole
    /// variant when it is one literal; else the longer of its anchored
    /// first and last literals; else its longest literal inside.
    #[must_use]
    pub fn key(&self, i: usize) -> Key<'a> {
        self.variant(i)
            .map_or(Key::None, |units| self.key_of(units))
    }

    /// Each variant's units (without its [`Unit::End`]) and where they
    /// start among the glob's units.
    pub(crate) fn variants_at(&self) -> impl Iterator<Item = (usize, &'a [Unit])> + use<'a> {
        self.variants().scan(0usize, |at, units| {
            let start = *at;
            *at += units.len() + 1;
            Some((start, units))
        })
    }

    /// The variant whose units start at `at` among the glob's units.
    pub(crate) fn variant_at(&self, at: usize) -> &'a [Unit] {
        let units: &'a [Unit] = self.units;
        let rest = units.get(at..).unwrap_or(&[]);
        rest.split(|u| *u == Unit::End).next().unwrap_or(&[])
    }

    /// As [`GlobView::key`], for a variant's units.
    pub(crate) fn key_of(&self, units: &'a [Unit]) -> Key<'a> {
        match units {
            [] => return Key::Exact(""),
            [Unit::Lit { start, len }] => return Key::Exact(self.lit_text(*start, *len)),
            _ => {}
        }
        let first = match units.first() {
            Some(Unit::Lit { start, len }) => Some(self.lit_text(*start, *len)),
            _ => None,
        };
        let last = match units.last() {
            Some(Unit::Lit { start, len }) if units.len() > 1 => Some(self.lit_text(*start, *len)),
            _ => None,
        };
        match (first, last) {
            (Some(f), Some(l)) if l.len() > f.len() => Key::Suffix(l),
            (Some(f), _) => Key::Prefix(f),
            (None, Some(l)) => Key::Suffix(l),
            (None, None) => units
                .iter()
                .filter_map(|u| match u {
                    Unit::Lit { start, len } => Some(self.lit_text(*start, *len)),
                    _ => None,
                })
                .max_by_key(|s| s.len())
                .map_or(Key::None, Key::Inner),
        }
    }

    /// Whether all of `s` matches some variant.
    #[must_use]
    pub fn is_match(&self, s: &str) -> bool {
        self.variants().any(|v| self.matches_variant(v, s))
    }

    /// Whether all of `s` matches the variant of these units.
    pub(crate) fn matches_variant(&self, units: &[Unit], s: &str) -> bool {
        let Some(first_star) = units.iter().position(|u| *u == Unit::Star) else {
            return self.forward(units, s, 0) == Some(s.len());
        };
        let last_star = units
            .iter()
            .rposition(|u| *u == Unit::Star)
            .unwrap_or(first_star);
        let (Some(head), Some(tail)) = (units.get(..first_star), units.get(last_star + 1..)) else {
            return false;
        };
        let Some(mut at) = self.forward(head, s, 0) else {
            return false;
        };
        let Some(end) = self.backward(tail, s, s.len()) else {
            return false;
        };
        if end < at {
            return false;
        }
        let middle = units.get(first_star + 1..last_star).unwrap_or(&[]);
        for seg in middle.split(|u| *u == Unit::Star) {
            if seg.is_empty() {
                continue;
            }
            match self.find(seg, s, at, end) {
                Some(e) => at = e,
                None => return false,
            }
        }
        true
    }

    /// Matches `seg` from byte `at` of `s`: where it ends.
    fn forward(&self, seg: &[Unit], s: &str, mut at: usize) -> Option<usize> {
        let bytes = s.as_bytes();
        for u in seg {
            at = match *u {
                Unit::Lit { start, len } => {
                    let lit = self.lit_text(start, len).as_bytes();
                    let got = bytes.get(at..at.checked_add(lit.len())?)?;
                    if !self.same(got, lit) {
                        return None;
                    }
                    at + lit.len()
                }
                Unit::Any => at + s.get(at..)?.chars().next()?.len_utf8(),
                Unit::Class {
                    negated,
                    start,
                    len,
                } => {
                    let c = s.get(at..)?.chars().next()?;
                    if !self.in_class(negated, start, len, c) {
                        return None;
                    }
                    at + c.len_utf8()
                }
                Unit::Star | Unit::End => return None,
            };
        }
        Some(at)
    }

    /// Matches `seg` so that it ends at byte `end` of `s`: where it starts.
    fn backward(&self, seg: &[Unit], s: &str, mut end: usize) -> Option<usize> {
        let bytes = s.as_bytes();
        for u in seg.iter().rev() {
            end = match *u {
                Unit::Lit { start, len } => {
                    let lit = self.lit_text(start, len).as_bytes();
                    let from = end.checked_sub(lit.len())?;
                    // A literal starts with a character's first byte, so
                    // `from` is a character boundary when the bytes match.
                    if !self.same(bytes.get(from..end)?, lit) {
                        return None;
                    }
                    from
                }
                Unit::Any => end - s.get(..end)?.chars().next_back()?.len_utf8(),
                Unit::Class {
                    negated,
                    start,
                    len,
                } => {
                    let c = s.get(..end)?.chars().next_back()?;
                    if !self.in_class(negated, start, len, c) {
                        return None;
                    }
                    end - c.len_utf8()
                }
                Unit::Star | Unit::End => return None,
            };
        }
        Some(end)
    }

    /// The end of the leftmost match of `seg` starting at or after byte
    /// `from` and ending at or before byte `limit`.
    fn find(&self, seg: &[Unit], s: &str, from: usize, limit: usize) -> Option<usize> {
        let window = s.get(..limit)?;
        let mut at = from;
        loop {
            if !self.case_insensitive
                && let Some(Unit::Lit { start, len }) = seg.first()
            {
                // Jump to the next place the leading literal occurs.
                at += window.get(at..)?.find(self.lit_text(*start, *len))?;
            }
            if let Some(e) = self.forward(seg, window, at) {
                return Some(e);
            }
            // The next character boundary.
            at += window.get(at..)?.chars().next()?.len_utf8();
        }
    }

    fn same(&self, got: &[u8], lit: &[u8]) -> bool {
        if self.case_insensitive {
            eq_fold(got, lit)
        } else {
            eq_bytes(got, lit)
        }
    }

    fn in_class(&self, negated: bool, start: u32, len: u32, c: char) -> bool {
        let start = start as usize;
        let ranges = self
            .ranges
            .get(start..start.saturating_add(len as usize))
            .unwrap_or(&[]);
        let inside = |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        let hit = inside(c)
            || (self.case_insensitive
                && (inside(c.to_ascii_lowercase()) || inside(c.to_ascii_uppercase())));
        hit != negated
    }
}

/// Whether a variant is nothing but its key where the key must be
/// (`lit`, `lit*`, `*lit` or empty).
pub(crate) fn is_key_alone(units: &[Unit]) -> bool {
    matches!(
        units,
        [] | [Unit::Lit { .. }] | [Unit::Lit { .. }, Unit::Star] | [Unit::Star, Unit::Lit { .. }]
    )
}

/// Whether `a` and `b` are equal ignoring ASCII case (as
/// `<[u8]>::eq_ignore_ascii_case`), compared eight bytes at a time (the
/// last eight overlapping the chunk before them).
#[must_use]
pub fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.eq_ignore_ascii_case(b);
    }
    eq_words(a, b, lower8)
}

/// Whether `a` and `b`, of one length of at least 8, are equal a word at
/// a time once `f` is applied to each word (the last word overlaps the
/// one before when the length is no multiple of 8).
#[inline]
fn eq_words(a: &[u8], b: &[u8], f: impl Fn(u64) -> u64) -> bool {
    let n = a.len();
    let same = |at: usize| {
        let x = a.get(at..at + 8).map(word);
        let y = b.get(at..at + 8).map(word);
        matches!((x, y), (Some(x), Some(y)) if f(x) == f(y))
    };
    (0..n / 8).all(|i| same(i * 8)) && same(n - 8)
}

/// Whether `a` and `b` are the same bytes, compared a word (or half a
/// word) at a time in line: literals are short, and a call to the C
/// library's `memcmp` costs more than comparing them.
#[inline]
pub(crate) fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        return eq_words(a, b, |x| x);
    }
    if n >= 4 {
        // Two loads of four bytes that overlap when `n` is under 8.
        let half = |s: &[u8], at: usize| {
            s.get(at..at + 4)
                .and_then(|x| <[u8; 4]>::try_from(x).ok())
                .map(u32::from_le_bytes)
        };
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Eight bytes as a word.
#[inline]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_le_bytes)
}

/// The ASCII lowercase of each byte of `x` (bytes over 127 unchanged).
#[inline]
pub(crate) fn lower8(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Each byte's low seven bits plus a constant sets the byte's high bit
    // from a comparison, without a carry into the next byte (at most
    // 127 + 63).
    let low = x & !HIGH;
    let at_least_a = low + ONES * u64::from(0x80 - b'A');
    let above_z = low + ONES * u64::from(0x7f - b'Z');
    let upper = at_least_a & !above_z & !x & HIGH;
    x | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-line comparison agrees with `==` at every length up to 40,
    /// with one byte changed at every place, and on unequal lengths.
    #[test]
    fn bytes_compare_as_slices_do() {
        let mut compared = 0;
        for n in 0..40usize {
            let a: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            assert!(eq_bytes(&a, &a.clone()));
            for at in 0..n {
                for delta in [1u8, 0x20, 0x80] {
                    let mut b = a.clone();
                    b[at] ^= delta;
                    assert_eq!(eq_bytes(&a, &b), a == b, "{n} {at} {delta}");
                    compared += 1;
                }
            }
            assert!(!eq_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
        assert_eq!(compared, 3 * (0..40).sum::<usize>());
    }

    /// The word-wise comparison agrees with the standard library's on
    /// every pair of bytes, in every place of the word and the remainder.
    #[test]
    fn folding_words_agrees_with_the_standard_library() {
        let mut compared = 0usize;
        for len in [1usize, 7, 8, 9, 16, 19] {
            for at in 0..len {
                for a in 0..=255u8 {
                    for b in [a, a ^ 0x20, a.wrapping_add(1), b'a', b'Z', 0xC3] {
                        let mut x = vec![b'q'; len];
                        let mut y = vec![b'Q'; len];
                        x[at] = a;
                        y[at] = b;
                        assert_eq!(eq_fold(&x, &y), x.eq_ignore_ascii_case(&y), "{x:?} {y:?}");
                        compared += 1;
                    }
                }
            }
        }
        assert!(!eq_fold(b"ab", b"abc"));
        assert!(eq_fold(b"", b""));
        assert!(compared > 10_000, "{compared}");
    }

    fn lit(s: &str) -> GlobUnit {
        GlobUnit::Lit(s.to_owned())
    }

    fn glob(ci: bool, variants: Vec<Vec<GlobUnit>>) -> Glob {
        let p = GlobPattern {
            text: String::new(),
            case_insensitive: ci,
            variants,
        };
        // Through the wire, as a bundle carries it.
        let mut w = Writer::default();
        w_glob(&mut w, &p);
        let bytes = w.out;
        let mut r = Reader::new(&bytes);
        let mut back = GlobPattern {
            text: String::new(),
            case_insensitive: !ci,
            variants: Vec::new(),
        };
        r_glob(&mut r, &mut back).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(back, p);
        let mut r = Reader::new(&bytes);
        Glob::read(&mut r).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn segments_match_greedily_and_exactly() {
        use GlobUnit::{Any, Star};
        // a*b?c*d
        let g = glob(
            false,
            vec![vec![
                lit("a"),
                Star,
                lit("b"),
                Any,
                lit("c"),
                Star,
                lit("d"),
            ]],
        );
        for (s, want) in [
            ("abxcd", true),
            ("abbxcd", true),
            ("ab\ncxd", true),
            ("ab\nxd", false),
            ("ab\ncd", true),
            ("abécd", true),
            ("abxc", false),
            ("axbxcxd", true),
            ("abcd", false),
            ("abxcdd", true),
            ("bxcd", false),
        ] {
            assert_eq!(g.is_match(s), want, "{s}");
        }
        // `?` is one character, whatever its UTF-8 length.
        let q = glob(false, vec![vec![lit("x"), Any]]);
        assert!(q.is_match("xé") && q.is_match("x😀") && !q.is_match("xéé") && !q.is_match("x"));
        // The last segment may not overlap the middle one.
        let o = glob(false, vec![vec![Star, lit("ab"), Star, lit("ba")]]);
        assert!(!o.is_match("aba") && o.is_match("abba") && o.is_match("xabyba"));
    }

    #[test]
    fn case_and_classes() {
        let h = glob(true, vec![vec![GlobUnit::Star, lit(".example.com")]]);
        assert!(h.is_match("API.Example.COM") && !h.is_match("api.example.co"));
        let c = glob(
            true,
            vec![vec![GlobUnit::Class {
                negated: false,
                ranges: vec![('a', 'c')],
            }]],
        );
        assert!(c.is_match("B") && !c.is_match("d"));
        let n = glob(
            false,
            vec![vec![GlobUnit::Class {
                negated: true,
                ranges: vec![('a', 'c')],
            }]],
        );
        assert!(n.is_match("é") && !n.is_match("b") && !n.is_match(""));
        // An empty variant matches the empty string only.
        let e = glob(false, vec![vec![], vec![lit("a")]]);
        assert!(e.is_match("") && e.is_match("a") && !e.is_match("b"));
    }

    #[test]
    fn keys_are_the_most_selective_literal() {
        use GlobUnit::{Any, Star};
        let g = glob(
            false,
            vec![
                vec![lit("a"), Star, lit("b17")],
                vec![lit("get_"), Star],
                vec![Star, lit("x"), Star],
                vec![Any, Star],
                vec![lit("put_17")],
            ],
        );
        assert_eq!(g.key(0), Key::Suffix("b17"));
        assert_eq!(g.key(1), Key::Prefix("get_"));
        assert_eq!(g.key(2), Key::Inner("x"));
        assert_eq!(g.key(3), Key::None);
        assert_eq!(g.key(4), Key::Exact("put_17"));
        assert_eq!(g.variant_count(), 5);
    }

    #[test]
    fn the_reader_refuses_what_the_compiler_never_writes() {
        let bad: [&[u8]; 6] = [
            &[2, 1, 0],                  // unknown flag
            &[0, 0],                     // no variant
            &[0, 1, 1, 0, 0],            // empty literal
            &[0, 1, 2, 2, 2],            // two stars
            &[0, 1, 1, 3, 0, 0],         // empty class
            &[0, 1, 1, 3, 0, 1, 98, 97], // reversed range
        ];
        for b in bad {
            let mut r = Reader::new(b);
            assert!(r_glob(&mut r, &mut ()).is_err(), "{b:?}");
        }
    }
}
