//! Many globs matched at once, as ripgrep's `globset` does: each variant
//! of each glob is filed under its most selective literal (the whole
//! variant when it is one literal, else its anchored first or last
//! literal, else its longest literal inside), and a string is tried only
//! against the variants whose literal it has where that literal must be.
//!
//! - Whole, first and last literals live in hash tables keyed by the
//!   literal, as a place in the set's literal buffer (hashed and compared
//!   ASCII-folded for globs that ignore case). A key is hashed eight
//!   bytes at a time from its anchored end, so one pass over the string's
//!   first (last) words yields the hash of every length a key has: a
//!   lookup costs the string's length up to the longest key, a multiply
//!   per word and per key length, whatever the number of globs.
//! - Variants with only an inner literal are found by an Aho–Corasick
//!   automaton over those literals, in one pass over the string; each
//!   literal is tried once however often it occurs.
//! - Variants with no literal at all are tried one by one.
//!
//! A variant found is then matched in full, unless it is its key alone
//! (`lit`, `lit*`, `*lit`): finding the key where it must be is then the
//! match. So a decision costs O(string length) to find the candidates, plus
//! O(string length × units) for each candidate variant: the variants whose
//! key the string holds where the key must be, and the variants with no
//! literal. Distinct literals keep the candidates to the globs that can
//! match.

use aho_corasick::AhoCorasick;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};

use crate::error::LoadError;
use crate::glob::{
    Glob, GlobPattern, GlobView, Key, Unit, eq_bytes, eq_fold, is_key_alone, lower8, r_glob, word,
};
use crate::matcher::ByteSet;
use crate::wire::Reader;

/// A variant of a glob: (glob, where the variant's units start among the
/// glob's), the second with [`PROVEN`] set when finding its key is
/// matching it.
type Variant = (u32, u32);

/// A [`Variant`]'s second number for "every variant of the glob" (on the
/// list of variants tried one by one; never in a table, where [`MORE`]
/// means otherwise).
const WHOLE: u32 = MORE;

/// The flags of a [`Variant`]'s second number; a glob's units number
/// fewer (see [`GlobSet::file`]).
const FLAGS: u32 = PROVEN | MORE;

/// Set in a [`Variant`]'s number when the variant is nothing but its key
/// where the key must be ([`is_key_alone`]): a string found under
/// the key matches it, with nothing left to verify.
const PROVEN: u32 = 1 << 31;

/// Set in a table slot's variant number when its key has several
/// variants: the slot's glob number is then their place in
/// `Table::more`. (Slots stay 16 bytes: most keys have one variant.)
const MORE: u32 = 1 << 30;

/// Where a table's keys must sit in a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    Whole,
    Start,
    End,
}

/// Keys (literals) to the variants filed under them.
#[derive(Debug)]
struct Table {
    anchor: Anchor,
    /// Keys are ASCII-folded, and strings folded as they are hashed.
    fold: bool,
    /// Each key, as its place in the glob set's literals (where its
    /// glob's program holds it, in the glob's case), and its variant (or
    /// with [`MORE`], where its variants are in `more`).
    slots: HashTable<((u32, u32), Variant)>,
    more: Vec<Vec<Variant>>,
    /// The key lengths below 256, and the longer ones.
    short: ByteSet,
    long: Vec<usize>,
    /// Every key length, ascending.
    lengths: Vec<usize>,
    /// One bit per hash for about an eighth of a key (a Bloom filter with
    /// one function, sized when the first key comes): a string's key of a
    /// length no key has is most often turned away by one bit, before a
    /// probe of `slots`.
    filter: Vec<u64>,
}

/// Filter bits per key expected ([`Table::filter`]); about one in eight
/// probes of a length without the key gets past the filter.
const FILTER_BITS_PER_KEY: usize = 8;

/// Where hash `h` falls in a filter of `words` words (a power of two):
/// bits the table's own slot and tag do not use.
#[inline]
fn filter_bit(h: u64, words: usize) -> (usize, u64) {
    let at = (h >> 20) as usize;
    ((at >> 6) & words.saturating_sub(1), 1 << (at & 63))
}

