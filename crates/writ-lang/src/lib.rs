//! The writ policy language: lexer, parser, lowering to IR, formatter and
//! converters to and from YAML.

pub mod ast;
pub mod convert;
pub mod fmt;
pub mod incremental;
pub mod lexer;
pub mod lower;
pub mod parse;
mod parser;
pub mod print;

use writ_diagnostics::{Diagnostic, FileId};
use writ_ir::PolicyFile;

/// True when a file name is in the writ language (`.writ`) rather than YAML.
#[must_use]
pub fn is_writ_file(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("writ"))
}

/// Parses and lowers one file of the writ language. The file is `None` only
/// when the syntax was too broken to lower (nesting past the limit).
#[must_use]
pub fn read(file: FileId, text: &str, fallback_name: &str) -> (PolicyFile, Vec<Diagnostic>) {
    incremental::read(
        &mut incremental::ReadCache::once(),
        file,
        text,
        fallback_name,
    )
}
