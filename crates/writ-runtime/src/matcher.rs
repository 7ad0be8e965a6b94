//! Matching action and target strings: exact names, prefixes and suffixes
//! by hashing, everything else by the serialized DFAs the compiler built.

use regex_automata::dfa::Automaton;
use regex_automata::dfa::dense::DFA;
use regex_automata::{Anchored, Input};
use rustc_hash::FxHasher;
use std::hash::Hasher;

use hashbrown::hash_table::{Entry, HashTable};

use crate::error::LoadError;
use crate::model::{Pattern, PatternRef, Span};

/// One prepared pattern.
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    Dfa(Box<Glob>),
}

/// A pattern's automaton, and the bytes a match can begin with (so that
/// most strings are told apart by one table lookup, without running it).
#[derive(Clone, Debug)]
pub struct Glob {
    dfa: DFA<Vec<u32>>,
    /// The bytes some match begins with.
    first: ByteSet,
}

impl Glob {
    fn new(dfa: DFA<Vec<u32>>) -> Glob {
        let mut first = ByteSet::ALL;
        // From the anchored start state, a byte that leads to the dead
        // state begins no match. (A start state that cannot be computed
        // leaves every byte possible: the automaton decides.)
        if let Ok(start) = dfa.start_state_forward(&Input::new("").anchored(Anchored::Yes)) {
            first = ByteSet::default();
            for b in 0..=255u8 {
                if !dfa.is_dead_state(dfa.next_state(start, b)) {
                    first.insert(b);
                }
            }
        }
        Glob { dfa, first }
    }

    fn may_begin(&self, b: u8) -> bool {
        self.first.contains(b)
    }

    fn is_match(&self, s: &str) -> bool {
        if let Some(&b) = s.as_bytes().first()
            && !self.may_begin(b)
        {
            return false;
        }
        self.dfa
            .try_search_fwd(&Input::new(s).anchored(Anchored::Yes))
            .is_ok_and(|m| m.is_some())
    }
}

impl Matcher {
    /// Prepares a pattern; a DFA is deserialized (and validated) here.
    pub fn new(p: Pattern) -> Result<Matcher, LoadError> {
        Ok(match p {
            Pattern::Exact(s) => Matcher::Exact(s),
            Pattern::Prefix(s) => Matcher::Prefix(s),
            Pattern::Suffix(s) => Matcher::Suffix(s),
            Pattern::Any => Matcher::Any,
            Pattern::Dfa { text, dfa } => Matcher::dfa(&text, &dfa)?,
        })
    }

    /// Deserializes (and validates) a pattern's DFA.
    ///
    /// # Errors
    /// When the bytes are not a valid DFA.
    pub fn dfa(text: &str, bytes: &[u8]) -> Result<Matcher, LoadError> {
        Ok(Matcher::Dfa(Box::new(Glob::new(load_dfa(bytes).map_err(
            |e| {
                LoadError::Corrupt(format!(
                    "the automaton of pattern \"{text}\" is invalid: {e}"
                ))
            },
        )?))))
    }

    /// False when no string beginning with byte `b` can match (only
    /// automata tell; other patterns answer true).
    #[must_use]
    pub fn may_begin(&self, b: u8) -> bool {
        match self {
            Matcher::Dfa(glob) => glob.may_begin(b),
            _ => true,
        }
    }

    #[must_use]
    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::Suffix(p) => s.ends_with(p.as_str()),
            Matcher::Any => true,
            Matcher::Dfa(glob) => glob.is_match(s),
        }
    }
}

fn load_dfa(bytes: &[u8]) -> Result<DFA<Vec<u32>>, String> {
    // DFAs are read from 4-byte aligned memory: copy into a buffer and
    // start at its first aligned byte.
    let mut buf = vec![0u8; bytes.len() + 4];
    let off = buf.as_ptr().align_offset(4).min(3);
    let slot = buf
        .get_mut(off..off + bytes.len())
        .ok_or_else(|| "buffer".to_owned())?;
    slot.copy_from_slice(bytes);
    let aligned = buf
        .get(off..off + bytes.len())
        .ok_or_else(|| "buffer".to_owned())?;
    let (dfa, _) = DFA::from_bytes(aligned).map_err(|e| e.to_string())?;
    Ok(dfa.to_owned())
}

