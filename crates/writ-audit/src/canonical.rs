//! The canonical form of a record: one line of JSON whose bytes are what
//! the hash covers.
//!
//! A record's line is `{"seq":…,"id":…,…,"prev":"<hex>","hash":"<hex>"}`.
//! The fields come in one fixed order and every value is written one way
//! (strings escaped minimally, numbers in their shortest form, times as
//! RFC 3339 UTC with milliseconds), so the same record always gives the
//! same bytes. The hash is SHA-256 over the line up to (not including)
//! `,"hash":`, which ends with the previous record's hash: each record
//! seals its predecessor. The SQLite sink stores the fields in columns and
//! rebuilds this line from them to verify, through the same writer.

use std::borrow::Cow;
use std::io::Write as _;
use std::ops::Range;

use sha2::{Digest, Sha256};

use super::queue::{Reader, Val};

/// Text appended to a byte buffer.
pub(crate) trait PushStr {
    fn push_str(&mut self, s: &str);
}

impl PushStr for Vec<u8> {
    #[inline]
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}
#[cfg(test)]
use writ_runtime::Value;

/// The `prev` of the first record of a log.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// `,"hash":"` + 64 hex digits + `"}`: the fixed-length end of a line.
pub(crate) const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;
/// `,"prev":"` + 64 hex digits + `"`: the fixed-length end of a body.
pub(crate) const PREV_SUFFIX_LEN: usize = 9 + 64 + 1;

/// The scalar fields of a record, borrowed, in canonical order.
#[derive(Debug)]
pub(crate) struct Head<'a> {
    pub seq: u64,
    pub id: &'a [u8],
    pub time_ms: i64,
    pub trace_id: Option<&'a [u8]>,
    pub agent: &'a [u8],
    pub action: &'a [u8],
    pub target: Option<&'a [u8]>,
    pub decision: &'a str,
    pub rule: Option<&'a [u8]>,
    pub reason: Option<&'a [u8]>,
    pub risk: Option<&'a str>,
    pub retry_after_s: Option<u64>,
    pub revision: &'a [u8],
    /// The previous record's hash, as 64 hex digits.
    pub prev: &'a [u8],
}

/// Where each field's JSON value sits in a line (a string, or `null`
/// for an absent one; the chain's array; the context's object).
#[derive(Clone, Debug, Default)]
pub(crate) struct Spans {
    pub trace_id: Range<usize>,
    pub agent: Range<usize>,
    pub chain: Range<usize>,
    pub action: Range<usize>,
    pub target: Range<usize>,
    pub context: Range<usize>,
    pub rule: Range<usize>,
    pub reason: Range<usize>,
    pub revision: Range<usize>,
}

/// Writes a record's body into `out` (cleared first): every field up to
/// and including `prev`. `chain` and `context` write those two values'
/// JSON. Returns where the fields landed. (Used by the SQLite sink and
/// the tests: unused without feature `sqlite`.)
#[cfg_attr(
    not(any(feature = "sqlite", test)),
    allow(dead_code, reason = "only the SQLite sink writes a body alone")
)]
pub(crate) fn write_body(
    out: &mut Vec<u8>,
    head: &Head<'_>,
    chain: impl FnOnce(&mut Vec<u8>),
    context: impl FnOnce(&mut Vec<u8>),
) -> Spans {
    out.clear();
    append_body(out, head, &mut TimeCache::default(), chain, context)
}

