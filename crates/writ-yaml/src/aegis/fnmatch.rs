//! Aegis's globs, read as Python's `fnmatch.translate` reads them, and
//! rewritten in writ's glob language with the same matches.
//!
//! agent-aegis 1.0.0 compiles `match.type`, `match.target` and
//! `match.agent` with `re.compile(fnmatch.translate(p))` and matches whole
//! strings, case-sensitively. fnmatch and writ agree on `*` (any run, line
//! breaks included) and `?` (one character), but not on the rest: fnmatch
//! has no escapes and no `{a,b}`, reads `[^a]` as a class of `^` and `a`,
//! an unclosed `[` as a plain `[`, and drops reversed ranges (`[z-a]`)
//! instead of refusing them. So every character fnmatch takes literally is
//! escaped here, and each class is rebuilt from the regular expression
//! Python would compile, following `fnmatch.translate` step by step.

/// What an Aegis glob becomes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Translated {
    /// writ glob text with the same matches.
    Glob(String),
    /// A pattern no string matches (an empty class, `[b-a]`).
    Never,
}

/// Why Python would refuse the pattern when the policy loads (Aegis raises
/// then, so writ refuses the policy).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// Translates one Aegis pattern.
pub(crate) fn translate(pat: &str) -> Result<Translated, Refused> {
    let p: Vec<char> = pat.chars().collect();
    let n = p.len();
    let mut out = String::new();
    let mut never = false;
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        i += 1;
        match c {
            '*' => out.push('*'),
            '?' => out.push('?'),
            '[' => {
                let mut j = i;
                if p.get(j) == Some(&'!') {
                    j += 1;
                }
                if p.get(j) == Some(&']') {
                    j += 1;
                }
                while j < n && p.get(j) != Some(&']') {
                    j += 1;
                }
                if j >= n {
                    literal(&mut out, '[');
                    continue;
                }
                match class(&p, i, j)? {
                    Class::Never => never = true,
                    Class::AnyChar => out.push('?'),
                    Class::Set { negated, items } => {
                        out.push('[');
                        if negated {
                            out.push('!');
                        }
                        for (lo, hi) in items {
                            member(&mut out, lo);
                            if hi != lo {
                                out.push('-');
                                member(&mut out, hi);
                            }
                        }
                        out.push(']');
                    }
                }
                i = j + 1;
            }
            other => literal(&mut out, other),
        }
    }
    Ok(if never {
        Translated::Never
    } else {
        Translated::Glob(out)
    })
}

/// True when the pattern matches only itself (no `*`, `?` or closed class).
pub(crate) fn is_literal(pat: &str) -> bool {
    match translate(pat) {
        Ok(Translated::Glob(g)) => {
            let mut chars = g.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '*' | '?' | '[' => return false,
                    _ => {}
                }
            }
            true
        }
        _ => false,
    }
}

/// A character outside a class: only writ's own pattern characters need `\`.
fn literal(out: &mut String, c: char) {
    if matches!(c, '*' | '?' | '[' | '{' | '}' | '\\') {
        out.push('\\');
    }
    out.push(c);
}

/// A member of a class: `]`, `-`, `!`, `^` and `\` would mean something there.
fn member(out: &mut String, c: char) {
    if matches!(c, ']' | '-' | '!' | '^' | '\\' | '[') {
        out.push('\\');
    }
    out.push(c);
}

