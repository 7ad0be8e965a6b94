//! Matching action and target strings: exact names, prefixes and suffixes
//! by hashing, everything else by glob programs ([`crate::glob`]), many at
//! once through a [`GlobSet`].

use rustc_hash::FxHasher;
use std::hash::Hasher;

use hashbrown::hash_table::{Entry, HashTable};

use crate::error::LoadError;
use crate::glob::{Glob, GlobPattern, GlobUnit, r_glob};
use crate::globset::GlobSet;
use crate::model::{Pattern, PatternRef, Span};
use crate::wire::Reader;

/// One prepared pattern.
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    Glob(Box<Glob>),
}

impl Matcher {
    /// Prepares a pattern.
    #[must_use]
    pub fn new(p: Pattern) -> Matcher {
        match p {
            Pattern::Exact(s) => Matcher::Exact(s),
            Pattern::Prefix(s) => Matcher::Prefix(s),
            Pattern::Suffix(s) => Matcher::Suffix(s),
            Pattern::Any => Matcher::Any,
            Pattern::Glob(g) => Matcher::Glob(Box::new(Glob::from_pattern(&g))),
        }
    }

    #[must_use]
    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::Suffix(p) => s.ends_with(p.as_str()),
            Matcher::Any => true,
            Matcher::Glob(glob) => glob.is_match(s),
        }
    }
}

/// True when any matcher matches.
#[must_use]
pub fn any_match(ms: &[Matcher], s: &str) -> bool {
    ms.iter().any(|m| m.is_match(s))
}

/// One step of the rolling hash over a string's bytes.
#[inline]
pub(crate) fn roll(h: u64, byte: u8) -> u64 {
    (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
}

pub(crate) const SEED: u64 = 0xcbf2_9ce4_8422_2325;

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
/// target patterns when it has targets and none is `*` (`None` otherwise:
/// any target may match).
#[derive(Clone, Copy, Debug)]
pub struct Narrowing<'a> {
    pub scope: ScopeKey<'a>,
    pub targets: Option<&'a [PatternRef]>,
}

/// How each rule is narrowed.
pub type Scopes<'a> = dyn Fn(u32) -> Narrowing<'a> + 'a;

/// Set in a candidate the index hands out (a rule's number shifted left
/// by one) when the rule was found by a target pattern the request's
/// target matches: its targets need not be matched again. (Rule numbers
/// are below 2^30: a rule takes at least seven bytes of a bundle smaller
/// than 4 GiB, which loading checks.)
pub const TARGET_PROVEN: u32 = 1;

/// Buckets holding more rules than this are indexed by principal too.
const SCOPE_INDEX_AT: usize = 16;

/// Lists of rules (a bucket, or a principal's share of one) longer than
/// this are indexed by exact target too.
const TARGET_INDEX_AT: usize = 8;

/// Rules by target: those whose exact target names a request's target
/// selects, those whose other target patterns match it (through a glob
/// set, each distinct pattern once), and those any target may match.
#[derive(Debug, Default)]
struct Targets {
    any: Vec<u32>,
    /// (`Rules`: most names have one rule, held without an allocation.)
    by_name: SpanTable<Rules>,
    globs: GlobSet,
    /// The rules of each glob of `globs`, by its number.
    glob_rules: RuleSlots,
}

/// Lists of rules by number (a glob's), most of one rule: a slot holds
/// the rule, or with [`MANY`] the place of its list in `many` (a slot is a
/// sixth of a list's size, and allocates nothing).
#[derive(Debug, Default)]
struct RuleSlots {
    slots: Vec<u32>,
    many: Vec<Vec<u32>>,
}

impl RuleSlots {
    fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// A new list, of `rule`.
    fn push(&mut self, rule: u32) {
        self.slots.push(rule);
    }

