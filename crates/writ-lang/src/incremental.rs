//! Reading a file of the writ language again after an edit, re-reading only
//! the items the edit touched.
//!
//! A file is a sequence of parts, one per top-level item ([`parse::parts`]),
//! and items are independent until the merge: an agent or rule lowers the
//! same wherever it stands. So a [`ReadCache`] keeps, for each part's text,
//! what lexing, parsing and lowering it gave; reading the next version of
//! the file looks every part up by its text and reuses a hit, with its
//! spans moved by how far the part moved. Parts holding a `policy` header
//! are read every time (their settings are assembled in file order).
//!
//! The result is the same as reading the file from scratch — [`super::read`]
//! is this with an empty cache — which `tests/incremental.rs` checks on
//! random edits.

use writ_diagnostics::{Diagnostic, FileId};
use writ_ir::{PolicyFile, Shift};

use super::ast::Item;
use super::lower::{self, Assembler, Lowered};
use super::parse;

/// What reading one part gave.
#[derive(Debug)]
struct Part {
    /// Where the part started when it was read: its spans are offsets from
    /// the start of that text.
    start: usize,
    /// Whether it was the file's last part (brackets left open are then
    /// reported at the end of the file rather than before the next item).
    last: bool,
    /// How many items (including unparsable ones) the part holds.
    items: usize,
    lowered: Vec<(Lowered, Vec<Diagnostic>)>,
    /// Lexing and parsing diagnostics.
    syntax: Vec<Diagnostic>,
}

/// The parts of the last version read of one file, by text.
#[derive(Debug, Default)]
pub struct ReadCache {
    file: Option<FileId>,
    parts: rustc_hash::FxHashMap<Box<str>, Part>,
    /// How many parts the last read reused.
    reused: usize,
    /// Keep nothing: the cache of a file read once.
    once: bool,
}

impl ReadCache {
    /// A cache for a file read once: it keeps no part, so that reading does
    /// not hold every item twice (some 1 KiB a rule).
    #[must_use]
    pub fn once() -> ReadCache {
        ReadCache {
            once: true,
            ..ReadCache::default()
        }
    }

    /// How many parts the cache holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// How many parts the last read took from the cache instead of
    /// reading them.
    #[must_use]
    pub fn reused(&self) -> usize {
        self.reused
    }
}

/// Reads `text` (file `file`) as [`super::read`] does, reusing the parts
/// `cache` holds from the previous version, and leaves in `cache` the parts
/// of this one.
pub fn read(
    cache: &mut ReadCache,
    file: FileId,
    text: &str,
    fallback_name: &str,
) -> (PolicyFile, Vec<Diagnostic>) {
    if cache.file != Some(file) {
        cache.parts.clear();
        cache.file = Some(file);
    }
    let mut old = std::mem::take(&mut cache.parts);
    cache.reused = 0;
    let mut assembler = Assembler::new(file, fallback_name);
    let mut syntax = Vec::new();
    let mut items = 0usize;
    let parts = parse::parts(text);
    assembler.reserve(parts.len());
    for range in parts {
        let start = range.start;
        let last = range.end >= text.len();
        let Some(part_text) = text.get(range.clone()) else {
            continue;
        };
        let reused = old.remove_entry(part_text).filter(|(_, p)| p.last == last);
        let (key, mut part) = match reused {
            Some(hit) => {
                cache.reused += 1;
                hit
            }
            None => {
                let parsed = parse::parse_part(file, text, range);
                let header = parsed.items.iter().any(|i| matches!(i, Item::Policy(_)));
                if header {
                    // Read every time: the header is assembled in order.
                    items += parsed.items.len();
                    syntax.extend(parsed.diagnostics);
                    for item in &parsed.items {
                        assembler.item(item);
                    }
                    continue;
                }
                // Exactly as long as it is: a part is most often one item,
                // and `collect` would keep room for four (some 2 KiB a rule).
                let mut lowered: Vec<_> =
                    parsed.items.iter().filter_map(lower::lower_item).collect();
                lowered.shrink_to_fit();
                let part = Part {
                    start,
                    last,
                    items: parsed.items.len(),
                    lowered,
                    syntax: parsed.diagnostics,
                };
                (Box::from(part_text), part)
            }
        };
        let delta = i64::try_from(start).unwrap_or(i64::MAX)
            - i64::try_from(part.start).unwrap_or(i64::MAX);
        if delta != 0 {
            part.start = start;
            for (lowered, diags) in &mut part.lowered {
                lowered.shift(delta);
                for d in diags {
                    d.shift(delta);
                }
            }
            for d in &mut part.syntax {
                d.shift(delta);
            }
        }
        items += part.items;
        if cache.once {
            syntax.extend(part.syntax);
            for (lowered, diags) in part.lowered {
                assembler.add(lowered, diags);
            }
            continue;
        }
        syntax.extend(part.syntax.iter().cloned());
        for (lowered, diags) in &part.lowered {
            assembler.add(lowered.clone(), diags.clone());
        }
        // A part whose text occurs twice is read twice (the first copy
        // moved into the new cache).
        cache.parts.entry(key).or_insert(part);
    }
    if items == 0
        && let Some(d) = parse::empty_file(file, &[], &syntax)
    {
        syntax.push(d);
    }
    let (lowered, more) = assembler.finish();
    syntax.extend(more);
    (lowered, syntax)
}
