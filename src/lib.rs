//! The `writ` package: the command line (`src/main.rs`, `src/cli/`) and,
//! for it and for tests, the compiler's API under one name.
//!
//! The stages live in crates of their own: `writ-lang` (the writ
//! language), `writ-yaml` (the YAML dialects), `writ-compiler` (merge,
//! checks, lints, bundles), `writ-ide` (the analysis behind `writ lsp`),
//! `writ-runtime` (deciding from a bundle). This library re-exports the
//! compiler and adds what only the terminal needs: [`render`] turns
//! diagnostics into text (ariadne) and JSON.

pub mod render;

pub use writ_compiler::*;
pub use writ_ide as ide;
