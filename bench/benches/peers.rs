//! One decision against N rules, in Cedar, regorus (Rego) and casbin-rs:
//! the peers' side of the writ-versus-peers comparison. The workload and
//! how each engine models it are described in `src/peers.rs`.
//!
//! For each N and each peer: set the peer up (timed, printed), then
//! benchmark the hit decision (`<peer>/hit`, allowed by the last of the N
//! rules) and the miss (`<peer>/miss`, no rule matches) with criterion, and
//! at the end print a table of median nanoseconds per decision.
//!
//! Run with `cargo bench -p writ-bench --bench peers` (add `-- --quick` for
//! a short run). Every selected peer is set up even when a criterion filter
//! (`-- cedar`) leaves its benchmarks out, so to run fewer set-ups choose
//! with the environment: `PEERS=cedar,casbin` (peer names) and
//! `PEERS_N=10,1000` (rule counts).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../src/peers.rs"]
mod peers;

use peers::Peer;

const NS: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];

/// A peer's setup function.
type Setup = fn(usize) -> Peer;

const SETUPS: [(&str, Setup); 5] = [
    ("cedar", peers::cedar),
    ("cedar_grouped", peers::cedar_grouped),
    ("regorus", peers::regorus),
    ("regorus_interpreter", peers::regorus_interpreter),
    ("casbin", peers::casbin),
];

/// (peer, N) pairs never set up, because at that N the peer needs about a
/// minute or more to set up, or more than 50 ms per decision. Measured on
/// the project's 2-vCPU machine (2026-11), one warm hit decision each:
///
/// - `cedar` at 100,000: set-up 2.5 s, ~200 ms a decision (Cedar evaluates
///   every policy: ~2 µs each);
/// - `casbin` at 100,000: set-up 0.2 s, ~65 ms a decision (casbin runs its
///   matcher over every policy line: ~0.65 µs each);
/// - `regorus` and `regorus_interpreter` at 100,000: set-up ~60 s, first
///   decision ~28 s (its globs overflow regorus's glob cache, at most
///   65,536 entries, so every decision recompiles them). `regorus` falls
///   back to the interpreter past ~3,600 rules (the RVM's program limit).
///
/// The run-time guard [`MAX_DECISION`] skips the other slow pairs and prints
/// why: on that machine `regorus_interpreter` at 10,000 (~92 ms a
/// decision). `regorus` at 10,000 runs as its interpreter, so it is
/// reported under that row.
const SKIP: &[(&str, usize, &str)] = &[
    ("cedar", 100_000, "~200 ms a decision"),
    ("casbin", 100_000, "~65 ms a decision"),
    ("regorus", 100_000, "set-up ~60 s, first decision ~28 s"),
    (
        "regorus_interpreter",
        100_000,
        "set-up ~60 s, first decision ~28 s",
    ),
];

/// A decision slower than this is not benchmarked (the pair is skipped).
const MAX_DECISION: Duration = Duration::from_millis(50);

/// Median nanoseconds per call of `f`, from 51 batches of about 2 ms each.
fn median_ns(f: &mut dyn FnMut() -> bool, one: Duration) -> f64 {
    let per_batch = (2_000_000 / one.as_nanos().max(1)).clamp(1, 1_000_000) as u32;
    let mut samples: Vec<f64> = (0..51)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / f64::from(per_batch)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Whether `PEERS`/`PEERS_N` (comma-separated; unset: everything) select
/// this peer and rule count.
fn selected(name: &str, n: usize) -> bool {
    let pick = |var: &str, item: &str| {
        std::env::var(var).map_or(true, |list| list.split(',').any(|x| x.trim() == item))
    };
    pick("PEERS", name) && pick("PEERS_N", &n.to_string())
}

fn bench(c: &mut Criterion) {
    let mut table = String::new();
    for n in NS {
        let mut group = c.benchmark_group(format!("decide_{n}_rules"));
        for (name, setup) in SETUPS {
            if !selected(name, n) {
                continue;
            }
            if let Some((_, _, why)) = SKIP.iter().find(|(p, m, _)| *p == name && *m == n) {
                eprintln!("{name} N={n}: skipped ({why})");
                let _ = writeln!(
                    table,
                    "{name:<20} {n:>7} {:>14} {:>14}  skipped: {why}",
                    "-", "-"
                );
                continue;
            }
            let t = Instant::now();
            let mut peer = setup(n); // asserts hit allowed, miss denied
            let setup_time = t.elapsed();
            if peer.name != name {
                // `regorus` past the RVM's program size: it fell back to the
                // interpreter, which has its own row.
                let why = format!("runs as {} at this N", peer.name);
                eprintln!("{name} N={n}: skipped ({why})");
                let _ = writeln!(
                    table,
                    "{name:<20} {n:>7} {:>14} {:>14}  skipped: {why}",
                    "-", "-"
                );
                continue;
            }
            // The first decision may fill caches (regorus compiles its globs
            // on first use); the limit applies to the second.
            let t = Instant::now();
            black_box((peer.decide)(true));
            let first = t.elapsed();
            let t = Instant::now();
            black_box((peer.decide)(true));
            let one = t.elapsed();
            eprintln!(
                "{name} N={n}: setup {setup_time:.2?}, first hit decision {first:.2?}, second {one:.2?}"
            );
            if one > MAX_DECISION {
                let why = format!("decision {one:.0?} > {MAX_DECISION:?}");
                eprintln!("{name} N={n}: skipped ({why})");
                let _ = writeln!(
                    table,
                    "{name:<20} {n:>7} {:>14} {:>14}  skipped: {why}",
                    "-", "-"
                );
                continue;
            }
            let decide = &mut peer.decide;
            group.bench_function(format!("{name}/hit"), |b| {
                b.iter(|| decide(black_box(true)))
            });
            group.bench_function(format!("{name}/miss"), |b| {
                b.iter(|| decide(black_box(false)))
            });
            let hit = median_ns(&mut || decide(true), one);
            let miss = median_ns(&mut || decide(false), one);
            let _ = writeln!(
                table,
                "{name:<20} {n:>7} {hit:>14.0} {miss:>14.0}  setup {setup_time:.2?}"
            );
        }
        group.finish();
    }
    println!(
        "\nmedian ns per decision (own sampler: 51 batches of ~2 ms)\n{:<20} {:>7} {:>14} {:>14}\n{table}",
        "peer", "N", "hit", "miss"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
