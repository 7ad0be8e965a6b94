//! The harness of the test binaries that need `redis-server`
//! (`tests/redis_limits.rs`, `tests/serve.rs`).
//!
//! `tests/run` (the README's test command, which `.ci/run` calls) installs
//! the server and sets `WRIT_REQUIRE_REDIS=1`, so there a missing server
//! fails. A plain `cargo test` on a machine without `redis-server` runs
//! every other test, and each binary says once that it skipped those that
//! need it (they show as ignored): the binaries have their own harness
//! (`libtest-mimic`, `harness = false` in `Cargo.toml`) so that they can
//! look for the server once and say so once; filters and `--list` work as
//! with libtest.

use std::process::{Command, Stdio};

/// Why `redis-server` cannot run here, or `None` when it starts.
fn missing() -> Option<String> {
    match Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!("`redis-server --version` exited with {status}")),
        Err(e) => Some(format!("`redis-server` cannot be run: {e}")),
    }
}

/// Runs `tests` (name, whether it needs `redis-server`, the test): those
/// that need it are shown as ignored when it is missing, unless
/// `WRIT_REQUIRE_REDIS` is set. `what` names them in the note saying so.
pub fn run(tests: &[(&'static str, bool, fn())], what: &str) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let missing = missing();
    if let Some(why) = &missing {
        if std::env::var_os("WRIT_REQUIRE_REDIS").is_some() {
            eprintln!(
                "error: WRIT_REQUIRE_REDIS is set but {why}: install it (apt-get install redis-server)"
            );
            return std::process::ExitCode::FAILURE;
        }
        eprintln!(
            "note: {why}: the {} tests of {what} are skipped (shown as ignored); \
             install redis-server, or run `tests/run`, which does",
            tests.iter().filter(|t| t.1).count()
        );
    }
    let trials = tests
        .iter()
        .map(|&(name, needs_redis, test)| {
            libtest_mimic::Trial::test(name, move || {
                test();
                Ok(())
            })
            .with_ignored_flag(needs_redis && missing.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
