//! Every `writ` command in the README's ` ```sh ` blocks works verbatim.
//!
//! The commands run in order (a later one may use what an earlier one
//! wrote, as `writ compile --sign release-key` uses `writ keygen`'s key) with
//! `sh`, from a scratch copy of the repository's `examples/`, with the
//! `writ` built for this test first on `PATH`. Each must exit 0 without a
//! panic. A pipe into a program this machine lacks (`| dot -Tsvg`) runs up
//! to the pipe. The set-up commands (`cargo run ...`, `tests/run`) are
//! checked by `.ci/run`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The lines of ` ```sh ` blocks that run `writ` (alone or after a pipe).
fn writ_commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            for l in lines.by_ref().take_while(|l| l.trim() != "```") {
                let l = l.trim();
                if l.starts_with("writ ") || l.contains("| writ ") {
                    out.push(l.to_owned());
                }
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn every_readme_command_works_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands = writ_commands(&readme);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root.join("examples"), &dir.join("examples"));
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_writ"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for command in &commands {
        // A pipe into a program that is not installed runs up to the pipe.
        let mut line = command.clone();
        if let Some((before, after)) = command.split_once(" | ") {
            let program = after.split_whitespace().next().unwrap_or_default();
            if program != "writ" && !on_path(program) {
                line = before.to_owned();
            }
        }
        let out = Command::new("sh")
            .args(["-c", &format!("set -e; {line}")])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "README command failed ({:?}): {command}\nstdout:\n{}\nstderr:\n{stderr}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        ran += 1;
    }
    // The README has commands for check, fmt, convert, eval, plan, test,
    // graph, keygen, compile and inspect; a reader that found none would
    // prove nothing.
    for sub in [
        "check", "fmt", "convert", "eval", "plan", "test", "graph", "keygen", "compile", "inspect",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(&format!("writ {sub} "))),
            "no `writ {sub}` command found in the README"
        );
    }
    eprintln!("ran {ran} README commands");
    std::fs::remove_dir_all(&dir).unwrap();
}
