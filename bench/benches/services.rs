//! Runtime services on the decision path (issue 7): the median cost a
//! decision pays for its rate limit (in-process store) and for being
//! recorded in the JSON Lines audit log, over the same decision bare.
//!
//! `cargo bench -p writ-bench --bench services`
//!
//! - `bare`: `Runtime::check` on a rule without a limit, nothing recorded.
//! - `limited`: the same request, on the same policy but for the rule's
//!   limit, which is never reached (the amount is taken once allowed).
//! - `limited_audited`: that, plus the decision recorded in the audit log
//!   (`AuditLog::record_decision`: a record the writer handed back is
//!   filled from the request and decision and queued for the writer).
//!
//! - `limited_audited_busy`: the same while the log's threads format and
//!   write the previous records on the other core (on a 2-core machine
//!   they also take turns on this one).
//!
//! - `services/paired` (printed last): the same three, timed in turns
//!   (bursts of 256) within each of 4,000 rounds, and the medians of the
//!   per-round differences — the overheads this bench is about, robust to
//!   the machine's speed drifting between the runs above.
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
use writ_audit::{AuditLog, AuditOptions, JsonlSink, revision_of};
use writ_runtime::{Request, Runtime};

/// The same rule twice, once with a limit that is never reached: the two
/// runtimes differ in nothing else, so the difference is the limit's.
const BARE: &str = r#"
policy "services" {
  default deny
}

rule refunds: allow "tool:call" on "refund"
"#;

const LIMITED: &str = r#"
policy "services" {
  default deny
}

rule refunds: allow "tool:call" on "refund"
  limit 1000000000 per day
"#;

fn bench(c: &mut Criterion) {
    let bare_rt = Runtime::from_vec(writ_bench::compile_bundle(BARE)).expect("bundle");
    let runtime = Runtime::from_vec(writ_bench::compile_bundle(LIMITED)).expect("bundle");
    let revision = revision_of(runtime.header());
    let mut limited = Request::new("billing-agent", "tool:call");
    limited.target = Some("refund".to_owned());
    limited.trace_id = Some("trace-1".to_owned());
    assert!(bare_rt.check(&limited).is_allowed() && runtime.check(&limited).is_allowed());

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
        b.iter(|| black_box(bare_rt.check(black_box(&limited)).is_allowed()));
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
    paired(&bare_rt, &runtime, &limited, &log, &revision);
    drop(log);
    drop(busy);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The overheads measured in pairs: rounds that time a short burst of
/// each variant one after the other (in an order that rotates from round
/// to round), so that each round's differences compare decisions made
/// under the same conditions. This machine (a VM on a shared host)
/// switches, every few milliseconds, between a state where everything
/// runs at full speed and one where everything takes about twice as
/// long; bursts of 256 decisions (tens of microseconds) keep a round
/// within one state far more often than longer ones would. The log is
/// flushed (untimed) every eight rounds. Prints the medians of the
/// per-round times and differences.
fn paired(
    bare_rt: &Runtime,
    runtime: &Runtime,
    req: &Request,
    log: &AuditLog,
    revision: &std::sync::Arc<str>,
) {
    const ROUNDS: usize = 4000;
    const BURST: u32 = 256;
    let per_op = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..BURST {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(BURST)
    };
    let mut rows: [Vec<f64>; 5] = Default::default();
    for round in 0..ROUNDS {
        let mut times = [0.0f64; 3];
        for k in 0..3 {
            let which = (k + round) % 3;
            times[which] = match which {
                0 => per_op(&mut || {
                    black_box(bare_rt.check(black_box(req)).is_allowed());
                }),
                1 => per_op(&mut || {
                    black_box(runtime.check(black_box(req)).is_allowed());
                }),
                _ => per_op(&mut || {
                    let d = runtime.check(black_box(req));
                    black_box(log.record_decision(req, &d, revision, d.time_ms));
                }),
            };
        }
        if round % 8 == 7 {
            log.flush().expect("flush");
        }
        let [bare, limited, audited] = times;
        for (row, v) in
            rows.iter_mut()
                .zip([bare, limited, audited, limited - bare, audited - bare])
        {
            row.push(v);
        }
    }
    println!("services/paired ({ROUNDS} rounds of {BURST} decisions each; median [p10 p90] ns):");
    for (name, row) in [
        "bare",
        "limited",
        "limited_audited",
        "overhead: limit",
        "overhead: limit + audit",
    ]
    .iter()
    .zip(rows.iter_mut())
    {
        row.sort_by(f64::total_cmp);
        let at = |q: f64| row[((row.len() - 1) as f64 * q) as usize];
        println!(
            "  {name:<26} {:7.1}  [{:7.1} {:7.1}]",
            at(0.5),
            at(0.1),
            at(0.9)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
