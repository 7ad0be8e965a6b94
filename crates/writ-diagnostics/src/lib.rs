//! Source files, spans and renderer-agnostic diagnostics.
//!
//! Every phase of writ (YAML front ends, the DSL, the delegation graph, the
//! compiler, lints) reports problems as [`Diagnostic`] values. A diagnostic
//! knows nothing about terminals or editors: the CLI renders it with ariadne,
//! the language server converts it to LSP types. This crate is the bottom of
//! the dependency graph and depends on nothing of ours.

mod code;
mod diagnostic;
mod source;
mod suggest;

pub use code::{Code, Phase};
pub use diagnostic::{Diagnostic, Label, Severity};
pub use source::{FileId, LineCol, SourceFile, SourceMap, Span};
pub use suggest::{did_you_mean, did_you_mean_or_list, invalid_word, typo_of};
