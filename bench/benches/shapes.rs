//! Issue 22's benchmark: writ's decisions for every pattern shape and rule
//! scope, against Cedar; the worst case in the request's size; compile
//! time, bundle size and load time per workload.
//!
//! `cargo bench -p writ-bench --bench shapes [-- SECTION...]`, the sections
//! being `decision`, `cedar`, `worst` and `compile` (all by default). The
//! workloads are `writ_bench::shapes` (Cedar's are `src/cedar_shapes.rs`);
//! each number is the median of timed batches (`writ_bench::timing`, the
//! loop of the `decision` bench). Environment:
//!
//! - `WRIT_BENCH_QUICK=1`: a smoke run (short batches, small sizes, one
//!   round);
//! - `WRIT_BENCH_ROUNDS=3`: the decision tables' and the load table's
//!   rounds. Every workload is compiled and loaded first, then measured
//!   once a round, the workloads taking turns; a cell is its lowest round
//!   median (this VM's speed drifts by up to 2× over minutes, and a drift
//!   only ever adds time);
//! - `WRIT_BENCH_NS=10,100`: the rule counts of the decision tables
//!   (default 10 to 100,000);
//! - `WRIT_BENCH_PEERS=0`: no Cedar; `WRIT_BENCH_PEERS_NS`: Cedar's rule
//!   counts (default 1,000 and 10,000);
//! - `WRIT_BENCH_SHAPES=exact,inner`, `WRIT_BENCH_SCOPES=any,role`: choose
//!   (names as the tables print them);
//! - `WRIT_BENCH_COMPILE_NS`: the compile table's rule counts (default
//!   10,000 to 100,000); `WRIT_BENCH_COMPILE_MAX`: seconds; a size whose
//!   compile, extrapolated quadratically from the one before, would take
//!   longer is skipped and said so (default 30);
//! - `WRIT_BENCH_WORST_SIZES` (bytes, default 1 KB to 1 MB) and
//!   `WRIT_BENCH_WORST_RULES` (default 100): the worst case's request
//!   sizes and number of adversarial rules.
//!
//! A policy the default glob programs budget refuses (E0209) is compiled again
//! with the budget lifted and its numbers are marked `†`.

#[path = "../src/cedar_shapes.rs"]
mod cedar_shapes;

use std::collections::HashMap;
use std::hint::black_box;

use writ_bench::Compiled;
use writ_bench::shapes::{self, Field, Scope, Shape, Workload};
use writ_bench::timing::{Timer, median_load_us};
use writ_runtime::Runtime;

/// What a run measures, from the environment and the arguments.
struct Config {
    quick: bool,
    timer: Timer,
    /// Rounds of the decision tables (`WRIT_BENCH_ROUNDS`).
    rounds: usize,
    sections: Vec<String>,
    ns: Vec<usize>,
    peers: bool,
    peer_ns: Vec<usize>,
    shapes: Vec<Shape>,
    scopes: Vec<Scope>,
    compile_ns: Vec<usize>,
    compile_max: f64,
    /// The rule count of the bundle-size and load table.
    bundle_n: usize,
    worst_sizes: Vec<usize>,
    worst_rules: usize,
}

fn env_list(var: &str) -> Option<Vec<usize>> {
    let v = std::env::var(var).ok()?;
    Some(
        v.split(',')
            .filter_map(|x| x.trim().replace('_', "").parse().ok())
            .collect(),
    )
}

