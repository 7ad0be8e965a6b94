//! `writ fmt`: print a file canonically, and prove the result means the same.
//!
//! Like cedar's formatter, the output is parsed again and both are lowered:
//! the IR (spans aside), the diagnostics and the comments must be the same,
//! or the formatter refuses and leaves the file alone.

use writ_diagnostics::{Diagnostic, FileId};
use writ_ir::{PolicySet, dump, merge};

use super::{lower, parse, print};

/// Why a file was not formatted.
#[derive(Debug)]
pub enum FormatError {
    /// The file has syntax errors; nothing is printed from a broken tree.
    Syntax(Vec<Diagnostic>),
    /// The printed text would mean something else (a formatter bug): the
    /// file is left alone. The string says what differs.
    MeaningChanged(String),
}

/// Formats one file of the writ language. `name` is used to name the
/// policy when the file has no header, as the compiler does.
///
/// # Errors
/// [`FormatError`] when the file does not parse or the result would not
/// mean the same.
pub fn format(text: &str, name: &str) -> Result<String, FormatError> {
    let file = FileId(0);
    let parsed = parse::parse(file, text);
    if !parsed.syntax_ok() {
        return Err(FormatError::Syntax(parsed.diagnostics));
    }
    let out = print::print(&parsed.file, text);
    let again = parse::parse(file, &out);
    if !again.syntax_ok() {
        let first = again
            .diagnostics
            .first()
            .map_or_else(String::new, |d| d.message.clone());
        return Err(FormatError::MeaningChanged(format!(
            "the formatted text does not parse: {first}"
        )));
    }
    if again.file.comments.len() != parsed.file.comments.len() {
        return Err(FormatError::MeaningChanged(format!(
            "{} comments in, {} out",
            parsed.file.comments.len(),
            again.file.comments.len()
        )));
    }
    let before = meaning(&parsed.file, name);
    let after = meaning(&again.file, name);
    if before != after {
        return Err(FormatError::MeaningChanged(first_difference(
            &before, &after,
        )));
    }
    Ok(out)
}

/// What a tree means: its IR dump without spans, and the messages of the
/// diagnostics lowering reports.
#[must_use]
pub fn meaning(tree: &super::ast::File, name: &str) -> String {
    let (lowered, diags) = lower::lower(FileId(0), tree, name);
    let (set, merge_diags) = merge(vec![lowered]);
    let mut out = ir_text(&set);
    for d in diags.iter().chain(&merge_diags) {
        out.push_str(&format!("{}: {}\n", d.code, d.message));
    }
    out
}

/// The IR dump with every location left out, for comparing meanings.
#[must_use]
pub fn ir_text(set: &PolicySet) -> String {
    dump(set, &|_| String::new())
}

fn first_difference(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("`{x}` became `{y}`");
        }
    }
    "the output has a different number of IR lines".to_owned()
}
