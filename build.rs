//! Generates the writ language's parser from `grammar/writ.lalrpop` into
//! `OUT_DIR` (included by `crates/writ-lang/src/parser.rs`). This is the
//! build script of the `writ-lang` crate (its `Cargo.toml` points here):
//! `grammar/` and `build.rs` stay at the repository's top level.

use std::path::PathBuf;

fn main() {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let grammar = PathBuf::from(manifest).join("../../grammar");
    println!("cargo::rerun-if-changed={}", grammar.display());
    let out_dir = std::env::var_os("OUT_DIR").unwrap_or_default();
    let result = lalrpop::Configuration::new()
        .set_in_dir(&grammar)
        .set_out_dir(out_dir)
        .emit_rerun_directives(true)
        .process();
    if let Err(e) = result {
        eprintln!("lalrpop failed on grammar/writ.lalrpop: {e}");
        std::process::exit(1);
    }
}