impl Table {
    fn new(anchor: Anchor, fold: bool) -> Table {
        Table {
            anchor,
            fold,
            slots: HashTable::new(),
            more: Vec::new(),
            short: ByteSet::default(),
            long: Vec::new(),
            lengths: Vec::new(),
            filter: Vec::new(),
        }
    }

    /// True unless the filter proves no key hashes to `h`.
    #[inline]
    fn may_hold(&self, h: u64) -> bool {
        let (word, bit) = filter_bit(h, self.filter.len());
        self.filter.get(word).is_none_or(|w| w & bit != 0)
    }

    /// Files `v` under the key at `place` of `lits`; a first key makes
    /// room for `room` keys.
    fn insert(&mut self, lits: &[u8], place: (u32, u32), v: Variant, room: usize) {
        let Table {
            anchor,
            fold,
            slots,
            more,
            filter,
            ..
        } = self;
        let (anchor, fold) = (*anchor, *fold);
        if slots.is_empty() {
            slots.reserve(room, |(k, _)| hash_of(anchor, fold, key_at(lits, *k)));
            let bits = room.max(1).saturating_mul(FILTER_BITS_PER_KEY);
            *filter = vec![0; bits.div_ceil(64).next_power_of_two()];
        }
        let new = key_at(lits, place);
        let h = hash_of(anchor, fold, new);
        let (word, bit) = filter_bit(h, filter.len());
        if let Some(w) = filter.get_mut(word) {
            *w |= bit;
        }
        let same = |k: &[u8]| if fold { eq_fold(k, new) } else { k == new };
        let found = slots.entry(
            h,
            |(k, _)| same(key_at(lits, *k)),
            |(k, _)| hash_of(anchor, fold, key_at(lits, *k)),
        );
        match found {
            TableEntry::Occupied(mut o) => {
                let slot = &mut o.get_mut().1;
                if slot.1 & MORE != 0 {
                    if let Some(all) = more.get_mut(slot.0 as usize) {
                        all.push(v);
                    }
                } else {
                    let at = u32::try_from(more.len()).unwrap_or(u32::MAX);
                    more.push(vec![*slot, v]);
                    *slot = (at, MORE);
                }
            }
            TableEntry::Vacant(e) => {
                e.insert((place, v));
            }
        }
        let l = new.len();
        if let Err(at) = self.lengths.binary_search(&l) {
            self.lengths.insert(at, l);
            match u8::try_from(l) {
                Ok(short) => self.short.insert(short),
                Err(_) => self.long.push(l),
            }
        }
    }

    fn has_length(&self, l: usize) -> bool {
        match u8::try_from(l) {
            Ok(short) => self.short.contains(short),
            Err(_) => self.long.contains(&l),
        }
    }

    #[inline]
    fn probe(&self, lits: &[u8], h: u64, text: &[u8], f: &mut impl FnMut(Variant)) {
        let same = |k: &[u8]| {
            if self.fold {
                eq_fold(k, text)
            } else {
                eq_bytes(k, text)
            }
        };
        if let Some((_, v)) = self.slots.find(h, |(k, _)| same(key_at(lits, *k))) {
            if v.1 & MORE != 0 {
                if let Some(all) = self.more.get(v.0 as usize) {
                    all.iter().for_each(|v| f(*v));
                }
            } else {
                f(*v);
            }
        }
    }

