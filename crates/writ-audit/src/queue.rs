//! How a record travels from the deciding thread to the writer: packed
//! into one byte buffer.
//!
//! The deciding thread appends each record to the queue's buffer (what
//! differs from the record before, length-prefixed strings and a tagged
//! context, copied straight from the request and the decision) — a few
//! contiguous bytes, no allocation, no pointers. The writer reads them back in order and writes
//! the canonical line from them. A record built of separate strings would
//! make the writer chase a dozen pointers into memory last written on
//! another core; a packed record is a few cache lines read in sequence.
//!
//! Layout of one record (integers little-endian; a length is a `u32`,
//! or `u32::MAX` and a `u64`):
//!
//! ```text
//! flags u16 · tags u16 · [seq u64] · [time_ms i64] · [retry u64]
//! · [revision index u32] · the new named strings · [chain] · [context]
//! ```
//!
//! `flags` holds the decision (bits 0–1), the risk (2–4, 0 none), and
//! which of the bracketed parts follow: a retry (5), a seq (6; else one
//! more than the record before), a time (7; else the record before's), a
//! revision (8; else the record before's), a chain (9; its byte length,
//! count and strings; else empty), a context (10; its byte length and
//! map; else empty). "The record before" is the one before in the same
//! buffer; the first record compares with zeros.
//!
//! `tags` holds two bits for each of the six named strings (trace id,
//! agent, action, target, rule, reason): absent, the same as in the
//! record before (in this buffer), or new, its length and bytes following
//! in that order. So a decision that repeats the one before but for its
//! number — the common case under load — is four bytes: the deciding
//! thread writes, and the writer reads, a few bytes of memory the other
//! core last touched rather than half a cache line.
//!
//! A value is a tag byte (null, false, true, number, string, list, map)
//! and its content; a map is a count and key, value pairs.

use std::collections::BTreeMap;

use writ_runtime::{Effect, Risk, Value};

/// The named strings' tags.
const ABSENT: u8 = 0;
const SAME: u8 = 1;
const NEW: u8 = 2;
/// How many named strings a record has.
const NAMED: usize = 6;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3;
const STRING: u8 = 4;
const LIST: u8 = 5;
const MAP: u8 = 6;

/// A record's fields: its strings as `S`, its chain and context as `C`
/// and `X`.
#[derive(Debug)]
pub(crate) struct Shape<S, C, X> {
    pub seq: u64,
    pub time_ms: i64,
    pub decision: Effect,
    pub risk: Option<Risk>,
    pub retry_after_s: Option<u64>,
    /// Index into the queue's revisions.
    pub revision: u32,
    pub trace_id: Option<S>,
    pub agent: S,
    pub action: S,
    pub target: Option<S>,
    pub rule: Option<S>,
    pub reason: Option<S>,
    pub chain: C,
    pub context: X,
}

/// A record to pack, from wherever it comes from (a request and a
/// decision, or an [`super::AuditRecord`]).
pub(crate) type Fields<'a> = Shape<&'a str, &'a [String], &'a BTreeMap<String, Value>>;

/// A record read back: its strings borrowed from the buffer (UTF-8: they
/// were packed from text; not checked again), its chain
/// (read with [`Reader::chain`]) and context (with
/// [`Reader::map_len`], [`Reader::key`], [`Reader::value`]) still packed.
pub(crate) type Packed<'a> = Shape<&'a [u8], Reader<'a>, Reader<'a>>;

fn put_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(&n.to_le_bytes());
}