fn env_names<T: Copy>(var: &str, all: &[T], name: fn(T) -> &'static str) -> Vec<T> {
    match std::env::var(var) {
        Ok(v) => shapes::parse_names(&v, all, name)
            .unwrap_or_else(|| panic!("{var}: unknown name in `{v}`")),
        Err(_) => all.to_vec(),
    }
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("WRIT_BENCH_QUICK").is_ok_and(|v| v != "0");
        let pick = |full: Vec<usize>, smoke: Vec<usize>| if quick { smoke } else { full };
        let sections: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        Config {
            quick,
            timer: if quick { Timer::QUICK } else { Timer::STANDARD },
            rounds: env_list("WRIT_BENCH_ROUNDS")
                .and_then(|v| v.first().copied())
                .unwrap_or(if quick { 1 } else { 3 })
                .max(1),
            sections,
            ns: env_list("WRIT_BENCH_NS")
                .unwrap_or_else(|| pick(vec![10, 100, 1_000, 10_000, 100_000], vec![10, 1_000])),
            peers: std::env::var("WRIT_BENCH_PEERS").map_or(true, |v| v != "0"),
            peer_ns: env_list("WRIT_BENCH_PEERS_NS")
                .unwrap_or_else(|| pick(vec![1_000, 10_000], vec![1_000])),
            shapes: env_names("WRIT_BENCH_SHAPES", &Shape::ALL, Shape::name),
            scopes: env_names("WRIT_BENCH_SCOPES", &Scope::ALL, Scope::name),
            compile_ns: env_list("WRIT_BENCH_COMPILE_NS")
                .unwrap_or_else(|| pick(vec![10_000, 20_000, 40_000, 100_000], vec![1_000, 2_000])),
            compile_max: std::env::var("WRIT_BENCH_COMPILE_MAX")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(if quick { 5.0 } else { 30.0 }),
            bundle_n: if quick { 1_000 } else { 10_000 },
            worst_sizes: env_list("WRIT_BENCH_WORST_SIZES").unwrap_or_else(|| {
                pick(vec![1_000, 10_000, 100_000, 1_000_000], vec![1_000, 10_000])
            }),
            worst_rules: env_list("WRIT_BENCH_WORST_RULES")
                .and_then(|v| v.first().copied())
                .unwrap_or(if quick { 20 } else { 100 }),
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|s| s == section)
    }
}

/// A workload's compile, as the tables need it.
#[derive(Clone, Copy)]
struct CompileStat {
    seconds: f64,
    over_budget: bool,
    bytes: usize,
}

/// What a compile of size `n` would take, from the last measured one of
/// the same series, if compile time grew with the square of the size;
/// nothing is predicted from a compile under 50 ms, whose time is mostly
/// fixed costs.
fn predicted(last: Option<(usize, f64)>, n: usize) -> f64 {
    match last {
        Some((m, s)) if s >= 0.05 => s * (n as f64 / m.max(1) as f64).powi(2),
        _ => 0.0,
    }
}

/// The measurements, kept for the tables printed at the end.
struct Bench {
    config: Config,
    /// Compiles by (workload label, n).
    compiles: HashMap<(String, usize), CompileStat>,
    /// Load microseconds at `bundle_n`, by workload label.
    loads: HashMap<String, f64>,
    /// The bundles of `bundle_n` rules, by workload label, until their
    /// loads are measured ([`Bench::measure_loads`]).
    to_load: Vec<(String, Vec<u8>)>,
    /// (hit, miss) ns by workload; `None`: skipped.
    decisions: HashMap<Workload, Option<(f64, f64)>>,
    /// Each decision cell's highest round median over its lowest (the
    /// larger of hit's and miss's).
    spread: HashMap<Workload, f64>,
    /// Skipped sizes, with why.
    skipped: HashMap<(String, usize), String>,
}

/// A workload of the decision tables, loaded, with its hit and miss (and
/// its bundle, when kept).
struct Loaded {
    w: Workload,
    rt: Runtime,
    hit: writ_runtime::Request,
    miss: writ_runtime::Request,
    bytes: Option<Vec<u8>>,
}

/// A compile table row: its name, and its policy of N rules.
type Series = (String, Box<dyn Fn(usize) -> String>);

fn label(w: &Workload) -> String {
    format!("{} / {}", w.shape.name(), w.scope.name())
}

impl Bench {
    /// Compiles `text`, records its numbers under (`name`, `n`), and its
    /// load time when `n` is the bundle table's size.
    fn compile(&mut self, name: &str, n: usize, text: &str) -> Compiled {
        let compiled = writ_bench::compile_timed(text);
        self.compiles.insert(
            (name.to_owned(), n),
            CompileStat {
                seconds: compiled.seconds,
                over_budget: compiled.over_budget,
                bytes: compiled.bytes.len(),
            },
        );
        if n == self.config.bundle_n {
            self.to_load.push((name.to_owned(), compiled.bytes.clone()));
        }
        compiled
    }