    /// Calls `f` with every variant whose key `s` holds where it must
    /// (the keys being places of `lits`).
    fn lookup(&self, lits: &[u8], s: &[u8], f: &mut impl FnMut(Variant)) {
        if self.slots.is_empty() {
            return;
        }
        if self.anchor == Anchor::Whole {
            if self.has_length(s.len()) {
                let h = hash_of(self.anchor, self.fold, s);
                if self.may_hold(h) {
                    self.probe(lits, h, s, f);
                }
            }
            return;
        }
        // The state after `words` whole words from the anchored end: the
        // same for every key at least that long.
        let keys = KeyHash::new(self.anchor, self.fold, s);
        let (mut h, mut words) = (SEED, 0);
        for &l in &self.lengths {
            let Some(k) = keys.key(l) else {
                break;
            };
            while words < l / 8 {
                h = keys.absorb(h, words);
                words += 1;
            }
            let hk = keys.finish(h, l);
            if self.may_hold(hk) {
                self.probe(lits, hk, k, f);
            }
        }
    }
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of a full product, xored: one multiply that
/// spreads every input bit over the whole result.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hashes of a string's anchored keys, eight bytes at a time from the
/// anchored end: whole word `i` of a key of length `l` is bytes
/// `8i..8i+8` from that end, the same in every key at least `8i + 8`
/// long, and the key's last `l % 8` bytes (from the anchor) make its
/// final word. Keys are hashed by the same code with `s` the key.
struct KeyHash<'a> {
    s: &'a [u8],
    from_end: bool,
    fold: bool,
}

impl<'a> KeyHash<'a> {
    fn new(anchor: Anchor, fold: bool, s: &'a [u8]) -> KeyHash<'a> {
        KeyHash {
            s,
            from_end: anchor == Anchor::End,
            fold,
        }
    }

    /// The key of length `l`: `l` bytes at the anchored end.
    #[inline]
    fn key(&self, l: usize) -> Option<&'a [u8]> {
        if self.from_end {
            self.s.get(self.s.len().checked_sub(l)?..)
        } else {
            self.s.get(..l)
        }
    }

    /// Bytes `from..to` counted from the anchored end, in string order.
    #[inline]
    fn span(&self, from: usize, to: usize) -> &'a [u8] {
        let n = self.s.len();
        let range = if self.from_end {
            n.saturating_sub(to)..n.saturating_sub(from)
        } else {
            from..to
        };
        self.s.get(range).unwrap_or(&[])
    }

    #[inline]
    fn folded(&self, w: u64) -> u64 {
        if self.fold { lower8(w) } else { w }
    }

    /// `h` with whole word `i` taken in.
    #[inline]
    fn absorb(&self, h: u64, i: usize) -> u64 {
        fold_mul(h ^ self.folded(word(self.span(8 * i, 8 * i + 8))), MIX)
    }

    /// The hash of the key of length `l`, from the state after its whole
    /// words: its last `l % 8` bytes as a word (in string order, from its
    /// low byte up, zeros above) and its length go in.
    #[inline]
    fn finish(&self, h: u64, l: usize) -> u64 {
        let (whole, rest) = (l / 8 * 8, l % 8);
        let last = if rest == 0 {
            0
        } else {
            // A whole word's load, shifted to the key's bytes, where the
            // string has room for it; byte by byte where it does not.
            let n = self.s.len();
            let shift = 64 - 8 * rest as u32;
            let loaded = if self.from_end {
                let end = n.saturating_sub(whole);
                end.checked_sub(8)
                    .and_then(|from| self.s.get(from..end))
                    .map(|w| word(w) >> shift)
            } else {
                self.s
                    .get(whole..whole + 8)
                    .map(|w| word(w) << shift >> shift)
            };
            loaded.unwrap_or_else(|| {
                self.span(whole, l)
                    .iter()
                    .rev()
                    .fold(0, |w, b| (w << 8) | u64::from(*b))
            })
        };
        fold_mul(h ^ self.folded(last) ^ ((l as u64) << 56), MIX)
    }
}

/// A key's bytes in a table's arena.
fn key_at(arena: &[u8], (start, len): (u32, u32)) -> &[u8] {
    let start = start as usize;
    arena
        .get(start..start.saturating_add(len as usize))
        .unwrap_or(&[])
}

