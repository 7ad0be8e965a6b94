//! Writes the seed corpora, `<dir>/<target>/seed-*`, from the repository's
//! examples (run by `fuzz/seed.sh`):
//!
//! - `writ_text`: every `.writ` example;
//! - `yaml_text`: every YAML example, after the byte that asks for the
//!   dialect to be detected;
//! - `bundle_bytes`: bundles compiled from three examples;
//! - `bundle_resealed`: for each example bundle of `writ_fuzz::examples()`,
//!   the input that carries its body whole, which libFuzzer then mutates
//!   (inputs that keep an example unchanged, or edit it, add no coverage
//!   over these, and libFuzzer would drop them at once);
//! - `request_json`: the requests of each decision table, one JSON line
//!   each;
//! - `differential`: a few fixed byte strings (the grammar reads any).

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut policies: Vec<PathBuf> = Vec::new();
    let mut tables: Vec<PathBuf> = Vec::new();
    for dir in ["examples", "examples/seeds", "examples/python"] {
        for entry in std::fs::read_dir(repo.join(dir)).expect("examples/ is readable") {
            let path = entry.expect("a directory entry").path();
            let name = path.to_string_lossy().into_owned();
            if name.ends_with(".decisions.yaml") {
                tables.push(path);
            } else if [".writ", ".yaml", ".yml"].iter().any(|e| name.ends_with(e)) {
                policies.push(path);
            }
        }
    }
    policies.sort();
    tables.sort();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).expect("the corpus directory can be made");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("a seed can be written");
    };
    // Examples of the same name in two folders stay apart.
    let label = |path: &Path| {
        let parent = path
            .parent()
            .and_then(Path::file_name)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{parent}-{file}")
    };

    // Dialect byte 4: none given, detected (yaml_text reads Dialect::ALL,
    // then None).
    let detect = u8::try_from(writ_ir::Dialect::ALL.len()).expect("few dialects");
    for path in &policies {
        let text = std::fs::read(path).expect("an example is readable");
        if path.extension().is_some_and(|e| e == "writ") {
            write("writ_text", &label(path), &text);
        } else {
            let mut input = vec![detect];
            input.extend_from_slice(&text);
            write("yaml_text", &label(path), &input);
        }
    }

    for example in writ_fuzz::examples().iter().take(3) {
        write(
            "bundle_bytes",
            &format!("{}.wbundle", example.name),
            &example.bundle,
        );
    }
    for (i, example) in writ_fuzz::examples().iter().enumerate() {
        let i = u8::try_from(i).expect("few examples");
        let mut whole = vec![i, 0xB0];
        whole.extend_from_slice(writ_fuzz::body(&example.bundle));
        write("bundle_resealed", &format!("{}-body", example.name), &whole);
    }

    for path in &tables {
        let text = std::fs::read_to_string(path).expect("a decision table is readable");
        let table: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = String::new();
        for case in table["cases"].as_array().into_iter().flatten() {
            if case["request"].is_object() {
                lines.push_str(&case["request"].to_string());
                lines.push('\n');
            }
        }
        write(
            "request_json",
            &format!("{}.jsonl", label(path)),
            lines.as_bytes(),
        );
    }

    // The grammar reads any bytes; these make policies of a few sizes.
    let mut state: u64 = 0x5EED_F022;
    for len in [16usize, 64, 256, 1024] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        write("differential", &format!("{len}"), &bytes);
    }
}
