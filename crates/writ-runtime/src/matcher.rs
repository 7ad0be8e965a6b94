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

/// Maps an action to the rules whose action patterns may match it, in one
/// hash lookup per distinct prefix or suffix length, plus the DFAs of the
/// few patterns that are neither.
#[derive(Debug, Default)]
pub struct ActionIndex {
    exact: FxHashMap<String, Vec<u32>>,
    prefixes: FxHashMap<String, Vec<u32>>,
    prefix_lengths: Vec<usize>,
    suffixes: FxHashMap<String, Vec<u32>>,
    suffix_lengths: Vec<usize>,
    any: Vec<u32>,
    complex: Vec<(Matcher, u32)>,
}

impl ActionIndex {
    pub fn add(&mut self, m: &Matcher, rule: u32) {
        let push = |v: &mut Vec<u32>| {
            if v.last() != Some(&rule) {
                v.push(rule);
            }
        };
        match m {
            Matcher::Exact(s) => push(self.exact.entry(s.clone()).or_default()),
            Matcher::Prefix(p) => {
                push(self.prefixes.entry(p.clone()).or_default());
                if !self.prefix_lengths.contains(&p.len()) {
                    self.prefix_lengths.push(p.len());
                }
            }
            Matcher::Suffix(p) => {
                push(self.suffixes.entry(p.clone()).or_default());
                if !self.suffix_lengths.contains(&p.len()) {
                    self.suffix_lengths.push(p.len());
                }
            }
            Matcher::Any => push(&mut self.any),
            Matcher::Dfa(_) => self.complex.push((m.clone(), rule)),
        }
    }

    pub fn finish(&mut self) {
        self.prefix_lengths.sort_unstable();
        self.suffix_lengths.sort_unstable();
    }

    /// Calls `f` with every candidate rule (possibly twice, in no order).
    pub fn candidates(&self, action: &str, mut f: impl FnMut(u32)) {
        if let Some(v) = self.exact.get(action) {
            v.iter().for_each(|r| f(*r));
        }
        for &l in &self.prefix_lengths {
            if l > action.len() {
                break;
            }
            if let Some(v) = action.get(..l).and_then(|p| self.prefixes.get(p)) {
                v.iter().for_each(|r| f(*r));
            }
        }
        for &l in &self.suffix_lengths {
            if l > action.len() {
                break;
            }
            if let Some(v) = action
                .get(action.len() - l..)
                .and_then(|p| self.suffixes.get(p))
            {
                v.iter().for_each(|r| f(*r));
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
