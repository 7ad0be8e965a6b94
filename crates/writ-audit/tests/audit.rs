//! The audit log, end to end: records round-trip through JSON Lines and
//! SQLite, masking, tamper detection (edited, deleted, swapped, forged),
//! continuing a log, durability of `flush`, and a writer killed with
//! SIGKILL mid-write.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use writ_audit::{AuditLog, AuditOptions, AuditRecord, JsonlSink, MASKED, Problem, verify_jsonl};
use writ_runtime::{Effect, Risk, Value};

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("writ-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn record(i: u64) -> AuditRecord {
    let mut context = BTreeMap::new();
    context.insert("amount".to_owned(), Value::Number(i as f64 + 0.5));
    context.insert("currency".to_owned(), Value::String("USD".to_owned()));
    AuditRecord {
        time_ms: 1_736_953_200_000 + i as i64 * 1000,
        trace_id: Some(format!("trace-{i}")),
        agent: if i.is_multiple_of(2) {
            "billing-agent"
        } else {
            "triage-agent"
        }
        .to_owned(),
        chain: vec!["triage-agent".to_owned(), "billing-agent".to_owned()],
        action: "tool:call".to_owned(),
        target: Some("refund".to_owned()),
        context,
        decision: if i.is_multiple_of(3) {
            Effect::Deny
        } else {
            Effect::Allow
        },
        rule: Some(format!("rule_{i}")),
        reason: Some("a \"quoted\"\nreason".to_owned()),
        risk: Some(Risk::High),
        retry_after_s: i.is_multiple_of(3).then_some(30),
        revision: Arc::from("rev-abc"),
    }
}

fn write_jsonl(path: &Path, n: u64) {
    let log = AuditLog::jsonl(path).unwrap();
    for i in 1..=n {
        log.record(&record(i));
    }
    log.shutdown().unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn json(line: &str) -> Json {
    serde_json::from_str(line).unwrap()
}

#[test]
fn records_round_trip_through_jsonl_and_chain() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("log.jsonl");
    let log = AuditLog::jsonl(&path).unwrap();
    let ids: Vec<_> = (1..=3).map(|i| log.record(&record(i))).collect();
    log.flush().unwrap();
    let lines = lines(&path);
    assert_eq!(lines.len(), 3);
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter().enumerate() {
        let v = json(line);
        let n = i as u64 + 1;
        assert_eq!(v["seq"], n);
        assert_eq!(v["id"], ids[i].to_string());
        assert_eq!(v["agent"], record(n).agent.as_str());
        assert_eq!(
            v["chain"],
            serde_json::json!(["triage-agent", "billing-agent"])
        );
        assert_eq!(v["action"], "tool:call");
        assert_eq!(v["target"], "refund");
        assert_eq!(v["trace_id"], format!("trace-{n}"));
        assert_eq!(v["context"]["amount"], n as f64 + 0.5);
        assert_eq!(v["context"]["currency"], "USD");
        assert_eq!(v["decision"], record(n).decision.as_str());
        assert_eq!(v["rule"], format!("rule_{n}"));
        assert_eq!(v["reason"], "a \"quoted\"\nreason");
        assert_eq!(v["risk"], "high");
        assert_eq!(v["revision"], "rev-abc");
        assert_eq!(
            v["prev"],
            prev.as_str(),
            "each record carries the previous hash"
        );
        prev = v["hash"].as_str().unwrap().to_owned();
    }
    assert_eq!(json(&lines[0])["time"], "2025-01-15T15:00:01.000Z");
    assert_eq!(json(&lines[0])["retry_after_s"], Json::Null);
    assert_eq!(json(&lines[2])["retry_after_s"], 30);
    log.shutdown().unwrap();
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 3);
    assert_eq!(report.last.as_ref().map(|l| l.0), Some(3));
    assert_eq!(report.last.unwrap().1, prev);
}

#[test]
fn decision_ids_are_unique_across_logs() {
    let dir = temp_dir("ids");
    let a = AuditLog::jsonl(dir.join("a.jsonl")).unwrap();
    let b = AuditLog::jsonl(dir.join("b.jsonl")).unwrap();
    let ia = a.record(&record(1));
    let ib = b.record(&record(1));
    assert_ne!(ia, ib);
    assert_ne!(ia.to_string(), ib.to_string());
    assert_eq!(a.record(&record(2)).seq, ia.seq + 1);
}

#[test]
fn masked_keys_never_reach_the_file() {
    let dir = temp_dir("mask");
    let path = dir.join("log.jsonl");
    let options = AuditOptions {
        mask: vec!["password".to_owned(), "*token*".to_owned()],
        ..AuditOptions::default()
    };
    let log = AuditLog::new(JsonlSink::open(&path).unwrap(), options).unwrap();
    let mut rec = record(1);
    let secret = |s: &str| Value::String(format!("SECRET-{s}"));
    rec.context.insert("Password".to_owned(), secret("a"));
    rec.context.insert("access_TOKEN".to_owned(), secret("b"));
    let mut inner = BTreeMap::new();
    inner.insert("refresh_token".to_owned(), secret("c"));
    inner.insert("user".to_owned(), Value::String("ann".to_owned()));
    inner.insert(
        "deeper".to_owned(),
        Value::Map(BTreeMap::from([("password".to_owned(), secret("d"))])),
    );
    rec.context
        .insert("auth".to_owned(), Value::Map(inner.clone()));
    rec.context
        .insert("sessions".to_owned(), Value::List(vec![Value::Map(inner)]));
    // A whole map under a masked key is masked as one value.
    rec.context.insert(
        "tokens".to_owned(),
        Value::Map(BTreeMap::from([("x".to_owned(), secret("e"))])),
    );
    rec.context
        .insert("passwords_hint".to_owned(), Value::String("kept".into()));
    log.record(&rec);
    log.shutdown().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("SECRET"), "a secret was written: {text}");
    let v = json(text.trim_end());
    let ctx = &v["context"];
    assert_eq!(ctx["Password"], MASKED);
    assert_eq!(ctx["access_TOKEN"], MASKED);
    assert_eq!(ctx["auth"]["refresh_token"], MASKED);
    assert_eq!(ctx["auth"]["deeper"]["password"], MASKED);
    assert_eq!(ctx["auth"]["user"], "ann");
    assert_eq!(ctx["sessions"][0]["refresh_token"], MASKED);
    assert_eq!(ctx["sessions"][0]["user"], "ann");
    assert_eq!(ctx["tokens"], MASKED);
    assert_eq!(ctx["passwords_hint"], "kept", "patterns match whole keys");
    assert_eq!(ctx["currency"], "USD");
    assert!(verify_jsonl(&path).unwrap().is_intact());
}