    /// Measures the load time of every bundle kept by [`Bench::compile`],
    /// in `rounds` rounds that take turns through the bundles, keeping
    /// each bundle's lowest round median (as the decision tables do: a slow
    /// phase of the machine then costs one round of a bundle, not the
    /// bundle).
    fn measure_loads(&mut self) {
        let samples = if self.config.quick { 11 } else { 51 };
        let bundles = std::mem::take(&mut self.to_load);
        for _ in 0..self.config.rounds.max(1) {
            for (name, bytes) in &bundles {
                let us = median_load_us(bytes, samples);
                let best = self.loads.entry(name.clone()).or_insert(us);
                *best = best.min(us);
            }
        }
    }

    /// The last compile of `name` below `n`, for [`predicted`].
    fn last_compile(&self, name: &str, n: usize) -> Option<(usize, f64)> {
        self.compiles
            .iter()
            .filter(|((l, m), _)| l == name && *m < n)
            .max_by_key(|((_, m), _)| *m)
            .map(|((_, m), s)| (*m, s.seconds))
    }

    /// Whether a compile of `name` at `n` is skipped (it would take longer
    /// than the limit), recording why.
    fn skip(&mut self, name: &str, n: usize) -> bool {
        let guess = predicted(self.last_compile(name, n), n);
        if guess <= self.config.compile_max {
            return false;
        }
        self.skipped.insert(
            (name.to_owned(), n),
            format!(
                "~{guess:.0} s to compile, extrapolated quadratically (WRIT_BENCH_COMPILE_MAX={})",
                self.config.compile_max
            ),
        );
        true
    }

    /// Compiles and loads every workload of the decision tables, with its
    /// hit and miss (checked to be allowed and denied).
    /// With `keep`, each workload's bundle is kept too.
    fn load(&mut self, keep: bool) -> Vec<Loaded> {
        let (shapes, scopes, ns) = (
            self.config.shapes.clone(),
            self.config.scopes.clone(),
            self.config.ns.clone(),
        );
        let mut loaded = Vec::new();
        for &shape in &shapes {
            for &scope in &scopes {
                for &n in &ns {
                    let w = Workload { shape, scope, n };
                    let name = label(&w);
                    if self.skip(&name, n) {
                        self.decisions.insert(w, None);
                        continue;
                    }
                    let compiled = self.compile(&name, n, &w.policy());
                    eprintln!("writ {name} N = {n}: compile {:.3} s", compiled.seconds);
                    let rt = Runtime::from_bytes(&compiled.bytes).expect("the bundle loads");
                    let bytes = keep.then_some(compiled.bytes);
                    let (hit, miss) = (w.hit().request(), w.miss().request());
                    assert!(
                        rt.check(&hit).is_allowed(),
                        "{name}, N = {n}: the hit must be allowed"
                    );
                    assert!(
                        !rt.check(&miss).is_allowed(),
                        "{name}, N = {n}: the miss must be denied"
                    );
                    loaded.push(Loaded {
                        w,
                        rt,
                        hit,
                        miss,
                        bytes,
                    });
                }
            }
        }
        loaded
    }

    /// Decides each workload's hit and miss `WRIT_BENCH_COUNT` times,
    /// untimed, in [`counted_hits`] and [`counted_misses`], and loads its
    /// bundle `WRIT_BENCH_LOADS` times (default 3) in [`load_bundle_copies`] (its copies are not counted):
    /// for counting instructions and simulated cache misses per decision
    /// and per load under callgrind, which the VM's drifting clock does
    /// not disturb (`bench/callgrind-shapes`).
    fn count(&mut self) {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let (count, loads) = (env("WRIT_BENCH_COUNT", 10_000), env("WRIT_BENCH_LOADS", 3));
        for l in self.load(true) {
            counted_hits(&l.rt, &l.hit, count);
            counted_misses(&l.rt, &l.miss, count);
            if let Some(bytes) = &l.bytes {
                load_bundle_copies(bytes, loads);
            }
            eprintln!(
                "writ {} N = {}: {count} hits and {count} misses decided, {loads} loads",
                label(&l.w),
                l.w.n
            );
        }
    }

