//! Runs every decision table in `examples/` (`*.decisions.yaml`, the
//! `writ test` format of `docs/testing.md`) through the reference evaluator,
//! on the `.writ` twins, and through the compiled bundle. A table names its
//! policy files (merged in order) and a list of cases; cases run in order
//! against one evaluator, so rate limits carry from one case to the next, as
//! in `writ eval --requests`. `writ test examples` runs the same tables
//! through the command line (`tests/writ_test.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::{Path, PathBuf};

use writ::engine::SourceEngine;
use writ::testfile::{self, Suite};
use writ_eval::Evaluator;

/// A decision table, read by the reader `writ test` uses.
fn read(path: &Path) -> Suite {
    testfile::read(path).unwrap_or_else(|errors| {
        let all: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.at, e.message))
            .collect();
        panic!("{}", all.join("\n"))
    })
}

fn tables(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            tables(&path, out);
        } else if path.to_string_lossy().ends_with(".decisions.yaml") {
            out.push(path);
        }
    }
}

/// The writ-language twin of a YAML policy: same stem, `.writ`.
fn writ_twin(p: &Path) -> PathBuf {
    let name = p.file_name().unwrap().to_string_lossy().to_string();
    let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
    p.with_file_name(format!("{stem}.writ"))
}

/// How a table is run: the reference evaluator on the YAML policies, on
/// their writ-language twins, or the compiled bundle in the runtime.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Reference,
    Twins,
    Bundle,
}

/// Runs a table in one mode; every mode must decide every case the same
/// way. Cases run in order against one engine (an `isolated` table gives
/// each case a fresh one), and each is held to its expectation by the
/// comparison `writ test` uses.
fn run_table(path: &Path, mode: Mode) -> Vec<String> {
    let table = read(path);
    let files: Vec<PathBuf> = table
        .policies
        .iter()
        .map(|p| {
            if mode == Mode::Twins {
                writ_twin(p)
            } else {
                p.clone()
            }
        })
        .collect();
    let comp = writ::compile_files(&files, table.dialect);
    let set = comp.checked_set().unwrap_or_else(|| {
        panic!(
            "{}: policy has errors: {:#?}",
            path.display(),
            comp.diagnostics
        )
    });
    let now = table
        .now
        .unwrap_or_else(|| panic!("{}: every example table sets `now`", path.display()));
    let mut eval = Evaluator::new(set);
    let mut runtime = (mode == Mode::Bundle).then(|| {
        SourceEngine::new(set, &comp).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    let mut failures = Vec::new();
    for case in &table.cases {
        assert!(
            case.expect.decision.is_some(),
            "{}: case `{}` must expect a decision",
            path.display(),
            case.name
        );
        if table.isolated {
            eval = Evaluator::new(set);
            if let Some(rt) = &mut runtime {
                rt.reset().unwrap();
            }
        }
        for i in 0..case.repeat {
            let decision = match &mut runtime {
                Some(rt) => rt.check(&case.request, now),
                None => eval.check(&case.request, now),
            };
            if let Some(mismatches) = case.expect.mismatches(&decision) {
                failures.push(format!(
                    "{}{}: case `{}` (run {} of {}): {}\n  decision: {}",
                    path.display(),
                    match mode {
                        Mode::Reference => "",
                        Mode::Twins => " (writ twins)",
                        Mode::Bundle => " (compiled bundle)",
                    },
                    case.name,
                    i + 1,
                    case.repeat,
                    mismatches.join("; "),
                    decision.to_json()
                ));
            }
        }
    }
    failures
}

#[test]
fn every_example_decision_table_holds() {
    let mut paths = Vec::new();
    tables(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .as_path(),
        &mut paths,
    );
    paths.sort();
    assert!(
        paths.len() >= 8,
        "expected a decision table per example, found {}",
        paths.len()
    );
    let failures: Vec<String> = paths
        .iter()
        .flat_map(|p| {
            [
                run_table(p, Mode::Reference),
                run_table(p, Mode::Twins),
                run_table(p, Mode::Bundle),
            ]
        })
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_example_policy_has_a_decision_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut tables_found = Vec::new();
    tables(&root, &mut tables_found);
    let mut covered = std::collections::HashSet::new();
    for t in &tables_found {
        for p in read(t).policies {
            covered.insert(p.canonicalize().unwrap());
        }
    }
    let mut policies = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let s = p.to_string_lossy().to_string();
            if p.is_dir() {
                walk(&p, out);
            } else if (s.ends_with(".yaml") || s.ends_with(".yml"))
                && !s.ends_with(".decisions.yaml")
            {
                out.push(p.canonicalize().unwrap());
            }
        }
    }
    walk(&root, &mut policies);
    let missing: Vec<_> = policies.iter().filter(|p| !covered.contains(*p)).collect();
    assert!(
        missing.is_empty(),
        "policies without a decision table: {missing:?}"
    );
}
