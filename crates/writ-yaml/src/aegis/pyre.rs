//! `param_matches` patterns: Python regular expressions that writ can
//! match with a glob.
//!
//! agent-aegis 1.0.0 decides `param_matches: {p: r}` with
//! `re.search(r, str(value))`: a search anywhere in the text, where `.`
//! matches any character but a line break and `$` matches at the end or
//! before a final line break. writ has no regular expressions, so it reads
//! the part of the language that a glob says exactly: plain and escaped
//! characters, `.`, classes, `?` after one of those, `^` first and `$`
//! last. Anything else (`*`, `+`, `|`, groups, `\d`, flags) is refused
//! with E0210, so a rule never means less than its author wrote.

/// A `param_matches` pattern in writ's terms.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Search {
    /// The empty pattern: found in every value.
    Always,
    /// A glob over the whole string with the same matches as the search.
    Glob(String),
}

/// Why a pattern cannot be read: a lowercase phrase for the message.
pub(crate) type Unreadable = &'static str;

pub(crate) fn translate(pattern: &str) -> Result<Search, Unreadable> {
    if pattern.is_empty() {
        return Ok(Search::Always);
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut at = 0;
    let anchored_start = chars.first() == Some(&'^');
    if anchored_start {
        at = 1;
    }
    let mut end = chars.len();
    let anchored_end = end > at
        && chars.last() == Some(&'$')
        && !ends_escaped(chars.get(..end - 1).unwrap_or_default());
    if anchored_end {
        end -= 1;
    }
    let body = chars.get(at..end).unwrap_or_default();
    if body.is_empty() && !(anchored_start && anchored_end) {
        // `^` or `$` alone is found in every text.
        return Ok(Search::Always);
    }
    let mut out = String::new();
    if !anchored_start {
        out.push('*');
    }
    let mut i = 0;
    while let Some(&c) = body.get(i) {
        i += 1;
        let atom = match c {
            '\\' => {
                let e = *body.get(i).ok_or("it ends with a lone `\\`")?;
                i += 1;
                if e.is_alphanumeric() || e == '_' {
                    return Err("it uses an escape such as `\\d` or `\\b`");
                }
                escaped(e)
            }
            '.' => "[!\n]".to_owned(),
            '[' => {
                let (class, next) = class(body, i)?;
                i = next;
                class
            }
            '*' | '+' | '{' | '}' => return Err("it repeats with `*`, `+` or `{..}`"),
            '|' => return Err("it has alternatives `|`"),
            '(' | ')' => return Err("it has groups `(..)`"),
            '^' | '$' => return Err("it has `^` or `$` inside"),
            '?' => return Err("it has a `?` with nothing before it"),
            other => escaped(other),
        };
        if body.get(i) == Some(&'?') {
            i += 1;
            if body.get(i) == Some(&'?') || body.get(i) == Some(&'+') {
                return Err("it uses a lazy or possessive `?`");
            }
            out.push('{');
            out.push_str(&atom);
            out.push_str(",}");
        } else {
            out.push_str(&atom);
        }
    }
    if anchored_end {
        // `$` matches at the end and before a final line break.
        out.push_str("{,\n}");
    } else {
        out.push('*');
    }
    Ok(Search::Glob(out))
}

fn ends_escaped(chars: &[char]) -> bool {
    chars.iter().rev().take_while(|c| **c == '\\').count() % 2 == 1
}

/// A character as writ's glob writes it: `,` too, since a `?` puts atoms
/// inside `{..}`; in a class, `]`, `-`, `!` and `^` as well.
fn escaped(c: char) -> String {
    if matches!(
        c,
        '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\' | '-' | '!' | '^'
    ) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// A class `[...]` starting after its `[`: the glob class and the index
/// after its `]`.
fn class(body: &[char], mut i: usize) -> Result<(String, usize), Unreadable> {
    let mut out = String::from("[");
    if body.get(i) == Some(&'^') {
        out.push('!');
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *body.get(i).ok_or("a `[` has no matching `]`")?;
        i += 1;
        let lo = match c {
            ']' if !first => {
                out.push(']');
                return Ok((out, i));
            }
            '\\' => {
                let e = *body.get(i).ok_or("a `[` has no matching `]`")?;
                i += 1;
                if e.is_alphanumeric() || e == '_' {
                    return Err("it uses an escape such as `\\d` inside a class");
                }
                e
            }
            '[' if body.get(i) == Some(&':') => return Err("it uses a `[:` inside a class"),
            '&' | '~' | '|' if body.get(i) == Some(&c) => {
                return Err("it uses a set operation inside a class");
            }
            other => other,
        };
        first = false;
        out.push_str(&escaped(lo));
        if body.get(i) == Some(&'-') && body.get(i + 1).is_some_and(|n| *n != ']') {
            i += 1;
            let mut hi = *body.get(i).ok_or("a `[` has no matching `]`")?;
            i += 1;
            if hi == '\\' {
                hi = *body.get(i).ok_or("a `[` has no matching `]`")?;
                i += 1;
                if hi.is_alphanumeric() || hi == '_' {
                    return Err("it uses an escape such as `\\d` inside a class");
                }
            }
            if hi < lo {
                return Err("it has a reversed range");
            }
            out.push('-');
            out.push_str(&escaped(hi));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> String {
        match translate(p) {
            Ok(Search::Glob(g)) => g,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn searches_become_globs() {
        assert_eq!(glob("rm"), "*rm*");
        assert_eq!(glob("^rm"), "rm*");
        assert_eq!(glob("rm$"), "*rm{,\n}");
        assert_eq!(glob("^a.c$"), "a[!\n]c{,\n}");
        assert_eq!(glob("^[0-9]x?"), "[0-9]{x,}*");
        assert_eq!(glob("[^a-]"), "*[!a\\-]*");
        assert_eq!(glob("a\\.b"), "*a.b*");
        assert_eq!(glob("a\\$"), "*a$*");
        assert_eq!(translate(""), Ok(Search::Always));
        assert_eq!(translate("^"), Ok(Search::Always));
        assert_eq!(glob("^$"), "{,\n}");
    }

    #[test]
    fn what_a_glob_cannot_say_is_refused() {
        for p in [
            "a*",
            "a+",
            "a|b",
            "(a)",
            "\\d",
            "a{2}",
            "[[:alpha:]]",
            "x[b-a]",
            "??",
        ] {
            assert!(translate(p).is_err(), "{p}");
        }
    }
}
