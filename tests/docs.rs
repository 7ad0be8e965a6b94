//! Examples in the user docs are policies that must check cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::Path;

use writ::{Source, compile, render};

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

/// The ` ```writ ` blocks of a page, each with the 1-based line of its fence.
fn writ_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if line.trim() == "```writ" {
            let body: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| l.trim() != "```")
                .collect();
            out.push((i + 1, body.join("\n") + "\n"));
        }
    }
    out
}

#[test]
fn writ_examples_in_the_docs_check_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    let mut in_language_page = 0;
    for page in [
        "docs/language.md",
        "README.md",
        "docs/schema.md",
        "docs/delegation.md",
    ] {
        let path = root.join(page);
        if page != "docs/language.md" && !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let blocks = writ_blocks(&text);
        if page == "docs/language.md" {
            in_language_page = blocks.len();
        }
        for (line, block) in blocks {
            let comp = compile(
                &[Source {
                    name: "example.writ".into(),
                    text: block.clone(),
                }],
                None,
            );
            if !comp.diagnostics.is_empty() {
                let rendered: Vec<String> = comp
                    .diagnostics
                    .iter()
                    .map(|d| render::to_text(d, &comp.sources, false))
                    .collect();
                failures.push(format!(
                    "{page}:{line}: the ```writ block starting here does not check cleanly \
                     (lines below count from the block's first line)\n{block}\n{}",
                    rendered.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        in_language_page >= 15,
        "docs/language.md has only {in_language_page} ```writ examples"
    );
}

/// Each ` ```writ ` block of docs/language.md followed by a
/// ` ```decisions ` block (`REQUEST_JSON => decision` lines, or
/// `REQUEST_JSON => decision: reason`), as pairs:
/// (line of the decisions fence, policy, lines).
fn decision_examples(text: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut policy: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim();
        if fence == "```writ" || fence == "```decisions" {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim() != "```")
                .copied()
                .collect();
            let end = i + 1 + body.len();
            if fence == "```writ" {
                policy = Some(body.join("\n") + "\n");
            } else if let Some(p) = policy.take() {
                out.push((i + 1, p, body.iter().map(|l| (*l).to_owned()).collect()));
            } else {
                panic!(
                    "docs/language.md:{}: a decisions block without a policy before it",
                    i + 1
                );
            }
            i = end;
        } else if fence.starts_with("```") {
            policy = None;
        }
        i += 1;
    }
    out
}

#[test]
fn semantics_examples_decide_as_written_in_both_engines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/language.md")).unwrap();
    let now = "2025-01-15T12:00:00Z".parse().unwrap();
    let mut checked = 0;
    for (line, policy, requests) in decision_examples(&text) {
        let sources = [Source {
            name: "example.writ".into(),
            text: policy.clone(),
        }];
        let comp = compile(&sources, None);
        let set = comp
            .checked_set()
            .unwrap_or_else(|| panic!("docs/language.md:{line}: the policy has errors"));
        let bundle = writ::bundle::compile(set, &sources, None).unwrap();
        let runtime = writ_runtime::Runtime::from_bytes(&bundle).unwrap();
        let mut reference = writ_eval::Evaluator::new(set);
        for r in &requests {
            let (json, want) = r.rsplit_once(" => ").unwrap_or_else(|| {
                panic!("docs/language.md:{line}: `{r}` is not `REQUEST => decision`")
            });
            let req = writ_eval::Request::from_json(json)
                .unwrap_or_else(|e| panic!("docs/language.md:{line}: {json}: {e}"));

            let got = runtime.check_at(&req, now);
            let expected = reference.check(&req, now);
            assert_eq!(
                got.to_json(&req),
                expected.to_json(),
                "docs/language.md:{line}: the engines disagree on {json}"
            );
            // `=> effect` or `=> effect: reason`.
            let (effect, reason) = match want.split_once(": ") {
                Some((effect, reason)) => (effect, Some(reason.trim())),
                None => (want, None),
            };
            assert_eq!(
                got.effect.as_str(),
                effect.trim(),
                "docs/language.md:{line}: {json}"
            );
            if let Some(reason) = reason {
                assert_eq!(
                    got.reason_text(&req).as_deref(),
                    Some(reason),
                    "docs/language.md:{line}: {json}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} documented decisions");
}
