//! Every Rust source file of the repository opens with a `//!` line saying
//! what the file holds.
//!
//! The files are found by walking, not listed: every package of the
//! workspace (a directory with a `Cargo.toml` at the root, one level down,
//! as `lsp/`, `python/`, `bench/` and `fuzz/`, or two, as `crates/*/` and
//! `bench/lsp/`) contributes its `build.rs` and the `.rs` files under its
//! `src/`, `tests/`, `benches/`, `examples/` and `fuzz_targets/`, so a new
//! crate is checked as soon as it exists. `target/` and hidden directories
//! are never entered. The very first line must start with `//!`: nothing
//! before it, not even a blank line or an attribute.
//!
//! Also: ARCHITECTURE.md's code map has exactly one section per crate of
//! `crates/`.

use std::path::{Path, PathBuf};

/// The directories of a package that hold its Rust sources.
const SOURCE_DIRS: [&str; 5] = ["src", "tests", "benches", "examples", "fuzz_targets"];

/// Fewer files than this means the walk went wrong (141 when this test was
/// written), not that the tree shrank.
const AT_LEAST: usize = 120;

/// Whether the walk may enter `dir`.
fn enters(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n != "target" && !n.starts_with('.'))
}

/// The subdirectories of `dir` the walk may enter; unreadable ones are
/// reported in `errors`.
fn subdirs(dir: &Path, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                match entry {
                    Ok(e) if e.path().is_dir() && enters(&e.path()) => out.push(e.path()),
                    Ok(_) => {}
                    Err(e) => errors.push(format!("{}: {e}", dir.display())),
                }
            }
        }
        Err(e) => errors.push(format!("{}: {e}", dir.display())),
    }
    out.sort();
    out
}

/// The packages: `root` and the directories one or two levels below it
/// that have a `Cargo.toml`.
fn packages(root: &Path, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    for one in subdirs(root, errors) {
        for two in subdirs(&one, errors) {
            if two.join("Cargo.toml").is_file() {
                out.push(two);
            }
        }
        if one.join("Cargo.toml").is_file() {
            out.push(one);
        }
    }
    out.sort();
    out
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        errors.push(format!("{}: cannot be read", dir.display()));
        return;
    };
    for entry in entries {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => {
                errors.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        if path.is_dir() {
            if enters(&path) {
                rust_files(&path, out, errors);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether the file's text starts with a `//!` line.
fn opens_with_doc(text: &str) -> bool {
    text.starts_with("//!")
}

#[test]
fn every_source_file_opens_with_a_module_doc_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut errors = Vec::new();
    let packages = packages(root, &mut errors);
    let mut files = Vec::new();
    let mut empty_src = Vec::new();
    for package in &packages {
        let before = files.len();
        if package.join("build.rs").is_file() {
            files.push(package.join("build.rs"));
        }
        for dir in SOURCE_DIRS {
            let dir = package.join(dir);
            if dir.is_dir() {
                rust_files(&dir, &mut files, &mut errors);
            }
        }
        if package.join("src").is_dir() && files.len() == before {
            empty_src.push(package.display().to_string());
        }
    }
    files.sort();
    files.dedup();

    let mut offenders = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        match std::fs::read_to_string(file) {
            Ok(text) if opens_with_doc(&text) => {}
            Ok(text) => offenders.push(format!(
                "{shown}: first line is `{}`",
                text.lines().next().unwrap_or("")
            )),
            Err(e) => offenders.push(format!("{shown}: {e}")),
        }
    }

    assert!(errors.is_empty(), "the walk failed:\n{}", errors.join("\n"));
    assert!(
        empty_src.is_empty(),
        "packages with a src/ directory but no .rs file found (is the walk broken?):\n{}",
        empty_src.join("\n")
    );
    assert!(
        files.len() >= AT_LEAST,
        "only {} .rs files found in {} packages; the walk must have missed some",
        files.len(),
        packages.len()
    );
    assert!(
        offenders.is_empty(),
        "{} of {} .rs files do not open with a `//!` line saying what they hold:\n{}",
        offenders.len(),
        files.len(),
        offenders.join("\n")
    );
}

#[test]
fn the_first_line_must_be_the_doc_line() {
    assert!(opens_with_doc("//! The lexer.\n\nuse std::fmt;\n"));
    assert!(!opens_with_doc("\n//! The lexer.\n"));
    assert!(!opens_with_doc(
        "#![allow(clippy::panic)]\n//! The lexer.\n"
    ));
    assert!(!opens_with_doc("// The lexer.\n"));
    assert!(!opens_with_doc("/// The lexer.\n"));
    assert!(!opens_with_doc(""));
}

/// ARCHITECTURE.md's code map has one section per crate of `crates/`, and
/// no section for a crate that is not there.
#[test]
fn the_code_map_matches_the_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut mapped: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("### `crates/"))
        .filter_map(|l| l.split('`').next())
        .map(|name| name.trim_end_matches('/').to_owned())
        .collect();
    let mut errors = Vec::new();
    let mut crates: Vec<String> = subdirs(&root.join("crates"), &mut errors)
        .into_iter()
        .filter(|d| d.join("Cargo.toml").is_file())
        .filter_map(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(crates.len() >= 10, "found only {crates:?}");
    let sections = mapped.len();
    mapped.sort();
    mapped.dedup();
    assert_eq!(mapped.len(), sections, "a crate has two sections");
    crates.sort();
    assert_eq!(mapped, crates, "ARCHITECTURE.md's code map against crates/");
}

/// Every fuzz target has a committed seed corpus: CI runs each target on
/// `fuzz/corpus/<target>/`, and libFuzzer exits at once when that directory
/// is missing (a clean clone has only what git tracks, and `fuzz/.gitignore`
/// keeps only files named `seed-*`). Asked of git, not of the disk, so a
/// seed written but never added fails here rather than in CI.
#[test]
fn every_fuzz_target_has_committed_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut targets: Vec<String> = std::fs::read_dir(root.join("fuzz/fuzz_targets"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.strip_suffix(".rs").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    targets.sort();
    assert!(
        targets.len() >= 6,
        "found only {targets:?} under fuzz/fuzz_targets"
    );
    let out = std::process::Command::new("git")
        .args(["ls-files", "--", "fuzz/corpus"])
        .current_dir(root)
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        panic!("`git ls-files fuzz/corpus` failed: this test needs the git checkout");
    };
    let tracked = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&String> = targets
        .iter()
        .filter(|t| {
            let prefix = format!("fuzz/corpus/{t}/seed-");
            !tracked.lines().any(|l| l.starts_with(&prefix))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "fuzz targets with no committed seed (git add fuzz/corpus/<target>/seed-*): {missing:?}"
    );
    println!("{} fuzz targets, each with committed seeds", targets.len());
}