#[test]
fn the_default_options_mask_common_secrets() {
    let dir = temp_dir("default-mask");
    let path = dir.join("log.jsonl");
    let log = AuditLog::jsonl(&path).unwrap();
    let mut rec = record(1);
    for k in ["password", "api_key", "auth_token", "client_secret"] {
        rec.context
            .insert(k.to_owned(), Value::String("SECRET".to_owned()));
    }
    log.record(&rec);
    log.shutdown().unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains("SECRET"));
}

#[test]
fn verify_names_an_edited_record() {
    let dir = temp_dir("edited");
    let path = dir.join("log.jsonl");
    write_jsonl(&path, 5);
    let mut l = lines(&path);
    let edited = l[2].replace("\"target\":\"refund\"", "\"target\":\"payout\"");
    assert_ne!(edited, l[2]);
    l[2] = edited;
    write_lines(&path, &l);
    let report = verify_jsonl(&path).unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.problems.len(), 1, "{report}");
    let Problem::Edited(at) = &report.problems[0] else {
        panic!("{report}")
    };
    assert_eq!((at.position, at.seq), (3, Some(3)));
    let text = report.to_string();
    assert!(text.contains("line 3 (seq 3, id "), "{text}");
    assert!(text.contains("edited"), "{text}");
}

#[test]
fn verify_names_a_deleted_record() {
    let dir = temp_dir("deleted");
    let path = dir.join("log.jsonl");
    write_jsonl(&path, 5);
    let mut l = lines(&path);
    l.remove(2);
    write_lines(&path, &l);
    let report = verify_jsonl(&path).unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::Missing { first: 3, last: 3 }],
        "{report}"
    );
    assert!(report.to_string().contains("seq 3 is missing"), "{report}");
    // Two in a row, and the first record.
    let mut l = lines(&path);
    l.remove(0);
    write_lines(&path, &l);
    let report = verify_jsonl(&path).unwrap();
    assert_eq!(
        report.problems,
        vec![
            Problem::Missing { first: 1, last: 1 },
            Problem::Missing { first: 3, last: 3 }
        ],
        "{report}"
    );
}

#[test]
fn verify_names_swapped_records() {
    let dir = temp_dir("swapped");
    let path = dir.join("log.jsonl");
    write_jsonl(&path, 5);
    let mut l = lines(&path);
    l.swap(1, 2);
    write_lines(&path, &l);
    let report = verify_jsonl(&path).unwrap();
    assert_eq!(report.problems.len(), 1, "{report}");
    let Problem::OutOfOrder { at, after } = &report.problems[0] else {
        panic!("{report}")
    };
    assert_eq!((at.position, at.seq, *after), (3, Some(2), 3));
    assert!(report.to_string().contains("line 3 (seq 2, id"));
}

#[test]
fn verify_catches_a_record_rewritten_with_a_new_hash() {
    use sha2::Digest as _;
    let dir = temp_dir("forged");
    let path = dir.join("log.jsonl");
    write_jsonl(&path, 4);
    let mut l = lines(&path);
    // Rewrite record 2 and recompute its hash, as a forger would.
    let edited = l[1].replace("\"decision\":\"allow\"", "\"decision\":\"deny\"");
    assert_ne!(edited, l[1]);
    let body = &edited[..edited.len() - 75];
    let hash: String = sha2::Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    l[1] = format!("{body},\"hash\":\"{hash}\"}}");
    write_lines(&path, &l);
    let report = verify_jsonl(&path).unwrap();
    assert_eq!(report.problems.len(), 1, "{report}");
    let Problem::ChainBroken { at, predecessor } = &report.problems[0] else {
        panic!("{report}")
    };
    assert_eq!((at.position, at.seq, *predecessor), (3, Some(3), 2));
}

#[test]
fn a_torn_tail_is_reported_not_tampering_and_cut_when_continued() {
    let dir = temp_dir("torn");
    let path = dir.join("log.jsonl");
    write_jsonl(&path, 3);
    let full = std::fs::read_to_string(&path).unwrap();
    let mut torn = full.clone();
    torn.push_str("{\"seq\":4,\"id\":\"x-4\",\"time\":\"2025-");
    std::fs::write(&path, &torn).unwrap();
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 3);
    assert_eq!(report.incomplete_tail.as_ref().map(|t| t.line), Some(4));
    assert!(
        report.to_string().contains("incomplete final line"),
        "{report}"
    );
    // Opening the log again cuts the torn line and continues the chain.
    write_jsonl(&path, 2);
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 5);
    assert_eq!(report.incomplete_tail, None);
}

