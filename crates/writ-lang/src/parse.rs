//! The parser driver: lex, check nesting, parse with recovery, and turn
//! every syntax error into a diagnostic with a span, the expected tokens in
//! words and, where one is obvious, a fix.
//!
//! Parsing never fails: [`parse`] always returns a tree (possibly with
//! `Error` nodes) and the diagnostics.

use lalrpop_util::{ErrorRecovery, ParseError};
use writ_diagnostics::{Code, Diagnostic, FileId, did_you_mean};

use super::ast::{self, sp};
use super::lexer::{self, KEYWORDS, Tok};
use super::parser::FileParser;

/// Brackets nest at most this deep; deeper input is refused before parsing
/// so that no later pass can run out of stack.
pub const MAX_DEPTH: usize = 64;
/// At most this many `not` in a row.
pub const MAX_NOTS: usize = 16;

/// A parsed file and what was wrong with it.
#[derive(Debug)]
pub struct Parsed {
    pub file: ast::File,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True when the file has no lexical or syntax error.
    #[must_use]
    pub fn syntax_ok(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses one file of the writ language.
///
/// A file is read part by part (see [`parts`]): each top-level item is
/// lexed and parsed on its own, so an error in one item never spills into
/// the next, and an editor can re-read only the items an edit touched.
#[must_use]
pub fn parse(file: FileId, text: &str) -> Parsed {
    let mut items = Vec::new();
    let mut comments = Vec::new();
    let mut diagnostics = Vec::new();
    for range in parts(text) {
        let part = parse_part(file, text, range);
        items.extend(part.items);
        comments.extend(part.comments);
        diagnostics.extend(part.diagnostics);
    }
    if let Some(d) = empty_file(file, &items, &diagnostics) {
        diagnostics.push(d);
    }
    Parsed {
        file: ast::File { items, comments },
        diagnostics,
    }
}

/// The E0106 diagnostic of a file without a single item and without an
/// error that explains why.
#[must_use]
pub fn empty_file(
    file: FileId,
    items: &[ast::Item],
    diagnostics: &[Diagnostic],
) -> Option<Diagnostic> {
    (items.is_empty() && diagnostics.is_empty()).then(|| {
        Diagnostic::new(
            Code::EmptyPolicy,
            sp(file, 0, 0),
            "the policy file has no policy, agent or rule",
        )
        .with_help("add at least one rule, e.g. `rule lookups: allow \"tool:call\" on \"lookup_*\"`; see docs/language.md")
    })
}

/// The byte ranges of a file's parts: a part starts at every line whose
/// first column starts an item (`policy`, `agent`, `role`, `every`,
/// `rule`); what comes before the first item (comments) is a part too.
/// Tokens never span lines, so each part lexes on its own.
#[must_use]
pub fn parts(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut starts = vec![0];
    let mut at = 0;
    while let Some(nl) = text.get(at..).and_then(|rest| rest.find('\n')) {
        at += nl + 1;
        if lexer::starts_item(text, at) {
            starts.push(at);
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        if end > start || out.is_empty() {
            out.push(start..end);
        }
    }
    out
}

/// One part of a file, parsed.
#[derive(Debug, Default)]
pub struct Part {
    pub items: Vec<ast::Item>,
    pub comments: Vec<lexer::Comment>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses the part `range` of `text` (a range from [`parts`]); spans are
/// offsets in the whole text.
#[must_use]
pub fn parse_part(file: FileId, text: &str, range: std::ops::Range<usize>) -> Part {
    let lexed = lexer::lex_range(file, text, range.clone());
    let mut diagnostics = lexed.diagnostics;
    let mut tokens = lexed.tokens;
    let comments = lexed.comments;

    if let Some(d) = too_deep(file, &tokens) {
        diagnostics.push(d);
        return Part {
            items: Vec::new(),
            comments,
            diagnostics,
        };
    }
    close_brackets(file, text, range, &mut tokens, &mut diagnostics);

    let mut errors: Vec<ErrorRecovery<usize, Tok, ()>> = Vec::new();
    let result = FileParser::new().parse(file, &mut errors, tokens);
    for e in &errors {
        if let Some(d) = describe(file, &e.error, Some(&e.dropped_tokens)) {
            diagnostics.push(d);
        }
    }
    let items = match result {
        Ok(items) => items,
        Err(e) => {
            diagnostics.extend(describe(file, &e, None));
            Vec::new()
        }
    };
    Part {
        items,
        comments,
        diagnostics,
    }
}

fn too_deep(file: FileId, tokens: &[(usize, Tok, usize)]) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut nots = 0usize;
    for (l, t, r) in tokens {
        match t {
            Tok::LBrace | Tok::LBracket | Tok::LParen => depth += 1,
            Tok::RBrace | Tok::RBracket | Tok::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        nots = if *t == Tok::Not { nots + 1 } else { 0 };
        if depth > MAX_DEPTH || nots > MAX_NOTS {
            let what = if nots > MAX_NOTS {
                format!("more than {MAX_NOTS} `not` in a row")
            } else {
                format!("brackets nested more than {MAX_DEPTH} deep")
            };
            return Some(
                Diagnostic::new(
                    Code::TooDeep,
                    sp(file, *l, *r),
                    format!("{what}; writ stops reading here"),
                )
                .with_help("split the condition into several rules, or simplify it"),
            );
        }
    }
    None
}

/// Adds the closing brackets a part lacks, reporting each at its opener,
/// so that a missing `}` costs one diagnostic instead of the whole file.
/// Blocks do not nest, so a block still open when a line starts with an
/// item keyword (`rule`, `agent`, ...) is closed just before that line;
/// anything else still open is closed at the end of the part, before the
/// next item (or at the end of the file).
fn close_brackets(
    file: FileId,
    text: &str,
    range: std::ops::Range<usize>,
    tokens: &mut Vec<(usize, Tok, usize)>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut open: Vec<(usize, Tok, usize)> = Vec::new();
    let mut out = Vec::with_capacity(tokens.len());
    let mut prev_end = range.start;
    for (l, t, r) in tokens.drain(..) {
        let starts_line =
            text.get(prev_end..l).is_some_and(|gap| gap.contains('\n')) || prev_end == range.start;
        let item_keyword = matches!(
            t,
            Tok::Rule | Tok::Agent | Tok::Role | Tok::Policy | Tok::Every
        );
        if item_keyword && starts_line && open.last().is_some_and(|o| o.1 == Tok::LBrace) {
            let at = text.get(..l).map_or(l, |before| before.trim_end().len());
            while let Some(o) = open.pop() {
                unclosed(file, &o, at, Some((l, r)), diagnostics, &mut out);
            }
        }
        prev_end = r;
        let closer = match t {
            Tok::LBrace | Tok::LBracket | Tok::LParen => {
                open.push((l, t.clone(), r));
                out.push((l, t, r));
                continue;
            }
            Tok::RBrace => Tok::LBrace,
            Tok::RBracket => Tok::LBracket,
            Tok::RParen => Tok::LParen,
            _ => {
                out.push((l, t, r));
                continue;
            }
        };
        if let Some(pos) = open.iter().rposition(|(_, o, _)| *o == closer) {
            open.truncate(pos);
        }
        out.push((l, t, r));
    }
    if range.end >= text.len() {
        let end = text.len();
        while let Some(o) = open.pop() {
            unclosed(file, &o, end, None, diagnostics, &mut out);
        }
    } else {
        // The next part starts with an item keyword. The label points at
        // its first letter (not the whole keyword): what reading a part
        // gives must not depend on the text after it.
        let at = text
            .get(..range.end)
            .map_or(range.end, |b| b.trim_end().len());
        while let Some(o) = open.pop() {
            unclosed(
                file,
                &o,
                at,
                Some((range.end, range.end + 1)),
                diagnostics,
                &mut out,
            );
        }
    }
    *tokens = out;
}

/// Reports one unclosed bracket and adds its closer at `at`; `next` is the
/// token the closer goes before (`None`: the end of the file).
fn unclosed(
    file: FileId,
    (l, t, r): &(usize, Tok, usize),
    at: usize,
    next: Option<(usize, usize)>,
    diagnostics: &mut Vec<Diagnostic>,
    out: &mut Vec<(usize, Tok, usize)>,
) {
    let (opener, closer, what, close_text) = match t {
        Tok::LBrace => ("{", Tok::RBrace, "block", "}"),
        Tok::LBracket => ("[", Tok::RBracket, "list", "]"),
        _ => ("(", Tok::RParen, "parenthesis", ")"),
    };
    let d = Diagnostic::new(
        Code::UnexpectedToken,
        sp(file, *l, *r),
        format!("this `{opener}` is never closed"),
    )
    .with_label_message(format!("{what} opened here"));
    let d = match next {
        None => d.with_secondary(sp(file, at, at), "the file ends here"),
        Some((nl, nr)) => d.with_secondary(
            sp(file, nl, nr),
            format!("`{close_text}` expected before this line"),
        ),
    };
    diagnostics.push(d.with_help(format!("add `{close_text}` where the {what} ends")));
    out.push((at, closer, at));
}

/// The words for a terminal name as lalrpop reports it.
fn expected_word(terminal: &str) -> Option<String> {
    match terminal {
        "Ident" => Some("a name".to_owned()),
        "Str" => Some("a string".to_owned()),
        "Num" => Some("a number".to_owned()),
        "Unreadable" => None,
        quoted => Some(format!("`{}`", quoted.trim_matches('"'))),
    }
}

fn expected_list(expected: &[String]) -> String {
    let keywords = expected
        .iter()
        .filter(|e| lexer::is_keyword(e.trim_matches('"')))
        .count();
    // Where any word would do (a field name, a list item), listing every
    // keyword helps nobody: "a name" covers them.
    let any_word = keywords > 12 && expects(expected, "Ident");
    let words: Vec<String> = expected
        .iter()
        .filter(|e| !(any_word && lexer::is_keyword(e.trim_matches('"'))))
        .filter_map(|e| expected_word(e))
        .collect();
    match words.as_slice() {
        [] => "nothing more".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn describe(
    file: FileId,
    error: &ParseError<usize, Tok, ()>,
    dropped: Option<&Vec<(usize, Tok, usize)>>,
) -> Option<Diagnostic> {
    let span = |l: usize, r: usize| sp(file, l, r);
    match error {
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            if *tok == Tok::Error {
                return None; // the lexer reported it
            }
            // A synthetic closer at the end of the file: already reported.
            if l == r {
                return None;
            }
            let mut d = Diagnostic::new(
                Code::UnexpectedToken,
                span(*l, *r),
                format!("unexpected {tok}; expected {}", expected_list(expected)),
            )
            .with_label_message(format!("expected {}", expected_list(expected)))
            .with_help_opt(fix(tok, expected));
            if let Some(last) = dropped.and_then(|d| d.last())
                && last.2 > *r
            {
                d = d.with_note("writ skipped the rest of this part to carry on");
            }
            Some(d)
        }
        ParseError::UnrecognizedEof { location, expected } => Some(
            Diagnostic::new(
                Code::UnexpectedToken,
                span(*location, *location),
                format!("the file ends early; expected {}", expected_list(expected)),
            )
            .with_help_opt(eof_fix(expected)),
        ),
        ParseError::ExtraToken { token: (l, tok, r) } => Some(Diagnostic::new(
            Code::UnexpectedToken,
            span(*l, *r),
            format!("unexpected {tok} after the end of the policy"),
        )),
        ParseError::InvalidToken { location } => Some(Diagnostic::new(
            Code::InvalidCharacter,
            span(*location, *location),
            "writ cannot read this",
        )),
        ParseError::User { .. } => None,
    }
}

fn expects(expected: &[String], terminal: &str) -> bool {
    expected.iter().any(|e| e.trim_matches('"') == terminal)
}

/// The obvious fix for an unexpected token, when there is one.
fn fix(tok: &Tok, expected: &[String]) -> Option<String> {
    let candidates: Vec<&str> = expected
        .iter()
        .map(|e| e.trim_matches('"'))
        .filter(|e| lexer::is_keyword(e))
        .collect();
    if let Tok::Ident(word) = tok {
        if let Some(k) = did_you_mean(word, candidates.iter().copied()) {
            return Some(format!("did you mean `{k}`?"));
        }
        // A misspelled keyword at a place that wants a keyword from
        // elsewhere, e.g. `rul` at the top level.
        if !candidates.is_empty() {
            let all = KEYWORDS.iter().map(|(w, _)| *w);
            if let Some(k) = did_you_mean(word, all)
                && candidates.contains(&k)
            {
                return Some(format!("did you mean `{k}`?"));
            }
        }
    }
    if let Some(k) = tok.keyword()
        && (expects(expected, "Ident") || expects(expected, "Str"))
    {
        return Some(format!(
            "`{k}` is a keyword; to use it as a name, write it in quotes: \"{k}\""
        ));
    }
    if expects(expected, ":") && expected.len() <= 2 {
        return Some(
            "a rule's name is followed by `:`, as in `rule refund_small: allow \"tool:call\"`"
                .to_owned(),
        );
    }
    if expects(expected, ",") && expects(expected, "]") {
        return Some("separate list items with `,`".to_owned());
    }
    if matches!(tok, Tok::Str(_)) && expects(expected, "Ident") && !expects(expected, "Str") {
        return Some("this takes a bare word: remove the quotes".to_owned());
    }
    if matches!(tok, Tok::Ident(_)) && expects(expected, "Str") && !expects(expected, "Ident") {
        return Some("this takes a string: put it in double quotes".to_owned());
    }
    if expects(expected, "allow") && expects(expected, "deny") && candidates.len() <= 4 {
        return Some("a rule decides `allow`, `deny` or `approve`".to_owned());
    }
    None
}

fn eof_fix(expected: &[String]) -> Option<String> {
    if expects(expected, "allow") && expects(expected, "deny") {
        Some("finish the rule: `allow`, `deny` or `approve`, then the actions it covers".to_owned())
    } else if expects(expected, "Str") || expects(expected, "Ident") {
        Some("the last entry needs its value".to_owned())
    } else {
        None
    }
}
