//! Generates the writ language's parser from `grammar/writ.lalrpop` into
//! `OUT_DIR` (included by `src/lang/parser.rs`).

fn main() {
    println!("cargo::rerun-if-changed=grammar");
    let out_dir = std::env::var_os("OUT_DIR").unwrap_or_default();
    let result = lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .set_out_dir(out_dir)
        .emit_rerun_directives(true)
        .process();
    if let Err(e) = result {
        eprintln!("lalrpop failed on grammar/writ.lalrpop: {e}");
        std::process::exit(1);
    }
}