#[test]
fn appending_to_a_log_continues_its_chain() {
    let dir = temp_dir("append");
    let path = dir.join("log.jsonl");
    write_jsonl(&path, 3);
    write_jsonl(&path, 2);
    let l = lines(&path);
    assert_eq!(l.len(), 5);
    assert_eq!(json(&l[3])["seq"], 4);
    assert_eq!(json(&l[3])["prev"], json(&l[2])["hash"]);
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.last.map(|l| l.0), Some(5));
}

#[test]
fn a_log_that_is_not_a_log_is_not_continued() {
    let dir = temp_dir("notalog");
    let path = dir.join("notes.txt");
    std::fs::write(&path, "hello\n").unwrap();
    let err = AuditLog::jsonl(&path).unwrap_err();
    assert!(err.to_string().contains("not an audit record"), "{err}");
}

#[test]
fn flush_makes_every_record_visible() {
    let dir = temp_dir("flush");
    let path = dir.join("log.jsonl");
    let log = Arc::new(AuditLog::jsonl(&path).unwrap());
    // From several threads, more than the queue holds.
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    log.record(&record(t * 10_000 + i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log.flush().unwrap();
    assert_eq!(lines(&path).len(), 30_000);
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 30_000);
    assert_eq!(log.dropped(), 0);
}

#[test]
fn a_tiny_queue_shared_by_threads_and_flushes_loses_and_repeats_nothing() {
    let dir = temp_dir("tiny");
    let path = dir.join("log.jsonl");
    let log = AuditLog::new(
        JsonlSink::open(&path).unwrap(),
        AuditOptions {
            capacity: 3,
            interval: std::time::Duration::from_millis(1),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    // Four threads record (each waiting for room most of the time) while
    // a fifth flushes: every id returned is written once, in a chain that
    // verifies.
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut ids: Vec<String> = std::thread::scope(|s| {
        let flusher = s.spawn(|| {
            let mut flushes = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                log.flush().unwrap();
                flushes += 1;
            }
            flushes
        });
        let recorders: Vec<_> = (0..4)
            .map(|t| {
                let log = &log;
                s.spawn(move || {
                    (0..2_000)
                        .map(|i| log.record(&record(t * 2_000 + i)).to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let ids = recorders
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect();
        done.store(true, std::sync::atomic::Ordering::Release);
        assert!(flusher.join().unwrap() > 0);
        ids
    });
    log.flush().unwrap();
    let mut written: Vec<String> = lines(&path)
        .iter()
        .map(|l| json(l)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(written.len(), 8_000);
    ids.sort();
    written.sort();
    assert_eq!(ids, written);
    assert_eq!(log.dropped(), 0);
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 8_000);
}

#[test]
fn unwritable_logs_are_errors_not_panics() {
    // The cause is kept, typed: its kind tells why.
    let kind = |err: &writ_audit::AuditError| {
        std::error::Error::source(err)
            .and_then(|c| c.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind)
    };
    let err = AuditLog::jsonl("/nonexistent-dir/writ/audit.jsonl").unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
    assert_eq!(kind(&err), Some(std::io::ErrorKind::NotFound), "{err:?}");
    // A full disk: every write to /dev/full fails with ENOSPC.
    if Path::new("/dev/full").exists() {
        let log = AuditLog::jsonl("/dev/full").unwrap();
        log.record(&record(1));
        let err = log.flush().unwrap_err();
        assert!(err.to_string().contains("write failed"), "{err}");
        assert_eq!(kind(&err), Some(std::io::ErrorKind::StorageFull), "{err:?}");
        log.record(&record(2)); // does not block
        assert!(log.shutdown().is_err());
    }
}

/// A log is one chain: while a writer has it open, a second one (here,
/// or in another process) is refused, and it is free again once the
/// first is shut down.
#[test]
fn a_log_has_one_writer_at_a_time() {
    let dir = temp_dir("one-writer");
    let mut paths = vec![dir.join("audit.jsonl")];
    if cfg!(feature = "sqlite") {
        paths.push(dir.join("audit.db"));
    }
    for path in paths {
        let first = AuditLog::open(&path, AuditOptions::default()).unwrap();
        first.record(&record(1));
        let err = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
        assert!(
            matches!(&err, writ_audit::AuditError::InUse { path: p } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("another writer has it open"),
            "{err}"
        );
        first.shutdown().unwrap();
        let second = AuditLog::open(&path, AuditOptions::default()).unwrap();
        second.record(&record(2));
        second.shutdown().unwrap();
        let report = writ_audit::verify(&path).unwrap();
        assert!(report.is_intact() && report.records == 2, "{report}");
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use std::ops::ControlFlow;
    use writ_audit::{
        SqliteCounts, prune_sqlite, read_sqlite, sqlite_counts, sqlite_newest_first, verify_sqlite,
    };

    fn write_db(path: &Path, n: u64) {
        write_db_from(path, 1, n);
    }

    /// An SQLite log whose writer's turn comes only at shutdown (so what
    /// it records is written in as few batches as it can).
    fn batching_log(path: &Path) -> AuditLog {
        let options = AuditOptions {
            interval: std::time::Duration::from_secs(600),
            ..AuditOptions::default()
        };
        AuditLog::new(writ_audit::SqliteSink::open(path).unwrap(), options).unwrap()
    }

    /// Records `first..=last`, written at shutdown.
    fn write_db_from(path: &Path, first: u64, last: u64) {
        let log = batching_log(path);
        for i in first..=last {
            log.record(&record(i));
        }
        log.shutdown().unwrap();
    }

    /// A log as writ made them before 2026-12-06: one row per record in
    /// table `audit`, 4 KiB pages.
    fn old_layout(path: &Path) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 4096;
                CREATE TABLE audit (
                    seq INTEGER NOT NULL, id TEXT NOT NULL, time_ms INTEGER NOT NULL,
                    trace_id TEXT, agent TEXT NOT NULL, chain TEXT NOT NULL,
                    action TEXT NOT NULL, target TEXT, context TEXT NOT NULL,
                    decision TEXT NOT NULL, rule TEXT, reason TEXT, risk TEXT,
                    retry_after_s INTEGER, revision TEXT NOT NULL, prev TEXT NOT NULL,
                    hash TEXT NOT NULL);",
            )
            .unwrap();
    }

    fn conn(path: &Path) -> rusqlite::Connection {
        rusqlite::Connection::open(path).unwrap()
    }

    fn kind_of_audit(path: &Path) -> String {
        conn(path)
            .query_row(
                "SELECT type FROM sqlite_master WHERE name = 'audit'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn wal_len(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
    }

    /// What a copy of the database file alone holds (no WAL beside it):
    /// what a checkpoint has put into the database.
    fn records_in_the_database_file(path: &Path, dir: &Path) -> usize {
        let copy = dir.join("copy.db");
        let _ = std::fs::remove_file(&copy);
        let mut wal = copy.as_os_str().to_owned();
        wal.push("-wal");
        let _ = std::fs::remove_file(PathBuf::from(wal));
        std::fs::copy(path, &copy).unwrap();
        read_sqlite(&copy).unwrap().len()
    }

    #[test]
    fn flush_puts_every_record_into_the_database_file() {
        let dir = temp_dir("sqlite-flush");
        let path = dir.join("audit.db");
        let options = AuditOptions {
            batch_size: 64,
            ..AuditOptions::default()
        };
        let log = AuditLog::new(writ_audit::SqliteSink::open(&path).unwrap(), options).unwrap();
        let mut compared = 0;
        for round in 1..=5u64 {
            for i in (round - 1) * 2_000 + 1..=round * 2_000 {
                log.record(&record(i));
            }
            log.flush().unwrap();
            // The writer's own checkpoint comes only at 4096 pages, which
            // this log never reaches: the syncing thread's checkpoint put
            // every flushed record into the database file (what the file
            // holds as the system sees it; a power cut is not simulated).
            assert_eq!(
                records_in_the_database_file(&path, &dir),
                (round * 2_000) as usize,
                "round {round}"
            );
            compared += 1;
        }
        assert_eq!(compared, 5);
        log.shutdown().unwrap();
        assert!(verify_sqlite(&path).unwrap().is_intact());
    }

    #[test]
    fn the_wal_stays_bounded_while_the_syncing_thread_checkpoints() {
        let dir = temp_dir("sqlite-wal");
        let path = dir.join("audit.db");
        let options = AuditOptions {
            batch_size: 64,
            interval: std::time::Duration::from_micros(200),
            ..AuditOptions::default()
        };
        let sink = writ_audit::SqliteSink::open(&path)
            .unwrap()
            .with_wal_pages(32);
        let log = AuditLog::new(sink, options).unwrap();
        let n = 40_000u64;
        let mut most = 0;
        for i in 1..=n {
            log.record(&record(i));
            if i % 500 == 0 {
                most = most.max(wal_len(&path));
            }
        }
        log.flush().unwrap();
        most = most.max(wal_len(&path));
        let db = std::fs::metadata(&path).unwrap().len();
        // About 20 MiB of records went through a WAL of 32 pages (512
        // KiB): a WAL that only the syncing thread checkpointed would
        // have held them all (42 MB), as it is never caught up with the
        // writer. Past the 32 pages it grows by what the writer writes
        // while the syncing thread holds the checkpoint (its fsyncs): a
        // slow disk's worth of slack.
        assert!(db > 8 << 20, "{db} bytes in the database");
        assert!(most > 0, "a WAL was seen");
        assert!(most <= 12 << 20, "the WAL grew to {most} bytes");
        log.shutdown().unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.records, n);
    }

    #[test]
    fn records_round_trip_through_sqlite() {
        let dir = temp_dir("sqlite");
        let path = dir.join("audit.db");
        write_db(&path, 3);
        write_db_from(&path, 4, 5); // continued
        assert_eq!(kind_of_audit(&path), "view", "a new log holds batch rows");
        let lines = read_sqlite(&path).unwrap();
        assert_eq!(lines.len(), 5);
        for (i, line) in lines.iter().enumerate() {
            let v = json(line);
            assert_eq!(v["seq"], i as u64 + 1);
            assert_eq!(v["reason"], "a \"quoted\"\nreason");
            assert_eq!(v["chain"][1], "billing-agent");
            assert_eq!(v["context"]["currency"], "USD");
        }
        assert_eq!(json(&lines[3])["prev"], json(&lines[2])["hash"]);
        let report = verify_sqlite(&path).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.records, 5);
        // The rows rebuild the exact lines a JSONL log holds: the lines
        // verify as a JSONL file too.
        let copy = dir.join("copy.jsonl");
        write_lines(&copy, &lines);
        assert!(verify_jsonl(&copy).unwrap().is_intact());
        // A new log has 16 KiB pages.
        let page_size: i64 = conn(&path)
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, 16384);
    }

    /// View `audit` shows one row per record with the older layout's
    /// columns, each what the record's line says.
    #[test]
    fn the_audit_view_has_a_row_per_record() {
        let dir = temp_dir("sqlite-view");
        let path = dir.join("audit.db");
        write_db(&path, 4);
        write_db_from(&path, 5, 7);
        let lines = read_sqlite(&path).unwrap();
        let c = conn(&path);
        let mut st = c
            .prepare(
                "SELECT seq, id, time_ms, trace_id, agent, chain, action, target, context, \
                 decision, rule, reason, risk, retry_after_s, revision, prev, hash \
                 FROM audit ORDER BY seq",
            )
            .unwrap();
        let rows: Vec<Vec<rusqlite::types::Value>> = st
            .query_map([], |r| (0..17).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), lines.len());
        use rusqlite::types::Value as Sql;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => Sql::Null,
            serde_json::Value::String(s) => Sql::Text(s.clone()),
            serde_json::Value::Number(n) => Sql::Integer(n.as_i64().unwrap()),
            other => Sql::Text(other.to_string()),
        };
        for (i, (row, line)) in rows.iter().zip(&lines).enumerate() {
            let v = json(line);
            let n = i as i64 + 1;
            assert_eq!(row[0], Sql::Integer(n));
            assert_eq!(
                row[2],
                Sql::Integer(1_736_953_200_000 + n * 1000),
                "time_ms"
            );
            let names = [
                (1, "id"),
                (3, "trace_id"),
                (4, "agent"),
                (5, "chain"),
                (6, "action"),
                (7, "target"),
                (8, "context"),
                (9, "decision"),
                (10, "rule"),
                (11, "reason"),
                (12, "risk"),
                (13, "retry_after_s"),
                (14, "revision"),
                (15, "prev"),
                (16, "hash"),
            ];
            for (col, name) in names {
                assert_eq!(row[col], text(&v[name]), "record {n}, column {name}");
            }
        }
        let billing: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE agent = 'billing-agent' AND decision = 'allow'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // Records 2 and 4 (6 is denied).
        assert_eq!(billing, 2);
    }

    /// docs/audit.md's SQL runs, in both layouts, and finds the records
    /// it says.
    #[test]
    fn the_sql_in_the_docs_runs_on_both_layouts() {
        let page =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
                .unwrap();
        let blocks: Vec<&str> = page
            .split("```sql\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert!(!blocks.is_empty(), "docs/audit.md has SQL");
        let dir = temp_dir("sqlite-docs");
        let mut ran = 0;
        for old in [false, true] {
            let path = dir.join(if old { "old.db" } else { "new.db" });
            if old {
                old_layout(&path);
            }
            write_db(&path, 12);
            for sql in &blocks {
                // Continuation lines in the docs are indented.
                let sql = sql.lines().map(str::trim).collect::<Vec<_>>().join("\n");
                let c = conn(&path);
                let mut st = c.prepare(&sql).unwrap();
                let seqs: Vec<i64> = st
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                // Billing (even) and denied (multiples of 3): 12 and 6.
                assert_eq!(seqs, [12, 6], "{sql}");
                ran += 1;
            }
        }
        assert_eq!(ran, 2 * blocks.len());
    }

    /// The newest-first walk, its window, and the counts.
    #[test]
    fn newest_first_stops_when_told_and_counts_agree_with_the_records() {
        let dir = temp_dir("sqlite-newest");
        for old in [false, true] {
            let path = dir.join(if old { "old.db" } else { "new.db" });
            if old {
                old_layout(&path);
            }
            for (first, last) in [(1, 4), (5, 9), (10, 10)] {
                write_db_from(&path, first, last);
            }
            let seqs = |window, limit: usize| {
                let mut out = Vec::new();
                sqlite_newest_first(&path, window, |line| {
                    out.push(json(line)["seq"].as_u64().unwrap());
                    if out.len() == limit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .unwrap();
                out
            };
            assert_eq!(
                seqs(None, 100),
                (1..=10).rev().collect::<Vec<_>>(),
                "old: {old}"
            );
            assert_eq!(seqs(None, 3), vec![10, 9, 8]);
            // Records 6 and 7's times: the batches around them are read
            // whole (records 5 to 9), none other.
            let t = |i: i64| 1_736_953_200_000 + i * 1000;
            let windowed = seqs(Some((t(6), t(7))), 100);
            assert!(
                windowed.contains(&6) && windowed.contains(&7),
                "{windowed:?}"
            );
            assert!(windowed.iter().all(|s| (5..=9).contains(s)), "{windowed:?}");
            // Denied: 3, 6, 9.
            assert_eq!(
                sqlite_counts(&path).unwrap(),
                SqliteCounts {
                    total: 10,
                    allowed: 7,
                    denied: 3
                }
            );
            // A batch's times need not be in order (a request's `at` sets
            // a record's): one in the middle of a batch is found by its
            // time, whatever the batch's first and last.
            if !old {
                let log = batching_log(&path);
                for at in [t(1), t(500), t(2)] {
                    let mut r = record(11);
                    r.time_ms = at;
                    log.record(&r);
                }
                log.shutdown().unwrap();
                // Their batch is read whole (or theirs, if the writer
                // split them).
                for window in [(t(500), t(500)), (t(400), t(600))] {
                    let found = seqs(Some(window), 100);
                    assert!(found.contains(&12), "{found:?}");
                    assert!(found.iter().all(|s| (11..=13).contains(s)), "{found:?}");
                }
                assert!(verify_sqlite(&path).unwrap().is_intact());
            }
        }
        assert_eq!(
            sqlite_counts(dir.join("empty.db")).unwrap_or_default(),
            SqliteCounts::default()
        );
    }

    /// Logs made before 2026-12-06 (a row per record) are continued in
    /// their own layout, read and verified.
    #[test]
    fn older_logs_keep_their_layout() {
        let dir = temp_dir("sqlite-old");
        let old = dir.join("old.db");
        old_layout(&old);
        write_db(&old, 30);
        write_db_from(&old, 31, 40);
        assert_eq!(kind_of_audit(&old), "table");
        let page_size: i64 = conn(&old)
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, 4096);
        let rows: i64 = conn(&old)
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 40);
        let lines = read_sqlite(&old).unwrap();
        assert_eq!(lines.len(), 40);
        assert_eq!(json(&lines[30])["prev"], json(&lines[29])["hash"]);
        assert!(verify_sqlite(&old).unwrap().is_intact());
        // Tampering: an edited column and a deleted row.
        {
            let c = conn(&old);
            c.execute("UPDATE audit SET target = 'payout' WHERE seq = 2", [])
                .unwrap();
            c.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
        }
        let report = verify_sqlite(&old).unwrap();
        assert_eq!(report.problems.len(), 2, "{report}");
        assert!(
            matches!(&report.problems[0], Problem::Edited(at) if at.position == 2 && at.seq == Some(2)),
            "{report}"
        );
        assert_eq!(report.problems[1], Problem::Missing { first: 4, last: 4 });
        assert!(report.to_string().contains("row 2 (seq 2"), "{report}");
    }

    /// Sets each batch row's write time by its last record's number:
    /// `old` maps a number to a time, or `None` for now. (A log's calls
    /// to the writer never share a batch, but how many batches one call
    /// makes depends on when the writer's turns come.)
    fn set_written(path: &Path, time: impl Fn(u64) -> Option<i64>) {
        let c = conn(path);
        let batches: Vec<(i64, i64)> = c
            .prepare("SELECT rowid, last_seq FROM audit_batch ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (rowid, last) in batches {
            let t = time(last as u64).unwrap_or_else(writ_audit::now_ms);
            c.execute(
                "UPDATE audit_batch SET written_ms = ?1 WHERE rowid = ?2",
                [t, rowid],
            )
            .unwrap();
        }
    }

    fn seqs(path: &Path) -> Vec<u64> {
        read_sqlite(path)
            .unwrap()
            .iter()
            .map(|l| json(l)["seq"].as_u64().unwrap())
            .collect()
    }

    /// Batches 1-5, 6-9, 10-12 and 13-14, the first two written long
    /// ago (their records' own times are recent: a batch's age is when
    /// it was written), then pruned.
    fn pruned_log(path: &Path) -> String {
        write_db_from(path, 1, 5);
        write_db_from(path, 6, 9);
        write_db_from(path, 10, 12);
        write_db_from(path, 13, 14);
        set_written(path, |last| match last {
            ..=5 => Some(1_000),
            6..=9 => Some(2_000),
            _ => None,
        });
        let hash9 = json(&read_sqlite(path).unwrap()[8])["hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let report = prune_sqlite(path, 2_500).unwrap();
        assert_eq!(report.records, 9, "{report:?}");
        assert!(report.rows >= 2, "{report:?}");
        let anchor = report.anchor.unwrap();
        assert_eq!((anchor.through_seq, anchor.records), (9, 9));
        assert_eq!(anchor.hash, hash9);
        hash9
    }

    #[test]
    fn pruning_removes_old_batches_and_verify_starts_from_the_anchor() {
        let dir = temp_dir("sqlite-prune");
        let path = dir.join("audit.db");
        pruned_log(&path);
        assert_eq!(seqs(&path), (10..=14).collect::<Vec<_>>());
        let report = verify_sqlite(&path).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.records, 5);
        assert_eq!(report.pruned.as_ref().map(|p| p.through_seq), Some(9));
        assert!(
            report
                .to_string()
                .contains("pruned through seq 9 (9 records"),
            "{report}"
        );
        // Nothing more is that old: a second prune removes nothing and
        // keeps the anchor.
        let again = prune_sqlite(&path, 2_500).unwrap();
        assert_eq!((again.records, again.rows), (0, 0));
        assert_eq!(again.anchor.map(|a| a.through_seq), Some(9));
        // Records written after a prune chain on.
        write_db_from(&path, 15, 16);
        assert!(verify_sqlite(&path).unwrap().is_intact());
        // Pruning everything leaves the anchor, and a log continued after
        // that goes on from it, not from seq 1.
        let all = prune_sqlite(&path, i64::MAX).unwrap();
        assert_eq!(all.records, 7, "{all:?}");
        assert!(seqs(&path).is_empty());
        let log = batching_log(&path);
        log.record(&record(17));
        log.shutdown().unwrap();
        assert_eq!(seqs(&path), vec![17]);
        let report = verify_sqlite(&path).unwrap();
        assert!(report.is_intact(), "{report}");
        let pruned = report.pruned.unwrap();
        assert_eq!((pruned.through_seq, pruned.records), (16, 16));
    }

    /// What a prune leaves can still be tampered with, and is caught: an
    /// edited anchor, a batch deleted after it, a removed anchor.
    #[test]
    fn an_edited_or_removed_anchor_and_later_deletions_are_reported() {
        let dir = temp_dir("sqlite-anchor");
        let fresh = |name: &str| {
            let path = dir.join(name);
            pruned_log(&path);
            path
        };
        // The anchor's hash replaced by another record's.
        let path = fresh("edited.db");
        let other = json(&read_sqlite(&path).unwrap()[0])["hash"]
            .as_str()
            .unwrap()
            .to_owned();
        conn(&path)
            .execute("UPDATE audit_anchor SET hash = ?1", [&other])
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert!(
            matches!(
                report.problems.as_slice(),
                [Problem::ChainBroken { at, predecessor: 9 }] if at.seq == Some(10)
            ),
            "{report}"
        );
        // The anchor's number lowered: the records between are missing.
        let path = fresh("lowered.db");
        conn(&path)
            .execute("UPDATE audit_anchor SET through_seq = 6", [])
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::Missing { first: 7, last: 9 }],
            "{report}"
        );
        // The anchor's number raised past the first record.
        let path = fresh("raised.db");
        conn(&path)
            .execute("UPDATE audit_anchor SET through_seq = 11", [])
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        let duplicates: Vec<u64> = report
            .problems
            .iter()
            .filter_map(|p| match p {
                Problem::Duplicate(at) => at.seq,
                _ => None,
            })
            .collect();
        assert_eq!(duplicates, vec![10, 11], "{report}");
        // A batch deleted after the anchor.
        let path = fresh("deleted.db");
        conn(&path)
            .execute("DELETE FROM audit_batch WHERE first_seq = 10", [])
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::Missing {
                first: 10,
                last: 12
            }],
            "{report}"
        );
        // The anchor removed: every pruned record is missing.
        let path = fresh("removed.db");
        conn(&path).execute("DELETE FROM audit_anchor", []).unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::Missing { first: 1, last: 9 }],
            "{report}"
        );
        // An anchor that is not one: reported, and the log is checked
        // from seq 1; a writer refuses to continue after it.
        let path = fresh("garbled.db");
        conn(&path)
            .execute("UPDATE audit_anchor SET hash = 'not hex'", [])
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert!(
            matches!(report.problems.first(), Some(Problem::BadAnchor { .. })),
            "{report}"
        );
        assert!(
            report
                .problems
                .contains(&Problem::Missing { first: 1, last: 9 })
        );
        // Hostile text in the anchor never reaches the report.
        conn(&path)
            .execute("UPDATE audit_anchor SET hash = 'x\x1b[31m'", [])
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert!(!report.to_string().contains('\x1b'), "{report}");
        // A column of the wrong type is a malformed anchor, not an error.
        conn(&path)
            .execute(
                "UPDATE audit_anchor SET hash = x'00ff', through_seq = 'nine'",
                [],
            )
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert!(
            matches!(report.problems.first(), Some(Problem::BadAnchor { .. })),
            "{report}"
        );
        conn(&path).execute("DELETE FROM audit_batch", []).unwrap();
        let err = writ_audit::SqliteSink::open(&path).unwrap_err();
        assert!(err.to_string().contains("anchor"), "{err}");
    }

    /// Logs from before retention: a row per record goes by each
    /// record's time; batches without a write time by their latest
    /// record's time, and the write time is added when the log is
    /// continued.
    #[test]
    fn older_layouts_are_pruned_by_record_time() {
        let dir = temp_dir("sqlite-prune-old");
        let base = record(0).time_ms;
        // A row per record: records 1-20, times base + i s.
        let rows = dir.join("rows.db");
        old_layout(&rows);
        write_db(&rows, 20);
        let report = prune_sqlite(&rows, base + 15_000).unwrap();
        assert_eq!((report.records, report.rows), (14, 14), "{report:?}");
        assert_eq!(seqs(&rows), (15..=20).collect::<Vec<_>>());
        let verified = verify_sqlite(&rows).unwrap();
        assert!(verified.is_intact(), "{verified}");
        assert_eq!(verified.pruned.map(|p| p.through_seq), Some(14));
        // Batches without `written_ms`.
        let batches = dir.join("batches.db");
        write_db_from(&batches, 1, 5);
        write_db_from(&batches, 6, 9);
        conn(&batches)
            .execute_batch("ALTER TABLE audit_batch DROP COLUMN written_ms")
            .unwrap();
        let report = prune_sqlite(&batches, base + 6_000).unwrap();
        assert_eq!(report.records, 5, "{report:?}");
        write_db_from(&batches, 10, 10);
        assert_eq!(seqs(&batches), (6..=10).collect::<Vec<_>>());
        let written: Option<i64> = conn(&batches)
            .query_row(
                "SELECT written_ms FROM audit_batch WHERE first_seq = 10",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(written.is_some_and(|t| t > base));
        assert!(verify_sqlite(&batches).unwrap().is_intact());
    }

    /// A file that is not an audit log is not pruned.
    #[test]
    fn pruning_what_is_not_a_log_is_an_error() {
        let dir = temp_dir("sqlite-prune-none");
        let empty = dir.join("empty.db");
        conn(&empty)
            .execute_batch("CREATE TABLE notes (x)")
            .unwrap();
        let err = prune_sqlite(&empty, i64::MAX).unwrap_err();
        assert!(err.to_string().contains("no audit log"), "{err}");
        assert!(prune_sqlite(dir.join("missing.db"), i64::MAX).is_err());
        assert!(!dir.join("missing.db").exists());
    }

    /// An edited record, a deleted one and a batch that is no longer an
    /// array of records are named.
    #[test]
    fn verify_names_edited_and_deleted_records() {
        let dir = temp_dir("sqlite-tamper");
        let path = dir.join("audit.db");
        write_db(&path, 5);
        write_db_from(&path, 6, 7);
        {
            // Record 2 edited and record 4 deleted, in whichever batches
            // the writer put them.
            let c = conn(&path);
            let batches: Vec<(i64, String)> = c
                .prepare("SELECT rowid, records FROM audit_batch ORDER BY rowid")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for (rowid, records) in batches {
                let inner = &records[1..records.len() - 1];
                let lines: Vec<String> = inner
                    .split(",\n")
                    .filter(|l| !l.starts_with("{\"seq\":4,"))
                    .map(|l| {
                        if l.starts_with("{\"seq\":2,") {
                            l.replace("\"target\":\"refund\"", "\"target\":\"payout\"")
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect();
                c.execute(
                    "UPDATE audit_batch SET records = ?1 WHERE rowid = ?2",
                    rusqlite::params![format!("[{}]", lines.join(",\n")), rowid],
                )
                .unwrap();
            }
        }
        let report = verify_sqlite(&path).unwrap();
        assert_eq!(report.problems.len(), 2, "{report}");
        assert!(
            matches!(&report.problems[0], Problem::Edited(at) if at.position == 2 && at.seq == Some(2)),
            "{report}"
        );
        assert_eq!(report.problems[1], Problem::Missing { first: 4, last: 4 });
        assert!(report.to_string().contains("record 2 (seq 2"), "{report}");
        // A batch cut to something that is not an array.
        let in_last: usize = conn(&path)
            .query_row(
                "SELECT records_n FROM audit_batch WHERE rowid = (SELECT max(rowid) FROM audit_batch)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn(&path)
            .execute(
                "UPDATE audit_batch SET records = substr(records, 1, 50) \
                 WHERE rowid = (SELECT max(rowid) FROM audit_batch)",
                [],
            )
            .unwrap();
        let report = verify_sqlite(&path).unwrap();
        assert!(!report.is_intact());
        assert!(
            report.problems.len() > 2,
            "the cut batch is named too: {report}"
        );
        // Reading still gives every record that is one: 7, less the
        // deleted one and the cut batch's.
        assert_eq!(read_sqlite(&path).unwrap().len(), 6 - in_last);
    }

    /// `AuditLog::open` and `verify` go by a file's content, whatever its
    /// name; only a new log is told by its name.
    #[test]
    fn open_and_verify_tell_the_format_by_content() {
        use writ_audit::{Format, verify};
        let dir = temp_dir("sqlite-format");
        let reopen = |path: &Path, i: u64| {
            let log = AuditLog::open(path, AuditOptions::default()).unwrap();
            log.record(&record(i));
            log.shutdown().unwrap();
        };
        // An SQLite log named like JSON Lines is continued as SQLite.
        let db = dir.join("audit.jsonl");
        write_db(&db, 2);
        reopen(&db, 3);
        assert_eq!(Format::detect(&db).unwrap(), Format::Sqlite);
        assert_eq!(read_sqlite(&db).unwrap().len(), 3);
        let report = verify(&db).unwrap();
        assert!(report.is_intact() && report.records == 3, "{report}");
        // A JSON Lines log named like SQLite is continued as JSON Lines.
        let jsonl = dir.join("audit.db");
        write_jsonl(&jsonl, 2);
        reopen(&jsonl, 3);
        assert_eq!(lines(&jsonl).len(), 3);
        let report = verify(&jsonl).unwrap();
        assert!(report.is_intact() && report.records == 3, "{report}");
        // New logs: by name.
        let new_db = dir.join("new.SQLite3");
        reopen(&new_db, 1);
        assert_eq!(Format::detect(&new_db).unwrap(), Format::Sqlite);
        let new_jsonl = dir.join("new.log");
        reopen(&new_jsonl, 1);
        assert_eq!(Format::detect(&new_jsonl).unwrap(), Format::Jsonl);
        assert_eq!(lines(&new_jsonl).len(), 1);
    }

    #[test]
    fn sqlite_errors_keep_their_cause() {
        let dir = temp_dir("sqlite-error");
        let path = dir.join("notes.db");
        std::fs::write(&path, "these are notes, not a database\n".repeat(100)).unwrap();
        let err = verify_sqlite(&path).unwrap_err();
        assert!(
            matches!(&err, writ_audit::AuditError::Sqlite { path: p, .. } if *p == path),
            "{err:?}"
        );
        let cause = std::error::Error::source(&err)
            .and_then(|c| c.downcast_ref::<rusqlite::Error>())
            .map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("file is not a database"), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("audit log: {}: file is not a database", path.display())
        );
    }
}

/// The child side of the crash test: records continuously, flushing every
/// 2,000 records and printing how many are flushed, until killed.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os("WRIT_AUDIT_CRASH_CHILD") else {
        return;
    };
    // Small batches written as soon as they are ready: the writer is
    // nearly always writing when the kill comes.
    let options = AuditOptions {
        batch_size: 64,
        interval: std::time::Duration::from_micros(100),
        ..AuditOptions::default()
    };
    let log = AuditLog::new(JsonlSink::open(&path).unwrap(), options).unwrap();
    let mut n = 0u64;
    loop {
        for _ in 0..2000 {
            n += 1;
            log.record(&record(n));
        }
        log.flush().unwrap();
        println!("flushed {n}");
    }
}

#[test]
fn a_writer_killed_mid_write_leaves_a_log_that_verifies() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let dir = temp_dir("crash");
    let path = dir.join("log.jsonl");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WRIT_AUDIT_CRASH_CHILD", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut flushed = 0u64;
    let mut flushes = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // The harness may print the test's name on the same line.
        if let Some(at) = line.find("flushed ") {
            flushed = line[at + 8..].trim().parse().unwrap();
            flushes += 1;
            if flushes == 20 {
                // SIGKILL while the child records and writes the next
                // records. (Not a synchronisation: the kill may land
                // anywhere; a millisecond lets the writer get going.)
                std::thread::sleep(std::time::Duration::from_millis(1));
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(flushes, 20, "the child stopped on its own");
    let report = verify_jsonl(&path).unwrap();
    println!("killed after {flushes} flushes, {flushed} records flushed: {report}");
    assert!(report.is_intact(), "{report}");
    assert!(
        report.records >= flushed,
        "{} records, {flushed} were flushed: {report}",
        report.records
    );
    // And the log can be continued after the crash.
    let log = AuditLog::jsonl(&path).unwrap();
    log.record(&record(0));
    log.shutdown().unwrap();
    let after = verify_jsonl(&path).unwrap();
    assert!(after.is_intact(), "{after}");
    assert_eq!(after.records, report.records + 1);
}
