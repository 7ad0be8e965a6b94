//! Which patterns cover which: [`covers`] (every name one pattern matches,
//! another matches too, as far as the lints can tell without automata),
//! and [`Covering`], a set of patterns indexed so that the patterns
//! covering a given one, or matching a given name, are found without
//! trying the others.

use rustc_hash::FxHashMap as HashMap;

use writ_ir::Pattern;
use writ_ir::glob::Token;

/// Glob syntax, `\` included: `x\*` is the exact name `x*`, not a prefix.
const META: &[char] = &['*', '?', '[', '{', '\\'];

fn prefix_glob(p: &Pattern) -> Option<&str> {
    let s = p.as_str().strip_suffix('*')?;
    (!s.contains(META)).then_some(s)
}

fn suffix_glob(p: &Pattern) -> Option<&str> {
    let s = p.as_str().strip_prefix('*')?;
    (!s.contains(META)).then_some(s)
}

/// Every name `b` matches, `a` matches too.
pub(super) fn covers(a: &Pattern, b: &Pattern) -> bool {
    if a.matches_everything() || a.as_str() == b.as_str() {
        return true;
    }
    if a.is_case_insensitive() != b.is_case_insensitive() && !a.is_case_insensitive() {
        return false;
    }
    if b.is_literal() {
        return a.is_match(b.as_str());
    }
    if let (Some(pa), Some(pb)) = (prefix_glob(a), prefix_glob(b)) {
        return pb.starts_with(pa);
    }
    matches!((suffix_glob(a), suffix_glob(b)), (Some(sa), Some(sb)) if sb.ends_with(sa))
}

/// Every prefix of `s` (the empty one and `s` included).
fn prefixes(s: &str) -> impl Iterator<Item = &str> {
    s.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .filter_map(|i| s.get(..i))
}

/// Every suffix of `s` (the empty one and `s` included).
fn suffixes(s: &str) -> impl Iterator<Item = &str> {
    s.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .filter_map(|i| s.get(i..))
}

/// An interned pattern of earlier rules (in one [`Covering`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct PatternId(pub(super) u32);

/// The literal text every name a pattern matches starts and ends with (up
/// to its first and after its last piece of glob syntax; the whole text
/// for an exact name), lowercased so that patterns ignoring case compare.
fn ends(p: &Pattern) -> (String, String) {
    let s = p.as_str();
    let first = s.find(['*', '?', '[', '{', '\\']).unwrap_or(s.len());
    let last = s
        .rfind(['*', '?', '[', ']', '{', '}', ',', '\\'])
        .map_or(0, |i| i + 1);
    let start = s.get(..first).unwrap_or("");
    let end = s.get(last..).unwrap_or("");
    (start.to_ascii_lowercase(), end.to_ascii_lowercase())
}

/// A set of patterns (the actions or the targets of some rules), indexed
/// by what [`covers`] compares.
#[derive(Default)]
pub(super) struct Covering<'s> {
    patterns: Vec<&'s Pattern>,
    ids: HashMap<(&'s str, bool), PatternId>,
    /// `*`, `**`, ...
    everything: Vec<PatternId>,
    by_text: HashMap<&'s str, Vec<PatternId>>,
    /// `lit*` by `lit`, `*lit` by `lit`.
    by_prefix: HashMap<&'s str, Vec<PatternId>>,
    by_suffix: HashMap<&'s str, Vec<PatternId>>,
    /// By [`ends`] (start, then end), then by [`required_run`].
    by_ends: HashMap<String, HashMap<String, Runs>>,
}

/// Patterns by the run of plain characters every name they match holds
/// (so that many `*x1*`, `*x2*`, ... are not all tried on every name).
#[derive(Default)]
struct Runs {
    by_run: HashMap<String, Vec<PatternId>>,
    /// The lengths (in bytes) of the keys of `by_run`.
    lengths: Vec<usize>,
}

impl Runs {
    fn add(&mut self, run: String, id: PatternId) {
        if !self.lengths.contains(&run.len()) {
            self.lengths.push(run.len());
        }
        self.by_run.entry(run).or_default().push(id);
    }

