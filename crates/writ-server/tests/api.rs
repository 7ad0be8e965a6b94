//! The server's HTTP API in process (the router driven by `tower`): the
//! native API, authentication, errors and their codes, the examples of
//! docs/server.md. (tests/meshguard/ drives the real binary with
//! MeshGuard's own client; the root package's tests/serve.rs runs
//! several servers with Redis.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use writ_server::{Config, Shared, State, router, service};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("writ-server-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn state(name: &str, policies: &[&str], f: impl FnOnce(&mut Config)) -> Shared {
    let dir = tmp(name);
    let mut c = Config {
        policies: policies.iter().map(|p| root().join(p)).collect(),
        db_path: dir.join("registry.db"),
        audit_path: dir.join("audit.db"),
        watch: false,
        ..Config::default()
    };
    f(&mut c);
    Arc::new(State::new(c).unwrap())
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

async fn call(s: &Shared, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = service(Arc::clone(s))
        .oneshot(b.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        status,
        headers,
        json,
    }
}

const README_REQUEST: &str = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"},"at":"2025-01-15T15:00:00Z"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_answers_writ_evals_decision_json() {
    let s = state("check", &["examples/support.writ"], |_| {});
    let a = call(&s, "POST", "/v1/check", &[], README_REQUEST).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["decision"], "allow");
    assert_eq!(a.json["rule"], "refund_small");
    let revision = a.headers["x-writ-revision"].to_str().unwrap().to_owned();
    assert_eq!(revision.len(), 64);
    assert_eq!(a.headers["content-type"], "application/json");
    // The same decision as `writ eval` on the same policy and request
    // (its engine on the sources: the runtime checked against the
    // reference evaluator).
    let comp = writ_compiler::compile_files(&[root().join("examples/support.writ")], None);
    let mut engine =
        writ_compiler::engine::SourceEngine::new(comp.checked_set().unwrap(), &comp).unwrap();
    let req = writ_runtime::Request::from_json(README_REQUEST).unwrap();
    let cli: Value =
        serde_json::from_str(&engine.check(&req, jiff::Timestamp::now()).to_json()).unwrap();
    assert_eq!(cli, a.json, "writ serve and writ eval disagree");
    // A large refund is denied, with the policy's reason.
    let big = README_REQUEST.replace("79.99", "5000");
    let d = call(&s, "POST", "/v1/check", &[], &big).await;
    assert_eq!(d.json["decision"], "deny", "{}", d.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_code_and_a_sentence() {
    let s = state("errors", &["examples/support.writ"], |_| {});
    for (body, want) in [
        ("not json", "malformed request"),
        (r#"{"agent":"a"}"#, "missing request field `action`"),
        (
            r#"{"agent":"a","action":"x","contxt":{}}"#,
            "unknown request field `contxt`",
        ),
        (
            r#"{"agent":"a","action":"x","tier":"root"}"#,
            "`tier` `root` is not a tier",
        ),
        (r#"{"agent":"","action":"x"}"#, "`agent` must not be empty"),
    ] {
        let a = call(&s, "POST", "/v1/check", &[], body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.json["error"], "bad_request", "{body}");
        assert!(
            a.json["message"].as_str().unwrap().contains(want),
            "{body}: {}",
            a.json
        );
    }
    // A body that is not UTF-8, on every endpoint that reads one.
    for uri in ["/v1/check", "/v1/check/batch", "/v1/explain"] {
        let resp = service(Arc::clone(&s))
            .oneshot(
                Request::builder()
                    .method("POST")
                    .uri(uri)
                    .body(Body::from(b"{\"agent\":\"\xff\"}".to_vec()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{uri}");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["error"], "bad_request", "{uri}: {json}");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("not UTF-8 (byte 10)"),
            "{uri}: {json}"
        );
    }
    let a = call(&s, "GET", "/no/such/endpoint", &[], "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let s = state("limit", &["examples/support.writ"], |c| {
        c.max_body_bytes = 1024
    });
    let big = format!(
        r#"{{"agent":"a","action":"x","context":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    // Every endpoint that reads a body answers in the API's JSON: the
    // hot route and the router's alike.
    for uri in [
        "/v1/check",
        "/v1/check/batch",
        "/v1/explain",
        "/admin/agents",
    ] {
        let a = call(&s, "POST", uri, &[], &big).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(a.json["error"], "body_too_large", "{uri}: {}", a.json);
        assert!(
            a.json["message"]
                .as_str()
                .unwrap()
                .contains("over 1024 bytes"),
            "{uri}: {}",
            a.json
        );
    }
    // A `Content-Length` past the limit is answered at once, though the
    // body never comes: nothing of it is waited for.
    for uri in ["/v1/check", "/v1/explain"] {
        let resp = never_comes(&s, uri, 4096, 5, "answered without reading the body").await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
    }
    // At the limit it is read.
    let fits = format!(
        r#"{{"agent":"a","action":"x","context":{{"pad":"{}"}}}}"#,
        "x".repeat(1024 - 47)
    );
    assert_eq!(fits.len(), 1024);
    let a = call(&s, "POST", "/v1/check", &[], &fits).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
}

#[tokio::test]
async fn an_answer_that_never_comes_is_a_504_at_the_request_timeout() {
    let s = state("timeout", &["examples/support.writ"], |c| {
        c.request_timeout = std::time::Duration::from_millis(300);
    });
    // A body that never comes keeps the answer waiting: on the hot route
    // (the timer armed after the first poll) and on the router's.
    for uri in ["/v1/check", "/v1/explain", "/v1/check/batch"] {
        let t = std::time::Instant::now();
        let resp = never_comes(&s, uri, 100, 10, "answered at the request timeout").await;
        let waited = t.elapsed();
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT, "{uri}");
        assert!(
            waited >= std::time::Duration::from_millis(300),
            "{uri}: answered after {waited:?}"
        );
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["error"], "timeout", "{uri}: {json}");
    }
    // An answer ready at once is not held up by the timer.
    let a = call(&s, "POST", "/v1/check", &[], README_REQUEST).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["decision"], "allow", "{}", a.json);
    // A timeout past what the clock can count is no timeout, not a panic.
    let s = state("timeout-max", &["examples/support.writ"], |c| {
        c.request_timeout = std::time::Duration::MAX;
    });
    for uri in ["/v1/check", "/v1/explain"] {
        let a = call(&s, "POST", uri, &[], README_REQUEST).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.json);
    }
}

/// `POST uri` with a body of `len` bytes that never comes, answered
/// within `secs` seconds (or the test fails, saying `answered`).
async fn never_comes(
    s: &Shared,
    uri: &str,
    len: u64,
    secs: u64,
    answered: &str,
) -> axum::response::Response {
    let never = Request::builder()
        .method("POST")
        .uri(uri)
        .body(Body::new(NeverComes(len)))
        .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        service(Arc::clone(s)).oneshot(never),
    )
    .await
    .expect(answered)
    .unwrap()
}