    /// Compiles and loads every workload, then measures them all in
    /// `rounds` rounds that take turns through the workloads, keeping each
    /// cell's lowest round median (and the highest, for the spread): a slow
    /// phase of the machine then costs one round of a cell, not the cell.
    fn decisions(&mut self) {
        let loaded = self.load(false);
        // The first workload's numbers would carry the CPU's ramp-up.
        let warm = std::time::Instant::now();
        while warm.elapsed().as_millis() < 300 {
            black_box(self.config.timer.median_ns(|| {
                black_box(0u64);
            }));
        }
        let rounds = self.config.rounds;
        let mut spread: HashMap<Workload, [(f64, f64); 2]> = HashMap::new();
        for round in 1..=rounds {
            for Loaded {
                w, rt, hit, miss, ..
            } in &loaded
            {
                let h = self.config.timer.median_ns(|| {
                    black_box(rt.check(black_box(hit)).effect);
                });
                let m = self.config.timer.median_ns(|| {
                    black_box(rt.check(black_box(miss)).effect);
                });
                let cell = spread
                    .entry(*w)
                    .or_insert([(f64::INFINITY, 0.0), (f64::INFINITY, 0.0)]);
                for (range, ns) in cell.iter_mut().zip([h, m]) {
                    *range = (range.0.min(ns), range.1.max(ns));
                }
                eprintln!(
                    "writ {} N = {} round {round}/{rounds}: hit {h:.0} ns, miss {m:.0} ns",
                    label(w),
                    w.n
                );
            }
        }
        for (w, [h, m]) in spread {
            self.decisions.insert(w, Some((h.0, m.0)));
            self.spread.insert(w, (h.1 / h.0).max(m.1 / m.0));
        }
    }

    fn print_decisions(&self) {
        let ns = &self.config.ns;
        for (title, pick) in [
            ("hit on the last rule", 0usize),
            ("near miss (no rule matches)", 1),
        ] {
            println!("\nwrit, median ns per decision, {title}\n");
            let head: String = ns.iter().map(|n| format!(" N = {n} |")).collect();
            println!(
                "| shape | pattern of rule 7 | scope |{head} cost({})/cost({}) |",
                last(ns),
                first(ns)
            );
            println!("|---|---|---|{}---:|", "---:|".repeat(ns.len()));
            for &shape in &self.config.shapes {
                for &scope in &self.config.scopes {
                    let mut cells = String::new();
                    let mut costs = Vec::new();
                    for &n in ns {
                        let w = Workload { shape, scope, n };
                        let cell = match self.decisions.get(&w).copied().flatten() {
                            Some(hm) => {
                                let ns = if pick == 0 { hm.0 } else { hm.1 };
                                costs.push((n, ns));
                                format!("{ns:.0}{}", self.dagger(&label(&w), n))
                            }
                            None => "skipped".to_owned(),
                        };
                        cells.push_str(&format!(" {cell} |"));
                    }
                    let growth = growth(&costs, ns.len());
                    println!(
                        "| {} | `{}` | {} |{cells} {growth} |",
                        shape.name(),
                        shape.example(),
                        scope.name()
                    );
                }
            }
        }
        let mut spreads: Vec<f64> = self.spread.values().copied().collect();
        spreads.sort_by(f64::total_cmp);
        if let (Some(mid), Some(top)) = (spreads.get(spreads.len() / 2), spreads.last()) {
            println!(
                "\nEach cell is the lowest of {} round medians; a cell's highest round median was {mid:.2}× its lowest at the median, {top:.2}× at most.",
                self.config.rounds
            );
        }
        let mut over: Vec<String> = self
            .decisions
            .iter()
            .filter_map(|(w, hm)| {
                let (h, m) = (*hm)?;
                (h.max(m) > 150.0).then(|| format!("{} N = {} ({h:.0}/{m:.0} ns)", label(w), w.n))
            })
            .collect();
        over.sort();
        println!(
            "Cells over 150 ns (hit/miss): {}.",
            if over.is_empty() {
                "none".to_owned()
            } else {
                over.join(", ")
            }
        );
    }