fn put_len(buf: &mut Vec<u8>, n: usize) {
    match u32::try_from(n) {
        Ok(small) if small < u32::MAX => buf.extend_from_slice(&small.to_le_bytes()),
        _ => {
            buf.extend_from_slice(&u32::MAX.to_le_bytes());
            put_u64(buf, n as u64);
        }
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_len(buf, s.len());
    buf.extend_from_slice(s.as_bytes());
}

/// Writes a length placeholder; [`end_sized`] fills it in.
fn begin_sized(buf: &mut Vec<u8>) -> usize {
    put_u64(buf, 0);
    buf.len()
}

fn end_sized(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u64;
    if let Some(slot) = buf.get_mut(start - 8..start) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
}

fn put_map(buf: &mut Vec<u8>, map: &BTreeMap<String, Value>) {
    put_len(buf, map.len());
    for (k, v) in map {
        put_str(buf, k);
        put_value(buf, v);
    }
}

/// A packed map alone, as a record's context is packed.
#[cfg(test)]
pub(crate) fn push_map_for_tests(buf: &mut Vec<u8>, map: &BTreeMap<String, Value>) {
    put_map(buf, map);
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => buf.push(NULL),
        Value::Bool(false) => buf.push(FALSE),
        Value::Bool(true) => buf.push(TRUE),
        Value::Number(n) => {
            buf.push(NUMBER);
            put_u64(buf, n.to_bits());
        }
        Value::String(s) => {
            buf.push(STRING);
            put_str(buf, s);
        }
        Value::List(items) => {
            buf.push(LIST);
            put_len(buf, items.len());
            for item in items {
                put_value(buf, item);
            }
        }
        Value::Map(map) => {
            buf.push(MAP);
            put_map(buf, map);
        }
    }
}

fn effect_code(e: Effect) -> u16 {
    match e {
        Effect::Allow => 0,
        Effect::Deny => 1,
        Effect::Approve => 2,
    }
}

fn risk_code(r: Option<Risk>) -> u16 {
    match r {
        None => 0,
        Some(Risk::Low) => 1,
        Some(Risk::Medium) => 2,
        Some(Risk::High) => 3,
        Some(Risk::Critical) => 4,
    }
}

/// The flags' bits saying which optional parts follow.
const HAS_RETRY: u16 = 1 << 5;
const HAS_SEQ: u16 = 1 << 6;
const HAS_TIME: u16 = 1 << 7;
const HAS_REVISION: u16 = 1 << 8;
const HAS_CHAIN: u16 = 1 << 9;
const HAS_CONTEXT: u16 = 1 << 10;

/// What the next record is compared with: the record before's seq, time
/// and revision (zeros at the start of a buffer).
#[derive(Clone, Copy, Debug, Default)]
struct Before {
    seq: u64,
    time_ms: i64,
    revision: u32,
}

/// The queue: packed records, and where the last value of each named
/// string was written (what a repeat refers to).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    buf: Vec<u8>,
    last: [Option<std::ops::Range<usize>>; NAMED],
    before: Before,
}

