//! Checking a log's hash chain.
//!
//! The verifier reads records in storage order (lines of a JSONL file,
//! rows of the SQLite table) once, keeping only the previous record and
//! the set of sequence numbers seen (as ranges), so a log of any length
//! verifies in constant memory for an intact log. Per record it checks:
//!
//! - **edited**: the SHA-256 of the line's body is the hash the line
//!   carries. Any changed byte fails this.
//! - **chain**: when a record follows its predecessor (seq `n` after seq
//!   `n - 1`), its `prev` is that record's hash, and the first record's
//!   `prev` is zeros. A record rewritten *with* a recomputed hash passes
//!   the first check and fails this one at its successor.
//! - **order**: sequence numbers increase; a record whose number is below
//!   one seen before is out of order (two swapped records give one such
//!   report, naming both numbers).
//! - **missing**: at the end, every number from 1 to the highest seen must
//!   have appeared; gaps are deleted records.
//!
//! A final JSONL line without its newline is a write cut short by a crash
//! (records are written whole, newline included, and `flush` returns only
//! after that): it is reported as an incomplete tail, not as tampering.
//!
//! What no log can show on its own: records deleted from the *end* (the
//! log is then an intact shorter log), or a last record rewritten with a
//! recomputed hash. Keep the last hash (`VerifyReport::last`) somewhere
//! else to catch those.
//!
//! A pruned SQLite log starts after an **anchor**: the sequence number
//! and hash of the last record pruned (`prune_sqlite`). Verifying starts
//! from it as if that record were still there: the first remaining record
//! must be the next number and carry its hash as `prev`, and numbers are
//! missing from there on, not from 1. An anchor that was edited breaks
//! the chain at the first remaining record; one that was removed leaves
//! every pruned number missing. As with deletion from the end, only a
//! copy of the anchor kept elsewhere can show records pruned beyond it.

use std::collections::BTreeMap;
use std::fmt;

use super::canonical::{
    GENESIS, HASH_SUFFIX_LEN, PREV_SUFFIX_LEN, hash_body, hex, push_time, unhex,
};

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// `"line"` for JSONL files, `"row"` for SQLite tables.
    pub unit: &'static str,
    /// Complete records read (the incomplete tail not counted).
    pub records: u64,
    /// The last complete record: its sequence number and hash (keep it
    /// elsewhere to detect a later truncation).
    pub last: Option<(u64, String)>,
    /// Everything wrong, in the order found (missing numbers last).
    pub problems: Vec<Problem>,
    /// A final line cut short by a crash.
    pub incomplete_tail: Option<IncompleteTail>,
    /// Where a pruned log starts: its anchor (`None`: never pruned).
    pub pruned: Option<Pruned>,
}

/// A pruned log's anchor: the records through `through_seq` were
/// removed by `prune_sqlite`, the last of them with hash `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    pub through_seq: u64,
    /// The last pruned record's hash (hex), which the first remaining
    /// record must carry as `prev`.
    pub hash: String,
    /// Records removed by every prune together.
    pub records: u64,
    /// When the last prune ran, in Unix milliseconds.
    pub at_ms: i64,
}

/// Where a record sits: its line or row (1-based), and what it says its
/// sequence number and decision id are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub position: u64,
    pub seq: Option<u64>,
    pub id: Option<String>,
}

/// One thing wrong with a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The record's content does not match its hash: it was edited.
    Edited(At),
    /// Not a record at all (not the canonical shape).
    Malformed { at: At, why: String },
    /// The record's `prev` is not its predecessor's hash: one of the two
    /// was rewritten (with a recomputed hash).
    ChainBroken { at: At, predecessor: u64 },
    /// The record's number is below one seen earlier.
    OutOfOrder { at: At, after: u64 },
    /// The record's number was seen before.
    Duplicate(At),
    /// Sequence numbers `first..=last` never appear: deleted records.
    Missing { first: u64, last: u64 },
    /// The pruned log's anchor cannot be read (`why`): the chain is
    /// checked as if the log had never been pruned.
    BadAnchor { why: String },
}

/// A final line without its newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteTail {
    pub line: u64,
    pub bytes: usize,
}

impl VerifyReport {
    /// True when nothing is wrong (an incomplete tail is not wrong).
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a line says about itself.
#[derive(Debug)]
pub(crate) struct LineInfo<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub body: &'a [u8],
    pub prev: [u8; 32],
    pub hash: [u8; 32],
}

