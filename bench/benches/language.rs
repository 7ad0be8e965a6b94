//! Parsing and lowering a generated 10,000-rule policy in the writ
//! language (issue 3's target: ≤ 200 ms), next to the same policy in
//! writ's YAML schema, and formatting it.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use writ_compiler::lang::{convert, fmt, lexer, parse};
use writ_compiler::{Source, compile};
use writ_diagnostics::FileId;

fn bench(c: &mut Criterion) {
    let text = writ_bench::generated_policy(10_000);
    let check = compile(
        &[Source {
            name: "bench.writ".into(),
            text: text.clone(),
        }],
        None,
    );
    assert!(!check.has_errors(), "{:?}", check.diagnostics.first());
    let set = check.set.as_ref().expect("lowered");
    assert_eq!(set.rules.len(), 10_000);
    let yaml = convert::to_yaml(set, &lexer::lex(FileId(0), &text).comments).expect("yaml");

    eprintln!(
        "input: 10,000 rules, {} bytes in the writ language, {} bytes as YAML",
        text.len(),
        yaml.len()
    );
    let mut g = c.benchmark_group("10k_rules");
    g.sample_size(20);
    g.bench_function("writ_parse", |b| {
        b.iter(|| parse::parse(FileId(0), black_box(&text)))
    });
    g.bench_function("writ_parse_and_lower", |b| {
        b.iter(|| writ_compiler::lang::read(FileId(0), black_box(&text), "bench"))
    });
    g.bench_function("writ_compile", |b| {
        b.iter(|| {
            compile(
                &[Source {
                    name: "bench.writ".into(),
                    text: black_box(text.clone()),
                }],
                None,
            )
        })
    });
    g.bench_function("yaml_compile", |b| {
        b.iter(|| {
            compile(
                &[Source {
                    name: "bench.yaml".into(),
                    text: black_box(yaml.clone()),
                }],
                None,
            )
        })
    });
    g.bench_function("writ_fmt", |b| {
        b.iter(|| fmt::format(black_box(&text), "bench").expect("formats"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
