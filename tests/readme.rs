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

/// Runs a `writ serve` command of the README until it answers `/health`
/// on its `--port`, then stops it with SIGTERM: it must exit cleanly.
fn serve_answers_health(line: &str, dir: &Path, path: &str) {
    use std::io::{Read as _, Write as _};
    let port: u16 = line
        .split_whitespace()
        .skip_while(|w| *w != "--port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("a README `writ serve` command gives its --port");
    let mut child = Command::new("sh")
        .args(["-c", &format!("exec {line}")])
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut answer = String::new();
    while std::time::Instant::now() < deadline && !answer.contains("\"healthy\"") {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s
                .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            answer.clear();
            let _ = s.read_to_string(&mut answer);
        } else {
            assert!(
                child.try_wait().unwrap().is_none(),
                "README command exited: {line}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        answer.contains("\"healthy\""),
        "README command never answered /health: {line}\n{stderr}"
    );
    assert!(
        status.success(),
        "README command did not stop cleanly: {line}\n{stderr}"
    );
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
        if line.starts_with("writ serve ") {
            serve_answers_health(&line, &dir, &path);
            ran += 1;
            continue;
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
        "serve",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(&format!("writ {sub} "))),
            "no `writ {sub}` command found in the README"
        );
    }
    eprintln!("ran {ran} README commands");
    std::fs::remove_dir_all(&dir).unwrap();
}
