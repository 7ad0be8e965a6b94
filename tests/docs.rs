//! Examples in the user docs are policies that must check cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use writ::{Source, compile};

fn yaml_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```yaml" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(body.join("\n") + "\n");
        }
    }
    out
}

#[test]
fn yaml_examples_in_the_docs_check_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for page in ["docs/schema.md", "docs/dialects.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        for (i, block) in yaml_blocks(&text).into_iter().enumerate() {
            let comp = compile(
                &[Source {
                    name: format!("{page}#{i}"),
                    text: block.clone(),
                }],
                None,
            );
            assert!(
                comp.diagnostics.is_empty(),
                "{page} example {i}:\n{block}\n{:#?}",
                comp.diagnostics
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} examples found");
}
