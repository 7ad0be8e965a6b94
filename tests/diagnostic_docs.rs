//! Every diagnostic code has a page `docs/diagnostics/<CODE>.md`, and every
//! page's examples are checked: the policy under `## Wrong` must produce the
//! code, the policy under `## Fixed` must not produce it (nor any error). Each
//! ```yaml or ```writ block under a heading is one file, named
//! `example-<i>.yaml` or `example-<i>.writ` so that the compiler picks the
//! front end by its extension; several are merged in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::Path;

use writ::{Source, compile};
use writ_diagnostics::Code;

/// The languages a page's code blocks may be in: the fence's info string
/// and the file extension the example gets.
const LANGUAGES: &[(&str, &str)] = &[("```yaml", "yaml"), ("```writ", "writ")];

/// One example file: its extension and its text.
struct Example {
    ext: &'static str,
    text: String,
}

fn blocks(page: &str, heading: &str) -> Vec<Example> {
    let Some(start) = page.find(&format!("\n## {heading}\n")) else {
        return Vec::new();
    };
    let rest = &page[start + heading.len() + 5..];
    let section = rest.find("\n## ").map_or(rest, |end| &rest[..end]);
    let mut out = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let fence = line.trim();
        if let Some((_, ext)) = LANGUAGES.iter().find(|(f, _)| *f == fence) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(Example {
                ext,
                text: body.join("\n") + "\n",
            });
        }
    }
    out
}

fn codes_of(files: &[Example]) -> (Vec<Code>, bool) {
    let sources: Vec<Source> = files
        .iter()
        .enumerate()
        .map(|(i, e)| Source {
            name: format!("example-{i}.{}", e.ext),
            text: e.text.clone(),
        })
        .collect();
    let comp = compile(&sources, None);
    (
        comp.diagnostics.iter().map(|d| d.code).collect(),
        comp.has_errors(),
    )
}

#[test]
fn every_code_has_a_page_whose_examples_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/diagnostics");
    let mut problems = Vec::new();
    for code in Code::ALL {
        let path = dir.join(format!("{code}.md"));
        let Ok(page) = std::fs::read_to_string(&path) else {
            problems.push(format!("{code}: no page at {}", path.display()));
            continue;
        };
        let title = format!("# {code}: {}", code.title());
        if !page.starts_with(&title) {
            problems.push(format!("{code}: page must start with `{title}`"));
        }
        if matches!(*code, Code::Io | Code::PolicyTooLarge) {
            // Reading a file that does not exist, or one of 32 MiB, cannot be
            // shown as an example (tests/limits_budget.rs has the latter).
            continue;
        }
        let wrong = blocks(&page, "Wrong");
        let fixed = blocks(&page, "Fixed");
        if wrong.is_empty() || fixed.is_empty() {
            problems.push(format!(
                "{code}: needs ```yaml or ```writ blocks under `## Wrong` and `## Fixed`"
            ));
            continue;
        }
        let (got, _) = codes_of(&wrong);
        if !got.contains(code) {
            problems.push(format!(
                "{code}: the wrong example reports {got:?}, not {code}"
            ));
        }
        let (got, errors) = codes_of(&fixed);
        if got.contains(code) || errors {
            problems.push(format!("{code}: the fixed example still reports {got:?}"));
        }
    }
    let listed: std::collections::HashSet<String> =
        Code::ALL.iter().map(|c| format!("{c}.md")).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name != "README.md" && !listed.contains(&name) {
            problems.push(format!(
                "{name}: a page for a code that is not in the table"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