    /// Adds `rule` to list `id` unless it was the last added (rules come
    /// in order); false when there is no such list.
    fn add(&mut self, id: u32, rule: u32) -> bool {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return false;
        };
        if *slot & MANY != 0 {
            if let Some(list) = self.many.get_mut((*slot & !MANY) as usize)
                && list.last() != Some(&rule)
            {
                list.push(rule);
            }
        } else if *slot != rule {
            let first = *slot;
            *slot = MANY | u32::try_from(self.many.len()).unwrap_or(0);
            self.many.push(vec![first, rule]);
        }
        true
    }

    /// List `id` (empty when there is none).
    #[inline]
    fn get(&self, id: u32) -> &[u32] {
        match self.slots.get(id as usize) {
            Some(slot) if *slot & MANY == 0 => std::slice::from_ref(slot),
            Some(slot) => self
                .many
                .get((*slot & !MANY) as usize)
                .map_or(&[], Vec::as_slice),
            None => &[],
        }
    }
}

/// Target patterns by text while a [`Targets`] is built, one table per
/// kind (a prefix and a suffix may share a text).
#[derive(Default)]
struct TargetTexts {
    prefixes: SpanTable<u32>,
    suffixes: SpanTable<u32>,
    globs: SpanTable<u32>,
}

/// A prefix (`lit*`) or suffix (`*lit`) as a glob, for a glob set.
fn affix_glob(lit: &str, prefix: bool) -> GlobPattern {
    let lit = GlobUnit::Lit(lit.to_owned());
    let variant = if prefix {
        vec![lit, GlobUnit::Star]
    } else {
        vec![GlobUnit::Star, lit]
    };
    GlobPattern {
        text: String::new(),
        case_insensitive: false,
        variants: vec![variant],
    }
}

impl Targets {
    /// The index of `rules`, when they are many and some have targets.
    fn build(
        rules: &[u32],
        body: &[u8],
        scopes: &Scopes<'_>,
        programs: &Reader<'_>,
    ) -> Option<Box<Targets>> {
        if rules.len() <= TARGET_INDEX_AT {
            return None;
        }
        let mut ix = Targets::default();
        let mut texts = TargetTexts::default();
        for &r in rules {
            let Some(patterns) = scopes(r).targets else {
                ix.any.push(r);
                continue;
            };
            for p in patterns {
                if !ix.add(*p, r, (body, programs, rules.len()), &mut texts) {
                    // A pattern the index cannot hold: the rule is tried
                    // whatever the target.
                    ix.any.push(r);
                }
            }
        }
        ix.globs.finish();
        (!ix.by_name.is_empty() || !ix.globs.is_empty()).then(|| Box::new(ix))
    }