/// A body that says it is `.0` bytes long and never sends a byte.
struct NeverComes(u64);

impl http_body::Body for NeverComes {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0)
    }
}

/// One request to `app`, answered as the wire would carry it: status,
/// headers but `date`, body.
async fn raw<S>(app: S, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> String
where
    S: tower::Service<
            Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        >,
{
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = app
        .oneshot(b.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let mut out = format!("{}\n", resp.status());
    for (k, v) in resp.headers() {
        if k != "date" {
            out.push_str(&format!("{k}: {}\n", v.to_str().unwrap()));
        }
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    out.push_str(&String::from_utf8_lossy(&bytes));
    generated_trace_ids_blanked(&out)
}

/// `text` with the trace ids the server makes up (`trace_` and 16 hex
/// digits, random) blanked.
fn generated_trace_ids_blanked(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("trace_") {
        let (before, after) = rest.split_at(i + "trace_".len());
        out.push_str(before);
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 16 {
            out.push_str("<generated>");
            rest = &after[16..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A method, a URI, headers and a body.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hot_routes_answer_as_the_router_does() {
    // Two servers alike, one asked through the router only, the other as
    // `writ serve` asks (`POST /v1/check` and `GET /proxy/check` answered
    // before the router): every answer is the same, byte for byte, in
    // the same order (so limits count the same).
    let configure = |c: &mut Config| {
        c.jwt_secret = Some(SECRET.into());
        c.admin_token = Some(ADMIN.into());
        c.max_body_bytes = 2048;
    };
    let seeds = [
        "examples/seeds/meshguard-openai-support.yaml",
        "examples/seeds/meshguard-support-agents.yaml",
    ];
    let a = state("hot-router", &seeds, configure);
    let b = state("hot-service", &seeds, configure);
    let t1 = ("authorization", "Bearer tok_support_t1_abc");
    let t3 = ("authorization", "Bearer tok_support_t3_abc");
    let admin = ("x-admin-token", ADMIN);
    let search = ("x-meshguard-action", "web_search:execute");
    let big = format!(
        r#"{{"agent":"a","action":"x","context":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    let ask =
        r#"{"agent":"support-t1-001","action":"web_search:execute","token":"tok_support_t1_abc"}"#;
    let mut cases: Vec<Case<'_>> = vec![
        ("POST", "/v1/check", vec![admin], ask.into()),
        (
            "POST",
            "/v1/check",
            vec![admin, ("content-type", "application/json")],
            br#"{"agent":"x","action":"computer_use:execute"}"#.to_vec(),
        ),
        ("POST", "/v1/check", vec![], ask.into()),
        (
            "POST",
            "/v1/check",
            vec![("authorization", "Bearer nope")],
            ask.into(),
        ),
        (
            "POST",
            "/v1/check",
            vec![admin],
            b"{\"agent\":\"\xff\"}".to_vec(),
        ),
        ("POST", "/v1/check", vec![admin], b"{not json".to_vec()),
        (
            "POST",
            "/v1/check",
            vec![admin],
            br#"{"agent":"x","action":"y","at":"2025-01-15T12:00:00Z","unknown":1}"#.to_vec(),
        ),
        ("POST", "/v1/check", vec![admin], big.clone().into_bytes()),
        ("POST", "/v1/check", vec![t1], ask.into()),
        ("GET", "/v1/check", vec![admin], vec![]),
        ("POST", "/v1/check/", vec![admin], ask.into()),
        (
            "GET",
            "/proxy/check",
            vec![t1, search, ("x-meshguard-trace-id", "trace-1")],
            vec![],
        ),
        (
            "GET",
            "/proxy/check",
            vec![t3, ("x-meshguard-action", "computer_use:execute")],
            vec![],
        ),
        ("GET", "/proxy/check", vec![t1], vec![]),
        ("GET", "/proxy/check", vec![search], vec![]),
        (
            "GET",
            "/proxy/check",
            vec![("authorization", "Bearer tok_other_1"), search],
            vec![],
        ),
        ("GET", "/proxy/check", vec![t1, search], big.into_bytes()),
        ("HEAD", "/proxy/check", vec![t1, search], vec![]),
        ("POST", "/proxy/check", vec![t1, search], vec![]),
        ("GET", "/proxy/check?x=1", vec![t1, search], vec![]),
        ("POST", "/v1/check?x=1", vec![admin], ask.into()),
        (
            "POST",
            "http://127.0.0.1:8181/v1/check",
            vec![admin],
            ask.into(),
        ),
        ("POST", "/v1%2Fcheck", vec![admin], ask.into()),
        ("post", "/v1/check", vec![admin], ask.into()),
        ("GET", "/PROXY/check", vec![t1, search], vec![]),
    ];
    // Past tier 1's limit of 30 searches an hour.
    for _ in 0..32 {
        cases.push(("GET", "/proxy/check", vec![t1, search], vec![]));
    }
    let mut compared = 0;
    for (m, uri, headers, body) in &cases {
        let want = raw(router(Arc::clone(&a)), m, uri, headers, body).await;
        let got = raw(service(Arc::clone(&b)), m, uri, headers, body).await;
        assert_eq!(got, want, "{m} {uri} {headers:?}");
        compared += 1;
    }
    let last = raw(
        service(Arc::clone(&b)),
        "GET",
        "/proxy/check",
        &[t1, search],
        b"",
    )
    .await;
    assert!(last.starts_with("429"), "the limit was reached: {last}");
    // The hot routes are answered by `service` itself: with a router that
    // has no route at all, they still decide, and nothing else answers.
    let c = state("hot-alone", &seeds, configure);
    let alone = || writ_server::hot::Service::new(Arc::clone(&c), axum::Router::new());
    let answer = raw(alone(), "POST", "/v1/check", &[admin], ask.as_bytes()).await;
    assert!(
        answer.starts_with("200") && answer.contains("\"decision\":\"allow\""),
        "{answer}"
    );
    let answer = raw(alone(), "GET", "/proxy/check", &[t1, search], b"").await;
    assert!(
        answer.starts_with("200") && answer.contains("\"allowed\":true"),
        "{answer}"
    );
    for (m, uri) in [
        ("GET", "/health"),
        ("GET", "/v1/check"),
        ("POST", "/v1/check/"),
    ] {
        let answer = raw(alone(), m, uri, &[admin], b"").await;
        assert!(answer.starts_with("404"), "{m} {uri}: {answer}");
    }
    let metrics = |s: &Shared| {
        s.metrics
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(
        metrics(&a) + 1,
        metrics(&b),
        "every request is counted either way"
    );
    eprintln!("{compared} requests answered alike");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_decided_on_one_revision() {
    let s = state("batch", &["examples/support.writ"], |_| {});
    let body = json!({"requests": [
        serde_json::from_str::<Value>(README_REQUEST).unwrap(),
        {"agent": "billing-agent", "action": "tool:call", "target": "delete_account"},
        {"agent": "billing-agent"},
    ]});
    let a = call(&s, "POST", "/v1/check/batch", &[], &body.to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let d = a.json["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d[0]["decision"], "allow");
    assert_eq!(d[1]["decision"], "deny");
    assert_eq!(d[2]["error"], "bad_request");
    let too_many = json!({"requests": vec![json!({"agent":"a","action":"x"}); 1001]});
    let a = call(&s, "POST", "/v1/check/batch", &[], &too_many.to_string()).await;
    assert_eq!(a.json["error"], "batch_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_jwt_secret_only_health_is_open() {
    let s = state(
        "auth",
        &["examples/seeds/meshguard-openai-support.yaml"],
        |c| {
            c.jwt_secret = Some(SECRET.into());
            c.admin_token = Some(ADMIN.into());
        },
    );
    let h = call(&s, "GET", "/health", &[], "").await;
    assert_eq!(
        (h.status, h.json["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );
    for (m, uri) in [
        ("POST", "/v1/check"),
        ("GET", "/v1/policy"),
        ("GET", "/metrics"),
        ("GET", "/proxy/check"),
    ] {
        let a = call(
            &s,
            m,
            uri,
            &[],
            r#"{"agent":"a","action":"read:customer_data"}"#,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{m} {uri}");
        assert_eq!(a.json["error"], "unauthorized");
    }
    // An agent created over the admin API asks for itself, with the tags
    // the registry holds; not for another agent.
    let created = call(
        &s,
        "POST",
        "/admin/agents",
        &[
            ("x-admin-token", ADMIN),
            ("content-type", "application/json"),
        ],
        r#"{"name":"bot","tags":["openai"]}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", created.json["token"].as_str().unwrap());
    let own = format!(r#"{{"agent":"{id}","action":"read:customer_data"}}"#);
    let a = call(&s, "POST", "/v1/check", &[("authorization", &bearer)], &own).await;
    assert_eq!(a.json["decision"], "allow", "{}", a.json);
    let other = r#"{"agent":"someone-else","action":"read:customer_data"}"#;
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("authorization", &bearer)],
        other,
    )
    .await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent_mismatch"))
    );
    // The admin token may ask for anyone.
    let a = call(&s, "POST", "/v1/check", &[("x-admin-token", ADMIN)], other).await;
    assert_eq!(a.json["decision"], "deny", "{}", a.json);
    // An agent cannot choose the time it is decided at (it would step
    // out of a rule's hours or a limit's window); the admin token can.
    let at =
        format!(r#"{{"agent":"{id}","action":"read:customer_data","at":"2025-01-15T15:00:00Z"}}"#);
    let auth = [("authorization", bearer.as_str())];
    let a = call(&s, "POST", "/v1/check", &auth, &at).await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("at_not_allowed")),
        "{}",
        a.json
    );
    let batch = format!(r#"{{"requests":[{own},{at}]}}"#);
    let a = call(&s, "POST", "/v1/check/batch", &auth, &batch).await;
    assert_eq!(a.json["decisions"][0]["decision"], "allow", "{}", a.json);
    assert_eq!(
        a.json["decisions"][1]["error"], "at_not_allowed",
        "{}",
        a.json
    );
    let a = call(&s, "POST", "/v1/explain", &auth, &at).await;
    assert_eq!(a.json["error"], "at_not_allowed", "{}", a.json);
    // (Decided, not refused: without the agent's token, its tags are not
    // the registry's, so the tag-scoped rule does not apply.)
    let a = call(&s, "POST", "/v1/check", &[("x-admin-token", ADMIN)], &at).await;
    assert_eq!(
        (a.status, a.json["decision"].as_str()),
        (StatusCode::OK, Some("deny")),
        "{}",
        a.json
    );
    // A wrong admin token is not the admin.
    let a = call(
        &s,
        "GET",
        "/admin/agents",
        &[("x-admin-token", "admin-token-0123456788")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Revoked: refused at once.
    let del = call(
        &s,
        "DELETE",
        &format!("/admin/agents/{id}"),
        &[("x-admin-token", ADMIN)],
        "",
    )
    .await;
    assert_eq!(del.status, StatusCode::OK);
    let a = call(&s, "POST", "/v1/check", &[("authorization", &bearer)], &own).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.json["message"].as_str().unwrap().contains("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_off_without_an_admin_token() {
    let s = state("noadmin", &["examples/support.writ"], |_| {});
    let a = call(
        &s,
        "GET",
        "/admin/agents",
        &[("x-admin-token", "anything-at-all-here")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.json["message"].as_str().unwrap().contains("ADMIN_TOKEN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_tiers_reach_tier_scoped_rules() {
    let dir = tmp("tiers-policy");
    let policy = dir.join("tiers.writ");
    std::fs::write(
        &policy,
        "policy \"tiers\" { default deny }\n\nrule trusted_only: allow \"deploy\"\n  for tiers [trusted]\n\nagent \"declared\" { tier verified }\n",
    )
    .unwrap();
    let s = state("tiers", &[], |c| {
        c.policies = vec![policy.clone()];
        c.jwt_secret = Some(SECRET.into());
        c.admin_token = Some(ADMIN.into());
    });
    let mk = |tier: &'static str| {
        let s = Arc::clone(&s);
        async move {
            let body = format!(r#"{{"name":"n","trustTier":"{tier}"}}"#);
            let c = call(
                &s,
                "POST",
                "/admin/agents",
                &[("x-admin-token", ADMIN)],
                &body,
            )
            .await;
            (
                c.json["id"].as_str().unwrap().to_owned(),
                format!("Bearer {}", c.json["token"].as_str().unwrap()),
            )
        }
    };
    let (trusted, tb) = mk("trusted").await;
    let (verified, vb) = mk("verified").await;
    let ask = |id: &str| format!(r#"{{"agent":"{id}","action":"deploy"}}"#);
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("authorization", &tb)],
        &ask(&trusted),
    )
    .await;
    assert_eq!(a.json["decision"], "allow", "{}", a.json);
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("authorization", &vb)],
        &ask(&verified),
    )
    .await;
    assert_eq!(a.json["decision"], "deny", "{}", a.json);
    // Promoted by the admin: the next request sees it.
    let p = call(
        &s,
        "PATCH",
        &format!("/admin/agents/{verified}"),
        &[("x-admin-token", ADMIN)],
        r#"{"trustTier":"trusted"}"#,
    )
    .await;
    assert_eq!(p.json["trustTier"], "trusted");
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("authorization", &vb)],
        &ask(&verified),
    )
    .await;
    assert_eq!(a.json["decision"], "allow", "{}", a.json);
    // A tier the policy declares wins over the caller's.
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("x-admin-token", ADMIN)],
        r#"{"agent":"declared","action":"deploy","tier":"trusted"}"#,
    )
    .await;
    assert_eq!(a.json["decision"], "deny", "{}", a.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_metrics_describe_what_is_served() {
    let s = state("meta", &["examples/support.writ"], |_| {});
    call(&s, "POST", "/v1/check", &[], README_REQUEST).await;
    let p = call(&s, "GET", "/v1/policy", &[], "").await;
    assert_eq!(
        p.json["files"][0]
            .as_str()
            .map(|f| f.ends_with("examples/support.writ")),
        Some(true)
    );
    assert!(p.json["rules"].as_u64().unwrap() > 0);
    assert_eq!(p.json["last_reload_error"], Value::Null);
    let m = call(&s, "GET", "/metrics", &[], "").await;
    let text = m.json.as_str().unwrap();
    assert!(
        text.contains(
            "writ_decisions_total{outcome=\"allow\",policy=\"support\",rule=\"refund_small\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("writ_decision_seconds_count 1"), "{text}");
}

/// The `curl` examples of docs/server.md, each followed by its answer,
/// run against the policy the page serves (examples/support.writ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_examples_of_the_docs_answer_as_documented() {
    let page = std::fs::read_to_string(root().join("docs/server.md")).unwrap();
    assert!(page.contains("writ serve examples/support.writ --port 8181"));
    let s = state("docs", &["examples/support.writ"], |_| {});
    let lines: Vec<&str> = page.lines().collect();
    let mut compared = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("curl -s localhost:8181") else {
            continue;
        };
        let (path, body) = rest.split_once(" -d '").unwrap();
        let body = body.strip_suffix('\'').unwrap();
        let fence = i + lines[i..]
            .iter()
            .position(|l| l.trim() == "```json")
            .unwrap();
        let end = fence
            + lines[fence..]
                .iter()
                .position(|l| l.trim() == "```")
                .unwrap();
        let want: Value = serde_json::from_str(&lines[fence + 1..end].join("\n")).unwrap();
        let got = call(&s, "POST", path, &[], body).await;
        assert_eq!(got.json, want, "docs/server.md line {}", i + 1);
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} examples found");
}

/// `--tls-cert`/`--tls-key`: the server speaks HTTPS (a client trusting
/// the certificate gets its answers) and nothing else (plain HTTP to the
/// same port gets no answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_given_certificate() {
    let dir = tmp("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        policies: vec![root().join("examples/support.writ")],
        db_path: dir.join("registry.db"),
        audit_path: dir.join("audit.db"),
        watch: false,
        tls_cert: Some(dir.join("cert.pem")),
        tls_key: Some(dir.join("key.pem")),
        ..Config::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(writ_server::run(config, move |addr| {
        let _ = tx.send(addr);
    }));
    let addr = rx.await.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/check", addr.port());
    let r = client.post(&url).body(README_REQUEST).send().await.unwrap();
    let json: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(json["rule"], "refund_small");
    // Plain HTTP on the TLS port: no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health", addr.port()))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // A wrong key for the certificate is refused at start.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("other.pem"), other.signing_key.serialize_pem()).unwrap();
    let e = writ_server::tls::config(&dir.join("cert.pem"), &dir.join("other.pem")).unwrap_err();
    assert!(e.0.contains("does not fit"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_the_steps_with_where_they_are_written() {
    let s = state("explain", &["examples/support.writ"], |_| {});
    let big = README_REQUEST.replace("79.99", "250");
    let a = call(&s, "POST", "/v1/explain", &[], &big).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["decision"]["rule"], "refund_large");
    let steps = a.json["steps"].as_array().unwrap();
    let small = steps.iter().find(|s| s["rule"] == "refund_small").unwrap();
    assert_eq!(small["decided"], false);
    assert_eq!(
        small["outcome"]["condition_failed"]["text"], "amount <= 100",
        "{small}"
    );
    assert_eq!(small["outcome"]["actual"], "`amount` is `250`", "{small}");
    assert!(
        small["at"]["file"]
            .as_str()
            .unwrap()
            .ends_with("support.writ")
    );
    assert!(small["at"]["line"].as_u64().unwrap() > 1);
    let large = steps.iter().find(|s| s["rule"] == "refund_large").unwrap();
    assert_eq!(
        (
            large["decided"].as_bool(),
            large["outcome"]["applied"].as_str()
        ),
        (Some(true), Some("deny"))
    );
    // The served limits are untouched by explanations.
    let p = call(&s, "GET", "/metrics", &[], "").await;
    assert!(
        !p.json.as_str().unwrap().contains("writ_decisions_total{"),
        "{}",
        p.json
    );
}

/// Tokens of an identity provider: EdDSA and RS256, checked with the
/// public keys the server is given; an algorithm it has no key for, and
/// a token signed by another key, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_tokens_are_checked_with_their_public_keys() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let s = state(
        "idp",
        &["examples/seeds/meshguard-openai-support.yaml"],
        |c| {
            c.jwt_public_keys = vec![keys.join("ed25519.pub"), keys.join("rs256.pub")];
            c.jwt_issuer = Some("https://idp.example".into());
        },
    );
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |sub: &str, iss: &str| json!({"sub": sub, "tags": ["openai"], "tier": "trusted", "exp": now + 600, "iat": now, "iss": iss});
    let sign = |alg: Algorithm, key: &str, claims: &Value| {
        let pem = std::fs::read(keys.join(key)).unwrap();
        let k = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
        };
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&Header::new(alg), claims, &k).unwrap()
        )
    };
    let ask = |sub: &str| format!(r#"{{"agent":"{sub}","action":"read:customer_data"}}"#);
    for (alg, key) in [
        (Algorithm::EdDSA, "ed25519.key"),
        (Algorithm::RS256, "rs256.key"),
    ] {
        let t = sign(alg, key, &claims("idp-agent", "https://idp.example"));
        let a = call(
            &s,
            "POST",
            "/v1/check",
            &[("authorization", &t)],
            &ask("idp-agent"),
        )
        .await;
        assert_eq!(a.json["decision"], "allow", "{alg:?}: {}", a.json);
        // The wrong issuer.
        let t = sign(alg, key, &claims("idp-agent", "https://evil.example"));
        let a = call(
            &s,
            "POST",
            "/v1/check",
            &[("authorization", &t)],
            &ask("idp-agent"),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{alg:?}");
    }
    // HS256 (no secret configured) and RS384 (no key for it): refused.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("idp-agent", "https://idp.example"),
        &EncodingKey::from_secret(b"guessed-secret-guessed-secret-32b").unwrap(),
    )
    .unwrap();
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("authorization", &format!("Bearer {hs}"))],
        &ask("idp-agent"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let t = sign(
        Algorithm::RS384,
        "rs256.key",
        &claims("idp-agent", "https://idp.example"),
    );
    let a = call(
        &s,
        "POST",
        "/v1/check",
        &[("authorization", &t)],
        &ask("idp-agent"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

/// `--bundle-url`: the bundle is fetched at start, polled with its ETag
/// (a 304 changes nothing), replaced when it changes, and kept when the
/// new one is corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_bundle_url_is_followed_by_its_etag() {
    use axum::routing::get;
    use std::sync::Mutex;
    let compile = |file: &str| {
        let comp = writ_compiler::compile_files(&[root().join(file)], None);
        let sources = comp.owned_sources();
        writ_compiler::bundle::compile_with(
            comp.checked_set().unwrap(),
            &sources,
            None,
            &comp.programs,
        )
        .unwrap()
    };
    let first = compile("examples/support.writ");
    let second = compile("examples/deny-overrides.writ");
    let served = Arc::new(Mutex::new((first, "\"v1\"".to_owned(), 0usize, 0usize)));
    let st = Arc::clone(&served);
    let app = axum::Router::new().route(
        "/bundle",
        get(move |headers: axum::http::HeaderMap| {
            let st = Arc::clone(&st);
            async move {
                let mut g = st.lock().unwrap();
                g.2 += 1;
                let tag = g.1.clone();
                if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(tag.as_str())
                {
                    g.3 += 1;
                    return (StatusCode::NOT_MODIFIED, [("etag", tag)], Vec::new());
                }
                (StatusCode::OK, [("etag", tag)], g.0.clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tmp("poll");
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        bundle_url: Some(format!("http://127.0.0.1:{port}/bundle")),
        bundle_poll: std::time::Duration::from_millis(1000),
        db_path: dir.join("registry.db"),
        audit_path: dir.join("audit.db"),
        ..Config::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(writ_server::run(config, move |addr| {
        let _ = tx.send(addr);
    }));
    let addr = rx.await.unwrap();
    let policy = || async move {
        let r = reqwest::get(format!("http://{addr}/v1/policy"))
            .await
            .unwrap();
        serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap()
    };
    let rev1 = policy().await["revision"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(policy().await["revision"], rev1.as_str());
    assert!(
        served.lock().unwrap().3 >= 1,
        "the poll sent no If-None-Match"
    );
    {
        let mut g = served.lock().unwrap();
        g.0 = second;
        g.1 = "\"v2\"".into();
    }
    let mut rev2 = rev1.clone();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rev2 = policy().await["revision"].as_str().unwrap().to_owned();
        if rev2 != rev1 {
            break;
        }
    }
    assert_ne!(rev2, rev1, "the new bundle was not picked up");
    {
        let mut g = served.lock().unwrap();
        g.0 = b"not a bundle".to_vec();
        g.1 = "\"v3\"".into();
    }
    let mut p = policy().await;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        p = policy().await;
        if !p["last_reload_error"].is_null() {
            break;
        }
    }
    assert!(p["last_reload_error"].as_str().is_some(), "{p}");
    assert_eq!(
        p["revision"],
        rev2.as_str(),
        "a corrupt bundle replaced the good one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_query_and_stats_count_in_sqlite_and_refuse_json_lines() {
    let admin = [("x-admin-token", ADMIN)];
    let s = state("audit-stats", &["examples/support.writ"], |c| {
        c.admin_token = Some(ADMIN.to_owned());
    });
    let big = README_REQUEST.replace("79.99", "5000");
    for body in [README_REQUEST, &big, &big] {
        let a = call(&s, "POST", "/v1/check", &[], body).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    }
    let stats = call(&s, "GET", "/admin/audit/stats", &admin, "").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.json);
    assert_eq!(
        (
            &stats.json["total"],
            &stats.json["allowed"],
            &stats.json["denied"]
        ),
        (&Value::from(3), &Value::from(1), &Value::from(2)),
        "{}",
        stats.json
    );
    // Newest first: the two denials, then the allow.
    let all = call(&s, "GET", "/admin/audit?limit=10", &admin, "").await;
    let decisions: Vec<&str> = all.json["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["decision"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(decisions, ["deny", "deny", "allow"], "{}", all.json);
    let two = call(&s, "GET", "/admin/audit?limit=2", &admin, "").await;
    assert_eq!(two.json["entries"].as_array().map(Vec::len), Some(2));
    let denied = call(&s, "GET", "/admin/audit?decision=deny&limit=10", &admin, "").await;
    assert_eq!(
        denied.json["entries"].as_array().map(Vec::len),
        Some(2),
        "{}",
        denied.json
    );
    // Every filter, read from the records' lines.
    for (query, n) in [
        ("agentId=billing-agent", 3),
        ("agentId=triage-agent", 0),
        ("action=tool:call&decision=allow", 1),
        ("action=model:use", 0),
        ("from=2025-01-15T14:00:00Z&to=2025-01-15T16:00:00Z", 3),
        ("from=2025-01-15T15:00:00Z&to=2025-01-15T15:00:00Z", 3),
        ("from=2025-01-15T15:00:00.001Z", 0),
        ("to=2025-01-15T14:59:59.999Z", 0),
    ] {
        let a = call(&s, "GET", &format!("/admin/audit?{query}"), &admin, "").await;
        assert_eq!(
            a.json["entries"].as_array().map(Vec::len),
            Some(n),
            "{query}: {}",
            a.json
        );
    }
    let newest = &all.json["entries"][0];
    assert_eq!(newest["timestamp"], "2025-01-15T15:00:00Z", "{newest}");
    assert_eq!(newest["resource"], "refund", "{newest}");
    assert_eq!(newest["agentId"], "billing-agent", "{newest}");
    assert_eq!(newest["meta"]["amount"], 5000.0, "{newest}");
    assert!(
        newest["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{newest}"
    );

    // A JSON Lines log records decisions but cannot be queried: a 501
    // with a code that says so, not a 500.
    let j = state("audit-jsonl", &["examples/support.writ"], |c| {
        c.admin_token = Some(ADMIN.to_owned());
        c.audit_path = c.audit_path.with_extension("jsonl");
    });
    call(&j, "POST", "/v1/check", &[], README_REQUEST).await;
    for uri in ["/admin/audit?limit=5", "/admin/audit/stats"] {
        let a = call(&j, "GET", uri, &admin, "").await;
        assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{uri}: {}", a.json);
        assert_eq!(a.json["error"], "audit_not_queryable", "{uri}");
        assert!(a.json["message"].as_str().unwrap().contains(".db"), "{uri}");
    }
}
