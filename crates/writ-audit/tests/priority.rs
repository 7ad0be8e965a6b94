//! `AuditOptions::nice`: the log's own threads run at the nice value
//! asked, and the threads that record are left as they were. A test
//! binary of its own: no other log's threads are alive beside it.

#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::PathBuf;
use std::sync::Arc;

use writ_audit::{AuditLog, AuditOptions, AuditRecord};
use writ_runtime::Effect;

/// The nice value of each of this process's threads named `writ-audit*`.
fn audit_threads() -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        let comm = comm.trim().to_owned();
        if !comm.starts_with("writ-audit") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // the thread ended meanwhile
        };
        found.push((comm, nice_in_stat(&stat)));
    }
    found.sort();
    found
}

/// The log's threads, once `done` holds of them (polled for 5 s at most:
/// a thread that ended stays in /proc for a moment after `join`).
fn audit_threads_once(done: impl Fn(&[(String, i32)]) -> bool) -> Vec<(String, i32)> {
    let start = std::time::Instant::now();
    loop {
        let threads = audit_threads();
        if done(&threads) || start.elapsed() > std::time::Duration::from_secs(5) {
            return threads;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The nice value in a thread's `/proc/.../stat`: after `(comm)`, the
/// state is field 3 and the nice value field 19.
fn nice_in_stat(stat: &str) -> i32 {
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(16).unwrap().parse().unwrap()
}

fn this_threads_nice() -> i32 {
    nice_in_stat(&std::fs::read_to_string("/proc/thread-self/stat").unwrap())
}

#[test]
fn a_logs_threads_run_at_the_nice_value_asked() {
    let dir = std::env::temp_dir().join(format!("writ-audit-priority-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let base = this_threads_nice();
    let mut paths: Vec<PathBuf> = vec![dir.join("audit.jsonl")];
    if cfg!(feature = "sqlite") {
        paths.push(dir.join("audit.db"));
    }
    for (nice, path) in [(6u8, &paths[0]), (0, &paths[0])]
        .into_iter()
        .chain(paths.get(1).map(|p| (6u8, p)))
    {
        let log = AuditLog::open(
            path,
            AuditOptions {
                nice,
                ..AuditOptions::default()
            },
        )
        .unwrap();
        let mut rec = AuditRecord::new(
            "billing-agent",
            "tool:call",
            Effect::Allow,
            Arc::from("rev"),
        );
        rec.time_ms = 1;
        log.record(&rec);
        // Once a record is written and synced, the writer (and a JSON
        // Lines log's syncing thread) have run, and set their nice value
        // first thing.
        log.flush().unwrap();
        let want = (base + i32::from(nice)).min(19);
        let threads = audit_threads_once(|t| t.iter().all(|(_, n)| *n == want));
        assert!(
            threads.iter().any(|(name, _)| name == "writ-audit"),
            "{threads:?}"
        );
        for (name, got) in &threads {
            assert_eq!(*got, want, "{name} of {} with nice {nice}", path.display());
        }
        assert_eq!(
            this_threads_nice(),
            base,
            "the recording thread is unchanged"
        );
        log.shutdown().unwrap();
        assert_eq!(
            audit_threads_once(<[_]>::is_empty),
            Vec::new(),
            "the log's threads ended"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