enum Class {
    Never,
    AnyChar,
    Set {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

fn text(p: &[char], from: usize, to: usize) -> Vec<char> {
    p.get(from..to).map(<[char]>::to_vec).unwrap_or_default()
}

/// The class `p[i..j]` (between `[` and `]`), as `fnmatch.translate`
/// builds its regular expression and `re` then reads it.
fn class(p: &[char], mut i: usize, j: usize) -> Result<Class, Refused> {
    let raw = text(p, i, j);
    // The text of the regular expression's class, as Python builds it.
    let mut stuff: Vec<char> = Vec::new();
    if !raw.contains(&'-') {
        for c in raw {
            if c == '\\' {
                stuff.push('\\');
            }
            stuff.push(c);
        }
    } else {
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut k = if p.get(i) == Some(&'!') { i + 2 } else { i + 1 };
        loop {
            let found = (k..j).find(|&x| p.get(x) == Some(&'-'));
            let Some(at) = found else { break };
            chunks.push(text(p, i, at));
            i = at + 1;
            k = at + 3;
        }
        let chunk = text(p, i, j);
        if chunk.is_empty() {
            chunks.last_mut().ok_or(Refused)?.push('-');
        } else {
            chunks.push(chunk);
        }
        // Remove empty ranges, as Python does (an empty chunk makes Python
        // fail on `[-1]`, and so the policy fail to load).
        let mut k = chunks.len();
        while k > 1 {
            k -= 1;
            let prev_last = *chunks.get(k - 1).and_then(|c| c.last()).ok_or(Refused)?;
            let next_first = *chunks.get(k).and_then(|c| c.first()).ok_or(Refused)?;
            if prev_last > next_first {
                let next = chunks.remove(k);
                if let Some(prev) = chunks.get_mut(k - 1) {
                    prev.pop();
                    prev.extend(next.into_iter().skip(1));
                }
            }
        }
        for (n, chunk) in chunks.into_iter().enumerate() {
            if n > 0 {
                stuff.push('-');
            }
            for c in chunk {
                if c == '\\' || c == '-' {
                    stuff.push('\\');
                }
                stuff.push(c);
            }
        }
    }
    // `&`, `~` and `|` are escaped (set operations); they stay literal.
    let mut escaped = Vec::with_capacity(stuff.len());
    for c in stuff {
        if matches!(c, '&' | '~' | '|') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    let stuff = escaped;
    if stuff.is_empty() {
        return Ok(Class::Never);
    }
    if stuff == ['!'] {
        return Ok(Class::AnyChar);
    }
    let (negated, body) = match stuff.first() {
        Some('!') => (true, stuff.get(1..).unwrap_or_default()),
        _ => (false, stuff.as_slice()),
    };
    // A leading `^` or `[` is escaped by fnmatch: a member, not negation.
    regex_class(negated, body)
}

/// Reads the inside of a regular-expression class the way Python's `re`
/// does, for the text fnmatch writes: backslash escapes a character, an
/// unescaped `-` between two members is a range, `]` first is a member.
fn regex_class(negated: bool, body: &[char]) -> Result<Class, Refused> {
    let mut items = Vec::new();
    let mut at = 0;
    let member = |at: &mut usize| -> Option<char> {
        let c = *body.get(*at)?;
        *at += 1;
        if c == '\\' {
            let e = *body.get(*at)?;
            *at += 1;
            Some(e)
        } else {
            Some(c)
        }
    };
    while at < body.len() {
        let lo = member(&mut at).ok_or(Refused)?;
        if body.get(at) == Some(&'-') && at + 1 < body.len() {
            at += 1;
            let hi = member(&mut at).ok_or(Refused)?;
            if hi < lo {
                // `re` refuses a reversed range: Aegis fails to load.
                return Err(Refused);
            }
            items.push((lo, hi));
        } else {
            items.push((lo, lo));
        }
    }
    if items.is_empty() {
        return Ok(if negated {
            Class::AnyChar
        } else {
            Class::Never
        });
    }
    Ok(Class::Set { negated, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> String {
        match translate(p) {
            Ok(Translated::Glob(g)) => g,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn plain_characters_are_escaped_and_stars_kept() {
        assert_eq!(glob("write_*"), "write_*");
        assert_eq!(glob("a{b,c}"), "a\\{b,c\\}");
        assert_eq!(glob("billing-agent!"), "billing-agent!");
        assert_eq!(glob("a\\b"), "a\\\\b");
        assert_eq!(glob("x?"), "x?");
    }

    #[test]
    fn classes_follow_python() {
        assert_eq!(glob("[abc]"), "[abc]");
        assert_eq!(glob("[!abc]"), "[!abc]");
        // fnmatch escapes a leading `^`: a member, not a negation.
        assert_eq!(glob("[^a]"), "[\\^a]");
        assert_eq!(glob("[a-c]"), "[a-c]");
        assert_eq!(glob("[a-]"), "[a\\-]");
        assert_eq!(glob("[]a]"), "[\\]a]");
        // An unclosed `[` is a plain `[`.
        assert_eq!(glob("[ab"), "\\[ab");
        // A reversed range is dropped; with nothing left the class never
        // matches, or (negated) matches any character.
        assert_eq!(translate("x[z-a]"), Ok(Translated::Never));
        assert_eq!(glob("x[!z-a]"), "x?");
        assert_eq!(glob("[a-cz-b]"), "[a-c]");
    }

    #[test]
    fn literals_are_told_apart() {
        assert!(is_literal("bot-1"));
        assert!(is_literal("[unclosed"));
        assert!(!is_literal("bot-*"));
        assert!(!is_literal("b[o]t"));
    }
}