/// [`write_body`] at the end of `out`, which is left as it is before:
/// the spans are relative to where the body begins. `times` remembers the
/// last second written (records come in time order).
pub(crate) fn append_body(
    out: &mut Vec<u8>,
    head: &Head<'_>,
    times: &mut TimeCache,
    chain: impl FnOnce(&mut Vec<u8>),
    context: impl FnOnce(&mut Vec<u8>),
) -> Spans {
    let at = out.len();
    out.push_str("{\"seq\":");
    push_u64(out, head.seq);
    out.push_str(",\"id\":");
    push_str(out, head.id);
    out.push_str(",\"time\":\"");
    times.push(out, head.time_ms);
    out.push_str("\",\"trace_id\":");
    let trace_id = spanned(out, at, |out| push_opt(out, head.trace_id));
    out.push_str(",\"agent\":");
    let agent = spanned(out, at, |out| push_str(out, head.agent));
    out.push_str(",\"chain\":");
    let chain = spanned(out, at, chain);
    out.push_str(",\"action\":");
    let action = spanned(out, at, |out| push_str(out, head.action));
    out.push_str(",\"target\":");
    let target = spanned(out, at, |out| push_opt(out, head.target));
    out.push_str(",\"context\":");
    let context = spanned(out, at, context);
    out.push_str(",\"decision\":");
    push_str(out, head.decision);
    out.push_str(",\"rule\":");
    let rule = spanned(out, at, |out| push_opt(out, head.rule));
    out.push_str(",\"reason\":");
    let reason = spanned(out, at, |out| push_opt(out, head.reason));
    out.push_str(",\"risk\":");
    push_opt(out, head.risk);
    out.push_str(",\"retry_after_s\":");
    match head.retry_after_s {
        Some(s) => push_u64(out, s),
        None => out.push_str("null"),
    }
    out.push_str(",\"revision\":");
    let revision = spanned(out, at, |out| push_str(out, head.revision));
    out.push_str(",\"prev\":\"");
    out.extend_from_slice(head.prev);
    out.push(b'"');
    Spans {
        trace_id,
        agent,
        chain,
        action,
        target,
        context,
        rule,
        reason,
        revision,
    }
}

/// Where what `write` appends lands, relative to `at`.
fn spanned(out: &mut Vec<u8>, at: usize, write: impl FnOnce(&mut Vec<u8>)) -> Range<usize> {
    let start = out.len() - at;
    write(out);
    start..out.len() - at
}

/// Appends `,"hash":"<hex>"}`: what ends a line after its body.
pub(crate) fn push_hash_suffix(out: &mut Vec<u8>, hash: &[u8; 32]) {
    out.push_str(",\"hash\":\"");
    push_hex(out, hash);
    out.push_str("\"}");
}

/// SHA-256 of a line's body.
pub(crate) fn hash_body(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// Writes a list of strings as a JSON array (what the packed chain
/// writer must equal).
#[cfg(test)]
pub(crate) fn push_str_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, s);
    }
    out.push(b']');
}

/// Writes a context map as a JSON object, keys in map order (what the
/// packed map writer must equal, unmasked).
#[cfg(test)]
pub(crate) fn push_map(out: &mut Vec<u8>, map: &std::collections::BTreeMap<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, k);
        out.push(b':');
        push_value(out, v);
    }
    out.push(b'}');
}

/// Writes a packed chain (see [`super::queue`]) as [`push_str_list`]
/// writes the list it was packed from. `None` when the buffer is not a
/// packed chain.
pub(crate) fn push_packed_chain(out: &mut Vec<u8>, r: Reader<'_>) -> Option<()> {
    out.push(b'[');
    let mut first = true;
    r.chain(|a| {
        if !first {
            out.push(b',');
        }
        first = false;
        push_str(out, a);
    })?;
    out.push(b']');
    Some(())
}

/// Writes a packed context map (see [`super::queue`]) as a JSON object,
/// as [`push_map`] writes the map it was packed from, except that a value
/// under a key `masked` picks is written as `"***"`, at any depth. `None`
/// when the buffer is not a packed map.
pub(crate) fn push_packed_map(
    out: &mut Vec<u8>,
    r: &mut Reader<'_>,
    masked: &mut impl FnMut(&[u8]) -> bool,
) -> Option<()> {
    let n = r.map_len()?;
    push_packed_entries(out, r, n, masked)
}

fn push_packed_entries(
    out: &mut Vec<u8>,
    r: &mut Reader<'_>,
    n: usize,
    masked: &mut impl FnMut(&[u8]) -> bool,
) -> Option<()> {
    out.push(b'{');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        let k = r.key()?;
        push_str(out, k);
        out.push(b':');
        let v = r.value()?;
        if masked(k) {
            r.skip(&v)?;
            push_str(out, super::MASKED);
        } else {
            push_packed_value(out, r, v, masked)?;
        }
    }
    out.push(b'}');
    Some(())
}

