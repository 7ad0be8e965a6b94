//! The native API: `writ eval`'s request and decision JSON over HTTP.
//!
//! - `POST /v1/check`: one request, one decision.
//! - `POST /v1/check/batch`: `{"requests": [...]}` → `{"decisions":
//!   [...]}`, every request decided on the same policy revision.
//! - `GET /v1/policy`: the revision served, its files and counts, and why
//!   the last reload failed.
//! - `GET /health`, `GET /metrics`.
//!
//! With `JWT_SECRET` (or public keys) set, every endpoint but `/health`
//! needs a token: an agent token asks for its own agent only (its tier and
//! tags come from the registry or the token); the admin token may ask for
//! any agent.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use writ_runtime::Request;

use crate::error::ApiError;
use crate::{Body, Headers, Principal, Shared};

/// The most requests a batch may hold.
pub const MAX_BATCH: usize = 1000;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/health", get(health))
        .route("/", get(root))
        .route("/v1/check", post(check))
        .route("/v1/check/batch", post(batch))
        .route("/v1/explain", post(explain))
        .route("/v1/policy", get(policy))
        .route("/metrics", get(metrics))
}

async fn health(State(s): State<Shared>) -> Response {
    let loaded = s.policies.current();
    Json(serde_json::json!({
        "status": "healthy",
        "timestamp": jiff::Timestamp::now().to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "mode": s.config.mode.as_str(),
        "revision": loaded.revision,
        "uptime": s.started.elapsed().as_secs(),
    }))
    .into_response()
}

async fn root(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    if let Err(e) = caller(&s, &headers) {
        return e.into_response();
    }
    Json(serde_json::json!({
        "name": "writ",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": s.config.mode.as_str(),
        "docs": "https://github.com/writ-policy/writ/blob/main/docs/server.md",
    }))
    .into_response()
}

/// Whether the request carries the admin token.
pub fn is_admin(s: &Shared, headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq as _;
    const ADMIN_TOKEN: header::HeaderName = header::HeaderName::from_static("x-admin-token");
    // No admin token configured: nothing to look up.
    let Some(want) = s.config.admin_token.as_deref() else {
        return false;
    };
    let Some(got) = headers.get(&ADMIN_TOKEN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    bool::from(want.as_bytes().ct_eq(got.as_bytes()))
}

/// Reads a request's JSON and fits it to who asks.
fn request_for(
    s: &Shared,
    headers: &HeaderMap,
    who: Option<&Principal>,
    text: &str,
) -> Result<Request, ApiError> {
    let mut req = Request::from_json(text).map_err(|e| ApiError::bad_request(e.message))?;
    if let Some(p) = who {
        // An agent is decided at the server's clock: a time of its own
        // choosing would move it out of a rule's hours or a limit's
        // window. (`who` is `None` for the admin token, and for anyone
        // on a server that authenticates no one.)
        if req.at.is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "at_not_allowed",
                format!(
                    "agent `{}`'s requests are decided at the server's clock; only the admin token may set `at`",
                    p.agent
                ),
            ));
        }
        if req.agent != p.agent && !is_admin(s, headers) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "agent_mismatch",
                format!(
                    "the token is agent `{}`'s; it cannot ask for agent `{}`",
                    p.agent, req.agent
                ),
            ));
        }
        if req.agent == p.agent {
            req.tier = req.tier.or(p.tier);
            for t in &p.tags {
                if !req.tags.contains(t) {
                    req.tags.push(t.clone());
                }
            }
        }
    }
    Ok(req)
}

/// The caller: an agent token, or (when the admin token is given)
/// nobody in particular.
fn caller(s: &Shared, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if is_admin(s, headers) {
        return Ok(None);
    }
    s.authenticate(headers, false)
}

/// The request in `body`, fitted to the caller `headers` name.
fn asked(s: &Shared, headers: &HeaderMap, body: &str) -> Result<Request, ApiError> {
    let who = caller(s, headers)?;
    request_for(s, headers, who.as_ref(), body)
}

fn revision_header(loaded: &crate::policy::Loaded) -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::HeaderName::from_static("x-writ-revision"),
        loaded.revision_header.clone(),
    )]
}

