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
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use writ_eval::{Evaluator, Request};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    policies: Vec<String>,
    #[serde(default)]
    dialect: Option<String>,
    /// The time of requests without `at`; every example sets it.
    now: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: serde_json::Value,
    #[serde(default = "one")]
    repeat: u32,
    expect: BTreeMap<String, serde_json::Value>,
}

fn one() -> u32 {
    1
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

/// Runs a table in one mode; every mode must decide every case the same way.
fn run_table(path: &Path, mode: Mode) -> Vec<String> {
    let twins = mode == Mode::Twins;
    let text = std::fs::read_to_string(path).unwrap();
    let table: Table =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = path.parent().unwrap();
    let files: Vec<PathBuf> = table
        .policies
        .iter()
        .map(|p| {
            if twins {
                writ_twin(&dir.join(p))
            } else {
                dir.join(p)
            }
        })
        .collect();
    let dialect = table
        .dialect
        .as_deref()
        .map(|d| writ_ir::Dialect::parse(d).expect("dialect"));
    let comp = writ::compile_files(&files, dialect);
    let set = comp.checked_set().unwrap_or_else(|| {
        panic!(
            "{}: policy has errors: {:#?}",
            path.display(),
            comp.diagnostics
        )
    });
    let fixed_now: jiff::Timestamp = table
        .now
        .parse()
        .unwrap_or_else(|e| panic!("{}: `now`: {e}", path.display()));
    let fixed_now = || fixed_now;
    let mut eval = Evaluator::new(set);
    let runtime = (mode == Mode::Bundle).then(|| {
        let sources: Vec<writ::Source> = comp
            .sources
            .iter()
            .map(|(_, f)| writ::Source {
                name: f.name().to_owned(),
                text: f.text().to_owned(),
            })
            .collect();
        let bytes = writ::bundle::compile(set, &sources, None)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        writ_runtime::Runtime::from_bytes(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    let mut failures = Vec::new();
    for case in &table.cases {
        let req = Request::from_json(&case.request.to_string())
            .unwrap_or_else(|e| panic!("{}: {}: {e}", path.display(), case.name));
        for i in 0..case.repeat {
            let json = match &runtime {
                Some(rt) => rt.check_at(&req, fixed_now()).to_json(&req),
                None => eval.check(&req, fixed_now()).to_json(),
            };
            let actual: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert!(
                case.expect.contains_key("decision"),
                "{}: case `{}` must expect a decision",
                path.display(),
                case.name
            );
            for (key, want) in &case.expect {
                if key == "reason_contains" {
                    let reason = actual.get("reason").and_then(|r| r.as_str()).unwrap_or("");
                    if !want.as_str().is_some_and(|w| reason.contains(w)) {
                        failures.push(format!(
                            "{}: case `{}`: reason {reason:?} does not contain {want}",
                            path.display(),
                            case.name
                        ));
                    }
                    continue;
                }
                let got = actual
                    .get(key)
                    .unwrap_or_else(|| panic!("decision has no field `{key}`"));
                if got != want {
                    failures.push(format!(
                        "{}{}: case `{}` (run {} of {}): `{key}` is {got}, expected {want}\n  decision: {actual}",
                        path.display(),
                        match mode {
                            Mode::Reference => "",
                            Mode::Twins => " (writ twins)",
                            Mode::Bundle => " (compiled bundle)",
                        },
                        case.name,
                        i + 1,
                        case.repeat
                    ));
                }
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
        let table: Table = serde_saphyr::from_str(&std::fs::read_to_string(t).unwrap()).unwrap();
        for p in table.policies {
            covered.insert(t.parent().unwrap().join(p).canonicalize().unwrap());
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
