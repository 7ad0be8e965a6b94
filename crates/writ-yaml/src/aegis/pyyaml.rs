//! Plain scalars typed as PyYAML types them.
//!
//! Aegis reads its files with `yaml.safe_load`, which follows YAML 1.1:
//! unquoted `yes`, `on` and `off` are booleans, `18:00` is the number 1080
//! (base 60), `017` is octal 15, `1_000` is 1000, `1e3` is the string
//! `"1e3"` and `2025-01-15` is a date. writ's YAML reader follows YAML 1.2,
//! so before lowering an Aegis file every plain (unquoted, untagged) scalar
//! is typed again with PyYAML's rules, and the policy means what it means
//! to Aegis. Dates have no counterpart in a request; [`is_date`] lets the
//! reader refuse them where they would be compared.

use crate::tree::{Key, Kind, Node};

/// The tree with every plain scalar typed as PyYAML types it.
pub(crate) fn retype(node: &Node, source: &str) -> Node {
    let kind = match &node.kind {
        Kind::Seq(items) => Kind::Seq(items.iter().map(|i| retype(i, source)).collect()),
        Kind::Map(entries) => Kind::Map(
            entries
                .iter()
                .map(|(k, v)| (key(k, source), retype(v, source)))
                .collect(),
        ),
        kind => match plain_text(node, source) {
            Some(text) => resolve(&text).unwrap_or(Kind::Str(text)),
            None => kind.clone(),
        },
    };
    Node {
        kind,
        span: node.span,
    }
}

/// A key as written: writ's reader turns a plain `n` or `y` into `false`
/// or `true`, PyYAML keeps them as text.
fn key(k: &Key, source: &str) -> Key {
    let raw = source
        .get(k.span.start as usize..k.span.end as usize)
        .unwrap_or_default();
    let plain = raw.trim();
    let text = match plain.chars().next() {
        Some('\'' | '"' | '!' | '&' | '*' | '?') | None => k.text.clone(),
        Some(_) if plain.contains('\n') => k.text.clone(),
        Some(_) => plain.to_owned(),
    };
    Key { text, span: k.span }
}

/// The text of a plain scalar on one line, or `None` for a quoted, block,
/// tagged or aliased one.
pub(crate) fn plain_text(node: &Node, source: &str) -> Option<String> {
    if matches!(node.kind, Kind::Seq(_) | Kind::Map(_)) {
        return None;
    }
    let text = source.get(node.span.start as usize..node.span.end as usize)?;
    let text = text.trim();
    let first = text.chars().next()?;
    if matches!(first, '\'' | '"' | '|' | '>' | '!' | '&' | '*') || text.contains('\n') {
        return None;
    }
    Some(text.to_owned())
}

/// Whether a key written plain is a string to PyYAML (not `1`, `true`, `~`).
pub(crate) fn key_is_string(text: &str, source: &str, start: u32) -> bool {
    let raw = source.get(start as usize..).unwrap_or_default();
    if raw.starts_with('\'') || raw.starts_with('"') {
        return true;
    }
    matches!(resolve(text), None | Some(Kind::Str(_)))
}

/// True for a plain scalar PyYAML reads as a date or a timestamp.
pub(crate) fn is_date(node: &Node, source: &str) -> bool {
    plain_text(node, source).is_some_and(|t| timestamp(&t))
}

/// PyYAML's implicit resolvers (`yaml/resolver.py`) and constructors
/// (`yaml/constructor.py`); `None` for a string.
fn resolve(text: &str) -> Option<Kind> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Kind::Bool(true));
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Kind::Bool(false));
        }
        "" | "~" | "null" | "Null" | "NULL" => return Some(Kind::Null),
        _ => {}
    }
    if let Some(i) = int(text) {
        return Some(match i64::try_from(i) {
            Ok(i) => Kind::Int(i),
            #[expect(clippy::cast_precision_loss, reason = "as Python's float(int)")]
            Err(_) => Kind::Float(i as f64),
        });
    }
    float(text).map(Kind::Float)
}

fn sign(text: &str) -> (i128, &str) {
    match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    }
}

fn digits_with_underscores(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c == '_' || c.is_digit(radix))
}

fn parse_radix(s: &str, radix: u32) -> Option<i128> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    i128::from_str_radix(&clean, radix).ok()
}

/// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
/// | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
fn int(text: &str) -> Option<i128> {
    let (s, body) = sign(text);
    let value = if let Some(b) = body.strip_prefix("0b") {
        digits_with_underscores(b, 2).then(|| parse_radix(b, 2))??
    } else if let Some(h) = body.strip_prefix("0x") {
        digits_with_underscores(h, 16).then(|| parse_radix(h, 16))??
    } else if body == "0" {
        0
    } else if let Some(o) = body.strip_prefix('0') {
        digits_with_underscores(o, 8).then(|| parse_radix(o, 8))??
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let head = parts.next()?;
        if !head.starts_with(|c: char| ('1'..='9').contains(&c))
            || !digits_with_underscores(head, 10)
        {
            return None;
        }
        let mut v = parse_radix(head, 10)?;
        for part in parts {
            if !(1..=2).contains(&part.len())
                || !part.bytes().all(|b| b.is_ascii_digit())
                || (part.len() == 2 && part.as_bytes().first().is_some_and(|b| *b > b'5'))
            {
                return None;
            }
            v = v.checked_mul(60)?.checked_add(part.parse::<i128>().ok()?)?;
        }
        v
    } else if body.starts_with(|c: char| ('1'..='9').contains(&c))
        && digits_with_underscores(body, 10)
    {
        parse_radix(body, 10)?
    } else {
        return None;
    };
    value.checked_mul(s)
}

