//! Matching action and target strings: exact names, prefixes and suffixes
//! by hashing, everything else by the serialized DFAs the compiler built.

use regex_automata::dfa::Automaton;
use regex_automata::dfa::dense::DFA;
use regex_automata::{Anchored, Input};
use rustc_hash::FxHashMap;

use crate::LoadError;
use crate::model::Pattern;

/// One prepared pattern.
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    Dfa(Box<DFA<Vec<u32>>>),
}

impl Matcher {
    /// Prepares a pattern; a DFA is deserialized (and validated) here.
    pub fn new(p: Pattern) -> Result<Matcher, LoadError> {
        Ok(match p {
            Pattern::Exact(s) => Matcher::Exact(s),
            Pattern::Prefix(s) => Matcher::Prefix(s),
            Pattern::Suffix(s) => Matcher::Suffix(s),
            Pattern::Any => Matcher::Any,
            Pattern::Dfa { text, dfa } => Matcher::Dfa(Box::new(load_dfa(&dfa).map_err(|e| {
                LoadError::Corrupt(format!(
                    "the automaton of pattern \"{text}\" is invalid: {e}"
                ))
            })?)),
        })
    }

    #[must_use]
    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::Suffix(p) => s.ends_with(p.as_str()),
            Matcher::Any => true,
            Matcher::Dfa(dfa) => dfa
                .try_search_fwd(&Input::new(s).anchored(Anchored::Yes))
                .is_ok_and(|m| m.is_some()),
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

fn hash_forward(s: &str) -> u64 {
    s.bytes().fold(SEED, roll)
}

fn hash_backward(s: &str) -> u64 {
    s.bytes().rev().fold(SEED, roll)
}

/// How a rule's principals narrow it, for the scope index.
#[derive(Clone, Copy, Debug)]
pub enum ScopeKey<'a> {
    /// No agent or role list: any principal may match.
    Open,
    Agents(&'a [String]),
    Roles(&'a [String]),
}

/// Buckets holding more rules than this are indexed by principal too.
const SCOPE_INDEX_AT: usize = 16;

#[derive(Debug, Default)]
struct ScopeIndex {
    open: Vec<u32>,
    by_agent: FxHashMap<String, Vec<u32>>,
    by_role: FxHashMap<String, Vec<u32>>,
}

/// The rules of one action key; large buckets are split by principal so
/// that rules for other agents and roles cost nothing.
#[derive(Debug, Default)]
struct Bucket {
    rules: Vec<u32>,
    scoped: Option<Box<ScopeIndex>>,
}

impl Bucket {
    fn push(&mut self, rule: u32) {
        if self.rules.last() != Some(&rule) {
            self.rules.push(rule);
        }
    }

    /// Returns whether the bucket was split.
    fn index(&mut self, scopes: &[ScopeKey<'_>]) -> bool {
        if self.rules.len() <= SCOPE_INDEX_AT {
            return false;
        }
        let mut ix = ScopeIndex::default();
        for &r in &self.rules {
            match scopes.get(r as usize) {
                Some(ScopeKey::Agents(a)) => a
                    .iter()
                    .for_each(|a| ix.by_agent.entry(a.clone()).or_default().push(r)),
                Some(ScopeKey::Roles(roles)) => roles
                    .iter()
                    .for_each(|x| ix.by_role.entry(x.clone()).or_default().push(r)),
                _ => ix.open.push(r),
            }
        }
        self.scoped = Some(Box::new(ix));
        true
    }

    #[inline]
    fn visit(&self, who: &Who<'_>, f: &mut impl FnMut(u32)) {
        let Some(ix) = &self.scoped else {
            for &r in &self.rules {
                f(r);
            }
            return;
        };
        ix.open.iter().for_each(|r| f(*r));
        if let Some(v) = ix.by_agent.get(who.agent) {
            v.iter().for_each(|r| f(*r));
        }
        if !ix.by_role.is_empty() {
            (who.roles)(&mut |role: &str| {
                if let Some(v) = ix.by_role.get(role) {
                    v.iter().for_each(|r| f(*r));
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
}

/// Prefixes (or suffixes) by length and rolling hash: one pass over the
/// action's bytes computes every prefix's hash, and only the lengths that
/// occur are looked up.
#[derive(Debug, Default)]
struct Affixes {
    /// For few distinct lengths: a direct lookup of each length's slice.
    by_str: FxHashMap<String, Bucket>,
    by_hash: FxHashMap<u64, Vec<(String, Bucket)>>,
    lengths: Vec<usize>,
    /// Bit `l` set when some affix has length `l` (for `l` < 256).
    short: [u64; 4],
    max: usize,
}

impl Affixes {
    fn add(&mut self, affix: String, rule: u32) {
        let l = affix.len();
        self.by_str.entry(affix).or_default().push(rule);
        if !self.lengths.contains(&l) {
            self.lengths.push(l);
        }
        if let Some(word) = self.short.get_mut(l / 64) {
            *word |= 1 << (l % 64);
        }
        self.max = self.max.max(l);
    }

    fn has_length(&self, l: usize) -> bool {
        match self.short.get(l / 64) {
            Some(word) => word & (1 << (l % 64)) != 0,
            None => self.lengths.binary_search(&l).is_ok(),
        }
    }

    fn probe(
        &self,
        hash: u64,
        matches: impl Fn(&str) -> bool,
        who: &Who<'_>,
        f: &mut impl FnMut(u32),
    ) {
        if let Some(bucket) = self.by_hash.get(&hash) {
            for (a, rules) in bucket {
                if matches(a) {
                    rules.visit(who, f);
                }
            }
        }
    }

    /// Sorts the lengths, splits large buckets by principal, and with many
    /// distinct lengths moves the affixes to the rolling-hash table.
    fn index(&mut self, scopes: &[ScopeKey<'_>], hash: fn(&str) -> u64) -> bool {
        self.lengths.sort_unstable();
        let mut split = false;
        for b in self.by_str.values_mut() {
            split |= b.index(scopes);
        }
        if self.lengths.len() > FEW {
            for (affix, bucket) in self.by_str.drain() {
                self.by_hash
                    .entry(hash(&affix))
                    .or_default()
                    .push((affix, bucket));
            }
        }
        split
    }
}

/// Maps an action to the rules whose action patterns may match it: one
/// hash lookup for exact names, one pass over the action's bytes for
/// prefixes and one for suffixes (probing only the lengths that occur),
/// plus the DFAs of the few patterns that are none of these.
#[derive(Debug, Default)]
pub struct ActionIndex {
    scoped: bool,
    exact: FxHashMap<String, Bucket>,
    prefixes: Affixes,
    suffixes: Affixes,
    any: Bucket,
    complex: Vec<(Matcher, u32)>,
}

impl ActionIndex {
    pub fn add(&mut self, m: Matcher, rule: u32) {
        match m {
            Matcher::Exact(s) => self.exact.entry(s).or_default().push(rule),
            Matcher::Prefix(p) => self.prefixes.add(p, rule),
            Matcher::Suffix(p) => self.suffixes.add(p, rule),
            Matcher::Any => self.any.push(rule),
            Matcher::Dfa(_) => self.complex.push((m, rule)),
        }
    }

    /// Indexes large buckets by principal; `scopes[rule]` says how each
    /// rule's principals narrow it.
    pub fn finish(&mut self, scopes: &[ScopeKey<'_>]) {
        let mut split = false;
        for b in self.exact.values_mut() {
            split |= b.index(scopes);
        }
        split |= self.prefixes.index(scopes, hash_forward);
        split |= self.suffixes.index(scopes, hash_backward);
        split |= self.any.index(scopes);
        self.scoped = split;
    }

    /// True when some bucket is indexed by principal (callers can skip
    /// gathering the principal's roles otherwise).
    #[must_use]
    pub fn is_scoped(&self) -> bool {
        self.scoped
    }

    /// Calls `f` with every candidate rule (possibly twice, in no order).
    /// Rules whose agent or role list excludes `who` may be left out.
    pub fn candidates(&self, action: &str, who: &Who<'_>, mut f: impl FnMut(u32)) {
        if !self.exact.is_empty()
            && let Some(v) = self.exact.get(action)
        {
            v.visit(who, &mut f);
        }
        // With few distinct lengths, slicing and hashing each is cheapest;
        // with many, one rolling pass over the bytes is.
        if self.prefixes.lengths.len() <= FEW {
            for &l in &self.prefixes.lengths {
                if let Some(v) = action.get(..l).and_then(|p| self.prefixes.by_str.get(p)) {
                    v.visit(who, &mut f);
                }
            }
        } else {
            let mut h = SEED;
            for (i, b) in action.bytes().enumerate().take(self.prefixes.max) {
                h = roll(h, b);
                if self.prefixes.has_length(i + 1) {
                    self.prefixes
                        .probe(h, |p| action.starts_with(p), who, &mut f);
                }
            }
        }
        if self.suffixes.lengths.len() <= FEW {
            for &l in &self.suffixes.lengths {
                if let Some(v) = action
                    .len()
                    .checked_sub(l)
                    .and_then(|start| action.get(start..))
                    .and_then(|p| self.suffixes.by_str.get(p))
                {
                    v.visit(who, &mut f);
                }
            }
        } else {
            let mut h = SEED;
            for (i, b) in action.bytes().rev().enumerate().take(self.suffixes.max) {
                h = roll(h, b);
                if self.suffixes.has_length(i + 1) {
                    self.suffixes.probe(h, |p| action.ends_with(p), who, &mut f);
                }
            }
        }
        self.any.visit(who, &mut f);
        for (m, r) in &self.complex {
            if m.is_match(action) {
                f(*r);
            }
        }
    }
}
