//! The audit log (issue 7): records per second to a JSON Lines file, and
//! what `AuditLog::record` costs the calling thread.
//!
//! `cargo bench -p writ-bench --bench audit`
//!
//! - `throughput/jsonl`: record 100,000 decisions with `record` (each
//!   packed into the queue, as `record_decision` packs a request and its
//!   decision), then `flush` (written and fsynced); criterion reports
//!   elements per second.
//! - `throughput/jsonl_unsynced`: the same with a sink whose `sync` does
//!   nothing: what the writer sustains into the OS page cache (format,
//!   mask, hash, write), without waiting for the disk.
//! - `throughput/sqlite`, `throughput/sqlite_batches_of_64`: the same
//!   into an SQLite log, in batches of 1,024 records and of 64.
//! - `record/queue_has_room`: `record` alone, in bursts of 4,096 (half the
//!   queue), the queue emptied between bursts (untimed), so this is the
//!   calling thread's cost while the writer keeps up.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use writ_audit::{AuditLog, AuditOptions, AuditRecord, Batch, ChainHead, JsonlSink, Sink};

/// A JSONL sink that never syncs.
struct Unsynced(JsonlSink);

impl Sink for Unsynced {
    fn head(&mut self) -> std::io::Result<ChainHead> {
        self.0.head()
    }
    fn write_batch(&mut self, batch: &Batch) -> std::io::Result<()> {
        self.0.write_batch(batch)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
use writ_runtime::{Effect, Risk, Value};

fn template() -> AuditRecord {
    let mut context = BTreeMap::new();
    context.insert("amount".to_owned(), Value::Number(40.0));
    context.insert("currency".to_owned(), Value::String("USD".to_owned()));
    context.insert(
        "api_key".to_owned(),
        Value::String("sk-live-123".to_owned()),
    );
    AuditRecord {
        time_ms: 1_736_953_200_123,
        trace_id: Some("trace-0042".to_owned()),
        agent: "billing-agent".to_owned(),
        chain: vec!["triage-agent".to_owned(), "billing-agent".to_owned()],
        action: "tool:call".to_owned(),
        target: Some("refund".to_owned()),
        context,
        decision: Effect::Allow,
        rule: Some("refund_small".to_owned()),
        reason: Some("refunds under 100 USD are allowed".to_owned()),
        risk: Some(Risk::Low),
        retry_after_s: None,
        revision: Arc::from("3f1c9a0b7e2d4c6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f"),
    }
}

/// Records `n` copies of `rec`, then flushes: the time taken. Shuts the
/// log down (untimed).
fn timed(log: AuditLog, rec: &AuditRecord, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        black_box(log.record(black_box(rec)));
    }
    log.flush().expect("flush");
    let took = t.elapsed();
    log.shutdown().expect("shutdown");
    took
}

fn fresh_log(dir: &std::path::Path, n: &mut u32) -> AuditLog {
    *n += 1;
    let path = dir.join(format!("audit-{n}.jsonl"));
    let _ = std::fs::remove_file(&path);
    AuditLog::jsonl(&path).expect("open the log")
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("writ-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rec = template();
    let mut n = 0;

    let mut g = c.benchmark_group("throughput");
    const N: u64 = 100_000;
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("jsonl", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += timed(fresh_log(&dir, &mut n), &rec, N);
                // Untimed: 60 MB a run; left behind, they would make the
                // next runs wait for the page cache's writeback.
                let _ = std::fs::remove_file(dir.join(format!("audit-{n}.jsonl")));
            }
            total
        });
    });
    g.bench_function("jsonl_unsynced", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let path = dir.join(format!("audit-{n}.jsonl"));
                let sink = Unsynced(JsonlSink::open(&path).expect("open"));
                let log = AuditLog::new(sink, AuditOptions::default()).expect("log");
                total += timed(log, &rec, N);
                let _ = std::fs::remove_file(&path);
            }
            total
        });
    });
    // SQLite: one row per record, one transaction per batch; in batches
    // of 1,024 (the default, a writer that falls behind), and of 64 (what
    // `writ serve` hands it at 30,000 decisions a second).
    for (name, batch_size) in [("sqlite", 1024), ("sqlite_batches_of_64", 64)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let path = dir.join(format!("audit-{n}.db"));
                    let sink = writ_audit::SqliteSink::open(&path).expect("open");
                    let options = AuditOptions {
                        batch_size,
                        ..AuditOptions::default()
                    };
                    let log = AuditLog::new(sink, options).expect("log");
                    total += timed(log, &rec, N);
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                    }
                }
                total
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("record");
    const BURST: u64 = 4096;
    g.throughput(Throughput::Elements(1));
    let log = fresh_log(&dir, &mut n);
    g.bench_function("queue_has_room", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let k = left.min(BURST);
                let t = Instant::now();
                for _ in 0..k {
                    black_box(log.record(black_box(&rec)));
                }
                total += t.elapsed();
                log.flush().expect("flush");
                left -= k;
            }
            total
        });
    });
    g.finish();
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
