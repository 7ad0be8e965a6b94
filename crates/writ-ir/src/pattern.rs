//! Glob patterns over action names, targets, model names, tools and hosts.
//!
//! Patterns use `*` (any run of characters, including none and including
//! `:`, `/` and newlines), `?` (one character: one Unicode scalar value),
//! `[abc]` / `[!abc]` classes and `{a,b}` alternatives; `\` escapes (see
//! [`crate::glob`] for the exact semantics). The source text is kept so
//! that the compiler (a later phase) can classify patterns as exact names,
//! prefixes or suffixes without re-parsing.

use std::fmt;

use std::sync::{Arc, OnceLock};

use writ_diagnostics::Span;

use crate::glob::Glob;

/// A checked glob with its source text and span.
///
/// The glob is parsed (and so validated) when the pattern is made; exact
/// names and `lit*` / `*lit` shapes (the common cases) are matched
/// without it.
///
/// Clones share the glob: a pattern is immutable but for its span.
#[derive(Clone)]
pub struct Pattern {
    inner: Arc<Inner>,
    pub span: Span,
}

struct Inner {
    text: String,
    /// Parsed when the pattern is made, unless it is an exact name,
    /// `lit*`, `*lit` or `*` that respects case (always valid, and matched
    /// without it): then only if someone asks (one token a character, it
    /// would be most of a rule's memory).
    glob: OnceLock<Glob>,
    case_insensitive: bool,
    /// No glob syntax: one exact name (kept, as the lints ask per pair).
    literal: bool,
    /// Only `*`s: every string.
    everything: bool,
}

/// Why a glob does not compile; the message is lowercase and user-facing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pub message: String,
}

impl PatternError {
    /// E0201 for `text` at `span`, which failed to compile: the one way
    /// every front end reports an invalid glob. `within` names where the
    /// pattern was written (`in `actions``), or is empty.
    #[must_use]
    pub fn diagnostic(&self, text: &str, span: Span, within: &str) -> writ_diagnostics::Diagnostic {
        let within = if within.is_empty() {
            String::new()
        } else {
            format!(" in {within}")
        };
        writ_diagnostics::Diagnostic::new(
            writ_diagnostics::Code::InvalidGlob,
            span,
            format!("invalid pattern `{text}`{within}: {}", self.message),
        )
        .with_help(
            "patterns use `*` for any run of characters and `?` for one; escape a literal `[`, `{` or `*` with `\\`",
        )
    }
}

impl Pattern {
    /// Compiles a case-sensitive pattern.
    ///
    /// # Errors
    /// When the text is not a valid glob (e.g. an unclosed `[` or `{`).
    pub fn new(text: &str, span: Span) -> Result<Pattern, PatternError> {
        Pattern::build(text, span, false)
    }

    /// Compiles a pattern that ignores ASCII case (used for host names).
    ///
    /// # Errors
    /// When the text is not a valid glob.
    pub fn new_case_insensitive(text: &str, span: Span) -> Result<Pattern, PatternError> {
        Pattern::build(text, span, true)
    }

    fn build(text: &str, span: Span, case_insensitive: bool) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError {
                message: "empty pattern".to_owned(),
            });
        }
        let glob = OnceLock::new();
        if case_insensitive || !plain_shape(text) {
            let parsed = Glob::parse(text, case_insensitive)
                .map_err(|e| PatternError { message: e.message })?;
            let _ = glob.set(parsed);
        }
        Ok(Pattern {
            inner: Arc::new(Inner {
                text: text.to_owned(),
                glob,
                case_insensitive,
                literal: !text.contains(META),
                everything: text.bytes().all(|c| c == b'*'),
            }),
            span,
        })
    }

    #[must_use]
    pub fn is_match(&self, candidate: &str) -> bool {
        let text = self.as_str();
        if !self.inner.case_insensitive {
            if self.is_literal() {
                return text == candidate;
            }
            if self.matches_everything() {
                return true;
            }
            // `lit*` and `*lit`: no regex needed.
            let body = text.trim_end_matches('*');
            if body.len() < text.len() && !body.contains(META) {
                return candidate.starts_with(body);
            }
            let body = text.trim_start_matches('*');
            if body.len() < text.len() && !body.contains(META) {
                return candidate.ends_with(body);
            }
        }
        self.glob().is_match(candidate)
    }

    /// The parsed glob (the compiler builds its glob program from it).
    #[must_use]
    pub fn glob(&self) -> &Glob {
        self.inner.glob.get_or_init(|| {
            // Only plain shapes are parsed here, and they always parse.
            Glob::parse(&self.inner.text, self.inner.case_insensitive).unwrap_or_default()
        })
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.inner.text
    }

    #[must_use]
    pub fn is_case_insensitive(&self) -> bool {
        self.inner.case_insensitive
    }

    /// True when the pattern has no glob syntax and so matches one exact name.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.inner.literal
    }

    /// True when the pattern matches every string (`*`, `**`, ...).
    #[must_use]
    pub fn matches_everything(&self) -> bool {
        // Patterns are never empty (`build` refuses that).
        self.inner.everything
    }
}

/// Glob syntax; a pattern without any is one exact name.
const META: [char; 5] = ['*', '?', '[', '{', '\\'];

/// An exact name, `lit*`, `*lit` or all `*`: a valid glob that
/// [`Pattern::is_match`] matches without parsing (when it respects case).
fn plain_shape(text: &str) -> bool {
    let body = text.trim_end_matches('*');
    if !body.contains(META) {
        return true;
    }
    !text.trim_start_matches('*').contains(META)
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.as_str())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() && self.is_case_insensitive() == other.is_case_insensitive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_diagnostics::FileId;

    fn p(t: &str) -> Pattern {
        match Pattern::new(t, Span::file_start(FileId(0))) {
            Ok(p) => p,
            Err(e) => unreachable!("{t}: {e:?}"),
        }
    }

    #[test]
    fn star_crosses_separators_and_question_is_one_char() {
        assert!(p("write_*").is_match("write_record"));
        assert!(p("write_*").is_match("write_"));
        assert!(!p("write_*").is_match("delete_record"));
        assert!(p("*").is_match("agent:delegate"));
        assert!(p("tool:*").is_match("tool:a/b"));
        assert!(p("search?").is_match("search1"));
        assert!(!p("search?").is_match("search"));
        assert!(!p("search?").is_match("search12"));
    }

    #[test]
    fn hosts_ignore_case() {
        let h = Pattern::new_case_insensitive("*.wikipedia.org", Span::file_start(FileId(0)));
        assert!(matches!(h, Ok(ref h) if h.is_match("EN.Wikipedia.org")));
        assert!(matches!(h, Ok(ref h) if !h.is_match("wikipedia.org")));
    }

    #[test]
    fn bad_globs_are_errors() {
        let span = Span::file_start(FileId(0));
        assert!(Pattern::new("[abc", span).is_err());
        assert!(Pattern::new("{a,b", span).is_err());
        assert!(Pattern::new("", span).is_err());
    }

    #[test]
    fn literal_detection() {
        assert!(p("read:customer_data").is_literal());
        assert!(!p("read:*").is_literal());
        assert!(p("**").matches_everything());
    }
}
