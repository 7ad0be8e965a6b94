//! JSON strings written by hand, as serde_json writes them: `"`, `\` and
//! the control characters escaped (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
//! `\f`, and `\u00xx` for the others), every other character as it is.
//! The one string writer of every JSON text writ builds without serde:
//! a decision's answer (`Decision::to_json`), the audit log's canonical
//! lines, the allow answer of `writ serve`'s MeshGuard `/proxy/check`.
//! Text without anything to escape, the common case, is found eight bytes
//! at a time and copied whole. [`decimal`] writes the audit lines' whole
//! numbers and those of a full limit's sentence.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any of eight bytes is `"`, `\` or a control character. Never
/// false when one is (it may be true when none is; the caller then looks
/// byte by byte).
const fn may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let b = w ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b & HIGH;
    (below_space | quote | backslash) != 0
}

const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The first byte at or after `from` that a JSON string must escape:
/// eight bytes at a time, then one by one. Every such byte is ASCII, so
/// in text it is a character of its own.
#[must_use]
#[inline]
pub fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        if may_need_escape(w) {
            break;
        }
        i += 8;
    }
    let at = bytes.get(i..)?.iter().position(|&b| needs_escape(b))?;
    Some(i + at)
}

/// `n` in decimal, written into `buf`, without the formatting machinery
/// (a record's sequence number and id, a limit's count in a sentence).
#[must_use]
#[inline]
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
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
    // ASCII digits.
    std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or_default()
}

/// The short escape of a byte [`next_escape`] finds, if it has one.
const fn short_escape(b: u8) -> Option<&'static str> {
    match b {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        b'\n' => Some("\\n"),
        b'\r' => Some("\\r"),
        b'\t' => Some("\\t"),
        0x08 => Some("\\b"),
        0x0c => Some("\\f"),
        _ => None,
    }
}

/// `\u00xx` of a control character.
fn unicode_escape(b: u8) -> [u8; 6] {
    let hex = |n: u8| HEX.get(usize::from(n & 15)).copied().unwrap_or(b'0');
    [b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b)]
}

/// Appends `s` to `out` as a JSON string, quotes included.
#[inline]
pub fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    while let Some(at) = next_escape(bytes, run) {
        // `at` holds an ASCII byte: both ends of the run are character
        // boundaries.
        out.push_str(s.get(run..at).unwrap_or_default());
        let b = bytes.get(at).copied().unwrap_or(0);
        match short_escape(b) {
            Some(e) => out.push_str(e),
            None => {
                for c in unicode_escape(b) {
                    out.push(char::from(c));
                }
            }
        }
        run = at + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// Appends `s`, UTF-8 text (or bytes packed from text), to `out` as a
/// JSON string, quotes included.
#[inline]
pub fn push_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0;
    while let Some(at) = next_escape(s, run) {
        out.extend_from_slice(s.get(run..at).unwrap_or_default());
        let b = s.get(at).copied().unwrap_or(0);
        match short_escape(b) {
            Some(e) => out.extend_from_slice(e.as_bytes()),
            None => out.extend_from_slice(&unicode_escape(b)),
        }
        run = at + 1;
    }
    out.extend_from_slice(s.get(run..).unwrap_or_default());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value below 0x80 and a few wider characters, alone, at
    /// either end and in the middle of runs shorter and longer than eight
    /// bytes: both writers write what serde_json writes.
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut chars: Vec<char> = (0u8..0x80).map(char::from).collect();
        chars.extend(['é', '\u{2028}', '€', '😀', '\u{7f}', '\u{80}']);
        let mut compared = 0;
        for c in chars {
            for s in [
                c.to_string(),
                format!("ab{c}"),
                format!("{c}cd"),
                format!("x{c}y{c}{c}z"),
                format!("0123456789abcdef{c}"),
                format!("{c}0123456789abcdef{c}0123456"),
                format!("01234567{c}89abcdef"),
            ] {
                let theirs = serde_json::to_string(&s).unwrap_or_default();
                let mut ours = String::new();
                push_str(&mut ours, &s);
                assert_eq!(ours, theirs, "{s:?}");
                let mut bytes = Vec::new();
                push_bytes(&mut bytes, s.as_bytes());
                assert_eq!(String::from_utf8_lossy(&bytes), theirs, "{s:?}");
                compared += 1;
            }
        }
        assert_eq!(compared, 134 * 7);
    }

    /// Decimals as `Display` writes them, at every length.
    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let mut n = 0u64;
        let mut compared = 0;
        while compared < 200 {
            for m in [n, n.wrapping_sub(1), n.wrapping_add(1)] {
                assert_eq!(decimal(m, &mut [0; 20]), m.to_string());
                compared += 1;
            }
            n = n.saturating_mul(10).saturating_add(9).max(1);
            if n == u64::MAX {
                assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
                break;
            }
        }
        assert!(compared >= 60, "{compared}");
    }

    /// The word test finds every byte that needs an escape, wherever it
    /// sits in the word, and lets every other ASCII byte through.
    #[test]
    fn the_word_test_misses_no_byte_that_needs_an_escape() {
        let mut checked = 0;
        for b in 0u8..=255 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                if let Some(x) = word.get_mut(at) {
                    *x = b;
                }
                let w = u64::from_le_bytes(word);
                if needs_escape(b) {
                    assert!(may_need_escape(w), "byte {b:#x} at {at}");
                }
                if b.is_ascii() && !needs_escape(b) {
                    assert!(!may_need_escape(w), "byte {b:#x} at {at}");
                }
                assert_eq!(next_escape(&word, 0), needs_escape(b).then_some(at));
                checked += 1;
            }
        }
        assert_eq!(checked, 256 * 8);
    }
}
