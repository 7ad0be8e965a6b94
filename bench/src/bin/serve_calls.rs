//! `writ serve`'s `POST /v1/check`, called N times in process (no HTTP,
//! no network): the server's own work per request, and its audit log's,
//! for `bench/callgrind-serve` to count in instructions. Counts do not
//! drift with the VM's speed the way the serve bench's requests a second
//! do; the answering thread's vary little from run to run, the audit
//! writer's a little more (its batches' sizes depend on timing).
//!
//! `serve_calls N [BODY [AUDIT]]`: N calls (default 1,000) with the
//! request BODY (default, or empty: the README's request) to a server on
//! examples/support.writ whose audit log is `AUDIT` (a file name in a
//! temporary folder; `audit.db`, SQLite, by default; `audit.jsonl` for
//! JSON Lines). The log is flushed before the program ends. Runs on a
//! current-thread runtime, the allocator `writ` uses (mimalloc).

use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use tower::Service as _;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const README_REQUEST: &str = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"},"at":"2025-01-15T15:00:00Z"}"#;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = match args.first() {
        Some(a) => a.parse().map_err(|_| format!("N `{a}` is not a count"))?,
        None => 1000,
    };
    // An empty BODY or AUDIT is the default (the script passes both).
    let given = |i: usize| args.get(i).map(String::as_str).filter(|a| !a.is_empty());
    let body = given(1).unwrap_or(README_REQUEST).to_owned();
    let audit = given(2).unwrap_or("audit.db");
    let dir = std::env::temp_dir().join(format!("writ-serve-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = calls(n, &body, &dir, audit);
    let _ = std::fs::remove_dir_all(&dir);
    let (answered, bytes) = result?;
    eprintln!("{answered} calls answered 200, {bytes} bytes in all");
    // A count of error answers is no measure of the decision path.
    if answered < n {
        return Err(format!("only {answered} of {n} calls answered 200"));
    }
    Ok(())
}

fn calls(
    n: usize,
    body: &str,
    dir: &std::path::Path,
    audit: &str,
) -> Result<(usize, usize), String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = writ_server::Config {
        policies: vec![root.join("examples/support.writ")],
        db_path: dir.join("registry.db"),
        audit_path: dir.join(audit),
        watch: false,
        ..writ_server::Config::default()
    };
    let rt = writ_server::runtime(Some(1)).map_err(|e| e.to_string())?;
    let state = {
        let _entered = rt.enter();
        Arc::new(writ_server::State::new(config).map_err(|e| e.to_string())?)
    };
    let mut service = writ_server::service(Arc::clone(&state));
    let (mut answered, mut bytes) = (0, 0);
    rt.block_on(async {
        for _ in 0..n {
            let req = Request::builder()
                .method("POST")
                .uri("/v1/check")
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .map_err(|e| e.to_string())?;
            let Ok(r) = service.call(req).await;
            answered += usize::from(r.status().is_success());
            bytes += axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .map_err(|e| e.to_string())?
                .len();
        }
        Ok::<(), String>(())
    })?;
    state.audit.flush()?;
    Ok((answered, bytes))
}