    /// Files `rule` under target pattern `p`; false when it cannot. With
    /// the bundle body, its reader, and how many rules the index takes
    /// (room is made for that many globs once the first pattern that is no
    /// exact name comes).
    fn add(
        &mut self,
        p: PatternRef,
        rule: u32,
        (body, programs, room): (&[u8], &Reader<'_>, usize),
        texts: &mut TargetTexts,
    ) -> bool {
        if !matches!(p, PatternRef::Exact(_) | PatternRef::Any) && self.globs.room() == 0 {
            self.globs.reserve(room);
            self.glob_rules.reserve(room);
        }
        let next = u32::try_from(self.glob_rules.len()).unwrap_or(u32::MAX);
        let (table, span) = match p {
            PatternRef::Exact(t) => {
                self.by_name.entry(body, fx, t).push(rule);
                return true;
            }
            PatternRef::Any => return false,
            PatternRef::Prefix(t) => (&mut texts.prefixes, t),
            PatternRef::Suffix(t) => (&mut texts.suffixes, t),
            PatternRef::Glob { text, .. } => (&mut texts.globs, text),
        };
        let folds = |at: u32| body.get(at as usize).is_some_and(|f| f & 1 != 0);
        if table.table.is_empty() {
            let room = self.globs.room();
            table.table.reserve(room, |(s, _)| fx(text(body, *s)));
        }
        if let Some(&mut id) = table.upsert(body, fx, span, next) {
            let same = match p {
                PatternRef::Glob { at, .. } => {
                    self.globs.is_case_insensitive(id) == Some(folds(at))
                }
                _ => true,
            };
            if same && self.glob_rules.add(id, rule) {
                return true;
            }
        }
        match p {
            PatternRef::Prefix(t) | PatternRef::Suffix(t) => {
                let Ok(lit) = std::str::from_utf8(text(body, t)) else {
                    return false;
                };
                if lit.is_empty() {
                    return false;
                }
                self.globs
                    .add_pattern(&affix_glob(lit, matches!(p, PatternRef::Prefix(_))));
            }
            PatternRef::Glob { at, .. } => {
                let mut r = programs.clone();
                if r.seek(at as usize)
                    .and_then(|()| self.globs.add_read(&mut r))
                    .is_err()
                {
                    return false;
                }
            }
            PatternRef::Exact(_) | PatternRef::Any => return false,
        }
        self.glob_rules.push(rule);
        true
    }

    #[inline]
    fn visit(&self, body: &[u8], target: &str, f: &mut impl FnMut(u32)) {
        self.any.iter().for_each(|r| f(*r << 1));
        let bytes = target.as_bytes();
        if !self.by_name.is_empty()
            && let Some(v) = self.by_name.get(body, fx(bytes), bytes)
        {
            v.as_slice().iter().for_each(|r| f(*r << 1 | TARGET_PROVEN));
        }
        if !self.globs.is_empty() {
            self.globs.matches(target, |g| {
                self.glob_rules
                    .get(g)
                    .iter()
                    .for_each(|r| f(*r << 1 | TARGET_PROVEN));
            });
        }
    }
}

/// How many rules a bucket split by principal may find by target alone
/// before it is narrowed by principal instead (see [`Bucket::visit`]).
const FEW_BY_TARGET: usize = 16;

impl Targets {
    /// As [`Targets::visit`], into `out`: how many rules it holds, or
    /// `None` when more match than it has room for (then they are not
    /// all visited: a list longer than the room left is skipped whole, so
    /// the cost is bounded by the number of matching patterns).
    #[inline]
    fn visit_bounded(
        &self,
        body: &[u8],
        target: &str,
        out: &mut [u32; FEW_BY_TARGET],
    ) -> Option<usize> {
        // Copies `rules` into the room left; false when it is too small.
        let take = |out: &mut [u32; FEW_BY_TARGET], n: &mut usize, rules: &[u32], proven: u32| {
            let Some(room) = out.get_mut(*n..*n + rules.len()) else {
                return false;
            };
            for (slot, r) in room.iter_mut().zip(rules) {
                *slot = *r << 1 | proven;
            }
            *n += rules.len();
            true
        };
        let mut n = 0usize;
        let mut over = !take(out, &mut n, &self.any, 0);
        let bytes = target.as_bytes();
        if !over
            && !self.by_name.is_empty()
            && let Some(v) = self.by_name.get(body, fx(bytes), bytes)
        {
            over = !take(out, &mut n, v.as_slice(), TARGET_PROVEN);
        }
        if !over && !self.globs.is_empty() {
            self.globs.matches(target, |g| {
                over = over || !take(out, &mut n, self.glob_rules.get(g), TARGET_PROVEN);
            });
        }
        (!over).then_some(n)
    }
}

/// A list of rules, indexed by target when long.
#[derive(Debug, Default)]
struct List {
    /// (`Rules`: a principal of one rule allocates nothing for it.)
    rules: Rules,
    targets: Option<Box<Targets>>,
}

impl List {
    fn index(&mut self, body: &[u8], scopes: &Scopes<'_>, programs: &Reader<'_>) {
        self.targets = Targets::build(self.rules.as_slice(), body, scopes, programs);
    }