/// `[-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+][0-9]+)? | \.[0-9_]+([eE][-+][0-9]+)?
/// | [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
fn float(text: &str) -> Option<f64> {
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let signed = body.len() != text.len();
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (body.get(..at)?, Some(body.get(at + 1..)?)),
        None => (body, None),
    };
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let (int_part, frac) = mantissa.split_once('.')?;
    if !frac.chars().all(|c| c == '_' || c.is_ascii_digit()) {
        return None;
    }
    let frac_digits: String = frac.chars().filter(|c| *c != '_').collect();
    let value = if int_part.is_empty() {
        // `\.[0-9_]+`, without a sign.
        if signed || frac.is_empty() {
            return None;
        }
        format!("0.{frac_digits}0e{}", exponent.unwrap_or("+0"))
            .parse::<f64>()
            .ok()?
    } else if int_part.contains(':') {
        if exponent.is_some() {
            return None;
        }
        let whole = int(int_part)?;
        #[expect(clippy::cast_precision_loss, reason = "as PyYAML's float arithmetic")]
        let w = whole as f64;
        w + format!("0.{frac_digits}0").parse::<f64>().ok()?
    } else {
        if !int_part.starts_with(|c: char| c.is_ascii_digit())
            || !digits_with_underscores(int_part, 10)
        {
            return None;
        }
        let ip: String = int_part.chars().filter(|c| *c != '_').collect();
        format!("{ip}.{frac_digits}0e{}", exponent.unwrap_or("+0"))
            .parse::<f64>()
            .ok()?
    };
    Some(if neg { -value } else { value })
}

/// `YYYY-MM-DD`, or a full timestamp (`2001-12-14t21:59:43.10-05:00`).
fn timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() == 10
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
    {
        return true;
    }
    // The long form: a date with one- or two-digit month and day, then a
    // time. Recognised loosely: a date followed by `T`, `t` or blanks and
    // `H:MM:SS`.
    let Some((date, rest)) = text.split_once(['T', 't', ' ', '\t']) else {
        return false;
    };
    let mut parts = date.split('-');
    let ok_date = matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(y), Some(m), Some(d), None)
            if y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit())
                && (1..=2).contains(&m.len()) && m.bytes().all(|c| c.is_ascii_digit())
                && (1..=2).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit())
    );
    let rest = rest.trim_start();
    let mut time = rest.splitn(3, ':');
    ok_date
        && matches!(
            (time.next(), time.next(), time.next()),
            (Some(h), Some(m), Some(s))
                if (1..=2).contains(&h.len()) && h.bytes().all(|c| c.is_ascii_digit())
                    && m.len() == 2 && m.bytes().all(|c| c.is_ascii_digit())
                    && s.get(..2).is_some_and(|s| s.bytes().all(|c| c.is_ascii_digit()))
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_resolve_as_in_pyyaml() {
        assert_eq!(resolve("18:00"), Some(Kind::Int(1080)));
        assert_eq!(resolve("08:00"), None);
        assert_eq!(resolve("017"), Some(Kind::Int(15)));
        assert_eq!(resolve("0x1F"), Some(Kind::Int(31)));
        assert_eq!(resolve("0b101"), Some(Kind::Int(5)));
        assert_eq!(resolve("1_000"), Some(Kind::Int(1000)));
        assert_eq!(resolve("-7"), Some(Kind::Int(-7)));
        assert_eq!(resolve("yes"), Some(Kind::Bool(true)));
        assert_eq!(resolve("Off"), Some(Kind::Bool(false)));
        assert_eq!(resolve("y"), None);
        assert_eq!(resolve("~"), Some(Kind::Null));
        assert_eq!(resolve("1.5"), Some(Kind::Float(1.5)));
        assert_eq!(resolve("1."), Some(Kind::Float(1.0)));
        assert_eq!(resolve(".5"), Some(Kind::Float(0.5)));
        assert_eq!(resolve("1.0e+3"), Some(Kind::Float(1000.0)));
        // YAML 1.1 floats need a dot and a signed exponent.
        assert_eq!(resolve("1e3"), None);
        assert_eq!(resolve("1.0e3"), None);
        assert_eq!(resolve("1:30.5"), Some(Kind::Float(90.5)));
        assert_eq!(resolve("abc"), None);
        assert_eq!(resolve("12abc"), None);
        assert_eq!(resolve("09"), None);
    }

    #[test]
    fn dates_are_recognised() {
        assert!(timestamp("2025-01-15"));
        assert!(timestamp("2001-12-14t21:59:43.10-05:00"));
        assert!(timestamp("2001-12-14 21:59:43.10"));
        assert!(!timestamp("2025-1-15"));
        assert!(!timestamp("today"));
    }
}