impl Queue {
    pub(crate) fn with_capacity(n: usize) -> Queue {
        Queue {
            buf: Vec::with_capacity(n),
            ..Queue::default()
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.last = Default::default();
        self.before = Before::default();
    }

    /// The tag of named string `i`: absent, the same as its last value
    /// written, or new.
    #[inline]
    fn tag(&self, i: usize, s: Option<&str>) -> u16 {
        let Some(s) = s else {
            return u16::from(ABSENT);
        };
        let same = match self.last.get(i) {
            Some(Some(r)) => self
                .buf
                .get(r.clone())
                .is_some_and(|l| writ_runtime::limiter::same_bytes(l, s.as_bytes())),
            _ => false,
        };
        u16::from(if same { SAME } else { NEW })
    }

    /// Appends one record. Written out rather than looped so that the
    /// common record (four bytes) is a few compares and one fixed-size
    /// copy.
    pub(crate) fn push(&mut self, f: &Fields<'_>) {
        let tags = self.tag(0, f.trace_id)
            | self.tag(1, Some(f.agent)) << 2
            | self.tag(2, Some(f.action)) << 4
            | self.tag(3, f.target) << 6
            | self.tag(4, f.rule) << 8
            | self.tag(5, f.reason) << 10;
        let before = self.before;
        let mut flags = effect_code(f.decision) | (risk_code(f.risk) << 2);
        if f.seq != before.seq.wrapping_add(1) {
            flags |= HAS_SEQ;
        }
        if f.time_ms != before.time_ms {
            flags |= HAS_TIME;
        }
        if f.retry_after_s.is_some() {
            flags |= HAS_RETRY;
        }
        if f.revision != before.revision {
            flags |= HAS_REVISION;
        }
        if !f.chain.is_empty() {
            flags |= HAS_CHAIN;
        }
        if !f.context.is_empty() {
            flags |= HAS_CONTEXT;
        }
        let [f0, f1] = flags.to_le_bytes();
        let [t0, t1] = tags.to_le_bytes();
        let buf = &mut self.buf;
        buf.extend_from_slice(&[f0, f1, t0, t1]);
        if flags & (HAS_SEQ | HAS_TIME | HAS_RETRY | HAS_REVISION) != 0 {
            if flags & HAS_SEQ != 0 {
                buf.extend_from_slice(&f.seq.to_le_bytes());
            }
            if flags & HAS_TIME != 0 {
                buf.extend_from_slice(&f.time_ms.to_le_bytes());
            }
            if let Some(retry) = f.retry_after_s {
                buf.extend_from_slice(&retry.to_le_bytes());
            }
            if flags & HAS_REVISION != 0 {
                buf.extend_from_slice(&f.revision.to_le_bytes());
            }
        }
        self.before = Before {
            seq: f.seq,
            time_ms: f.time_ms,
            revision: f.revision,
        };
        if tags & 0b1010_1010_1010 != 0 {
            self.push_new(tags, f);
        }
        if !f.chain.is_empty() || !f.context.is_empty() {
            self.push_chain_context(f);
        }
    }

    /// The named strings tagged new, their lengths and bytes.
    #[cold]
    fn push_new(&mut self, tags: u16, f: &Fields<'_>) {
        let named = [
            f.trace_id,
            Some(f.agent),
            Some(f.action),
            f.target,
            f.rule,
            f.reason,
        ];
        for (i, s) in named.into_iter().enumerate() {
            if let Some(s) = s
                && (tags >> (2 * i)) & 0b11 == u16::from(NEW)
            {
                put_len(&mut self.buf, s.len());
                let start = self.buf.len();
                self.buf.extend_from_slice(s.as_bytes());
                if let Some(slot) = self.last.get_mut(i) {
                    *slot = Some(start..self.buf.len());
                }
            }
        }
    }

    fn push_chain_context(&mut self, f: &Fields<'_>) {
        let buf = &mut self.buf;
        if !f.chain.is_empty() {
            let start = begin_sized(buf);
            put_len(buf, f.chain.len());
            for a in f.chain {
                put_str(buf, a);
            }
            end_sized(buf, start);
        }
        if !f.context.is_empty() {
            let start = begin_sized(buf);
            put_map(buf, f.context);
            end_sized(buf, start);
        }
    }
}

/// Reads a queue buffer. Every read is checked: a buffer this module did
/// not write gives `None`, never a panic.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    /// The last value read of each named string.
    last: [Option<&'a [u8]>; NAMED],
    before: Before,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            last: [None; NAMED],
            before: Before::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        match self.u32()? {
            u32::MAX => usize::try_from(self.u64()?).ok(),
            n => usize::try_from(n).ok(),
        }
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.bytes(n)
    }

