//! The writ language's tokens, by `logos`.
//!
//! Lexing never fails: a character the language has no use for, an
//! unterminated string or a malformed number becomes [`Tok::Error`] plus a
//! diagnostic, and the parser carries on past it. Comments are not tokens
//! the grammar sees; [`lex`] returns them on the side so that the formatter
//! and `writ convert` can put them back.

use std::fmt;

use logos::Logos;
use writ_diagnostics::{Code, Diagnostic, FileId, Span};

/// Why a token could not be read; turned into a diagnostic by [`lex`].
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LexError {
    #[default]
    Character,
    Unterminated,
    Escape(String),
    Number(String),
}

/// A string literal's decoded value.
fn string(lex: &mut logos::Lexer<'_, Tok>) -> Result<String, LexError> {
    let raw = lex.slice();
    let body = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    unescape(body)
}

fn unescape(body: &str) -> Result<String, LexError> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let rest: String = chars.clone().collect();
                let Some(hex) = rest
                    .strip_prefix('{')
                    .and_then(|r| r.split_once('}'))
                    .map(|(h, _)| h)
                else {
                    return Err(LexError::Escape("\\u".to_owned()));
                };
                let ch = u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| LexError::Escape(format!("\\u{{{hex}}}")))?;
                out.push(ch);
                for _ in 0..hex.chars().count() + 2 {
                    chars.next();
                }
            }
            Some(other) => return Err(LexError::Escape(format!("\\{other}"))),
            None => return Err(LexError::Escape("\\".to_owned())),
        }
    }
    Ok(out)
}

fn unterminated(_: &mut logos::Lexer<'_, Tok>) -> Result<(), LexError> {
    Err(LexError::Unterminated)
}

fn number(lex: &mut logos::Lexer<'_, Tok>) -> Result<f64, LexError> {
    let raw = lex.slice();
    let cleaned: String = raw.chars().filter(|c| *c != '_').collect();
    let valid_shape = !raw.starts_with('_')
        && !raw.ends_with('_')
        && !raw.contains("__")
        && cleaned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match cleaned.parse::<f64>() {
        Ok(n) if valid_shape && n.is_finite() => Ok(n),
        _ => Err(LexError::Number(raw.to_owned())),
    }
}

/// A token. Keywords are reserved everywhere except as condition field
/// names and list items, where the grammar accepts them as plain words.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = LexError)]
#[logos(skip r"[ \t\r\n\f\u{feff}]+")]
pub enum Tok {
    #[regex(r"#[^\n]*", allow_greedy = true)]
    Comment,

    #[token("policy")]
    Policy,
    #[token("agent")]
    Agent,
    #[token("role")]
    Role,
    #[token("every")]
    Every,
    #[token("rule")]
    Rule,
    #[token("allow")]
    Allow,
    #[token("deny")]
    Deny,
    #[token("approve")]
    Approve,
    #[token("version")]
    Version,
    #[token("description")]
    Description,
    #[token("combine")]
    Combine,
    #[token("default")]
    Default,
    #[token("timezone")]
    Timezone,
    #[token("max_delegation_depth")]
    MaxDelegationDepth,
    #[token("ceiling")]
    Ceiling,
    #[token("entry_agents")]
    EntryAgents,
    #[token("risk")]
    Risk,
    #[token("because")]
    Because,
    #[token("roles")]
    Roles,
    #[token("tier")]
    Tier,
    #[token("tags")]
    Tags,
    #[token("token_prefix")]
    TokenPrefix,
    #[token("models")]
    Models,
    #[token("tools")]
    Tools,
    #[token("hosts")]
    Hosts,
    #[token("block")]
    Block,
    #[token("require_tls")]
    RequireTls,
    #[token("limit")]
    Limit,
    #[token("per")]
    Per,
    #[token("shared")]
    Shared,
    #[token("on")]
    On,
    #[token("as")]
    As,
    #[token("delegates")]
    Delegates,
    #[token("for")]
    For,
    #[token("agents")]
    Agents,
    #[token("tiers")]
    Tiers,
    #[token("when")]
    When,
    #[token("require")]
    Require,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("in")]
    In,
    #[token("matches")]
    Matches,
    #[token("contains")]
    Contains,
    #[token("exists")]
    Exists,
    #[token("time")]
    Time,
    #[token("weekday")]
    Weekday,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("null")]
    Null,

    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,

    #[regex(r"[A-Za-z_][A-Za-z0-9_\-]*", |lex| lex.slice().to_owned())]
    Ident(String),
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, string)]
    Str(String),
    /// An unterminated string runs to the end of its line.
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, unterminated)]
    Unterminated,
    #[regex(r"-?[0-9][A-Za-z0-9_.]*", number)]
    #[regex(r"-?[0-9][0-9_.]*[eE][+-][0-9_]+", number)]
    Num(f64),

    /// Stands for input that could not be lexed; already reported.
    Error,
}

impl Tok {
    /// The keyword's text, when the token is a keyword.
    #[must_use]
    pub fn keyword(&self) -> Option<&'static str> {
        KEYWORDS.iter().find(|(_, t)| t == self).map(|(w, _)| *w)
    }
}