/// The hash of `key` (folded when `fold`) from its anchored end, as
/// [`Table::lookup`] computes it.
fn hash_of(anchor: Anchor, fold: bool, key: &[u8]) -> u64 {
    let keys = KeyHash::new(anchor, fold, key);
    let h = (0..key.len() / 8).fold(SEED, |h, i| keys.absorb(h, i));
    keys.finish(h, key.len())
}

/// Inner literals, found by one Aho–Corasick pass.
#[derive(Debug)]
struct Inner {
    /// The literals' bytes, one after the other, and where each ends.
    bytes: Vec<u8>,
    ends: Vec<u32>,
    /// For each literal, the variant filed under it.
    variants: Vec<Variant>,
    automaton: Option<AhoCorasick>,
}

impl Inner {
    fn new() -> Inner {
        Inner {
            bytes: Vec::new(),
            ends: Vec::new(),
            variants: Vec::new(),
            automaton: None,
        }
    }

    fn insert(&mut self, key: &str, v: Variant) {
        // Few inner literals repeat; a linear look for a repeat would make
        // loading quadratic, so each variant gets its own entry.
        self.bytes.extend_from_slice(key.as_bytes());
        self.ends
            .push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
        self.variants.push(v);
    }

    /// The literals, in order.
    fn literals(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(from, to)| self.bytes.get(from as usize..*to as usize).unwrap_or(&[]))
    }

    fn finish(&mut self, fold: bool) {
        if self.variants.is_empty() {
            return;
        }
        // A literal set the builder refuses (it cannot be: the literals are
        // few and short next to its limits) leaves `automaton` empty, and
        // every variant is then tried (see `lookup`).
        self.automaton = AhoCorasick::builder()
            .ascii_case_insensitive(fold)
            .build(self.literals())
            .ok();
    }

    fn lookup(&self, s: &[u8], f: &mut impl FnMut(Variant)) {
        if self.variants.is_empty() {
            return;
        }
        let Some(ac) = &self.automaton else {
            self.variants.iter().for_each(|v| f(*v));
            return;
        };
        // Each literal once, however often it occurs: a few kept inline,
        // more in a bit set.
        let mut few: [u32; 16] = [u32::MAX; 16];
        let mut count = 0usize;
        let mut seen: Vec<u64> = Vec::new();
        for m in ac.find_overlapping_iter(s) {
            let id = m.pattern().as_u32();
            if seen.is_empty() {
                if few.iter().take(count).any(|x| *x == id) {
                    continue;
                }
                if let Some(slot) = few.get_mut(count) {
                    *slot = id;
                    count += 1;
                } else {
                    seen = vec![0; self.variants.len().div_ceil(64)];
                    for x in few {
                        mark(&mut seen, x);
                    }
                    if !mark(&mut seen, id) {
                        continue;
                    }
                }
            } else if !mark(&mut seen, id) {
                continue;
            }
            if let Some(v) = self.variants.get(id as usize) {
                f(*v);
            }
        }
    }
}

/// Sets bit `i`; false when it was set already.
fn mark(bits: &mut [u64], i: u32) -> bool {
    let Some(word) = bits.get_mut((i / 64) as usize) else {
        return false;
    };
    let bit = 1u64 << (i % 64);
    let new = *word & bit == 0;
    *word |= bit;
    new
}

/// Where a glob of the set sits in the arena.
#[derive(Clone, Copy, Debug)]
struct Entry {
    case_insensitive: bool,
    variants: u32,
    /// Its units: `arena.units[start..end]`.
    start: u32,
    end: u32,
}

/// A set of globs matched together; see the module documentation. Every
/// glob's units, literals and class ranges live one after the other in
/// one arena, so adding a glob allocates nothing of its own.
#[derive(Debug)]
pub struct GlobSet {
    arena: Glob,
    entries: Vec<Entry>,
    /// Whole, first and last literals: case-sensitive, then folded.
    tables: [Table; 6],
    /// Bit `i` set when `tables[i]` has a key (a lookup visits only those).
    filled: u8,
    inner: Inner,
    inner_folded: Inner,
    /// Variants with no literal.
    rest: Vec<Variant>,
    /// How many globs are expected ([`GlobSet::reserve`]).
    room: usize,
}

