//! insta snapshots: for every fixture and every example policy, the source,
//! the rendered diagnostics and (when it lowers) the IR dump, side by side.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::fmt::Write as _;
use std::path::Path;

use writ::{Compilation, Source, compile};

fn report(comp: &Compilation, sources: &[Source]) -> String {
    let mut out = String::new();
    for s in sources {
        let _ = writeln!(out, "--- source: {}\n{}", s.name, s.text);
    }
    let _ = writeln!(out, "--- diagnostics ({})", comp.diagnostics.len());
    for d in &comp.diagnostics {
        out.push_str(&writ::render::to_text(d, &comp.sources, false));
    }
    if let Some(set) = &comp.set {
        let at = |span: writ_diagnostics::Span| {
            comp.sources
                .location(span)
                .map_or_else(String::new, |(f, lc)| {
                    format!("{f}:{}:{}", lc.line, lc.column)
                })
        };
        let _ = writeln!(out, "--- ir\n{}", writ_ir::dump(set, &at));
    }
    out
}

fn source(path: &Path) -> Source {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let name = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    Source {
        name,
        text: std::fs::read_to_string(path).unwrap(),
    }
}

#[test]
fn malformed_and_edge_case_fixtures() {
    insta::glob!("fixtures/yaml/*.yaml", |path| {
        let sources = vec![source(path)];
        let comp = compile(&sources, None);
        // Every fixture here is broken on purpose: it must report something,
        // and anything it reports must be located in the file.
        assert!(
            !comp.diagnostics.is_empty(),
            "{} reported nothing",
            path.display()
        );
        for d in &comp.diagnostics {
            assert!(
                d.span().is_some(),
                "{} has a diagnostic without a span",
                path.display()
            );
        }
        insta::assert_snapshot!(report(&comp, &sources));
    });
}

#[test]
fn broken_writ_files() {
    insta::glob!("fixtures/writ/*.writ", |path| {
        let sources = vec![source(path)];
        let comp = compile(&sources, None);
        assert!(
            comp.has_errors(),
            "{} is broken on purpose but reported no error",
            path.display()
        );
        for d in &comp.diagnostics {
            assert!(
                d.span().is_some(),
                "{} has a diagnostic without a span",
                path.display()
            );
        }
        insta::assert_snapshot!(report(&comp, &sources));
    });
}

#[test]
fn example_policies_lower_cleanly() {
    insta::glob!("../examples", "**/*.{yaml,yml,writ}", |path| {
        if path.to_string_lossy().ends_with(".decisions.yaml") {
            return;
        }
        let sources = vec![source(path)];
        let comp = compile(&sources, None);
        // Examples have no errors; a seed may keep a warning that tells its
        // authors something true (the snapshot shows it).
        assert!(
            !comp.has_errors(),
            "{}: {:#?}",
            path.display(),
            comp.diagnostics
        );
        insta::assert_snapshot!(report(&comp, &sources));
    });
}

#[test]
fn merging_files_keeps_first_settings_and_reports_conflicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/merge");
    let sources = vec![
        source(&dir.join("first.yaml")),
        source(&dir.join("second.yaml")),
    ];
    let comp = compile(&sources, None);
    let codes: Vec<&str> = comp.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["W0101", "E0302", "E0301"]);
    let set = comp.set.as_ref().unwrap();
    assert_eq!(set.settings.default_effect.value, writ_ir::Effect::Approve);
    assert_eq!(
        set.rules[0].effect.value,
        writ_ir::Effect::Allow,
        "rules of the first file come first"
    );
    insta::assert_snapshot!(report(&comp, &sources));
}

/// No snapshot may outlive its fixture or example (what `cargo insta test
/// --unreferenced reject` checks, without needing cargo-insta in CI).
#[test]
fn no_unreferenced_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for e in std::fs::read_dir(root.join("tests/snapshots")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".snap") else {
            stale.push(name);
            continue;
        };
        let source = if let Some(f) =
            stem.strip_prefix("snapshots__malformed_and_edge_case_fixtures@")
        {
            root.join("tests/fixtures/yaml").join(f)
        } else if let Some(f) = stem.strip_prefix("graph__graph_fixtures@") {
            root.join("tests/fixtures/graph").join(f)
        } else if let Some(f) = stem.strip_prefix("snapshots__broken_writ_files@") {
            root.join("tests/fixtures/writ").join(f)
        } else if let Some(f) = stem.strip_prefix("snapshots__example_policies_lower_cleanly@") {
            root.join("examples").join(f.replace("__", "/"))
        } else if let Some(name) = stem.strip_prefix("lsp__") {
            // Named snapshots of tests/lsp.rs: the name must appear there.
            let tests = std::fs::read_to_string(root.join("tests/lsp.rs")).unwrap();
            if tests.contains(&format!("\"{name}\"")) {
                root.join("tests/lsp.rs")
            } else {
                root.join("no such test")
            }
        } else if stem == "snapshots__merging_files_keeps_first_settings_and_reports_conflicts" {
            root.join("tests/fixtures/merge/first.yaml")
        } else {
            root.join("no such test")
        };
        if !source.exists() {
            stale.push(name);
        }
    }
    assert!(stale.is_empty(), "snapshots without a source: {stale:?}");
}
