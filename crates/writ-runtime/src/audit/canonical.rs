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

use std::fmt::Write as _;
use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::Value;

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
    pub id: &'a str,
    pub time_ms: i64,
    pub trace_id: Option<&'a str>,
    pub agent: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub decision: &'a str,
    pub rule: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub risk: Option<&'a str>,
    pub retry_after_s: Option<u64>,
    pub revision: &'a str,
    /// The previous record's hash, as 64 hex digits.
    pub prev: &'a str,
}

/// Where the JSON of the chain and of the context sit in a line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spans {
    pub chain: Range<usize>,
    pub context: Range<usize>,
}

/// Writes a record's body into `out` (cleared first): every field up to
/// and including `prev`. `chain` and `context` write those two values'
/// JSON. Returns where they landed.
pub(crate) fn write_body(
    out: &mut String,
    head: &Head<'_>,
    chain: impl FnOnce(&mut String),
    context: impl FnOnce(&mut String),
) -> Spans {
    let spans = open_body(out, head, chain, context);
    close_body(out, head.prev);
    spans
}

/// [`write_body`] up to the opening quote of `prev`'s value (`head.prev`
/// is not used): everything that does not depend on the previous record,
/// so that it can be written ahead of the chain.
pub(crate) fn open_body(
    out: &mut String,
    head: &Head<'_>,
    chain: impl FnOnce(&mut String),
    context: impl FnOnce(&mut String),
) -> Spans {
    out.clear();
    out.push_str("{\"seq\":");
    push_u64(out, head.seq);
    out.push_str(",\"id\":");
    push_str(out, head.id);
    out.push_str(",\"time\":\"");
    push_time(out, head.time_ms);
    out.push_str("\",\"trace_id\":");
    push_opt(out, head.trace_id);
    out.push_str(",\"agent\":");
    push_str(out, head.agent);
    out.push_str(",\"chain\":");
    let start = out.len();
    chain(out);
    let chain_span = start..out.len();
    out.push_str(",\"action\":");
    push_str(out, head.action);
    out.push_str(",\"target\":");
    push_opt(out, head.target);
    out.push_str(",\"context\":");
    let start = out.len();
    context(out);
    let context_span = start..out.len();
    out.push_str(",\"decision\":");
    push_str(out, head.decision);
    out.push_str(",\"rule\":");
    push_opt(out, head.rule);
    out.push_str(",\"reason\":");
    push_opt(out, head.reason);
    out.push_str(",\"risk\":");
    push_opt(out, head.risk);
    out.push_str(",\"retry_after_s\":");
    match head.retry_after_s {
        Some(s) => push_u64(out, s),
        None => out.push_str("null"),
    }
    out.push_str(",\"revision\":");
    push_str(out, head.revision);
    out.push_str(",\"prev\":\"");
    Spans {
        chain: chain_span,
        context: context_span,
    }
}

/// Ends a body begun by [`open_body`] with the previous record's hash.
pub(crate) fn close_body(out: &mut String, prev_hex: &str) {
    out.push_str(prev_hex);
    out.push('"');
}

/// A body's SHA-256, begun over what [`open_body`] wrote.
pub(crate) struct Partial(Sha256);

impl Partial {
    pub(crate) fn begin(open: &str) -> Partial {
        let mut h = Sha256::new();
        h.update(open.as_bytes());
        Partial(h)
    }

    /// Closes the body (`prev_hex` and its quote) and seals it as
    /// [`seal`] does, hashing only what was added.
    pub(crate) fn seal(mut self, out: &mut String, prev_hex: &str) -> [u8; 32] {
        let from = out.len();
        close_body(out, prev_hex);
        self.0.update(out.get(from..).unwrap_or("").as_bytes());
        let hash: [u8; 32] = self.0.finalize().into();
        out.push_str(",\"hash\":\"");
        push_hex(out, &hash);
        out.push_str("\"}");
        hash
    }
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Partial")
    }
}

/// Appends `,"hash":"<hex>"}`.
#[cfg(feature = "audit-sqlite")]
pub(crate) fn push_hash_suffix(out: &mut String, hash_hex: &str) {
    out.push_str(",\"hash\":\"");
    out.push_str(hash_hex);
    out.push_str("\"}");
}

/// SHA-256 of a line's body (for verifying).
pub(crate) fn hash_body(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// Writes a list of strings as a JSON array.
pub(crate) fn push_str_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s);
    }
    out.push(']');
}

/// Writes a context map as a JSON object (keys in map order).
pub(crate) fn push_map(out: &mut String, map: &std::collections::BTreeMap<String, Value>) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_value(out, v);
    }
    out.push('}');
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => push_number(out, *n),
        Value::String(s) => push_str(out, s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Map(map) => push_map(out, map),
    }
}