impl Default for GlobSet {
    fn default() -> Self {
        GlobSet {
            arena: Glob::default(),
            entries: Vec::new(),
            tables: [
                Table::new(Anchor::Whole, false),
                Table::new(Anchor::Start, false),
                Table::new(Anchor::End, false),
                Table::new(Anchor::Whole, true),
                Table::new(Anchor::Start, true),
                Table::new(Anchor::End, true),
            ],
            filled: 0,
            inner: Inner::new(),
            inner_folded: Inner::new(),
            rest: Vec::new(),
            room: 0,
        }
    }
}

/// Glob `e` of an arena.
fn view_of(arena: &Glob, e: Entry) -> GlobView<'_> {
    GlobView {
        case_insensitive: e.case_insensitive,
        variants: e.variants,
        lits: &arena.lits,
        units: arena
            .units
            .get(e.start as usize..e.end as usize)
            .unwrap_or(&[]),
        ranges: &arena.ranges,
    }
}

impl GlobSet {
    /// Makes room for `more` globs.
    pub fn reserve(&mut self, more: usize) {
        // (The arena's room is made when the first glob comes, sized by it.)
        self.entries.reserve(more);
        self.room = self.room.max(more);
    }

    /// How many globs [`GlobSet::reserve`] made room for.
    #[must_use]
    pub fn room(&self) -> usize {
        self.room
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether glob `id` ignores case.
    #[must_use]
    pub fn is_case_insensitive(&self, id: u32) -> Option<bool> {
        self.entries.get(id as usize).map(|e| e.case_insensitive)
    }

    /// Adds the glob program `r` is at; returns its number (globs are
    /// numbered in order).
    ///
    /// # Errors
    /// As [`crate::glob::r_glob`]; the set is left as it was.
    pub fn add_read(&mut self, r: &mut Reader<'_>) -> Result<u32, LoadError> {
        let marks = self.arena.marks();
        self.arena.variants = 0;
        if let Err(e) = r_glob(r, &mut self.arena) {
            self.arena.undo(marks);
            return Err(e);
        }
        Ok(self.file(marks.0))
    }

    /// Adds an owned glob; returns its number.
    pub fn add_pattern(&mut self, p: &GlobPattern) -> u32 {
        let marks = self.arena.marks();
        self.arena.variants = 0;
        self.arena.feed(p);
        self.file(marks.0)
    }

    /// Closes the glob whose units start at `start` and files its
    /// variants under their keys.
    fn file(&mut self, start: usize) -> u32 {
        self.arena.units.push(Unit::End);
        let id = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let entry = Entry {
            case_insensitive: self.arena.case_insensitive,
            variants: self.arena.variants,
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(self.arena.units.len()).unwrap_or(u32::MAX),
        };
        self.entries.push(entry);
        if id == 0 && self.room > 1 {
            // Room for the globs to come, each the size of this one and a
            // quarter (the globs of one policy tend to look alike, their
            // literals numbered), rather than growing and copying the arena
            // as they come.
            let more = self.room - 1;
            let room = |used: usize| used.saturating_add(used.div_ceil(4)).saturating_mul(more);
            let units = self.arena.units.len();
            let lits = self.arena.lits.len();
            self.arena.units.reserve(room(units));
            self.arena.lits.reserve(room(lits));
        }
        let glob = view_of(&self.arena, entry);
        let fold = entry.case_insensitive;
        let base = if fold { 3 } else { 0 };
        // Room for as many keys per glob as this one has (up to four): the
        // globs of one policy tend to look alike.
        let room = self
            .room
            .saturating_mul(entry.variants.clamp(1, 4) as usize);
        let lits = self.arena.lits.as_bytes();
        for (at, units) in glob.variants_at() {
            // A glob's units are far fewer than the flag bits allow (a
            // bundle's programs are bounded); one that were not would be
            // matched whole ([`WHOLE`]) with no index.
            let Some(at) = u32::try_from(at).ok().filter(|at| at & FLAGS == 0) else {
                self.rest.push((id, WHOLE));
                continue;
            };
            let v = (id, at);
            let (table, key) = match glob.key_of(units) {
                Key::Exact(k) => (0, k),
                Key::Prefix(k) => (1, k),
                Key::Suffix(k) => (2, k),
                Key::Inner(k) => {
                    if fold {
                        self.inner_folded.insert(k, v);
                    } else {
                        self.inner.insert(k, v);
                    }
                    continue;
                }
                Key::None => {
                    self.rest.push(v);
                    continue;
                }
            };
            let filed = if is_key_alone(units) {
                (id, at | PROVEN)
            } else {
                v
            };
            match (glob.place_of(key), self.tables.get_mut(base + table)) {
                (Some(place), Some(t)) => {
                    t.insert(lits, place, filed, room);
                    self.filled |= 1 << (base + table);
                }
                // Cannot be (the key is a literal of the glob): tried
                // one by one, as a variant without a literal.
                _ => self.rest.push(v),
            }
        }
        id
    }

    /// Builds what is built once every glob is in.
    pub fn finish(&mut self) {
        self.inner.finish(false);
        self.inner_folded.finish(true);
    }

    /// Calls `f` with the number of every glob `s` matches (a glob more
    /// than one of whose variants match, more than once).
    pub fn matches(&self, s: &str, mut f: impl FnMut(u32)) {
        let bytes = s.as_bytes();
        let mut check = |(g, at): Variant| {
            let matched = at & PROVEN != 0
                || self.entries.get(g as usize).is_some_and(|e| {
                    let glob = view_of(&self.arena, *e);
                    if at == WHOLE {
                        glob.is_match(s)
                    } else {
                        glob.matches_variant(glob.variant_at(at as usize), s)
                    }
                });
            if matched {
                f(g);
            }
        };
        let lits = self.arena.lits.as_bytes();
        let mut filled = self.filled;
        while filled != 0 {
            let i = filled.trailing_zeros() as usize;
            filled &= filled - 1;
            if let Some(t) = self.tables.get(i) {
                t.lookup(lits, bytes, &mut check);
            }
        }
        self.inner.lookup(bytes, &mut check);
        self.inner_folded.lookup(bytes, &mut check);
        self.rest.iter().for_each(|v| check(*v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::GlobUnit;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const ALPHABET: [&str; 6] = ["a", "b", "A", "é", ":", "\n"];

    fn unit(rng: &mut Rng) -> GlobUnit {
        match rng.below(6) {
            0 => GlobUnit::Any,
            1 => GlobUnit::Star,
            2 => GlobUnit::Class {
                negated: rng.below(2) == 0,
                ranges: vec![('a', 'b')],
            },
            // Mostly short literals; one in four up to 24 characters, so
            // that keys span whole words of the set's hash.
            _ => {
                let most = if rng.below(4) == 0 { 24 } else { 3 };
                GlobUnit::Lit(
                    (0..=rng.below(most))
                        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                        .collect(),
                )
            }
        }
    }

    fn variant(rng: &mut Rng) -> Vec<GlobUnit> {
        let mut v: Vec<GlobUnit> = Vec::new();
        for _ in 0..rng.below(5) {
            let u = unit(rng);
            // As the compiler writes them: no two `*` or literals in a row.
            let joins = matches!(
                (v.last(), &u),
                (Some(GlobUnit::Star), GlobUnit::Star) | (Some(GlobUnit::Lit(_)), GlobUnit::Lit(_))
            );
            if !joins {
                v.push(u);
            }
        }
        v
    }

    fn string(rng: &mut Rng) -> String {
        (0..rng.below(8))
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect()
    }

    /// A string `v` likely matches: its literals (in flipped case when
    /// `fold`), a random character for `?` and classes, short random
    /// runs for `*`.
    fn sample(v: &[GlobUnit], fold: bool, rng: &mut Rng) -> String {
        let mut s = String::new();
        for u in v {
            match u {
                GlobUnit::Lit(l) if fold && rng.below(2) == 0 => {
                    s.extend(l.chars().map(|c| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    }));
                }
                GlobUnit::Lit(l) => s.push_str(l),
                GlobUnit::Star => s.push_str(&string(rng)),
                GlobUnit::Any | GlobUnit::Class { .. } => {
                    s.push_str(ALPHABET[rng.below(ALPHABET.len())]);
                }
            }
        }
        s
    }

    /// The set finds exactly the globs that match, one by one.
    #[test]
    fn the_set_finds_what_each_glob_matches() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0usize;
        let mut matched = 0usize;
        let mut matched_by_key = 0usize;
        let mut matched_long = 0usize;
        for _ in 0..200 {
            let mut set = GlobSet::default();
            let mut globs = Vec::new();
            // Variants that are their key alone, which the set matches
            // without verifying: each as a glob of its own.
            let mut keys_alone = Vec::new();
            let mut samples = Vec::new();
            for _ in 0..1 + rng.below(30) {
                let p = GlobPattern {
                    text: String::new(),
                    case_insensitive: rng.below(3) == 0,
                    variants: (0..1 + rng.below(3)).map(|_| variant(&mut rng)).collect(),
                };
                for v in &p.variants {
                    if matches!(
                        v.as_slice(),
                        [] | [GlobUnit::Lit(_)]
                            | [GlobUnit::Lit(_), GlobUnit::Star]
                            | [GlobUnit::Star, GlobUnit::Lit(_)]
                    ) {
                        keys_alone.push(Glob::from_pattern(&GlobPattern {
                            variants: vec![v.clone()],
                            ..p.clone()
                        }));
                    }
                }
                for v in &p.variants {
                    samples.push(sample(v, p.case_insensitive, &mut rng));
                }
                globs.push(Glob::from_pattern(&p));
                set.add_pattern(&p);
            }
            set.finish();
            for i in 0..40 {
                // Half random strings, half strings built from a variant.
                let s = match samples.get(rng.below(samples.len().max(1))) {
                    Some(s) if i % 2 == 0 => s.clone(),
                    _ => string(&mut rng),
                };
                let mut got = Vec::new();
                set.matches(&s, |g| got.push(g));
                got.sort_unstable();
                got.dedup();
                let want: Vec<u32> = (0u32..)
                    .zip(&globs)
                    .filter(|(_, g)| g.is_match(&s))
                    .map(|(i, _)| i)
                    .collect();
                assert_eq!(got, want, "{s:?}");
                compared += 1;
                matched += want.len();
                if s.len() >= 16 {
                    matched_long += want.len();
                }
                matched_by_key += keys_alone.iter().filter(|g| g.is_match(&s)).count();
            }
        }
        println!(
            "compared {compared} strings, {matched} matches ({matched_long} of strings of 16 bytes or more), {matched_by_key} of a variant that is its key alone"
        );
        assert!(
            matched > 1_000 && matched_by_key > 300 && matched_long > 300,
            "the generator must produce matches ({matched}, {matched_by_key}, {matched_long})"
        );
    }

    /// Many inner literals: each found once however often it occurs.
    #[test]
    fn inner_literals_are_tried_once() {
        let mut set = GlobSet::default();
        for i in 0..40 {
            set.add_pattern(&GlobPattern {
                text: String::new(),
                case_insensitive: i % 2 == 0,
                variants: vec![vec![
                    GlobUnit::Star,
                    GlobUnit::Lit(format!("k{i}x")),
                    GlobUnit::Star,
                ]],
            });
        }
        set.finish();
        let s: String = (0..40).map(|i| format!("K{i}x-k{i}x-")).collect();
        let mut got = Vec::new();
        set.matches(&s, |g| got.push(g));
        assert_eq!(got.len(), 40, "{got:?}");
    }
}