    /// Named string `i`, tagged `tag`: `Some(None)` when absent.
    fn named(&mut self, i: usize, tag: u16) -> Option<Option<&'a [u8]>> {
        match u8::try_from(tag).ok()? {
            ABSENT => Some(None),
            SAME => Some(Some((*self.last.get(i)?)?)),
            NEW => {
                let s = self.str()?;
                *self.last.get_mut(i)? = Some(s);
                Some(Some(s))
            }
            _ => None,
        }
    }

    /// A chain or context: its bytes when its flag is set, else empty.
    fn sized(&mut self, present: bool) -> Option<Reader<'a>> {
        if !present {
            // An empty chain or map: a count of zero.
            return Some(Reader::new(&[0, 0, 0, 0]));
        }
        let n = usize::try_from(self.u64()?).ok()?;
        Some(Reader::new(self.bytes(n)?))
    }

    /// The next record.
    pub(crate) fn record(&mut self) -> Option<Packed<'a>> {
        let flags = u16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
        let tags = u16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
        if flags >> 11 != 0 || tags >> (2 * NAMED) != 0 {
            return None;
        }
        let decision = match flags & 0b11 {
            0 => Effect::Allow,
            1 => Effect::Deny,
            2 => Effect::Approve,
            _ => return None,
        };
        let risk = match (flags >> 2) & 0b111 {
            0 => None,
            1 => Some(Risk::Low),
            2 => Some(Risk::Medium),
            3 => Some(Risk::High),
            4 => Some(Risk::Critical),
            _ => return None,
        };
        let seq = if flags & HAS_SEQ != 0 {
            self.u64()?
        } else {
            self.before.seq.wrapping_add(1)
        };
        let time_ms = if flags & HAS_TIME != 0 {
            self.u64()?.cast_signed()
        } else {
            self.before.time_ms
        };
        let retry_after_s = if flags & HAS_RETRY != 0 {
            Some(self.u64()?)
        } else {
            None
        };
        let revision = if flags & HAS_REVISION != 0 {
            self.u32()?
        } else {
            self.before.revision
        };
        self.before = Before {
            seq,
            time_ms,
            revision,
        };
        let tag = |i: usize| (tags >> (2 * i)) & 0b11;
        Some(Packed {
            seq,
            time_ms,
            decision,
            risk,
            retry_after_s,
            revision,
            trace_id: self.named(0, tag(0))?,
            agent: self.named(1, tag(1))??,
            action: self.named(2, tag(2))??,
            target: self.named(3, tag(3))?,
            rule: self.named(4, tag(4))?,
            reason: self.named(5, tag(5))?,
            chain: self.sized(flags & HAS_CHAIN != 0)?,
            context: self.sized(flags & HAS_CONTEXT != 0)?,
        })
    }

    /// A chain's strings, in order, to `each`.
    pub(crate) fn chain(mut self, mut each: impl FnMut(&'a [u8])) -> Option<()> {
        let n = self.len()?;
        for _ in 0..n {
            each(self.str()?);
        }
        self.is_empty().then_some(())
    }

    /// A map: its length, then `(key, value)` pairs read by the caller
    /// with [`Reader::key`] and [`Reader::value`].
    pub(crate) fn map_len(&mut self) -> Option<usize> {
        self.len()
    }

    pub(crate) fn key(&mut self) -> Option<&'a [u8]> {
        self.str()
    }

    /// The next value, as a [`Val`] whose lists and maps are read on.
    pub(crate) fn value(&mut self) -> Option<Val<'a>> {
        Some(match self.u8()? {
            NULL => Val::Null,
            FALSE => Val::Bool(false),
            TRUE => Val::Bool(true),
            NUMBER => Val::Number(f64::from_bits(self.u64()?)),
            STRING => Val::String(self.str()?),
            LIST => Val::List(self.len()?),
            MAP => Val::Map(self.len()?),
            _ => return None,
        })
    }

    /// Skips a value whose tag was read as `v` (a masked one).
    pub(crate) fn skip(&mut self, v: &Val<'a>) -> Option<()> {
        match *v {
            Val::List(n) => {
                for _ in 0..n {
                    let item = self.value()?;
                    self.skip(&item)?;
                }
            }
            Val::Map(n) => {
                for _ in 0..n {
                    self.key()?;
                    let item = self.value()?;
                    self.skip(&item)?;
                }
            }
            _ => {}
        }
        Some(())
    }
}