/// Every keyword and its token, for messages, completion and the printer.
pub const KEYWORDS: &[(&str, Tok)] = &[
    ("policy", Tok::Policy),
    ("agent", Tok::Agent),
    ("role", Tok::Role),
    ("every", Tok::Every),
    ("rule", Tok::Rule),
    ("allow", Tok::Allow),
    ("deny", Tok::Deny),
    ("approve", Tok::Approve),
    ("version", Tok::Version),
    ("description", Tok::Description),
    ("combine", Tok::Combine),
    ("default", Tok::Default),
    ("timezone", Tok::Timezone),
    ("max_delegation_depth", Tok::MaxDelegationDepth),
    ("ceiling", Tok::Ceiling),
    ("entry_agents", Tok::EntryAgents),
    ("risk", Tok::Risk),
    ("because", Tok::Because),
    ("roles", Tok::Roles),
    ("tier", Tok::Tier),
    ("tags", Tok::Tags),
    ("token_prefix", Tok::TokenPrefix),
    ("models", Tok::Models),
    ("tools", Tok::Tools),
    ("hosts", Tok::Hosts),
    ("block", Tok::Block),
    ("require_tls", Tok::RequireTls),
    ("limit", Tok::Limit),
    ("per", Tok::Per),
    ("shared", Tok::Shared),
    ("on", Tok::On),
    ("as", Tok::As),
    ("delegates", Tok::Delegates),
    ("for", Tok::For),
    ("agents", Tok::Agents),
    ("tiers", Tok::Tiers),
    ("when", Tok::When),
    ("require", Tok::Require),
    ("and", Tok::And),
    ("or", Tok::Or),
    ("not", Tok::Not),
    ("in", Tok::In),
    ("matches", Tok::Matches),
    ("contains", Tok::Contains),
    ("exists", Tok::Exists),
    ("time", Tok::Time),
    ("weekday", Tok::Weekday),
    ("true", Tok::True),
    ("false", Tok::False),
    ("null", Tok::Null),
];

/// True when `word` is reserved.
#[must_use]
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|(w, _)| *w == word)
}

/// True when `word` can be written bare: an identifier that is not a keyword.
#[must_use]
pub fn is_bare_word(word: &str) -> bool {
    is_ident_shaped(word) && !is_keyword(word)
}

/// True when `word` lexes as one identifier-or-keyword token.
#[must_use]
pub fn is_ident_shaped(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(k) = self.keyword() {
            return write!(f, "`{k}`");
        }
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Str(s) => write!(f, "{}", quote(s)),
            Tok::Num(n) => write!(f, "`{n}`"),
            Tok::Comment => f.write_str("a comment"),
            Tok::Error | Tok::Unterminated => f.write_str("unreadable input"),
            other => {
                let text = match other {
                    Tok::LBrace => "{",
                    Tok::RBrace => "}",
                    Tok::LBracket => "[",
                    Tok::RBracket => "]",
                    Tok::LParen => "(",
                    Tok::RParen => ")",
                    Tok::Comma => ",",
                    Tok::Colon => ":",
                    Tok::Dot => ".",
                    Tok::EqEq => "==",
                    Tok::NotEq => "!=",
                    Tok::Lt => "<",
                    Tok::Le => "<=",
                    Tok::Gt => ">",
                    _ => ">=",
                };
                write!(f, "`{text}`")
            }
        }
    }
}

/// A `#` comment: its span (from `#` to the end of the line) and text
/// after the `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
    pub text: String,
}

/// The token stream of one file.
#[derive(Debug, Default)]
pub struct Lexed {
    /// `(start, token, end)` byte offsets, comments excluded.
    pub tokens: Vec<(usize, Tok, usize)>,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
}

fn span(file: FileId, range: &std::ops::Range<usize>) -> Span {
    Span::new(
        file,
        u32::try_from(range.start).unwrap_or(u32::MAX),
        u32::try_from(range.end).unwrap_or(u32::MAX),
    )
}

/// Lexes a whole file.
#[must_use]
pub fn lex(file: FileId, text: &str) -> Lexed {
    lex_range(file, text, 0..text.len())
}

/// Lexes the part `range` of `text`, with offsets in the whole text. The
/// parser reads a file item by item through this (tokens never span lines,
/// and items start lines). An out-of-range `range` lexes nothing.
#[must_use]
pub fn lex_range(file: FileId, text: &str, range: std::ops::Range<usize>) -> Lexed {
    let mut out = Lexed::default();
    let base = range.start;
    let Some(part) = text.get(range) else {
        return out;
    };
    let mut lexer = Tok::lexer(part);
    while let Some(result) = lexer.next() {
        let local = lexer.span();
        let range = local.start + base..local.end + base;
        let sp = span(file, &range);
        match result {
            Ok(Tok::Comment) => out.comments.push(Comment {
                span: sp,
                text: lexer.slice().get(1..).unwrap_or("").trim_end().to_owned(),
            }),
            Ok(tok) => out.tokens.push((range.start, tok, range.end)),
            Err(e) => {
                let slice = lexer.slice();
                out.diagnostics.push(lex_error(sp, slice, e));
                out.tokens.push((range.start, Tok::Error, range.end));
            }
        }
    }
    out
}