    fn dagger(&self, name: &str, n: usize) -> &'static str {
        match self.compiles.get(&(name.to_owned(), n)) {
            Some(c) if c.over_budget => " †",
            _ => "",
        }
    }

    fn cedar(&mut self) {
        let mut rows = Vec::new();
        for &shape in &self.config.shapes {
            for &scope in &self.config.scopes {
                for &n in &self.config.peer_ns {
                    let w = Workload { shape, scope, n };
                    let cedar = cedar_shapes::Cedar::new(&w);
                    let (hit, miss) = (w.hit(), w.miss());
                    let timer = self.config.timer;
                    let cell = |probe: &shapes::Probe, grouped: bool| {
                        timer.median_ns(|| {
                            black_box(cedar.decide(black_box(probe), grouped));
                        })
                    };
                    let numbers = [
                        cell(&hit, false),
                        cell(&hit, true),
                        cell(&miss, false),
                        cell(&miss, true),
                    ];
                    eprintln!("cedar {} N = {n}: {numbers:.0?}", label(&w));
                    rows.push((w, numbers));
                }
            }
        }
        println!(
            "\nCedar (request built per call, `is_authorized`): whole set, and grouped by the caller by the number in the pattern; writ/cedar < 1 means writ is faster\n"
        );
        println!(
            "| shape | scope | N | writ hit | cedar hit | grouped hit | writ/cedar | writ/grouped | writ miss | cedar miss | grouped miss | writ/cedar | writ/grouped |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (w, [ch, gh, cm, gm]) in rows {
            // NaN (printed `—` in the ratios) where writ did not run.
            let (wh, wm) = self
                .decisions
                .get(&w)
                .copied()
                .flatten()
                .unwrap_or((f64::NAN, f64::NAN));
            println!(
                "| {} | {} | {} | {} | {ch:.0} | {gh:.0} | {} | {} | {} | {cm:.0} | {gm:.0} | {} | {} |",
                w.shape.name(),
                w.scope.name(),
                w.n,
                ns_cell(wh),
                ratio(wh, ch),
                ratio(wh, gh),
                ns_cell(wm),
                ratio(wm, cm),
                ratio(wm, gm),
            );
        }
        println!("\nHow Cedar writes each shape:\n");
        for &shape in &self.config.shapes {
            println!("- {}: {}", shape.name(), cedar_shapes::how(shape));
        }
    }

    fn worst(&mut self) {
        let rules = self.config.worst_rules;
        println!(
            "\nWorst case: {rules} rules cycling through `*a*a*a*b<i>`, `a*a*a*a*c<i>`, `*aa*aa?a*d<i>`, `*{{a,aa}}*a*e<i>`, `*[ab]*a*f<i>` in one field; the request's field is `a` repeated (miss), or that ending `b<{}>` (hit on the last rule)\n",
            rules.saturating_sub(1)
        );
        println!(
            "| field | request bytes | hit ns | miss ns | miss ns per byte | miss time / at the smallest size | size / the smallest |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for field in Field::ALL {
            let name = format!("worst {}", field.name());
            let compiled = self.compile(&name, rules, &shapes::adversarial_policy(field, rules));
            let rt = Runtime::from_bytes(&compiled.bytes).expect("the bundle loads");
            let mut base: Option<(usize, f64)> = None;
            let mut last_ns = 0.0f64;
            let mut last_len = 0usize;
            for &len in &self.config.worst_sizes {
                let guess = if last_len == 0 {
                    0.0
                } else {
                    last_ns * len as f64 / last_len as f64
                };
                // Past a second a decision, 22 batches take too long.
                if guess > 1e9 {
                    println!(
                        "| {} | {len} | skipped: ~{:.0} ms a decision predicted | | | | |",
                        field.name(),
                        guess / 1e6
                    );
                    continue;
                }
                let hit = shapes::adversarial_request(field, rules, len, true);
                let miss = shapes::adversarial_request(field, rules, len, false);
                let (h, m) = hit_and_miss(self.config.timer, &rt, &hit, &miss, &name);
                let (l0, m0) = *base.get_or_insert((len, m));
                eprintln!(
                    "worst {} {len} bytes: hit {h:.0} ns, miss {m:.0} ns",
                    field.name()
                );
                println!(
                    "| {} | {len} | {h:.0} | {m:.0} | {:.2} | {:.1}× | {:.0}× |",
                    field.name(),
                    m / len as f64,
                    m / m0,
                    len as f64 / l0 as f64
                );
                (last_ns, last_len) = (h.max(m), len);
            }
        }
    }

    fn compile_table(&mut self) {
        let mut series: Vec<Series> = Vec::new();
        for &shape in &self.config.shapes {
            let w = move |n| Workload {
                shape,
                scope: Scope::Any,
                n,
            };
            series.push((label(&w(0)), Box::new(move |n| w(n).policy())));
        }
        if self.config.shapes.contains(&Shape::Mix) {
            for &scope in self.config.scopes.iter().filter(|s| **s != Scope::Any) {
                let w = move |n| Workload {
                    shape: Shape::Mix,
                    scope,
                    n,
                };
                series.push((label(&w(0)), Box::new(move |n| w(n).policy())));
            }
        }
        series.push((
            "per-agent: N/10 agents × 10 exact rules, half by agent, half by role".to_owned(),
            Box::new(shapes::per_agent_policy),
        ));
        let ns = self.config.compile_ns.clone();
        for (name, policy) in &series {
            for &n in &ns {
                if self.compiles.contains_key(&(name.clone(), n)) || self.skip(name, n) {
                    continue;
                }
                let c = self.compile(name, n, &policy(n));
                eprintln!("compile {name} N = {n}: {:.3} s", c.seconds);
            }
        }
        println!(
            "\nCompile (`writ compile`'s entry points: parse, lower, checks, programs, lints, bundle), seconds\n"
        );
        let head: String = ns.iter().map(|n| format!(" N = {n} |")).collect();
        println!(
            "| workload |{head} t({})/t({}) (linear: {:.0}×) |",
            last(&ns),
            first(&ns),
            last(&ns) as f64 / first(&ns).max(1) as f64
        );
        println!("|---|{}---:|", "---:|".repeat(ns.len()));
        for (name, _) in &series {
            let mut cells = String::new();
            let mut times = Vec::new();
            for &n in &ns {
                match self.compiles.get(&(name.clone(), n)) {
                    Some(c) => {
                        times.push((n, c.seconds));
                        cells.push_str(&format!(" {:.3}{} |", c.seconds, self.dagger(name, n)));
                    }
                    None => cells.push_str(" skipped |"),
                }
            }
            let growth = growth(&times, ns.len());
            println!("| {name} |{cells} {growth} |");
        }
    }

    fn print_bundles(&self) {
        let n = self.config.bundle_n;
        if self.loads.is_empty() {
            return;
        }
        println!(
            "\nBundles of {n} rules: size and load (`Runtime::from_vec`, the lowest of {} round medians)\n",
            self.config.rounds.max(1)
        );
        println!(
            "| workload | bundle bytes | bytes per rule | load µs | within the default programs budget |"
        );
        println!("|---|---:|---:|---:|---|");
        let mut names: Vec<&String> = self.loads.keys().collect();
        names.sort();
        for name in names {
            if let Some(c) = self.compiles.get(&(name.clone(), n)) {
                println!(
                    "| {name} | {} | {:.0} | {:.0} | {} |",
                    c.bytes,
                    c.bytes as f64 / n as f64,
                    self.loads[name],
                    if c.over_budget {
                        "no (E0209) †"
                    } else {
                        "yes"
                    }
                );
            }
        }
    }

    fn print_skipped(&self) {
        if self.skipped.is_empty() {
            return;
        }
        println!("\nSkipped:\n");
        let mut rows: Vec<_> = self.skipped.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for ((name, n), why) in rows {
            println!("- {name}, N = {n}: {why}");
        }
    }
}