/// True when any matcher matches.
#[must_use]
pub fn any_match(ms: &[Matcher], s: &str) -> bool {
    ms.iter().any(|m| m.is_match(s))
}

/// One step of the rolling hash over a string's bytes.
#[inline]
fn roll(h: u64, byte: u8) -> u64 {
    (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Up to this many distinct prefix (suffix) lengths are probed directly.
const FEW: usize = 6;

fn hash_forward(s: &[u8]) -> u64 {
    s.iter().copied().fold(SEED, roll)
}

fn hash_backward(s: &[u8]) -> u64 {
    s.iter().rev().copied().fold(SEED, roll)
}

fn fx(s: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(s);
    h.finish()
}

/// The bytes of a span of the bundle body (empty if out of range, which
/// the scanner that made the span rules out).
#[inline]
fn text(body: &[u8], (start, len): Span) -> &[u8] {
    let start = start as usize;
    body.get(start..start.saturating_add(len as usize))
        .unwrap_or(&[])
}

/// A hash table keyed by strings of the bundle body, held as spans: no
/// key is copied out of the bundle.
#[derive(Debug)]
struct SpanTable<V> {
    table: HashTable<(Span, V)>,
}

impl<V> Default for SpanTable<V> {
    fn default() -> Self {
        SpanTable {
            table: HashTable::new(),
        }
    }
}

impl<V> SpanTable<V> {
    /// Inserts `value` under `key` unless the key is there; returns the
    /// value already there.
    fn upsert(
        &mut self,
        body: &[u8],
        hash: fn(&[u8]) -> u64,
        key: Span,
        value: V,
    ) -> Option<&mut V> {
        let k = text(body, key);
        match self.table.entry(
            hash(k),
            |(s, _)| text(body, *s) == k,
            |(s, _)| hash(text(body, *s)),
        ) {
            Entry::Occupied(o) => Some(&mut o.into_mut().1),
            Entry::Vacant(v) => {
                v.insert((key, value));
                None
            }
        }
    }
}

impl<V: Default> SpanTable<V> {
    #[inline]
    fn get(&self, body: &[u8], hash: u64, key: &[u8]) -> Option<&V> {
        self.table
            .find(hash, |(s, _)| text(body, *s) == key)
            .map(|(_, v)| v)
    }

    fn entry(&mut self, body: &[u8], hash: fn(&[u8]) -> u64, key: Span) -> &mut V {
        let k = text(body, key);
        match self.table.entry(
            hash(k),
            |(s, _)| text(body, *s) == k,
            |(s, _)| hash(text(body, *s)),
        ) {
            Entry::Occupied(o) => &mut o.into_mut().1,
            Entry::Vacant(v) => &mut v.insert((key, V::default())).into_mut().1,
        }
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// How a rule's principals narrow it, for the scope index.
#[derive(Clone, Copy, Debug)]
pub enum ScopeKey<'a> {
    /// No agent or role list: any principal may match.
    Open,
    Agents(&'a [Span]),
    Roles(&'a [Span]),
}

/// How a rule is narrowed beyond its action: by its principals, and by its
/// target names when every target pattern is an exact name (`None`
/// otherwise: any target may match).
#[derive(Clone, Copy, Debug)]
pub struct Narrowing<'a> {
    pub scope: ScopeKey<'a>,
    pub targets: Option<&'a [Span]>,
}

/// How each rule is narrowed.
pub type Scopes<'a> = dyn Fn(u32) -> Narrowing<'a> + 'a;

/// Buckets holding more rules than this are indexed by principal too.
const SCOPE_INDEX_AT: usize = 16;

/// Lists of rules (a bucket, or a principal's share of one) longer than
/// this are indexed by exact target too.
const TARGET_INDEX_AT: usize = 8;

/// Rules by exact target name: those a request's target selects, and those
/// any target may match.
#[derive(Debug, Default)]
struct Targets {
    any: Vec<u32>,
    by_name: SpanTable<Vec<u32>>,
}

impl Targets {
    /// The index of `rules`, when they are many and some name exact
    /// targets.
    fn build(rules: &[u32], body: &[u8], scopes: &Scopes<'_>) -> Option<Box<Targets>> {
        if rules.len() <= TARGET_INDEX_AT {
            return None;
        }
        let mut ix = Targets::default();
        for &r in rules {
            match scopes(r).targets {
                Some(names) => names
                    .iter()
                    .for_each(|t| ix.by_name.entry(body, fx, *t).push(r)),
                None => ix.any.push(r),
            }
        }
        (!ix.by_name.is_empty()).then(|| Box::new(ix))
    }

    #[inline]
    fn visit(&self, body: &[u8], target: &[u8], f: &mut impl FnMut(u32)) {
        self.any.iter().for_each(|r| f(*r));
        if let Some(v) = self.by_name.get(body, fx(target), target) {
            v.iter().for_each(|r| f(*r));
        }
    }
}

/// A list of rules, indexed by target when long.
#[derive(Debug, Default)]
struct List {
    rules: Vec<u32>,
    targets: Option<Box<Targets>>,
}

impl List {
    fn index(&mut self, body: &[u8], scopes: &Scopes<'_>) {
        self.targets = Targets::build(&self.rules, body, scopes);
    }

    #[inline]
    fn visit(&self, body: &[u8], target: &[u8], f: &mut impl FnMut(u32)) {
        match &self.targets {
            Some(t) => t.visit(body, target, f),
            None => self.rules.iter().for_each(|r| f(*r)),
        }
    }
}

#[derive(Debug, Default)]
struct ScopeIndex {
    open: List,
    by_agent: SpanTable<List>,
    by_role: SpanTable<List>,
}

/// Rule ids, without a heap allocation for the common single rule.
#[derive(Debug, Default)]
enum Rules {
    #[default]
    Empty,
    One(u32),
    Many(Vec<u32>),
}

impl Rules {
    fn as_slice(&self) -> &[u32] {
        match self {
            Rules::Empty => &[],
            Rules::One(r) => std::slice::from_ref(r),
            Rules::Many(v) => v,
        }
    }
}

/// The rules of one action key; large buckets are split by principal so
/// that rules for other agents and roles cost nothing, and long lists by
/// exact target.
#[derive(Debug, Default)]
struct Bucket {
    rules: Rules,
    scoped: Option<Box<ScopeIndex>>,
    /// For a bucket not split by principal.
    targets: Option<Box<Targets>>,
}

impl Bucket {
    #[inline]
    fn push(&mut self, rule: u32) {
        match &mut self.rules {
            Rules::Empty => self.rules = Rules::One(rule),
            Rules::One(r) if *r == rule => {}
            Rules::One(r) => self.rules = Rules::Many(vec![*r, rule]),
            Rules::Many(v) => {
                if v.last() != Some(&rule) {
                    v.push(rule);
                }
            }
        }
    }

    /// Builds the bucket's indexes; returns whether it was split by
    /// principal.
    fn index(&mut self, body: &[u8], scopes: &Scopes<'_>) -> bool {
        let rules = self.rules.as_slice();
        if rules.len() <= SCOPE_INDEX_AT {
            self.targets = Targets::build(rules, body, scopes);
            return false;
        }
        let mut ix = ScopeIndex::default();
        for &r in rules {
            match scopes(r).scope {
                ScopeKey::Agents(a) => a
                    .iter()
                    .for_each(|a| ix.by_agent.entry(body, fx, *a).rules.push(r)),
                ScopeKey::Roles(roles) => roles
                    .iter()
                    .for_each(|x| ix.by_role.entry(body, fx, *x).rules.push(r)),
                ScopeKey::Open => ix.open.rules.push(r),
            }
        }
        ix.open.index(body, scopes);
        for (_, list) in ix.by_agent.table.iter_mut() {
            list.index(body, scopes);
        }
        for (_, list) in ix.by_role.table.iter_mut() {
            list.index(body, scopes);
        }
        self.scoped = Some(Box::new(ix));
        true
    }

    #[inline]
    fn visit(&self, body: &[u8], who: &Who<'_>, f: &mut impl FnMut(u32)) {
        if who.every {
            self.rules.as_slice().iter().for_each(|r| f(*r));
            return;
        }
        let target = who.target.as_bytes();
        let Some(ix) = &self.scoped else {
            match &self.targets {
                Some(t) => t.visit(body, target, f),
                None => self.rules.as_slice().iter().for_each(|r| f(*r)),
            }
            return;
        };
        ix.open.visit(body, target, f);
        let agent = who.agent.as_bytes();
        if let Some(l) = ix.by_agent.get(body, fx(agent), agent) {
            l.visit(body, target, f);
        }
        if !ix.by_role.is_empty() {
            (who.roles)(&mut |role: &str| {
                if let Some(l) = ix.by_role.get(body, fx(role.as_bytes()), role.as_bytes()) {
                    l.visit(body, target, f);
                }
            });
        }
    }
}

/// Visits each of the principal's roles.
pub type RoleVisitor<'a> = dyn Fn(&mut dyn FnMut(&str)) + 'a;

/// Who is asking, for the scope index: the agent and a way to visit its
/// roles.
pub struct Who<'a> {
    pub agent: &'a str,
    pub roles: &'a RoleVisitor<'a>,
    /// The request's target (empty for none, as rules compare it).
    pub target: &'a str,
    /// Every rule of the action, however the index narrows it by
    /// principal and target (for the default decision's explanation).
    pub every: bool,
}

/// A table slot: one rule id, or with this bit set the index of a bucket
/// of several rules.
const MANY: u32 = 1 << 31;

/// Exact names, prefixes or suffixes with their rules.
#[derive(Debug, Default)]
struct Keys {
    /// (key, rule) in policy order, until `finish` builds the table.
    pending: Vec<(Span, u32)>,
    /// Key to slot: most keys have one rule, held in the table itself.
    table: SpanTable<u32>,
    many: Vec<Bucket>,
    /// The distinct key lengths, sorted.
    lengths: Vec<usize>,
    /// The key lengths below 256.
    short: ByteSet,
    max: usize,
    /// Keys are hashed with the rolling hash (many distinct lengths) rather
    /// than FxHash.
    rolling: bool,
    /// The bytes keys begin with, and end with (every bit set when some key
    /// is empty): a string whose first (last) byte begins (ends) no key
    /// has no prefix (suffix) here, and is not probed.
    first: ByteSet,
    last: ByteSet,
}

/// A set of bytes, one bit each.
#[derive(Clone, Copy, Debug, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    const ALL: ByteSet = ByteSet([u64::MAX; 4]);

    fn insert(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word |= 1 << (b & 63);
        }
    }

    #[inline]
    fn contains(&self, b: u8) -> bool {
        self.0
            .get(usize::from(b >> 6))
            .is_some_and(|w| w & (1 << (b & 63)) != 0)
    }

    /// True when `s` is empty or its byte chosen by `at` is in the set.
    #[inline]
    fn admits(&self, s: &[u8], at: fn(&[u8]) -> Option<&u8>) -> bool {
        at(s).is_none_or(|b| self.contains(*b))
    }
}

impl Keys {
    fn has_length(&self, l: usize) -> bool {
        match u8::try_from(l) {
            Ok(short) => self.short.contains(short),
            Err(_) => self.lengths.binary_search(&l).is_ok(),
        }
    }

    /// Builds the table: with few distinct lengths keys are hashed with
    /// FxHash and each length's slice is looked up; with many, with the
    /// rolling hash that one pass over an action's bytes computes for every
    /// length. Large buckets are split by principal.
    fn finish(
        &mut self,
        body: &[u8],
        scopes: &Scopes<'_>,
        affix: bool,
        rolling_hash: fn(&[u8]) -> u64,
    ) -> bool {
        for &(span, _) in &self.pending {
            let key = text(body, span);
            match (key.first(), key.last()) {
                (Some(&f), Some(&l)) => {
                    self.first.insert(f);
                    self.last.insert(l);
                }
                _ => {
                    self.first = ByteSet::ALL;
                    self.last = ByteSet::ALL;
                }
            }
            let l = span.1 as usize;
            // (`lengths` is sorted only after this loop.)
            let new = match u8::try_from(l) {
                Ok(short) => !self.short.contains(short),
                Err(_) => !self.lengths.contains(&l),
            };
            if new {
                if let Ok(short) = u8::try_from(l) {
                    self.short.insert(short);
                }
                self.lengths.push(l);
            }
            self.max = self.max.max(l);
        }
        self.lengths.sort_unstable();
        self.rolling = affix && self.lengths.len() > FEW;
        let hash = if self.rolling { rolling_hash } else { fx };
        self.table
            .table
            .reserve(self.pending.len(), |(s, _)| hash(text(body, *s)));
        for (span, rule) in std::mem::take(&mut self.pending) {
            let Some(slot) = self.table.upsert(body, hash, span, rule) else {
                continue;
            };
            if *slot & MANY != 0 {
                if let Some(b) = self.many.get_mut((*slot & !MANY) as usize) {
                    b.push(rule);
                }
            } else if *slot != rule {
                let mut b = Bucket::default();
                b.push(*slot);
                b.push(rule);
                *slot = MANY | u32::try_from(self.many.len()).unwrap_or(0);
                self.many.push(b);
            }
        }
        let mut split = false;
        for b in &mut self.many {
            split |= b.index(body, scopes);
        }
        split
    }

    #[inline]
    fn visit(&self, body: &[u8], hash: u64, key: &[u8], who: &Who<'_>, f: &mut impl FnMut(u32)) {
        match self.table.get(body, hash, key) {
            None => {}
            Some(&slot) if slot & MANY == 0 => f(slot),
            Some(&slot) => {
                if let Some(b) = self.many.get((slot & !MANY) as usize) {
                    b.visit(body, who, f);
                }
            }
        }
    }
}

/// Maps an action to the rules whose action patterns may match it: one
/// hash lookup for exact names, one pass over the action's bytes for
/// prefixes and one for suffixes (probing only the lengths that occur),
/// plus the DFAs of the few patterns that are none of these. Keys are
/// spans of the bundle body, which every lookup is given.
#[derive(Debug, Default)]
pub struct ActionIndex {
    scoped: bool,
    /// Some bucket is split by principal or by target, so a request's
    /// candidates may leave out rules its action matches.
    narrowed: bool,
    exact: Keys,
    prefixes: Keys,
    suffixes: Keys,
    any: Bucket,
    complex: Vec<(Matcher, u32)>,
    /// For each first byte, the positions in `complex` of the automata
    /// that a string beginning with it may match (empty until `finish`, and
    /// when there are no automata): a request runs only those.
    complex_by_first: Vec<Vec<u32>>,
}

impl ActionIndex {
    /// Adds one action pattern of `rule`; rules are added in order.
    ///
    /// # Errors
    /// When a DFA pattern does not deserialize.
    pub fn add(&mut self, p: PatternRef<'_>, rule: u32) -> Result<(), LoadError> {
        match p {
            PatternRef::Exact(s) => self.exact.pending.push((s, rule)),
            PatternRef::Prefix(s) => self.prefixes.pending.push((s, rule)),
            PatternRef::Suffix(s) => self.suffixes.pending.push((s, rule)),
            PatternRef::Any => self.any.push(rule),
            PatternRef::Dfa { text, dfa } => self.complex.push((Matcher::dfa(text, dfa)?, rule)),
        }
        Ok(())
    }

    /// Builds the tables; `scopes[rule]` says how each rule's principals
    /// narrow it (large buckets are indexed by principal).
    pub fn finish(&mut self, body: &[u8], scopes: &Scopes<'_>) {
        let mut split = self.exact.finish(body, scopes, false, fx);
        split |= self.prefixes.finish(body, scopes, true, hash_forward);
        split |= self.suffixes.finish(body, scopes, true, hash_backward);
        split |= self.any.index(body, scopes);
        self.scoped = split;
        let narrowed = |b: &Bucket| b.scoped.is_some() || b.targets.is_some();
        self.narrowed = narrowed(&self.any)
            || [&self.exact, &self.prefixes, &self.suffixes]
                .iter()
                .any(|k| k.many.iter().any(narrowed));
        self.complex_by_first.clear();
        if !self.complex.is_empty() {
            self.complex_by_first = (0..=255u8)
                .map(|b| {
                    (0..self.complex.len())
                        .filter(|&i| self.complex.get(i).is_some_and(|(m, _)| m.may_begin(b)))
                        .filter_map(|i| u32::try_from(i).ok())
                        .collect()
                })
                .collect();
        }
    }

    /// True when some bucket is split by principal or target: only then
    /// can a request's candidates leave out a rule its action matches.
    #[must_use]
    pub fn is_narrowed(&self) -> bool {
        self.narrowed
    }

    /// True when some bucket is indexed by principal (callers can skip
    /// gathering the principal's roles otherwise).
    #[must_use]
    pub fn is_scoped(&self) -> bool {
        self.scoped
    }

    /// Calls `f` with every candidate rule (possibly twice, in no order).
    /// Rules whose agent or role list excludes `who`, or whose exact
    /// targets exclude its target, may be left out (unless `who.every`).
    pub fn candidates(&self, body: &[u8], action: &str, who: &Who<'_>, mut f: impl FnMut(u32)) {
        let bytes = action.as_bytes();
        if !self.exact.table.is_empty() {
            self.exact.visit(body, fx(bytes), bytes, who, &mut f);
        }
        let p = &self.prefixes;
        if !p.first.admits(bytes, <[u8]>::first) {
            // No prefix begins with the action's first byte.
        } else if !p.rolling {
            for &l in &p.lengths {
                if let Some(k) = bytes.get(..l) {
                    p.visit(body, fx(k), k, who, &mut f);
                }
            }
        } else {
            let mut h = SEED;
            for (i, b) in bytes.iter().enumerate().take(p.max) {
                h = roll(h, *b);
                if p.has_length(i + 1)
                    && let Some(k) = bytes.get(..=i)
                {
                    p.visit(body, h, k, who, &mut f);
                }
            }
        }
        let s = &self.suffixes;
        if !s.last.admits(bytes, <[u8]>::last) {
            // No suffix ends with the action's last byte.
        } else if !s.rolling {
            for &l in &s.lengths {
                if let Some(k) = bytes.len().checked_sub(l).and_then(|at| bytes.get(at..)) {
                    s.visit(body, fx(k), k, who, &mut f);
                }
            }
        } else {
            let mut h = SEED;
            for (i, b) in bytes.iter().rev().enumerate().take(s.max) {
                h = roll(h, *b);
                if s.has_length(i + 1)
                    && let Some(k) = bytes.get(bytes.len() - i - 1..)
                {
                    s.visit(body, h, k, who, &mut f);
                }
            }
        }
        self.any.visit(body, who, &mut f);
        if self.complex.is_empty() {
            return;
        }
        let mut run = |m: &Matcher, r: u32| {
            if m.is_match(action) {
                f(r);
            }
        };
        match bytes
            .first()
            .and_then(|&b| self.complex_by_first.get(usize::from(b)))
        {
            Some(at) => at
                .iter()
                .filter_map(|&i| self.complex.get(i as usize))
                .for_each(|(m, r)| run(m, *r)),
            // The empty action (or an index not built): every automaton.
            None => self.complex.iter().for_each(|(m, r)| run(m, *r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::dfa::{StartKind, dense};

    fn glob(re: &str) -> Glob {
        let dfa = dense::Builder::new()
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
            .configure(dense::Config::new().start_kind(StartKind::Anchored))
            .build(re);
        let Ok(dfa) = dfa else {
            unreachable!("{re} builds")
        };
        Glob::new(dfa)
    }

    #[test]
    fn the_first_byte_filter_never_changes_an_answer() {
        let patterns = [
            r"(?-u)job:run.[ab]$",
            r"(?i-u)job:run.*$",
            r"(?-u).*_read$",
            r"(?-u)(read|write):doc$",
            r"(?-u)[rw].*$",
            r"(?-u)$",
            r"(?-u)(|x)y?$",
            r"(?-u)\xC3\xA9.*$",
            r"(?-u)[^t].*$",
        ];
        let inputs = [
            "",
            "j",
            "job:runxa",
            "job:runxc",
            "JOB:RUN",
            "Job:run",
            "tool:call",
            "x_read",
            "_read",
            "read:doc",
            "write:doc",
            "wx",
            "rx",
            "é",
            "éa",
            "e",
            "x",
            "y",
            "xy",
            "t",
            "u",
            "\u{0}",
            "ÿ",
        ];
        for re in patterns {
            let g = glob(re);
            for s in inputs {
                let plain = g
                    .dfa
                    .try_search_fwd(&Input::new(s).anchored(Anchored::Yes))
                    .is_ok_and(|m| m.is_some());
                assert_eq!(g.is_match(s), plain, "{re} on {s:?}");
            }
        }
        // The index of automata by first byte gives the candidates that
        // running every automaton gives.
        let mut ix = ActionIndex::default();
        let dfas: Vec<Vec<u8>> = patterns
            .iter()
            .map(|re| glob(re).dfa.to_bytes_native_endian().0)
            .collect();
        for (rule, bytes) in (0u32..).zip(&dfas) {
            let added = ix.add(
                PatternRef::Dfa {
                    text: "t",
                    dfa: bytes,
                },
                rule,
            );
            assert!(added.is_ok());
        }
        ix.finish(&[], &|_| Narrowing {
            scope: ScopeKey::Open,
            targets: None,
        });
        let no_roles = |_: &mut dyn FnMut(&str)| {};
        let who = Who {
            agent: "a",
            roles: &no_roles,
            target: "",
            every: false,
        };
        let mut filtered = 0;
        for s in inputs {
            let mut got = Vec::new();
            ix.candidates(&[], s, &who, |r| got.push(r));
            got.sort_unstable();
            let want: Vec<u32> = (0u32..)
                .zip(patterns)
                .filter(|(_, re)| glob(re).is_match(s))
                .map(|(r, _)| r)
                .collect();
            assert_eq!(got, want, "candidates of {s:?}");
            if let Some(&b) = s.as_bytes().first() {
                filtered += patterns.len() - ix.complex_by_first[usize::from(b)].len();
            }
        }
        assert!(filtered > 0, "the index skips some automata");
        // And it does filter: only `j` (in either case) begins a match.
        let g = glob(r"(?i-u)job:run.*$");
        let begins: Vec<u8> = (0..=255u8).filter(|&b| g.may_begin(b)).collect();
        assert_eq!(begins, b"Jj");
        assert!((0..=255u8).all(|b| glob(r"(?s-u).*_read$").may_begin(b)));
    }
}