    #[inline]
    fn visit(&self, body: &[u8], target: &str, f: &mut impl FnMut(u32)) {
        match &self.targets {
            Some(t) => t.visit(body, target, f),
            None => self.rules.as_slice().iter().for_each(|r| f(*r << 1)),
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
    /// Adds `rule` unless it was the last added (rules come in order).
    #[inline]
    fn push(&mut self, rule: u32) {
        match self {
            Rules::Empty => *self = Rules::One(rule),
            Rules::One(r) if *r == rule => {}
            Rules::One(r) => *self = Rules::Many(vec![*r, rule]),
            Rules::Many(v) => {
                if v.last() != Some(&rule) {
                    v.push(rule);
                }
            }
        }
    }

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
    /// For a bucket not split by principal; for one that is, all its
    /// rules by target whatever their principals (for `Who::every`).
    targets: Option<Box<Targets>>,
}

impl Bucket {
    #[inline]
    fn push(&mut self, rule: u32) {
        self.rules.push(rule);
    }

    /// Builds the bucket's indexes; returns whether it was split by
    /// principal.
    fn index(&mut self, body: &[u8], scopes: &Scopes<'_>, programs: &Reader<'_>) -> bool {
        let rules = self.rules.as_slice();
        if rules.len() <= SCOPE_INDEX_AT
            || rules
                .iter()
                .all(|r| matches!(scopes(*r).scope, ScopeKey::Open))
        {
            // Few rules, or none that names its principals: the target
            // index is the bucket's whole index.
            self.targets = Targets::build(rules, body, scopes, programs);
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
        self.targets = Targets::build(rules, body, scopes, programs);
        if ix.by_agent.is_empty() && ix.by_role.is_empty() {
            // Lists of principals, every one empty: as above.
            return false;
        }
        ix.open.index(body, scopes, programs);
        for (_, list) in ix.by_agent.table.iter_mut() {
            list.index(body, scopes, programs);
        }
        for (_, list) in ix.by_role.table.iter_mut() {
            list.index(body, scopes, programs);
        }
        self.scoped = Some(Box::new(ix));
        true
    }

    /// Every rule of the bucket whatever its principals, narrowed by
    /// target only.
    #[inline]
    fn visit_every(&self, body: &[u8], target: &str, f: &mut impl FnMut(u32)) {
        match &self.targets {
            Some(t) => t.visit(body, target, f),
            None => self.rules.as_slice().iter().for_each(|r| f(*r << 1)),
        }
    }

    #[inline]
    fn visit<'a>(&'a self, body: &[u8], who: &Who<'a>, f: &mut impl FnMut(u32)) {
        let target = who.target;
        if who.every {
            self.visit_every(body, target, f);
            return;
        }
        let Some(ix) = &self.scoped else {
            // Narrowed by target only, as `Who::every` would be: the
            // candidates are every rule of the action that can match.
            self.visit_every(body, target, f);
            return;
        };
        // Few rules of any principal for this target: they are the
        // candidates, whole (so a request that none decides needs no
        // second look for the default's explanation), and their targets
        // are matched already. Else the principal's share of the bucket.
        if let Some(t) = &self.targets {
            let mut few = [0u32; FEW_BY_TARGET];
            if let Some(n) = t.visit_bounded(body, target, &mut few) {
                few.iter().take(n).for_each(|c| f(*c));
                return;
            }
        }
        who.narrowed.set(who.narrowed.get().with(self));
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
    /// The buckets the request reached that left out rules by principal:
    /// only with one are the candidates fewer than [`Who::every`] would
    /// find (both narrow by target alike), and [`ActionIndex::widen`]
    /// then adds what they left out.
    pub narrowed: std::cell::Cell<Narrowed<'a>>,
}

/// How many narrowed buckets [`Narrowed`] remembers; a request reaching
/// more (an action matched by several patterns, each with a bucket split
/// by principal) is widened by a second pass over the whole index.
const NARROWED_KEPT: usize = 4;

/// The buckets of one request that left out rules by principal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Narrowed<'a> {
    kept: [Option<&'a Bucket>; NARROWED_KEPT],
    /// More buckets than `kept` holds were narrowed.
    overflow: bool,
}

impl<'a> Narrowed<'a> {
    /// With `b` added.
    fn with(mut self, b: &'a Bucket) -> Self {
        match self.kept.iter_mut().find(|k| k.is_none()) {
            Some(slot) => *slot = Some(b),
            None => self.overflow = true,
        }
        self
    }

    /// True when no bucket left out rules by principal.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.overflow && self.kept.iter().all(Option::is_none)
    }
}

/// A table slot: one rule id, or with this bit set the index of a bucket
/// of several rules.
const MANY: u32 = 1 << 31;

/// Adds `rule` to `slot`: a slot of one rule becomes, with a second, a
/// bucket of `many` (rules come in order; a rule added twice is kept once).
fn add_to_slot(slot: &mut u32, rule: u32, many: &mut Vec<Bucket>) {
    if *slot & MANY != 0 {
        if let Some(b) = many.get_mut((*slot & !MANY) as usize) {
            b.push(rule);
        }
    } else if *slot != rule {
        let mut b = Bucket::default();
        b.push(*slot);
        b.push(rule);
        *slot = MANY | u32::try_from(many.len()).unwrap_or(0);
        many.push(b);
    }
}

/// Visits the rules of `slot` (see [`add_to_slot`]).
#[inline]
fn visit_slot<'a>(
    slot: u32,
    many: &'a [Bucket],
    body: &[u8],
    who: &Who<'a>,
    f: &mut impl FnMut(u32),
) {
    if slot & MANY == 0 {
        f(slot << 1);
    } else if let Some(b) = many.get((slot & !MANY) as usize) {
        b.visit(body, who, f);
    }
}

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
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    const ALL: ByteSet = ByteSet([u64::MAX; 4]);