/// Reads the parts of a canonical line the chain needs, without a JSON
/// parser: the line starts `{"seq":N,"id":"…"` and ends
/// `,"prev":"<hex>","hash":"<hex>"}`.
pub(crate) fn parse_line(line: &[u8]) -> Result<LineInfo<'_>, String> {
    let rest = line
        .strip_prefix(b"{\"seq\":")
        .ok_or("does not start with `{\"seq\":`")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(rest.get(..digits).unwrap_or(&[]))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("no sequence number")?;
    let rest = rest
        .get(digits..)
        .and_then(|r| r.strip_prefix(b",\"id\":\""))
        .ok_or("no decision id after the sequence number")?;
    let id_len = rest
        .iter()
        .position(|&b| b == b'"')
        .ok_or("unterminated id")?;
    let id = std::str::from_utf8(rest.get(..id_len).unwrap_or(&[])).map_err(|_| "bad id")?;
    let body_len = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .ok_or("too short for a record")?;
    let (body, tail) = line.split_at_checked(body_len).ok_or("too short")?;
    let hash = tail
        .strip_prefix(b",\"hash\":\"")
        .and_then(|t| t.strip_suffix(b"\"}"))
        .and_then(unhex)
        .ok_or("does not end with `,\"hash\":\"<64 hex digits>\"}`")?;
    let prev_at = body.len().checked_sub(PREV_SUFFIX_LEN).ok_or("too short")?;
    let prev = body
        .get(prev_at..)
        .and_then(|t| t.strip_prefix(b",\"prev\":\""))
        .and_then(|t| t.strip_suffix(b"\""))
        .and_then(unhex)
        .ok_or("no `prev` hash before the hash")?;
    Ok(LineInfo {
        seq,
        id,
        body,
        prev,
        hash,
    })
}

/// The streaming verifier: feed records in storage order, then finish.
#[derive(Debug)]
pub(crate) struct Verifier {
    report: VerifyReport,
    /// The previous record: its number, hash, position and whether its
    /// hash checked.
    previous: Option<(u64, [u8; 32], bool)>,
    max_seq: u64,
    /// Seen sequence numbers as ranges `start -> end` (inclusive).
    seen: BTreeMap<u64, u64>,
    /// The log starts after a prune's anchor (in `previous`).
    anchored: bool,
}

impl Verifier {
    pub(crate) fn new(unit: &'static str) -> Verifier {
        Verifier {
            report: VerifyReport {
                unit,
                records: 0,
                last: None,
                problems: Vec::new(),
                incomplete_tail: None,
                pruned: None,
            },
            previous: None,
            max_seq: 0,
            seen: BTreeMap::new(),
            anchored: false,
        }
    }

    /// A verifier for a log pruned through `anchor`: the records it names
    /// count as seen, and the last of them precedes the first record.
    pub(crate) fn after_anchor(unit: &'static str, mut anchor: Pruned) -> Verifier {
        let mut v = Verifier::new(unit);
        // What the report says of the anchor is never its stored text (a
        // hostile string would reach the terminal), only what was parsed.
        match unhex(anchor.hash.as_bytes()) {
            Some(hash) if anchor.through_seq > 0 => {
                v.seen.insert(1, anchor.through_seq);
                v.max_seq = anchor.through_seq;
                v.previous = Some((anchor.through_seq, hash, true));
                v.anchored = true;
                anchor.hash = hex(&hash);
                v.report.pruned = Some(anchor);
            }
            Some(_) => v.report.problems.push(Problem::BadAnchor {
                why: "its sequence number is 0".to_owned(),
            }),
            None => v.report.problems.push(Problem::BadAnchor {
                why: format!(
                    "through seq {}: its hash is not 64 hex digits",
                    anchor.through_seq
                ),
            }),
        }
        v
    }

    /// One complete record (without its newline) at `position`.
    pub(crate) fn record(&mut self, position: u64, line: &[u8]) {
        self.report.records += 1;
        let info = match parse_line(line) {
            Ok(info) => info,
            Err(why) => {
                self.report.problems.push(Problem::Malformed {
                    at: At {
                        position,
                        seq: None,
                        id: None,
                    },
                    why: why.to_owned(),
                });
                self.previous = None;
                return;
            }
        };
        let at = At {
            position,
            seq: Some(info.seq),
            id: Some(info.id.to_owned()),
        };
        let intact = hash_body(info.body) == info.hash;
        if !intact {
            self.report.problems.push(Problem::Edited(at.clone()));
        }
        // The chain: only between two records whose own hashes check.
        if intact {
            match self.previous {
                Some((p, hash, true)) if p + 1 == info.seq && info.prev != hash => {
                    self.report.problems.push(Problem::ChainBroken {
                        at: at.clone(),
                        predecessor: p,
                    });
                }
                None if info.seq == 1
                    && position == 1
                    && !self.anchored
                    && info.prev != GENESIS =>
                {
                    self.report.problems.push(Problem::ChainBroken {
                        at: at.clone(),
                        predecessor: 0,
                    });
                }
                _ => {}
            }
        }
        if info.seq < self.max_seq {
            self.report.problems.push(Problem::OutOfOrder {
                at: at.clone(),
                after: self.max_seq,
            });
        }
        if !self.insert(info.seq) {
            self.report.problems.push(Problem::Duplicate(at));
        }
        self.max_seq = self.max_seq.max(info.seq);
        self.previous = Some((info.seq, info.hash, intact));
        self.report.last = Some((info.seq, hex(&info.hash)));
    }

