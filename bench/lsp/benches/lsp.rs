//! The language server: diagnostics for a 5,000-rule file after a
//! one-character edit, through the LSP interface (didChange in, the
//! publishDiagnostics notification out), with writ's analyzer; for a file
//! of exact target names and for a glob-heavy one (every glob shape).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::{Service, ServiceExt};
use tower_lsp_server::jsonrpc::Request;
use writ_lsp::Analyzer as _;

/// The allocator of the `writ` binary (src/main.rs), which serves `writ lsp`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn edit_then_diagnostics(c: &mut Criterion) {
    for (group, globs) in [("lsp_5k_rules", false), ("lsp_5k_glob_rules", true)] {
        edits(c, group, &writ_bench::generated_policy_with(5_000, globs));
    }
}

fn edits(c: &mut Criterion, group_name: &str, text: &str) {
    let text = text.to_owned();
    // The one-character edits: in the first rule's condition's bound.
    let at = text
        .find("amount <= 0")
        .expect("the generated policy has it")
        + "amount <= ".len();
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    let uri = "file:///bench/generated.writ";

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group(group_name);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("compile", |b| {
        let sources = [writ_compiler::Source {
            name: "generated.writ".to_owned(),
            text: text.clone(),
        }];
        b.iter(|| black_box(writ_compiler::compile(black_box(&sources), None)));
    });

    group.bench_function("analyze", |b| {
        // A fresh analyzer each time: no compilation cached.
        b.iter(|| {
            let analyzer = writ_ide::WritAnalyzer::default();
            black_box(analyzer.analyze("generated.writ", black_box(&text)))
        });
    });

    group.bench_function("analysis_of_cached_compilation", |b| {
        // The compilation is cached: this is the work of turning it into
        // the server's view (diagnostics, outline, names).
        let analyzer = writ_ide::WritAnalyzer::default();
        black_box(analyzer.analyze("generated.writ", &text));
        b.iter(|| black_box(analyzer.analyze("generated.writ", black_box(&text))));
    });

    rt.block_on(async {
        let (mut service, mut socket) = writ_lsp::service(Arc::new(writ_ide::WritAnalyzer::default()));
        // What the stdio transport does with each message: write it out as
        // JSON. The loop below sees the method and version of each.
        // The message itself goes along, so that it is freed after the
        // timed loop has seen it (as the transport frees it once written).
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Value, Request)>();
        tokio::spawn(async move {
            while let Some(req) = socket.next().await {
                black_box(serde_json::to_vec(&req).unwrap_or_default());
                let version = req.params().and_then(|p| p.get("version")).cloned().unwrap_or(Value::Null);
                let _ = tx.send((req.method().to_owned(), version, req));
            }
        });
        let mut call = async |req: Request| {
            service.ready().await.expect("ready").call(req).await.expect("call")
        };
        call(Request::build("initialize").id(1).params(json!({"capabilities": {}})).finish()).await;
        call(Request::build("textDocument/didOpen").params(json!({"textDocument": {"uri": uri, "languageId": "writ", "version": 1, "text": text}})).finish()).await;
        let mut version = 1;
        // Drain the first publication.
        while let Some((method, _, _)) = rx.recv().await {
            if method == "textDocument/publishDiagnostics" {
                break;
            }
        }
        let mut samples = Vec::new();
        let edits: usize = std::env::var("WRIT_BENCH_EDITS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
        for i in 0..edits {
            version += 1;
            // Type a digit, then delete it: every later item moves by one
            // byte and back, as when typing.
            let (end, typed) = if i % 2 == 0 { (col, "7") } else { (col + 1, "") };
            let change = json!({"textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": end}}, "text": typed}]});
            let t = Instant::now();
            call(Request::build("textDocument/didChange").params(change).finish()).await;
            loop {
                let (method, v, message) = rx.recv().await.expect("server running");
                if method == "textDocument/publishDiagnostics" && v == version {
                    samples.push(t.elapsed().as_secs_f64() * 1000.0);
                    drop(message);
                    break;
                }
            }
        }
        if std::env::var_os("WRIT_BENCH_TRACE").is_some() {
            eprintln!("{samples:.0?}");
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "{group_name}/edit_to_diagnostics: median {:.1} ms (min {:.1}, max {:.1}) over {} edits",
            samples[samples.len() / 2],
            samples[0],
            samples[samples.len() - 1],
            samples.len()
        );
    });
    group.finish();
}

criterion_group!(benches, edit_then_diagnostics);
criterion_main!(benches);
