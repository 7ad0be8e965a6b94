//! writ's glob language: the parser and the reference matcher.
//!
//! The semantics are pinned here and in docs/language.md ("Semantics"):
//!
//! - `*` matches any run of characters, including none, and including
//!   `:`, `/` and newlines;
//! - `?` matches exactly one character (one Unicode scalar value: `é` is
//!   one character, whatever its UTF-8 length);
//! - `[abc]`, `[a-z]`, `[!abc]` (or `[^abc]`) match one character in (or
//!   not in) the class; a `]` right after `[` or `[!` is a member, and a
//!   `-` first or last is a member;
//! - `{a,b}` matches any of its alternatives (which may hold globs but
//!   not other alternatives; an empty alternative matches the empty
//!   string); a `,` outside braces is a plain character;
//! - `\` makes the next character plain.
//!
//! Case-insensitive patterns (host names) fold ASCII letters only, as DNS
//! does.
//!
//! Two matchers implement the semantics independently, and the
//! differential tests hold them to each other: [`Glob::is_match`] below (a
//! direct simulation over characters, written to be obviously correct: the
//! reference evaluator uses it) and the runtime's glob programs
//! (`writ_runtime::glob`: alternatives expanded by the compiler from
//! [`Glob::tokens`], segments matched greedily between `*`s). globset,
//! which writ used before, matches `?` and classes against single bytes,
//! so it could not give `?` its documented meaning.

/// One element of a glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A plain character.
    Char(char),
    /// `?`: any one character.
    Any,
    /// `*`: any run of characters.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `{a,b}`: one of the alternatives (which hold no alternatives).
    Alternatives(Vec<Vec<Token>>),
}

/// A parsed glob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    case_insensitive: bool,
}

/// Why a glob does not parse; the message is lowercase and user-facing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobError {
    pub message: String,
}

fn err<T>(message: impl Into<String>) -> Result<T, GlobError> {
    Err(GlobError {
        message: message.into(),
    })
}

impl Glob {
    /// Parses a glob.
    ///
    /// # Errors
    /// An unclosed `[` or `{`, a `}` without `{`, nested `{`, a reversed
    /// range, or a trailing lone `\`.
    pub fn parse(text: &str, case_insensitive: bool) -> Result<Glob, GlobError> {
        let mut chars = text.chars().peekable();
        let mut stack: Vec<Vec<Token>> = vec![Vec::new()];
        // Inside `{...}`: the alternatives finished so far.
        let mut alternatives: Option<Vec<Vec<Token>>> = None;
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => match chars.next() {
                    Some(e) => Token::Char(e),
                    None => return err("the pattern ends with a lone `\\`"),
                },
                '[' => class(&mut chars)?,
                '{' => {
                    if alternatives.is_some() {
                        return err("alternatives `{...}` cannot be nested");
                    }
                    alternatives = Some(Vec::new());
                    stack.push(Vec::new());
                    continue;
                }
                ',' if alternatives.is_some() => {
                    let done = stack.pop().unwrap_or_default();
                    if let Some(alts) = alternatives.as_mut() {
                        alts.push(done);
                    }
                    stack.push(Vec::new());
                    continue;
                }
                '}' => {
                    let Some(mut alts) = alternatives.take() else {
                        return err("a `}` has no matching `{`");
                    };
                    alts.push(stack.pop().unwrap_or_default());
                    Token::Alternatives(alts)
                }
                other => Token::Char(other),
            };
            if let Some(top) = stack.last_mut() {
                top.push(token);
            }
        }
        if alternatives.is_some() {
            return err("unclosed alternatives: a `{` has no matching `}`");
        }
        let mut tokens = stack.pop().unwrap_or_default();
        // One token a character, kept as long as the pattern: the room a
        // growing vector leaves would be most of a rule's memory.
        tokens.shrink_to_fit();
        Ok(Glob {
            tokens,
            case_insensitive,
        })
    }

    #[must_use]
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Whether the whole of `s` matches: a simulation of the set of
    /// character positions the glob can have reached, token by token. Time
    /// is O(tokens × characters), whatever the pattern.
    #[must_use]
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let mut start = vec![false; chars.len() + 1];
        if let Some(first) = start.first_mut() {
            *first = true;
        }
        let end = self.run(&self.tokens, &chars, start);
        end.last().copied().unwrap_or(false)
    }

    fn run(&self, tokens: &[Token], chars: &[char], mut at: Vec<bool>) -> Vec<bool> {
        for token in tokens {
            let mut next = vec![false; at.len()];
            match token {
                Token::Star => {
                    // Every position from the first one reached on.
                    if let Some(first) = at.iter().position(|&b| b) {
                        for slot in next.iter_mut().skip(first) {
                            *slot = true;
                        }
                    }
                }
                Token::Alternatives(alts) => {
                    for alt in alts {
                        let reached = self.run(alt, chars, at.clone());
                        for (n, r) in next.iter_mut().zip(reached) {
                            *n |= r;
                        }
                    }
                }
                one => {
                    for (i, c) in chars.iter().enumerate() {
                        if at.get(i).copied().unwrap_or(false)
                            && self.one(one, *c)
                            && let Some(slot) = next.get_mut(i + 1)
                        {
                            *slot = true;
                        }
                    }
                }
            }
            at = next;
        }
        at
    }

    /// Whether a one-character token matches `c`.
    fn one(&self, token: &Token, c: char) -> bool {
        match token {
            Token::Any => true,
            Token::Char(e) => *e == c || (self.case_insensitive && e.eq_ignore_ascii_case(&c)),
            Token::Class { negated, ranges } => {
                let inside = |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                let hit = inside(c)
                    || (self.case_insensitive
                        && (inside(c.to_ascii_lowercase()) || inside(c.to_ascii_uppercase())));
                hit != *negated
            }
            Token::Star | Token::Alternatives(_) => false,
        }
    }
}

