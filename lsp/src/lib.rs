//! writ's language server. The protocol lives here and only here: the
//! compiler answers through [`Analyzer`] in byte offsets and plain types,
//! and this crate speaks LSP (UTF-16 positions through [`LineIndex`],
//! documents applied by version).
//!
//! `writ lsp` runs [`serve_stdio`] with the compiler's analyzer.

pub mod analysis;
mod line_index;
mod server;

pub use analysis::Analyzer;
pub use line_index::LineIndex;
pub use server::{Backend, serve_stdio, service};
