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
    pub fn new(p: &Pattern) -> Result<Matcher, LoadError> {
        Ok(match p {
            Pattern::Exact(s) => Matcher::Exact(s.clone()),
            Pattern::Prefix(s) => Matcher::Prefix(s.clone()),
            Pattern::Suffix(s) => Matcher::Suffix(s.clone()),
            Pattern::Any => Matcher::Any,
            Pattern::Dfa { text, dfa } => Matcher::Dfa(Box::new(load_dfa(dfa).map_err(|e| {
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

/// Prefixes (or suffixes) by length and rolling hash: one pass over the
/// action's bytes computes every prefix's hash, and only the lengths that
/// occur are looked up.
#[derive(Debug, Default)]
struct Affixes {
    /// For few distinct lengths: a direct lookup of each length's slice.
    by_str: FxHashMap<String, Vec<u32>>,
    by_hash: FxHashMap<u64, Vec<(String, Vec<u32>)>>,
    lengths: Vec<usize>,
    /// Bit `l` set when some affix has length `l` (for `l` < 256).
    short: [u64; 4],
    max: usize,
}

impl Affixes {
    fn add(&mut self, affix: &str, hash: u64, rule: u32) {
        let direct = self.by_str.entry(affix.to_owned()).or_default();
        if direct.last() != Some(&rule) {
            direct.push(rule);
        }
        let bucket = self.by_hash.entry(hash).or_default();
        match bucket.iter_mut().find(|(a, _)| a == affix) {
            Some((_, rules)) => {
                if rules.last() != Some(&rule) {
                    rules.push(rule);
                }
            }
            None => bucket.push((affix.to_owned(), vec![rule])),
        }
        let l = affix.len();
        if !self.lengths.contains(&l) {
            self.lengths.push(l);
            self.lengths.sort_unstable();
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

    fn probe(&self, hash: u64, matches: impl Fn(&str) -> bool, f: &mut impl FnMut(u32)) {
        if let Some(bucket) = self.by_hash.get(&hash) {
            for (a, rules) in bucket {
                if matches(a) {
                    rules.iter().for_each(|r| f(*r));
                }
            }
        }
    }
}

/// Maps an action to the rules whose action patterns may match it: one
/// hash lookup for exact names, one pass over the action's bytes for
/// prefixes and one for suffixes (probing only the lengths that occur),
/// plus the DFAs of the few patterns that are none of these.
#[derive(Debug, Default)]
pub struct ActionIndex {
    exact: FxHashMap<String, Vec<u32>>,
    prefixes: Affixes,
    suffixes: Affixes,
    any: Vec<u32>,
    complex: Vec<(Matcher, u32)>,
}

impl ActionIndex {
    pub fn add(&mut self, m: &Matcher, rule: u32) {
        match m {
            Matcher::Exact(s) => {
                let v = self.exact.entry(s.clone()).or_default();
                if v.last() != Some(&rule) {
                    v.push(rule);
                }
            }
            Matcher::Prefix(p) => self.prefixes.add(p, hash_forward(p), rule),
            Matcher::Suffix(p) => self.suffixes.add(p, hash_backward(p), rule),
            Matcher::Any => {
                if self.any.last() != Some(&rule) {
                    self.any.push(rule);
                }
            }
            Matcher::Dfa(_) => self.complex.push((m.clone(), rule)),
        }
    }

    pub fn finish(&mut self) {}

    /// Calls `f` with every candidate rule (possibly twice, in no order).
    pub fn candidates(&self, action: &str, mut f: impl FnMut(u32)) {
        if !self.exact.is_empty()
            && let Some(v) = self.exact.get(action)
        {
            v.iter().for_each(|r| f(*r));
        }
        // With few distinct lengths, slicing and hashing each is cheapest;
        // with many, one rolling pass over the bytes is.
        if self.prefixes.lengths.len() <= FEW {
            for &l in &self.prefixes.lengths {
                if let Some(v) = action.get(..l).and_then(|p| self.prefixes.by_str.get(p)) {
                    v.iter().for_each(|r| f(*r));
                }
            }
        } else {
            let mut h = SEED;
            for (i, b) in action.bytes().enumerate().take(self.prefixes.max) {
                h = roll(h, b);
                if self.prefixes.has_length(i + 1) {
                    self.prefixes.probe(h, |p| action.starts_with(p), &mut f);
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
                    v.iter().for_each(|r| f(*r));
                }
            }
        } else {
            let mut h = SEED;
            for (i, b) in action.bytes().rev().enumerate().take(self.suffixes.max) {
                h = roll(h, b);
                if self.suffixes.has_length(i + 1) {
                    self.suffixes.probe(h, |p| action.ends_with(p), &mut f);
                }
            }
        }
        self.any.iter().for_each(|r| f(*r));
        for (m, r) in &self.complex {
            if m.is_match(action) {
                f(*r);
            }
        }
    }
}