    /// The patterns whose run `name` (lowercased) holds, into `out`.
    fn held_by(&self, name: &str, out: &mut Vec<PatternId>) {
        for &len in &self.lengths {
            let windows = name
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(name.len()));
            for i in windows {
                if let Some(v) = name.get(i..i + len).and_then(|w| self.by_run.get(w)) {
                    out.extend(v);
                }
                if len == 0 {
                    break;
                }
            }
        }
    }
}

/// The longest run of plain characters (outside alternatives) of a
/// pattern, lowercased: every name it matches holds it (in any case, for
/// a pattern that ignores case). Empty for exact names, `lit*` and `*lit`
/// (their literal is their start or end already; and their glob is parsed
/// only when asked for, which this would do).
fn required_run(p: &Pattern) -> String {
    if p.is_literal() || prefix_glob(p).is_some() || suffix_glob(p).is_some() {
        return String::new();
    }
    let mut best = String::new();
    let mut run = String::new();
    for token in p.glob().tokens() {
        if let Token::Char(c) = token {
            run.push(c.to_ascii_lowercase());
            continue;
        }
        if run.len() > best.len() {
            best = std::mem::take(&mut run);
        }
        run.clear();
    }
    if run.len() > best.len() {
        best = run;
    }
    best
}

impl<'s> Covering<'s> {
    pub(super) fn intern(&mut self, p: &'s Pattern) -> PatternId {
        let key = (p.as_str(), p.is_case_insensitive());
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = PatternId(u32::try_from(self.patterns.len()).unwrap_or(u32::MAX));
        self.patterns.push(p);
        self.ids.insert(key, id);
        if p.matches_everything() {
            self.everything.push(id);
            return id;
        }
        self.by_text.entry(p.as_str()).or_default().push(id);
        if let Some(lit) = prefix_glob(p) {
            self.by_prefix.entry(lit).or_default().push(id);
        }
        if let Some(lit) = suffix_glob(p) {
            self.by_suffix.entry(lit).or_default().push(id);
        }
        let (start, end) = ends(p);
        self.by_ends
            .entry(start)
            .or_default()
            .entry(end)
            .or_default()
            .add(required_run(p), id);
        id
    }

    /// Every pattern (but those matching everything) that may match
    /// `name`, into `out`: those that start and end as it does, and whose
    /// required run it holds.
    fn may_match(&self, name: &str, out: &mut Vec<PatternId>) {
        let name = name.to_ascii_lowercase();
        for start in prefixes(&name) {
            if let Some(by_end) = self.by_ends.get(start) {
                for end in suffixes(&name) {
                    if let Some(runs) = by_end.get(end) {
                        runs.held_by(&name, out);
                    }
                }
            }
        }
    }

    /// Whether a pattern of the set matches `name`.
    pub(super) fn matches(&self, name: &str) -> bool {
        if !self.everything.is_empty() {
            return true;
        }
        let mut ids = Vec::new();
        self.may_match(name, &mut ids);
        ids.iter().any(|id| {
            self.patterns
                .get(id.0 as usize)
                .is_some_and(|p| p.is_match(name))
        })
    }

    /// Every pattern of the set that [`covers`] `b`, into `out` (cleared).
    pub(super) fn covering(&self, b: &Pattern, out: &mut Vec<PatternId>) {
        out.clear();
        out.extend(&self.everything);
        if let Some(v) = self.by_text.get(b.as_str()) {
            out.extend(v);
        }
        // The cases of `covers` past equal texts: an exact name matched by
        // the pattern, or two `lit*` (`*lit`) whose literals nest.
        if b.is_literal() {
            self.may_match(b.as_str(), out);
        }
        if let Some(lit) = prefix_glob(b) {
            for start in prefixes(lit) {
                if let Some(v) = self.by_prefix.get(start) {
                    out.extend(v);
                }
            }
        }
        if let Some(lit) = suffix_glob(b) {
            for end in suffixes(lit) {
                if let Some(v) = self.by_suffix.get(end) {
                    out.extend(v);
                }
            }
        }
        out.sort_unstable_by_key(|id| id.0);
        out.dedup();
        out.retain(|id| {
            self.patterns
                .get(id.0 as usize)
                .is_some_and(|a| covers(a, b))
        });
    }
}