    pub(crate) fn insert(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word |= 1 << (b & 63);
        }
    }

    #[inline]
    pub(crate) fn contains(&self, b: u8) -> bool {
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
    /// Adds `key` of `rule`, rule `expected` being the last to come: the
    /// first key makes room for as many as may still come.
    #[inline]
    fn add(&mut self, key: Span, rule: u32, expected: usize) {
        if self.pending.capacity() == 0 {
            self.pending
                .reserve(expected.saturating_sub(rule as usize).max(1));
        }
        self.pending.push((key, rule));
    }

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
        programs: &Reader<'_>,
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
            if let Some(slot) = self.table.upsert(body, hash, span, rule) {
                add_to_slot(slot, rule, &mut self.many);
            }
        }
        let mut split = false;
        for b in &mut self.many {
            split |= b.index(body, scopes, programs);
        }
        split
    }

    #[inline]
    fn visit<'a>(
        &'a self,
        body: &[u8],
        hash: u64,
        key: &[u8],
        who: &Who<'a>,
        f: &mut impl FnMut(u32),
    ) {
        if let Some(&slot) = self.table.get(body, hash, key) {
            visit_slot(slot, &self.many, body, who, f);
        }
    }
}

/// Maps an action to the rules whose action patterns may match it: one
/// hash lookup for exact names, one pass over the action's bytes for
/// prefixes and one for suffixes (probing only the lengths that occur),
/// and the glob set for every other pattern (each distinct glob once, with
/// the rules that use it in a bucket). Keys are spans of the bundle body,
/// which every lookup is given.
#[derive(Debug, Default)]
pub struct ActionIndex {
    scoped: bool,
    exact: Keys,
    prefixes: Keys,
    suffixes: Keys,
    any: Bucket,
    globs: GlobSet,
    /// The rules of each glob of `globs`, by its number: one rule, or a
    /// bucket of `glob_many` (see [`add_to_slot`]; most globs have one
    /// rule, and a slot is a quarter of a bucket's size).
    glob_rules: Vec<u32>,
    glob_many: Vec<Bucket>,
    /// Globs by text while the index is built (a glob written by many
    /// rules is matched once).
    glob_by_text: SpanTable<u32>,
    /// How many patterns may still come, for reserving room once the first
    /// glob does (see [`ActionIndex::plan`]).
    expected: usize,
}

impl ActionIndex {
    /// Says how many rules will be added: the glob tables reserve room for
    /// them when the first glob comes, rather than grow one by one.
    pub fn plan(&mut self, rules: usize) {
        self.expected = rules;
    }