/// A value's head: scalars whole, lists and maps by their length (their
/// items follow in the reader).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Number(f64),
    String(&'a [u8]),
    List(usize),
    Map(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let mut ctx = BTreeMap::new();
        ctx.insert("amount".to_owned(), Value::Number(79.99));
        ctx.insert(
            "nested".to_owned(),
            Value::Map(BTreeMap::from([(
                "l".to_owned(),
                Value::List(vec![
                    Value::Null,
                    Value::Bool(true),
                    Value::String("é".into()),
                ]),
            )])),
        );
        let chain = vec!["triage".to_owned(), "billing".to_owned()];
        // Named strings new, repeated, absent, changed, back again.
        let named: [[Option<&str>; NAMED]; 5] = [
            [
                None,
                Some("billing"),
                Some("tool:call"),
                Some(""),
                Some("r"),
                None,
            ],
            [
                None,
                Some("billing"),
                Some("tool:call"),
                Some(""),
                Some("r"),
                None,
            ],
            [
                Some("t1"),
                Some("billing"),
                Some("tool:call"),
                None,
                Some("r"),
                Some("why"),
            ],
            [
                Some("t1"),
                Some("triage"),
                Some("tool:call"),
                Some("x"),
                None,
                Some("why"),
            ],
            [
                Some("t2"),
                Some("billing"),
                Some("agent:delegate"),
                Some(""),
                Some("r"),
                None,
            ],
        ];
        let mut q = Queue::default();
        let mut ends = Vec::new();
        // Numbers one apart but for a jump, times and revisions that
        // repeat and change; only the second record has a retry.
        let seqs = [1, 2, 3, 9, 10];
        let times = [-5, -5, 0, 0, i64::MAX];
        let revisions = [3, 3, 0, 2, 2];
        let expect = |i: usize| {
            (
                seqs[i],
                times[i],
                Effect::Approve,
                Some(Risk::High),
                (i == 1).then_some(7),
                revisions[i],
            )
        };
        for (i, n) in named.iter().enumerate() {
            let seq = seqs[i];
            q.push(&Fields {
                seq,
                time_ms: times[i],
                decision: Effect::Approve,
                risk: Some(Risk::High),
                retry_after_s: (i == 1).then_some(7),
                revision: revisions[i],
                trace_id: n[0],
                agent: n[1].unwrap_or_default(),
                action: n[2].unwrap_or_default(),
                target: n[3],
                rule: n[4],
                reason: n[5],
                chain: &chain,
                context: &ctx,
            });
            ends.push(q.bytes().len());
        }
        // The repeat of the first record is shorter by its four strings
        // and their lengths, its time and its revision, and longer by its
        // retry.
        assert_eq!(
            ends[1] - ends[0],
            ends[0] - "billingtool:callr".len() - 4 * 4 - 8 - 4 + 8
        );
        let mut r = Reader::new(q.bytes());
        for (i, n) in named.iter().enumerate() {
            let seq = seqs[i];
            let p = r.record();
            let Some(p) = p else {
                unreachable!("record {seq} reads back")
            };
            assert_eq!(
                (
                    p.seq,
                    p.time_ms,
                    p.decision,
                    p.risk,
                    p.retry_after_s,
                    p.revision
                ),
                expect(i)
            );
            let b = |s: Option<&'static str>| s.map(str::as_bytes);
            assert_eq!(
                [
                    p.trace_id,
                    Some(p.agent),
                    Some(p.action),
                    p.target,
                    p.rule,
                    p.reason
                ],
                n.map(b),
                "record {seq}"
            );
            let mut got = Vec::new();
            assert_eq!(p.chain.chain(|a| got.push(a)), Some(()));
            assert_eq!(got, [&b"triage"[..], &b"billing"[..]]);
            let mut c = p.context;
            assert_eq!(c.map_len(), Some(2));
            assert_eq!(c.key(), Some(&b"amount"[..]));
            assert_eq!(c.value(), Some(Val::Number(79.99)));
            assert_eq!(c.key(), Some(&b"nested"[..]));
            let nested = c.value();
            assert_eq!(nested, Some(Val::Map(1)));
            if let Some(v) = nested {
                assert_eq!(c.skip(&v), Some(()));
            }
            assert!(c.is_empty());
        }
        assert!(r.is_empty());
        // A repeat with nothing before it to repeat is not a record.
        let mut alone = Reader::new(q.bytes().get(ends[0]..ends[1]).unwrap_or_default());
        assert!(alone.record().is_none());
    }

    #[test]
    fn a_cut_or_garbled_buffer_reads_as_none() {
        let chain = Vec::new();
        let ctx = BTreeMap::from([("k".to_owned(), Value::String("v".into()))]);
        let mut q = Queue::default();
        q.push(&Fields {
            seq: 1,
            time_ms: 0,
            decision: Effect::Deny,
            risk: None,
            retry_after_s: None,
            revision: 0,
            trace_id: Some("t"),
            agent: "a",
            action: "b",
            target: None,
            rule: None,
            reason: None,
            chain: &chain,
            context: &ctx,
        });
        let buf = q.bytes().to_vec();
        for cut in 0..buf.len() {
            let short = buf.get(..cut).unwrap_or_default();
            let read = Reader::new(short).record().and_then(|p| {
                let mut c = p.context;
                let n = c.map_len()?;
                for _ in 0..n {
                    c.key()?;
                    let v = c.value()?;
                    c.skip(&v)?;
                }
                Some(())
            });
            assert_eq!(read, None, "cut at {cut}");
        }
        // Not a decision, not a risk, flags or tags that mean nothing.
        for (at, byte) in [(0, 0b11), (0, 0b1_1100), (1, 0b1000_0000), (3, 0b0001_0000)] {
            let mut bad = buf.clone();
            if let Some(b) = bad.get_mut(at) {
                *b |= byte;
            }
            assert!(Reader::new(&bad).record().is_none(), "{at} {byte:b}");
        }
    }
}