/// Numbers in their shortest form: integers without a fraction, others
/// as Rust's shortest round-tripping decimal; NaN and infinities (which
/// JSON cannot hold) as `null`.
fn push_number(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "an integral value below 1e15 fits an i64 exactly"
        )]
        let i = n as i64;
        let _ = write!(out, "{i}");
    } else {
        let _ = write!(out, "{n}");
    }
}

/// A decimal number without the formatting machinery (this runs several
/// times per record).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in buf.get(i..).unwrap_or(&[]) {
        out.push(char::from(d));
    }
}

/// At least `width` digits, zero-padded (`n` is not negative here).
fn push_padded(out: &mut String, n: i64, width: usize) {
    let n = n.unsigned_abs();
    let mut digits = 1;
    let mut m = n / 10;
    while m > 0 {
        digits += 1;
        m /= 10;
    }
    for _ in digits..width {
        out.push('0');
    }
    push_u64(out, n);
}

fn push_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.push_str("null"),
    }
}

/// Bytes a JSON string must escape: `"`, `\` and control characters.
#[expect(
    clippy::indexing_slicing,
    reason = "constant indices below 256, checked at compile time"
)]
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON string: `"`, `\` and control characters escaped, nothing else.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while let Some(at) = bytes.get(i..).and_then(|rest| {
        rest.iter()
            .position(|&b| NEEDS_ESCAPE.get(usize::from(b)).copied().unwrap_or(true))
    }) {
        let at = i + at;
        out.push_str(s.get(run..at).unwrap_or(""));
        match bytes.get(at).copied().unwrap_or(0) {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        run = at + 1;
        i = at + 1;
    }
    out.push_str(s.get(run..).unwrap_or(""));
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(
            HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
        ));
        out.push(char::from(
            HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
        ));
    }
}

/// Lowercase hex of a hash.
pub(crate) fn hex(bytes: &[u8; 32]) -> String {
    let mut s = String::with_capacity(64);
    push_hex(&mut s, bytes);
    s
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
/// UTC), without a time-zone library: this runs once per record.
pub(crate) fn push_time(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        out.push('-');
    }
    push_padded(out, y, 4);
    for (sep, v, w) in [
        ('-', m, 2),
        ('-', d, 2),
        ('T', sod / 3600, 2),
        (':', sod / 60 % 60, 2),
        (':', sod % 60, 2),
        ('.', milli, 3),
    ] {
        out.push(sep);
        push_padded(out, v, w);
    }
    out.push('Z');
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
    use super::*;

    #[test]
    fn a_hash_begun_ahead_seals_as_the_whole_body_would() {
        // Bodies of many lengths, so that `prev` falls at every place in
        // a SHA-256 block.
        for n in 0..130 {
            let reason = "r".repeat(n);
            let head = Head {
                seq: 7,
                id: "00ff-7",
                time_ms: 1_736_953_200_123,
                trace_id: Some("t"),
                agent: "a",
                action: "tool:call",
                target: None,
                decision: "allow",
                rule: Some("x"),
                reason: Some(&reason),
                risk: None,
                retry_after_s: Some(3),
                revision: "rev",
                prev: "ab",
            };
            let chain = |out: &mut String| push_str_list(out, &["a".to_owned()]);
            let context = |out: &mut String| out.push_str("{}");
            let mut whole = String::new();
            let spans = write_body(&mut whole, &head, chain, context);
            let mut line = String::new();
            let open_spans = open_body(&mut line, &head, chain, context);
            assert_eq!(
                (spans.chain, spans.context),
                (open_spans.chain, open_spans.context)
            );
            let hash = Partial::begin(&line).seal(&mut line, head.prev);
            assert_eq!(hash, hash_body(whole.as_bytes()), "{n}");
            assert_eq!(line.get(..whole.len()), Some(whole.as_str()));
            assert_eq!(
                line.get(whole.len()..),
                Some(format!(",\"hash\":\"{}\"}}", hex(&hash)).as_str())
            );
        }
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let mut s = String::new();
        push_time(&mut s, 0);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
        s.clear();
        push_time(&mut s, 1_736_953_200_123);
        assert_eq!(s, "2025-01-15T15:00:00.123Z");
        s.clear();
        push_time(&mut s, 951_782_400_000); // a leap day
        assert_eq!(s, "2000-02-29T00:00:00.000Z");
        s.clear();
        push_time(&mut s, -1);
        assert_eq!(s, "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn strings_and_numbers_are_written_one_way() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        s.clear();
        push_value(
            &mut s,
            &Value::List(vec![
                Value::Number(40.0),
                Value::Number(79.99),
                Value::Number(f64::NAN),
                Value::Number(-0.5),
            ]),
        );
        assert_eq!(s, "[40,79.99,null,-0.5]");
    }

    #[test]
    fn hex_round_trips() {
        let h = hash_body(b"x");
        assert_eq!(unhex(hex(&h).as_bytes()), Some(h));
        assert_eq!(unhex(b"zz"), None);
    }
}
