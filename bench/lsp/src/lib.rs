//! Empty: the benchmark is `benches/lsp.rs`.