/// Reads a class after its `[`.
fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, GlobError> {
    let unclosed = "unclosed character class: a `[` has no matching `]`";
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    let mut ranges: Vec<(char, char)> = Vec::new();
    let mut first = true;
    loop {
        let Some(c) = chars.next() else {
            return err(unclosed);
        };
        let lo = match c {
            ']' if !first => break,
            '\\' => match chars.next() {
                Some(e) => e,
                None => return err(unclosed),
            },
            other => other,
        };
        first = false;
        // A range `lo-hi`, unless the `-` is the class's last character.
        let mut ahead = chars.clone();
        if ahead.next() == Some('-')
            && let Some(hi) = ahead.next()
            && hi != ']'
        {
            let hi = if hi == '\\' {
                match ahead.next() {
                    Some(e) => e,
                    None => return err(unclosed),
                }
            } else {
                hi
            };
            if hi < lo {
                return err(format!("invalid character range `{lo}-{hi}`"));
            }
            *chars = ahead;
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    Ok(Token::Class { negated, ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        match Glob::parse(p, false) {
            Ok(g) => g.is_match(s),
            Err(e) => unreachable!("{p}: {e:?}"),
        }
    }

    #[test]
    fn star_crosses_everything_including_newlines() {
        assert!(m("rm*f", "rm\n-rf"));
        assert!(m("a*", "a"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "a/x:b\nc"));
        assert!(!m("a*b", "ab\nc"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("drop_?", "drop_é"));
        assert!(m("drop_?", "drop_😀"));
        assert!(m("drop_?", "drop_\n"));
        assert!(!m("drop_?", "drop_"));
        assert!(!m("drop_?", "drop_ab"));
    }

    #[test]
    fn classes_are_over_characters() {
        assert!(m("[é]x", "éx"));
        assert!(m("[!a]x", "éx"));
        assert!(m("[^a]x", "\nx"));
        assert!(!m("[!a]x", "ax"));
        assert!(m("[a-c]", "b"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(m("[a-]", "-"));
        assert!(m("[\\]]", "]"));
        assert!(!m("[a-c]", "d"));
    }

    #[test]
    fn alternatives_and_escapes() {
        assert!(m("{read,write}:doc", "write:doc"));
        assert!(m("x{,y}", "x"));
        assert!(m("x{,y}", "xy"));
        assert!(m("a,b", "a,b"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("{a*,b?}z", "bqz"));
    }

    #[test]
    fn errors_are_reported() {
        for bad in ["[abc", "{a,b", "a}", "{a,{b}}", "\\", "[z-a]"] {
            assert!(Glob::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn case_insensitive_folds_ascii_only() {
        let g = Glob::parse("*.Example.[a-c]om", true);
        assert!(matches!(&g, Ok(g) if g.is_match("api.EXAMPLE.Com")));
        assert!(matches!(&g, Ok(g) if g.is_match("api.example.com")));
        let k = Glob::parse("k", true);
        // The Kelvin sign folds to `k` in Unicode, not in ASCII.
        assert!(matches!(&k, Ok(g) if !g.is_match("\u{212a}")));
    }
}