fn push_packed_value(
    out: &mut Vec<u8>,
    r: &mut Reader<'_>,
    v: Val<'_>,
    masked: &mut impl FnMut(&[u8]) -> bool,
) -> Option<()> {
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(true) => out.push_str("true"),
        Val::Bool(false) => out.push_str("false"),
        Val::Number(n) => push_number(out, n),
        Val::String(s) => push_str(out, s),
        Val::List(n) => {
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                let item = r.value()?;
                push_packed_value(out, r, item, masked)?;
            }
            out.push(b']');
        }
        Val::Map(n) => push_packed_entries(out, r, n, masked)?,
    }
    Some(())
}

/// A string value as [`push_str`] (or `push_opt`) wrote it, read back:
/// `None` for `null`, the text without its quotes and escapes otherwise.
pub(crate) fn unquote(json: &str) -> Option<Cow<'_, str>> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            c => out.push(c),
        }
    }
    Some(Cow::Owned(out))
}

#[cfg(test)]
fn push_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => push_number(out, *n),
        Value::String(s) => push_str(out, s),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_value(out, item);
            }
            out.push(b']');
        }
        Value::Map(map) => push_map(out, map),
    }
}

/// Numbers in their shortest form: integers without a fraction, others
/// as Rust's shortest round-tripping decimal; NaN and infinities (which
/// JSON cannot hold) as `null`.
fn push_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "an integral value below 1e15 fits an i64 exactly"
        )]
        let i = n as i64;
        if i < 0 {
            out.push(b'-');
        }
        push_u64(out, i.unsigned_abs());
    } else {
        let _ = write!(out, "{n}");
    }
}

/// A decimal number without the formatting machinery (this runs several
/// times per record).
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(writ_runtime::json_text::decimal(n, &mut [0; 20]).as_bytes());
}

/// At least `width` digits, zero-padded (`n` is not negative here).
fn push_padded(out: &mut Vec<u8>, n: i64, width: usize) {
    let n = n.unsigned_abs();
    let mut digits = 1;
    let mut m = n / 10;
    while m > 0 {
        digits += 1;
        m /= 10;
    }
    for _ in digits..width {
        out.push(b'0');
    }
    push_u64(out, n);
}

fn push_opt(out: &mut Vec<u8>, s: Option<impl AsRef<[u8]>>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.push_str("null"),
    }
}

/// A JSON string: `"`, `\\` and control characters escaped, nothing else
/// (the runtime's writer, which the decision JSON uses too). `s` is UTF-8
/// (text, or bytes packed from text).
pub(crate) fn push_str(out: &mut Vec<u8>, s: impl AsRef<[u8]>) {
    writ_runtime::json_text::push_bytes(out, s.as_ref());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
        out.push(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'));
    }
}

/// Lowercase hex of a hash.
pub(crate) fn hex(bytes: &[u8; 32]) -> String {
    hex_into(bytes, &mut [0; 64]).to_owned()
}

/// `bytes` in lowercase hex, written into `out`.
pub(crate) fn hex_into<'o>(bytes: &[u8; 32], out: &'o mut [u8; 64]) -> &'o str {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        for (digit, n) in pair.iter_mut().zip([b >> 4, b & 15]) {
            *digit = HEX.get(usize::from(n)).copied().unwrap_or(b'0');
        }
    }
    // Hex digits are ASCII.
    std::str::from_utf8(out).unwrap_or_default()
}

/// Parses 64 hex digits.
pub(crate) fn unhex(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *o = (digit(*pair.first()?)? << 4) | digit(*pair.get(1)?)?;
    }
    Some(out)
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian,
/// UTC), without a time-zone library (the writer uses [`TimeCache`]).
pub(crate) fn push_time(out: &mut Vec<u8>, ms: i64) {
    push_date_time(out, ms.div_euclid(1000));
    push_millis(out, ms);
}

/// `YYYY-MM-DDTHH:MM:SS` of Unix seconds.
fn push_date_time(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        out.push(b'-');
    }
    push_padded(out, y, 4);
    for (sep, v, w) in [
        (b'-', m, 2),
        (b'-', d, 2),
        (b'T', sod / 3600, 2),
        (b':', sod / 60 % 60, 2),
        (b':', sod % 60, 2),
    ] {
        out.push(sep);
        push_padded(out, v, w);
    }
}

