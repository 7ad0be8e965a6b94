//! Runtime services on the decision path (issue 7): the median cost a
//! decision pays for its rate limit (in-process store) and for being
//! recorded in the JSON Lines audit log, over the same decision bare.
//!
//! `cargo bench -p writ-bench --bench services`
//!
//! - `bare`: `Runtime::check` on a rule without a limit, nothing recorded.
//! - `limited`: the same rule with a limit that is never reached (the
//!   store is looked at while deciding and the amount taken once allowed).
//! - `limited_audited`: that, plus the decision recorded in the audit log
//!   (`AuditLog::record_decision`: a record the writer handed back is
//!   filled from the request and decision and queued for the writer).
//!
//! - `limited_audited_busy`: the same while the log's threads format and
//!   write the previous records on the other core (on a 2-core machine
//!   they also take turns on this one).
//!
//! The decisions are timed in bursts of 2,048 and the audit log flushed
//! between bursts (untimed) so that its queue has room, as it does when
//! the writer keeps up (see the `audit` bench for the writer's
//! throughput). For `limited_audited` the log's threads look at the queue
//! once a second (`AuditOptions::interval`), so a burst measures what the
//! deciding thread pays, not how it shares two cores with the writer.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use writ_runtime::audit::{AuditLog, AuditOptions, JsonlSink, revision_of};
use writ_runtime::{Request, Runtime};

const POLICY: &str = r#"
policy "services" {
  default deny
}

rule bare: allow "tool:call" on "lookup"

rule limited: allow "tool:call" on "refund"
  limit 1000000000 per day
"#;

fn bench(c: &mut Criterion) {
    let runtime = Runtime::from_vec(writ_bench::compile_bundle(POLICY)).expect("bundle");
    let revision = revision_of(runtime.header());
    let mut bare = Request::new("billing-agent", "tool:call");
    bare.target = Some("lookup".to_owned());
    bare.trace_id = Some("trace-1".to_owned());
    let mut limited = bare.clone();
    limited.target = Some("refund".to_owned());
    assert!(runtime.check(&bare).is_allowed() && runtime.check(&limited).is_allowed());

    let dir = std::env::temp_dir().join(format!("writ-bench-services-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let log = AuditLog::new(
        JsonlSink::open(&path).expect("audit log"),
        AuditOptions {
            interval: Duration::from_secs(1),
            ..AuditOptions::default()
        },
    )
    .expect("audit log");
    let busy_path = dir.join("busy.jsonl");
    let _ = std::fs::remove_file(&busy_path);
    let busy = AuditLog::jsonl(&busy_path).expect("audit log");

    let mut g = c.benchmark_group("services");
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("bare", |b| {
        b.iter(|| black_box(runtime.check(black_box(&bare)).is_allowed()));
    });
    g.bench_function("limited", |b| {
        b.iter(|| black_box(runtime.check(black_box(&limited)).is_allowed()));
    });
    let audited = |log: &AuditLog, iters: u64| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let burst = left.min(2048);
            let start = std::time::Instant::now();
            for _ in 0..burst {
                let d = runtime.check(black_box(&limited));
                black_box(log.record_decision(&limited, &d, &revision, d.time_ms));
            }
            total += start.elapsed();
            left -= burst;
            // Untimed: let the writer empty the queue.
            log.flush().expect("flush");
        }
        total
    };
    g.bench_function("limited_audited", |b| {
        b.iter_custom(|iters| audited(&log, iters));
    });
    g.bench_function("limited_audited_busy", |b| {
        b.iter_custom(|iters| audited(&busy, iters));
    });
    g.finish();
    drop(log);
    drop(busy);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