    /// A final line without its newline.
    pub(crate) fn tail(&mut self, line: u64, bytes: usize) {
        self.report.incomplete_tail = Some(IncompleteTail { line, bytes });
    }

    /// Adds `seq` to the seen ranges; false when it was already there.
    fn insert(&mut self, seq: u64) -> bool {
        let below = self.seen.range(..=seq).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, e)) = below
            && e >= seq
        {
            return false;
        }
        let above = seq
            .checked_add(1)
            .and_then(|n| self.seen.get(&n).copied().map(|e| (n, e)));
        let start = match below {
            Some((s, e)) if e + 1 == seq => s,
            _ => seq,
        };
        let end = match above {
            Some((n, e)) => {
                self.seen.remove(&n);
                e
            }
            None => seq,
        };
        self.seen.insert(start, end);
        true
    }

    pub(crate) fn finish(mut self) -> VerifyReport {
        let mut next = 1u64;
        for (&s, &e) in &self.seen {
            if s > next {
                self.report.problems.push(Problem::Missing {
                    first: next,
                    last: s - 1,
                });
            }
            next = e.saturating_add(1);
        }
        self.report
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.position)?;
        match (&self.seq, &self.id) {
            (Some(seq), Some(id)) => write!(f, " (seq {seq}, id {id})"),
            (Some(seq), None) => write!(f, " (seq {seq})"),
            _ => Ok(()),
        }
    }
}

impl VerifyReport {
    /// The report's problems, one sentence each.
    #[must_use]
    pub fn problem_lines(&self) -> Vec<String> {
        let unit = self.unit;
        self.problems
            .iter()
            .map(|p| match p {
                Problem::Edited(at) => {
                    format!("{unit} {at}: edited: its content does not match its hash")
                }
                Problem::Malformed { at, why } => {
                    format!("{unit} {at}: not a record ({why})")
                }
                Problem::ChainBroken { at, predecessor: 0 } => format!(
                    "{unit} {at}: chain broken: the first record's `prev` is not zeros (it was rewritten)"
                ),
                Problem::ChainBroken { at, predecessor } => format!(
                    "{unit} {at}: chain broken: its `prev` is not the hash of seq {predecessor} before it (one of the two was rewritten)"
                ),
                Problem::OutOfOrder { at, after } => {
                    format!("{unit} {at}: out of order: it comes after seq {after}")
                }
                Problem::Duplicate(at) => {
                    format!("{unit} {at}: duplicate: this sequence number appeared before")
                }
                Problem::Missing { first, last } if first == last => {
                    format!("seq {first} is missing: the record was deleted")
                }
                Problem::Missing { first, last } => {
                    format!("seq {first} to {last} are missing: those records were deleted")
                }
                Problem::BadAnchor { why } => format!(
                    "the prune anchor is malformed ({why}): the log is checked as if never pruned"
                ),
            })
            .collect()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.problem_lines() {
            writeln!(f, "{line}")?;
        }
        if let Some(t) = &self.incomplete_tail {
            writeln!(
                f,
                "line {}: incomplete final line ({} bytes, no newline): a write cut short by a crash, not tampering; every record before it was checked",
                t.line, t.bytes
            )?;
        }
        let verdict = if self.is_intact() {
            "intact"
        } else {
            "NOT intact"
        };
        write!(f, "{} records, {verdict}", self.records)?;
        if let Some(p) = &self.pruned {
            let mut when = Vec::new();
            push_time(&mut when, p.at_ms);
            let when = String::from_utf8_lossy(&when);
            write!(
                f,
                "; pruned through seq {} ({} records, last pruned at {when}; anchor hash {})",
                p.through_seq, p.records, p.hash
            )?;
        }
        if let Some((seq, hash)) = &self.last {
            write!(
                f,
                "; last record seq {seq}, hash {hash} (keep it elsewhere: deleting the last records cannot be seen in the log itself)"
            )?;
        }
        Ok(())
    }
}