/// `.mmmZ`.
fn push_millis(out: &mut Vec<u8>, ms: i64) {
    let milli = ms.rem_euclid(1000);
    out.push(b'.');
    push_padded(out, milli, 3);
    out.push(b'Z');
}

/// [`push_time`] remembering the last second written: records come in
/// time order, so most share their second with the one before.
#[derive(Debug, Default)]
pub(crate) struct TimeCache {
    secs: Option<i64>,
    text: Vec<u8>,
}

impl TimeCache {
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, ms: i64) {
        let secs = ms.div_euclid(1000);
        if self.secs != Some(secs) {
            self.text.clear();
            push_date_time(&mut self.text, secs);
            self.secs = Some(secs);
        }
        out.extend_from_slice(&self.text);
        push_millis(out, ms);
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a date.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_body_appended_to_a_batch_is_the_body_written_alone() {
        let mut times = TimeCache::default();
        let mut batch = b"{\"an earlier\":\"line\"}\n".to_vec();
        // Bodies of many lengths and times, some sharing a second.
        for n in 0..40 {
            let reason = "r\"".repeat(n);
            let head = Head {
                seq: 7,
                id: b"00ff-7",
                time_ms: 1_736_953_200_123 + 97 * n as i64,
                trace_id: (n % 2 == 0).then_some(&b"t"[..]),
                agent: b"a",
                action: b"tool:call",
                target: None,
                decision: "allow",
                rule: Some(b"x"),
                reason: Some(reason.as_bytes()),
                risk: None,
                retry_after_s: Some(3),
                revision: b"rev",
                prev: b"ab",
            };
            let chain = |out: &mut Vec<u8>| out.extend_from_slice(b"[\"a\"]");
            let context = |out: &mut Vec<u8>| out.extend_from_slice(b"{}");
            let mut alone = b"left over".to_vec();
            let spans = write_body(&mut alone, &head, chain, context);
            let start = batch.len();
            let appended = append_body(&mut batch, &head, &mut times, chain, context);
            assert_eq!(batch.get(start..), Some(alone.as_slice()));
            let alone = text(alone);
            for (a, b) in [
                (&spans.trace_id, &appended.trace_id),
                (&spans.chain, &appended.chain),
                (&spans.context, &appended.context),
                (&spans.reason, &appended.reason),
                (&spans.revision, &appended.revision),
            ] {
                assert_eq!(a, b);
            }
            assert_eq!(
                alone.get(spans.reason.clone()).and_then(unquote).as_deref(),
                Some(reason.as_str())
            );
            assert_eq!(alone.get(spans.target.clone()), Some("null"));
            batch.push(b'\n');
        }
    }

    #[test]
    fn escaping_a_word_at_a_time_escapes_what_a_byte_scan_does() {
        // serde_json's escaping, which the runtime's `json_text` writes
        // (for these lines and for `Decision::to_json`), a character at a
        // time.
        fn slow(s: &str) -> String {
            serde_json::to_string(s).unwrap_or_default()
        }
        let specials = [
            '"', '\\', '\n', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', ' ', '!', '#', '[', ']', 'é',
            '\u{7f}',
        ];
        // Every special at every place in strings up to 20 long, so that
        // each falls at each position of a word.
        for len in 0..20 {
            for at in 0..len {
                for c in specials {
                    let s: String = (0..len).map(|i| if i == at { c } else { 'a' }).collect();
                    let mut fast = Vec::new();
                    push_str(&mut fast, &s);
                    assert_eq!(text(fast), slow(&s), "{s:?}");
                }
            }
        }
        let all: String = (0u8..=127).map(char::from).collect();
        let mut fast = Vec::new();
        push_str(&mut fast, &all);
        assert_eq!(text(fast), slow(&all));
    }

    #[test]
    fn cached_times_are_the_times() {
        let mut cache = TimeCache::default();
        for ms in [
            0,
            999,
            1000,
            1_736_953_200_123,
            1_736_953_200_999,
            1_736_953_201_000,
            1_736_953_200_000,
            -1,
            -1000,
            -1001,
            i64::MIN,
            i64::MAX,
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            push_time(&mut a, ms);
            cache.push(&mut b, ms);
            assert_eq!(a, b, "{ms}");
        }
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_736_953_200_123, "2025-01-15T15:00:00.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"), // a leap day
            (-1, "1969-12-31T23:59:59.999Z"),
        ] {
            let mut s = Vec::new();
            push_time(&mut s, ms);
            assert_eq!(text(s), want);
        }
    }

    #[test]
    fn strings_and_numbers_are_written_one_way() {
        let mut s = Vec::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(text(s), r#""a\"b\\c\nd\u0001é""#);
        let mut s = Vec::new();
        push_value(
            &mut s,
            &Value::List(vec![
                Value::Number(40.0),
                Value::Number(-7.0),
                Value::Number(79.99),
                Value::Number(f64::NAN),
                Value::Number(-0.5),
                Value::Number(1e16),
            ]),
        );
        assert_eq!(text(s), "[40,-7,79.99,null,-0.5,10000000000000000]");
    }

    #[test]
    fn packed_values_are_written_as_the_values_they_were_packed_from() {
        use std::collections::BTreeMap;
        let s = |t: &str| Value::String(t.to_owned());
        let inner = BTreeMap::from([
            ("q\"uote".to_owned(), s("line\nbreak\u{7}")),
            ("n".to_owned(), Value::Number(-0.25)),
        ]);
        let maps = [
            BTreeMap::new(),
            BTreeMap::from([("a".to_owned(), Value::Null)]),
            BTreeMap::from([
                ("amount".to_owned(), Value::Number(79.99)),
                ("big".to_owned(), Value::Number(1e300)),
                ("int".to_owned(), Value::Number(40.0)),
                ("nan".to_owned(), Value::Number(f64::NAN)),
                (
                    "flags".to_owned(),
                    Value::List(vec![Value::Bool(true), Value::Bool(false)]),
                ),
                ("empty".to_owned(), Value::List(Vec::new())),
                ("map".to_owned(), Value::Map(inner.clone())),
                (
                    "deep".to_owned(),
                    Value::List(vec![Value::Map(inner), s("é")]),
                ),
            ]),
        ];
        for map in maps {
            let mut want = Vec::new();
            push_map(&mut want, &map);
            let want = text(want);
            let mut packed = Vec::new();
            crate::queue::push_map_for_tests(&mut packed, &map);
            let mut got = Vec::new();
            let mut r = Reader::new(&packed);
            assert_eq!(push_packed_map(&mut got, &mut r, &mut |_| false), Some(()));
            assert!(r.is_empty());
            assert_eq!(text(got), want);
            // And read back, strings come out as they went in.
            assert_eq!(unquote(&want), None, "an object is not a string");
        }
        let empty = BTreeMap::new();
        for chain in [
            vec![],
            vec!["a".to_owned()],
            vec!["tri\"age".to_owned(), "b".to_owned()],
        ] {
            let mut packed = crate::queue::Queue::default();
            packed.push(&crate::queue::Fields {
                seq: 1,
                time_ms: 0,
                decision: writ_runtime::Effect::Allow,
                risk: None,
                retry_after_s: None,
                revision: 0,
                trace_id: None,
                agent: "a",
                action: "b",
                target: None,
                rule: None,
                reason: None,
                chain: &chain,
                context: &empty,
            });
            let p = Reader::new(packed.bytes()).record();
            let (mut want, mut got) = (Vec::new(), Vec::new());
            push_str_list(&mut want, &chain);
            assert_eq!(
                p.and_then(|p| push_packed_chain(&mut got, p.chain)),
                Some(())
            );
            assert_eq!(got, want);
        }
        for s in ["", "plain", "a\"b\\c\nd\re\tf\u{1}é"] {
            let mut json = Vec::new();
            push_str(&mut json, s);
            assert_eq!(unquote(&text(json)).as_deref(), Some(s));
        }
        assert_eq!(unquote("null"), None);
    }

    #[test]
    fn hex_round_trips() {
        let h = hash_body(b"x");
        assert_eq!(unhex(hex(&h).as_bytes()), Some(h));
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i * 37 % 256).unwrap_or(0);
        }
        let spelled: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&bytes), spelled);
        assert_eq!(unhex(b"zz"), None);
    }
}
