//! The HTTP floor of the `serve` bench: the least an axum server on
//! tokio can do per request — read the body, answer a constant JSON
//! decision — built with the same allocator, axum and hyper as `writ
//! serve`, and the same runtime for the same `--threads`.
//!
//! `http_floor [--port P] [--threads N]`: listens on 127.0.0.1:P (0, the
//! default, picks a free port) and prints `listening on http://ADDR` to
//! stderr, as `writ serve` does, and runs on `writ serve`'s runtime
//! (`writ_server::runtime`) for the same `--threads`.
//!
//! `POST /v1/check` (and `GET /proxy/check`) answer `DECISION`.

use std::process::ExitCode;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `writ serve`'s answer to the README's request.
const DECISION: &str = r#"{"decision":"allow","rule":"refund_small","policy":"support","reason":null,"risk":"medium","retry_after_s":null}"#;

async fn check(body: String) -> Response {
    // The body is read (and checked to be UTF-8), as writ's handler does.
    std::hint::black_box(body);
    answer()
}

async fn proxy_check() -> Response {
    answer()
}

fn answer() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DECISION,
    )
        .into_response()
}

fn flag(args: &[String], name: &str) -> Result<Option<u16>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{name} takes a number")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, threads) = match (flag(&args, "--port"), flag(&args, "--threads")) {
        (Ok(p), Ok(t)) => (p.unwrap_or(0), t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // writ serve's own runtime, for the same --threads.
    let runtime = match writ_server::runtime(threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: std::io::Result<()> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!("http_floor: listening on http://{}", listener.local_addr()?);
        let app = Router::new()
            .route("/v1/check", post(check))
            .route("/proxy/check", get(proxy_check));
        axum::serve(listener, app).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