/// Median ns of `rt` deciding `hit` and `miss`, after checking that the
/// hit is allowed and the miss denied (`what` names the workload if not).
fn hit_and_miss(
    timer: Timer,
    rt: &Runtime,
    hit: &writ_runtime::Request,
    miss: &writ_runtime::Request,
    what: &str,
) -> (f64, f64) {
    assert!(
        rt.check(hit).is_allowed(),
        "{what}: the hit must be allowed"
    );
    assert!(
        !rt.check(miss).is_allowed(),
        "{what}: the miss must be denied"
    );
    let h = timer.median_ns(|| {
        black_box(rt.check(black_box(hit)).effect);
    });
    let m = timer.median_ns(|| {
        black_box(rt.check(black_box(miss)).effect);
    });
    (h, m)
}

/// The last of the (size, value) pairs over the first; when fewer than
/// `sizes` were measured, says at which size.
fn growth(values: &[(usize, f64)], sizes: usize) -> String {
    match (values.first(), values.last()) {
        (Some((_, a)), Some((_, b))) if values.len() == sizes => format!("{:.1}×", b / a),
        (Some((_, a)), Some((n, b))) if values.len() > 1 => format!("{:.1}× at N = {n}", b / a),
        _ => "—".to_owned(),
    }
}

/// Nanoseconds in a table, `—` for a size writ did not run.
fn ns_cell(ns: f64) -> String {
    if ns.is_finite() {
        format!("{ns:.0}")
    } else {
        "—".to_owned()
    }
}