/// True when the line starting at `at` starts a top-level item: it begins,
/// in its first column, with `policy`, `agent`, `role`, `every` or `rule`.
#[must_use]
pub fn starts_item(text: &str, at: usize) -> bool {
    let Some(rest) = text.get(at..) else {
        return false;
    };
    if !rest.starts_with(['p', 'a', 'r', 'e']) {
        return false;
    }
    let line = rest.split('\n').next().unwrap_or(rest);
    matches!(
        Tok::lexer(line).next(),
        Some(Ok(Tok::Policy
            | Tok::Agent
            | Tok::Role
            | Tok::Every
            | Tok::Rule))
    )
}

fn lex_error(sp: Span, slice: &str, e: LexError) -> Diagnostic {
    match e {
        LexError::Unterminated => Diagnostic::new(
            Code::UnterminatedString,
            sp,
            "this string has no closing `\"` on its line",
        )
        .with_help("add `\"` where the string ends; strings cannot span lines (write `\\n` for a line break)"),
        LexError::Escape(esc) => Diagnostic::new(
            Code::InvalidEscape,
            sp,
            format!("`{esc}` is not an escape writ knows"),
        )
        .with_help("use `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r` or `\\u{XXXX}`; write `\\\\` for a backslash"),
        LexError::Number(raw) => Diagnostic::new(
            Code::InvalidNumber,
            sp,
            format!("`{raw}` is not a number"),
        )
        .with_help(number_help(&raw)),
        LexError::Character => {
            let ch = slice.chars().next().unwrap_or('?');
            let d = Diagnostic::new(
                Code::InvalidCharacter,
                sp,
                format!(
                    "the character `{}` has no meaning in writ",
                    if ch.is_control() || ch.is_whitespace() {
                        ch.escape_default().to_string()
                    } else {
                        ch.to_string()
                    }
                ),
            );
            match ch {
                '=' => d.with_help("compare with `==`"),
                '!' => d.with_help("negate with `not`, or compare with `!=`"),
                '&' => d.with_help("join conditions with `and`"),
                '|' => d.with_help("join conditions with `or`"),
                ';' => d.with_help("entries need no separator; remove the `;`"),
                '\'' => d.with_help("strings use double quotes: \"...\""),
                '/' => d.with_help("comments start with `#`; patterns with `/` go in quotes"),
                '*' | '?' => d.with_help("patterns go in double quotes, e.g. \"lookup_*\""),
                _ => d.with_help("remove it, or put the text in double quotes"),
            }
        }
    }
}

fn number_help(raw: &str) -> String {
    if raw
        .chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        format!(
            "numbers are digits with an optional `.` and exponent; put text like `{raw}` in double quotes"
        )
    } else {
        "a number has at most one `.`; `_` may separate digits, as in `50_000`".to_owned()
    }
}

/// `s` as a string literal of the language, with escapes: what the lexer
/// reads back as `s`.
#[must_use]
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(FileId(0), text)
            .tokens
            .into_iter()
            .map(|(_, t, _)| t)
            .collect()
    }

    #[test]
    fn keywords_words_strings_and_numbers() {
        assert_eq!(
            toks(r#"rule refund_small: allow "tool:call" limit 20 per hour"#),
            vec![
                Tok::Rule,
                Tok::Ident("refund_small".into()),
                Tok::Colon,
                Tok::Allow,
                Tok::Str("tool:call".into()),
                Tok::Limit,
                Tok::Num(20.0),
                Tok::Per,
                Tok::Ident("hour".into()),
            ]
        );
        assert_eq!(
            toks("-1.5 50_000 1e3"),
            vec![Tok::Num(-1.5), Tok::Num(50_000.0), Tok::Num(1000.0)]
        );
        assert_eq!(
            toks("triage-agent"),
            vec![Tok::Ident("triage-agent".into())]
        );
        assert_eq!(
            toks(r#""a\"b\\c\u{e9}""#),
            vec![Tok::Str("a\"b\\c\u{e9}".into())]
        );
    }

    #[test]
    fn comments_are_kept_aside() {
        let l = lex(FileId(0), "tier verified # trusted soon\n# last\n");
        assert_eq!(l.tokens.len(), 2);
        let texts: Vec<&str> = l.comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec![" trusted soon", " last"]);
    }

    #[test]
    fn errors_become_error_tokens_with_diagnostics() {
        let l = lex(FileId(0), "a $ \"open\n 12.5.3 \"bad \\q\" 100k");
        let codes: Vec<Code> = l.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            vec![
                Code::InvalidCharacter,
                Code::UnterminatedString,
                Code::InvalidNumber,
                Code::InvalidEscape,
                Code::InvalidNumber
            ]
        );
        assert_eq!(l.tokens.iter().filter(|t| t.1 == Tok::Error).count(), 5);
        assert_eq!(
            l.tokens.first().map(|t| &t.1),
            Some(&Tok::Ident("a".into()))
        );
    }
}