/// A request body as text (read as bytes: axum's `String` copies them).
///
/// # Errors
/// 400 when it is not UTF-8.
fn text(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not UTF-8 (byte {}); send JSON",
            e.valid_up_to()
        ))
    })
}

async fn check(State(s): State<Shared>, Headers(headers): Headers, Body(body): Body) -> Response {
    check_body(&s, &headers, &body)
}

/// `POST /v1/check` from [`crate::hot`]: the handler above, on the
/// request as it came.
pub(crate) async fn check_request(s: &Shared, req: axum::extract::Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    match crate::read_body(body, s.config.max_body_bytes).await {
        Ok(body) => check_body(s, &headers, &body),
        Err(e) => e.into_response(),
    }
}

fn check_body(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let req = match text(body).and_then(|body| asked(s, headers, body)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let loaded = s.policies.current();
    let json = s.decide(&loaded, &req, |d, reason| d.to_json_with_reason(reason));
    // The headers axum's `(StatusCode, headers…, String)` would set, in
    // its order, in a map allocated once.
    let mut r = Response::new(axum::body::Body::from(json));
    let h = r.headers_mut();
    h.reserve(4);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let [(name, value)] = revision_header(&loaded);
    h.insert(name, value);
    r
}

/// The decision and the steps that led to it (see `explain.rs`). An
/// explanation runs on fresh limits: it counts against nothing, and does
/// not see the served counts.
async fn explain(State(s): State<Shared>, Headers(headers): Headers, Body(body): Body) -> Response {
    let req = match text(&body).and_then(|body| asked(&s, &headers, body)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let loaded = s.policies.current();
    match tokio::task::spawn_blocking(move || crate::explain::explain(&loaded, &req)).await {
        Ok(r) => r,
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    requests: Vec<serde_json::Value>,
}

async fn batch(State(s): State<Shared>, Headers(headers): Headers, Body(body): Body) -> Response {
    let who = match caller(&s, &headers) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let body = match text(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let batch: Batch = match serde_json::from_str(body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!(
                "malformed batch: {e}; send {{\"requests\": [request, ...]}}"
            ))
            .into_response();
        }
    };
    if batch.requests.len() > MAX_BATCH {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} requests; a batch holds at most {MAX_BATCH}",
                batch.requests.len()
            ),
        )
        .into_response();
    }
    // One revision for the whole batch.
    let loaded = s.policies.current();
    let mut out = String::from("{\"decisions\":[");
    for (i, value) in batch.requests.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match request_for(&s, &headers, who.as_ref(), &value.to_string()) {
            Ok(req) => {
                out.push_str(&s.decide(&loaded, &req, |d, reason| d.to_json_with_reason(reason)))
            }
            Err(e) => out.push_str(
                &serde_json::json!({ "error": e.code, "message": e.message }).to_string(),
            ),
        }
    }
    out.push_str("]}");
    (
        StatusCode::OK,
        revision_header(&loaded),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        out,
    )
        .into_response()
}

async fn policy(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    if let Err(e) = caller(&s, &headers) {
        return e.into_response();
    }
    let loaded = s.policies.current();
    let (reloads, failed) = s.policies.reload_counts();
    Json(serde_json::json!({
        "revision": loaded.revision,
        "files": loaded.files,
        "policies": loaded.policies.iter().map(|p| serde_json::json!({
            "name": p.name,
            "rules": p.rules.len(),
        })).collect::<Vec<_>>(),
        "rules": loaded.rules,
        "agents": loaded.agents,
        "loaded_at": loaded.loaded_at.to_string(),
        "reloads": reloads,
        "failed_reloads": failed,
        "last_reload_error": s.policies.last_error(),
    }))
    .into_response()
}

async fn metrics(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    if !s.config.metrics {
        return ApiError::not_found("metrics are off (METRICS_ENABLED)").into_response();
    }
    if let Err(e) = caller(&s, &headers) {
        return e.into_response();
    }
    let loaded = s.policies.current();
    let text = s.metrics.render(
        s.policies.reload_counts(),
        s.audit.counts_for_metrics(),
        &loaded.revision,
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}