    /// Adds one action pattern of `rule`; rules are added in order. For a
    /// glob, `r` reads `body` at its program, which is read in full (and
    /// so checked) whether the glob is new or was seen before.
    ///
    /// # Errors
    /// When a glob's program does not read, or a glob comes without its
    /// program.
    pub fn add(
        &mut self,
        p: PatternRef,
        rule: u32,
        body: &[u8],
        r: Option<&mut Reader<'_>>,
    ) -> Result<(), LoadError> {
        match p {
            PatternRef::Exact(s) => self.exact.add(s, rule, self.expected),
            PatternRef::Prefix(s) => self.prefixes.add(s, rule, self.expected),
            PatternRef::Suffix(s) => self.suffixes.add(s, rule, self.expected),
            PatternRef::Any => self.any.push(rule),
            PatternRef::Glob { text, at } => {
                let Some(r) = r else {
                    return Err(LoadError::Corrupt("a glob without its program".to_owned()));
                };
                if self.glob_rules.is_empty() {
                    let room = self.expected.saturating_sub(rule as usize).max(1);
                    self.glob_rules.reserve(room);
                    self.globs.reserve(room);
                    self.glob_by_text
                        .table
                        .reserve(room, |(s, _)| fx(self::text(body, *s)));
                }
                let next = u32::try_from(self.glob_rules.len()).unwrap_or(u32::MAX);
                let folds = |at: u32| body.get(at as usize).is_some_and(|f| f & 1 != 0);
                if let Some(&mut id) = self.glob_by_text.upsert(body, fx, text, next)
                    && self.globs.is_case_insensitive(id) == Some(folds(at))
                {
                    if let Some(slot) = self.glob_rules.get_mut(id as usize) {
                        add_to_slot(slot, rule, &mut self.glob_many);
                    }
                    return r_glob(r, &mut ());
                }
                self.globs.add_read(r)?;
                self.glob_rules.push(rule);
            }
        }
        Ok(())
    }

    /// Builds the tables; `scopes[rule]` says how each rule's principals
    /// narrow it (large buckets are indexed by principal).
    pub fn finish(&mut self, body: &[u8], scopes: &Scopes<'_>, programs: &Reader<'_>) {
        let mut split = self.exact.finish(body, scopes, false, fx, programs);
        split |= self
            .prefixes
            .finish(body, scopes, true, hash_forward, programs);
        split |= self
            .suffixes
            .finish(body, scopes, true, hash_backward, programs);
        split |= self.any.index(body, scopes, programs);
        self.globs.finish();
        self.glob_by_text = SpanTable::default();
        for b in &mut self.glob_many {
            split |= b.index(body, scopes, programs);
        }
        self.scoped = split;
    }

    /// True when some bucket is indexed by principal (callers can skip
    /// gathering the principal's roles otherwise).
    #[must_use]
    pub fn is_scoped(&self) -> bool {
        self.scoped
    }

    /// Calls `f` with every candidate rule (possibly twice, in no order),
    /// as its number shifted left by one, [`TARGET_PROVEN`] set when the
    /// rule's targets are known to match. Rules whose agent or role list
    /// excludes `who`, or whose targets exclude its target, may be left out
    /// (unless `who.every`, only the latter).
    pub fn candidates<'a>(
        &'a self,
        body: &[u8],
        action: &str,
        who: &Who<'a>,
        mut f: impl FnMut(u32),
    ) {
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
        if !self.globs.is_empty() {
            self.globs.matches(action, |g| {
                if let Some(&slot) = self.glob_rules.get(g as usize) {
                    visit_slot(slot, &self.glob_many, body, who, &mut f);
                }
            });
        }
    }

    /// Adds to a first pass's candidates the rules its narrowed buckets
    /// left out by principal, so that with them they are every rule
    /// [`Who::every`] finds, without finding the action's buckets again.
    /// False, calling `f` for none, when more buckets were narrowed than
    /// were kept: a second pass with [`Who::every`] is then needed.
    pub fn widen(
        &self,
        body: &[u8],
        narrowed: &Narrowed<'_>,
        target: &str,
        mut f: impl FnMut(u32),
    ) -> bool {
        if narrowed.overflow {
            return false;
        }
        for b in narrowed.kept.iter().flatten() {
            b.visit_every(body, target, &mut f);
        }
        true
    }
}
