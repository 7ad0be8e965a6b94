//! Building and checking the delegation graph of 10,000 agents and 50,000
//! delegations (issue 4's target: ≤ 500 ms).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use writ_compiler::{Source, compile};

fn bench(c: &mut Criterion) {
    let text = writ_bench::delegation_policy(10_000, 5);
    let comp = compile(
        &[Source {
            name: "graph.writ".into(),
            text,
        }],
        None,
    );
    let set = comp.set.as_ref().expect("lowered");
    let graph = writ_graph::build(set);
    eprintln!(
        "input: {} agents, {} delegation edges, {} rules; findings: {}",
        set.agents.len(),
        graph.graph.edge_count(),
        set.rules.len(),
        writ_graph::check(set, &graph).len()
    );
    let mut g = c.benchmark_group("graph_10k_agents_50k_edges");
    g.sample_size(20);
    g.bench_function("build", |b| b.iter(|| writ_graph::build(black_box(set))));
    g.bench_function("build_and_check", |b| {
        b.iter(|| {
            let graph = writ_graph::build(black_box(set));
            writ_graph::check(set, &graph)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
