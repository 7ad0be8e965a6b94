//! The parser lalrpop generates from `grammar/writ.lalrpop` (see the top-level `build.rs`).
#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unimplemented,
    clippy::allow_attributes_without_reason,
    missing_debug_implementations,
    unused,
    unused_qualifications,
    reason = "lalrpop generates this code; its lints are not ours to fix"
)]

include!(concat!(env!("OUT_DIR"), "/writ.rs"));

/// Where a recovered syntax error sits: the offending token and every
/// token the parser dropped to get past it.
#[must_use]
pub(crate) fn error_span(
    file: writ_diagnostics::FileId,
    e: &lalrpop_util::ErrorRecovery<usize, crate::lexer::Tok, ()>,
) -> writ_diagnostics::Span {
    use lalrpop_util::ParseError;
    let (start, end) = match &e.error {
        ParseError::UnrecognizedToken {
            token: (l, _, r), ..
        }
        | ParseError::ExtraToken { token: (l, _, r) } => (*l, *r),
        ParseError::UnrecognizedEof { location, .. } | ParseError::InvalidToken { location } => {
            (*location, *location)
        }
        ParseError::User { .. } => (0, 0),
    };
    let end = e
        .dropped_tokens
        .last()
        .map_or(end, |(_, _, r)| (*r).max(end));
    crate::ast::sp(file, start, end)
}