fn first(ns: &[usize]) -> usize {
    ns.first().copied().unwrap_or(0)
}

fn last(ns: &[usize]) -> usize {
    ns.last().copied().unwrap_or(0)
}

/// `a / b` as a ratio people read: `1/14000` below 0.1, `0.73` or `2.30`
/// above.
fn ratio(a: f64, b: f64) -> String {
    if !(a.is_finite() && b.is_finite()) || a <= 0.0 || b <= 0.0 {
        return "—".to_owned();
    }
    let r = a / b;
    if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("1/{:.0}", 1.0 / r)
    }
}

/// `count` decisions of `req`, for callgrind (see [`Bench::count`]).
#[inline(never)]
fn counted_hits(rt: &Runtime, req: &writ_runtime::Request, count: usize) {
    for _ in 0..count {
        black_box(rt.check(black_box(req)).effect);
    }
}

/// As [`counted_hits`], for the misses (a distinct body, so that the
/// two are not folded into one function).
#[inline(never)]
fn counted_misses(rt: &Runtime, req: &writ_runtime::Request, count: usize) {
    for _ in 0..count {
        black_box(!rt.check(black_box(req)).is_allowed());
    }
}

/// Loads copies of `bytes` `count` times, untimed (see [`counted_hits`]).
fn load_bundle_copies(bytes: &[u8], count: usize) {
    load_copies((0..count).map(|_| bytes.to_vec()).collect());
}

/// Loads each bundle of `copies` (copied before, so that the copies are
/// not counted).
#[inline(never)]
fn load_copies(copies: Vec<Vec<u8>>) {
    for copy in copies {
        let rt = Runtime::from_vec(black_box(copy));
        assert!(rt.is_ok(), "the bench's bundle must load");
        drop(black_box(rt));
    }
}

fn main() {
    let config = Config::from_env();
    let mut bench = Bench {
        config,
        compiles: HashMap::new(),
        loads: HashMap::new(),
        to_load: Vec::new(),
        decisions: HashMap::new(),
        spread: HashMap::new(),
        skipped: HashMap::new(),
    };
    let started = std::time::Instant::now();
    if bench.config.sections.iter().any(|s| s == "count") {
        bench.count();
        return;
    }
    if bench.config.runs("decision") || bench.config.runs("cedar") {
        bench.decisions();
        bench.print_decisions();
    }
    if bench.config.peers && bench.config.runs("cedar") {
        bench.cedar();
    }
    if bench.config.runs("worst") {
        bench.worst();
    }
    if bench.config.runs("compile") {
        bench.compile_table();
    }
    bench.measure_loads();
    bench.print_bundles();
    bench.print_skipped();
    println!(
        "\n† over the default programs budget (E0209): compiled with `WRIT_AUTOMATA_BUDGET` lifted.\nTotal {:.0} s.",
        started.elapsed().as_secs_f64()
    );
}
