//! Any bytes as an HTTP request to `writ serve` (a method and path line,
//! header lines, a blank line, a body), sent to the server's service in process. The
//! server never panics or answers 500, and with `JWT_SECRET` set nothing
//! but `/health` answers 2xx without a credential: the admin token or a
//! token with one of the policy's `token_prefix`es (the corpus has both;
//! the fuzzer cannot forge a JWT). No malformed request, header or token
//! becomes an answer, let alone an allow.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;
use writ_server::{Config, Shared, State};

const ADMIN: &str = "admin-token-0123456789-fuzz";

fn server() -> &'static (tokio::runtime::Runtime, Shared) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, Shared)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("writ-fuzz-serve-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = Config {
            policies: vec![
                root.join("examples/seeds/meshguard-openai-support.yaml"),
                root.join("examples/seeds/meshguard-support-agents.yaml"),
            ],
            db_path: dir.join("registry.db"),
            audit_path: dir.join("audit.jsonl"),
            jwt_secret: Some("0123456789abcdef0123456789abcdef".to_owned()),
            admin_token: Some(ADMIN.to_owned()),
            watch: false,
            ..Config::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let state = {
            let _guard = rt.enter();
            Arc::new(State::new(config).expect("the fuzz server starts"))
        };
        (rt, state)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let Some((method, path)) = lines.next().and_then(|l| l.split_once(' ')) else {
        return;
    };
    let mut req = Request::builder().method(method).uri(path);
    let mut credential = false;
    for line in lines.take(32) {
        if let Some((k, v)) = line.split_once(':') {
            credential |= v.contains(ADMIN) || v.contains("tok_support_t");
            req = req.header(k.trim(), v.trim());
        }
    }
    let Ok(req) = req.body(Body::from(body.to_owned())) else {
        return;
    };
    let health = req.uri().path() == "/health";
    let (rt, state) = server();
    let Ok(status) = rt.block_on(async {
        writ_server::service(Arc::clone(state))
            .oneshot(req)
            .await
            .map(|r| r.status())
    });
    assert!(
        health || credential || !status.is_success(),
        "{method} {path} answered {status} without a credential"
    );
    assert!(status != 500, "{method} {path} answered 500");
});
