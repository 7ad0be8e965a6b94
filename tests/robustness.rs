//! Bad input never panics and never hangs: every prefix of every example and
//! fixture, and byte-level mutations of them, go through the front end (and,
//! when they lower cleanly, the evaluator).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::{Path, PathBuf};

use writ::{Source, compile};
use writ_eval::{Evaluator, Request};

fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        "examples",
        "examples/seeds",
        "tests/fixtures/yaml",
        "tests/fixtures/writ",
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && !p.to_string_lossy().ends_with(".decisions.yaml") {
                out.push(p);
            }
        }
    }
    out
}

/// Mutants keep their file's language: `.writ` files go to the writ
/// language, the rest to the YAML front ends. Formatting must not panic
/// either.
fn exercise(path: &Path, text: &str) {
    let writ_lang = writ::lang::is_writ_file(&path.to_string_lossy());
    if writ_lang {
        let _ = writ::lang::fmt::format(text, "mutant");
    }
    let comp = compile(
        &[Source {
            name: if writ_lang {
                "mutant.writ"
            } else {
                "mutant.yaml"
            }
            .into(),
            text: text.to_owned(),
        }],
        None,
    );
    if let Some(set) = comp.checked_set() {
        let mut eval = Evaluator::new(set);
        let now = "2025-01-15T12:00:00Z".parse().unwrap();
        for action in [
            "tool:call",
            "model:use",
            "agent:delegate",
            "write_record",
            "*",
        ] {
            let mut req = Request::new("agent", action);
            req.target = Some("target".into());
            let _ = eval.check(&req, now);
        }
    }
}

#[test]
fn every_prefix_of_every_policy_is_handled() {
    for path in files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut cut = 0;
        while cut <= text.len() {
            if text.is_char_boundary(cut) {
                exercise(&path, &text[..cut]);
            }
            cut += 3;
        }
    }
}

#[test]
fn byte_mutations_are_handled() {
    // A small deterministic generator: no dependency, same cases every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b" \t\n:-[]{}\"'*?#&!|>%@`,0123456789abcxyz\\";
    for path in files() {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.is_empty() {
            continue;
        }
        for _ in 0..150 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..(1 + next() % 4) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = alphabet[(next() as usize) % alphabet.len()];
            }
            if let Ok(s) = String::from_utf8(bytes) {
                exercise(&path, &s);
            }
        }
    }
}

/// A diagnostic on a very long line (a one-line YAML policy of 2 MB with a
/// bad value near its end) shows a window of the line around the position,
/// not the whole line (once or twice): its text stays small, and says where.
#[test]
fn a_diagnostic_on_a_huge_line_shows_a_window_of_it() {
    let mut text = String::from("{name: big, rules: [");
    for i in 0..40_000 {
        text.push_str(&format!("{{action: a{i}, effect: allow}}, "));
    }
    text.push_str("{action: b, effect: alow}]}");
    assert!(text.len() > 1_000_000 && !text.contains('\n'));
    let sources = [Source {
        name: "one-line.yaml".into(),
        text: text.clone(),
    }];
    let comp = compile(&sources, Some(writ_ir::Dialect::MeshGuard));
    let d = comp
        .diagnostics
        .iter()
        .find(|d| d.message.contains("alow"))
        .unwrap_or_else(|| panic!("{:?}", comp.diagnostics));
    let shown = writ::render::to_text(d, &comp.sources, false);
    assert!(shown.len() < 2_000, "{} bytes shown", shown.len());
    let column = text.find("alow").unwrap() + 1;
    assert!(
        shown.contains(&format!("one-line.yaml:1:{column}"))
            && shown.contains("effect: alow}]}")
            && shown.contains('…')
            && shown.contains("^^^^"),
        "{shown}"
    );
    // A short line is shown whole, by the usual renderer.
    let small = [Source {
        name: "small.yaml".into(),
        text: "{name: s, rules: [{action: b, effect: alow}]}".into(),
    }];
    let comp = compile(&small, Some(writ_ir::Dialect::MeshGuard));
    let shown = writ::render::to_text(&comp.diagnostics[0], &comp.sources, false);
    assert!(
        shown.contains("{name: s, rules: [{action: b, effect: alow}]}") && !shown.contains('…'),
        "{shown}"
    );
}
