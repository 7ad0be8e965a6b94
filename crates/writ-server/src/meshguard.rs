//! MeshGuard's wire protocol, as its clients speak it (see
//! `docs/server.md` and the wire contract it cites): `GET /proxy/check`,
//! `ALL /proxy/{path}` (decide, then forward to `PROXY_TARGET`), and the
//! admin endpoints under `X-Admin-Token`. Answers use the shapes the
//! strictest client needs: string ids, RFC 3339 times, optional fields
//! left out rather than `null`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value as Json_};
use writ_runtime::{Decision, Effect, Request};

use crate::Headers;
use crate::error::ApiError;
use crate::native::is_admin;
use crate::registry::{self, Agent};
use crate::{Mode, Principal, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/proxy/check", get(check))
        .route("/proxy/{*path}", any(proxy))
        .route("/admin/agents", get(list_agents).post(create_agent))
        .route(
            "/admin/agents/{id}",
            get(get_agent)
                .patch(update_agent)
                .put(update_agent)
                .delete(revoke_agent),
        )
        .route("/admin/policies", get(list_policies))
        .route("/admin/policies/{name}", get(get_policy))
        .route("/admin/audit", get(audit))
        .route("/admin/audit/stats", get(audit_stats))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The request MeshGuard's headers describe.
fn request_of(
    who: &Principal,
    headers: &HeaderMap,
    action: String,
    resource: Option<String>,
) -> Result<Request, ApiError> {
    let mut req = Request::new(&who.agent, &action);
    req.tier = who.tier;
    req.tags.clone_from(&who.tags);
    req.token.clone_from(&who.token);
    req.target = resource;
    req.trace_id =
        Some(header_str(headers, "x-meshguard-trace-id").map_or_else(trace_id, str::to_owned));
    if let Some(meta) = header_str(headers, "x-meshguard-meta") {
        let Ok(Json_::Object(map)) = serde_json::from_str::<Json_>(meta) else {
            return Err(ApiError::bad_request(
                "X-MeshGuard-Meta must be a JSON object (its keys are the request's context)",
            ));
        };
        // Read through the request JSON reader, so that context values
        // mean what they mean everywhere.
        let text =
            serde_json::json!({ "agent": who.agent, "action": action, "context": map }).to_string();
        let parsed = Request::from_json(&text).map_err(|e| ApiError::bad_request(e.message))?;
        req.context = parsed.context;
    }
    req.validate()
        .map_err(|e| ApiError::bad_request(e.message))?;
    Ok(req)
}

/// A new trace id, `trace_` and 16 hex digits: a process-wide count
/// plus a key drawn at random at start, through splitmix64's finalizer
/// (a bijection, so no two calls of one process repeat). Unique, not
/// secret: trace ids are sent back to the caller and logged.
fn trace_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: OnceLock<u64> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let key = *KEY.get_or_init(|| {
        let mut b = [0u8; 8];
        // Zero if the OS generator fails: still unique in this process.
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    let mut z = key.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("trace_{z:016x}")
}

/// A JSON object written field by field, in the order given (the allow
/// answer of `/proxy/check`, sent on every call: no map, no tree).
struct Object(Vec<u8>);

impl Object {
    fn new() -> Object {
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        Object(out)
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        self.str_value(key);
        self.0.push(b':');
    }

    fn str_value(&mut self, v: &str) {
        writ_runtime::json_text::push_bytes(&mut self.0, v.as_bytes());
    }

    fn string(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        self.str_value(value);
        self
    }

    fn bool(mut self, key: &str, value: bool) -> Object {
        self.key(key);
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    fn into_response(mut self, status: StatusCode) -> Response {
        self.0.push(b'}');
        let mut r = Response::new(Body::from(self.0));
        *r.status_mut() = status;
        // Room for every header a decision's answer carries (its type,
        // `decision_headers`, the length), allocated once.
        let h = r.headers_mut();
        h.reserve(8);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

/// The name MeshGuard clients get for the rule that decided.
fn rule_name(d: &Decision<'_>) -> String {
    d.rule
        .map_or_else(|| format!("default-{}", d.effect.as_str()), str::to_owned)
}

/// The answer to a decision that does not allow: 429 for a limit, 403
/// otherwise.
fn refusal(req: &Request, d: &Decision<'_>, reason: Option<&str>) -> Response {
    let reason = reason.unwrap_or_default();
    let policy = d.policy.unwrap_or("default");
    let trace = req.trace_id.clone().unwrap_or_default();
    if let Some(retry) = d.retry_after_s {
        let body = serde_json::json!({
            "error": "rate_limited",
            "message": reason,
            "retry_after": retry,
            "limit": rule_name(d),
            "policy": policy,
            "traceId": trace,
        });
        let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let code = if d.effect == Effect::Approve {
        "approval_required"
    } else {
        "policy_denied"
    };
    let body = serde_json::json!({
        "error": code,
        "message": reason,
        "reason": reason,
        "action": req.action,
        "policy": policy,
        "rule": rule_name(d),
        "decision": d.effect.as_str(),
        "trace_id": trace,
    });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

fn decision_headers(r: &mut Response, req: &Request, d: &Decision<'_>, effect: &str) {
    const DECISION: HeaderName = HeaderName::from_static("x-meshguard-decision");
    const POLICY: HeaderName = HeaderName::from_static("x-meshguard-policy");
    const RULE: HeaderName = HeaderName::from_static("x-meshguard-rule");
    const TRACE_ID: HeaderName = HeaderName::from_static("x-meshguard-trace-id");
    const AGENT_ID: HeaderName = HeaderName::from_static("x-meshguard-agent-id");
    let h = r.headers_mut();
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(DECISION, effect);
    put(POLICY, d.policy.unwrap_or("default"));
    put(RULE, &rule_name(d));
    put(TRACE_ID, req.trace_id.as_deref().unwrap_or(""));
    put(AGENT_ID, &req.agent);
}

/// Decides; in audit mode every decision allows (the log has the truth).
enum Outcome {
    Allow(Response),
    Refuse(Response),
}

fn decide(
    s: &Shared,
    req: &Request,
    allow_body: impl FnOnce(&Decision<'_>, Option<&str>) -> Response,
) -> Outcome {
    let loaded = s.policies.current();
    s.decide(&loaded, req, |d, reason| {
        let allowed = d.effect == Effect::Allow || s.config.mode == Mode::Audit;
        if allowed {
            let mut r = allow_body(d, reason);
            let effect = if d.effect == Effect::Allow {
                "allow"
            } else {
                "audit-allow"
            };
            decision_headers(&mut r, req, d, effect);
            Outcome::Allow(r)
        } else {
            let mut r = refusal(req, d, reason);
            decision_headers(&mut r, req, d, d.effect.as_str());
            Outcome::Refuse(r)
        }
    })
}

async fn check(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    check_headers(&s, &headers)
}

/// `GET /proxy/check` from [`crate::hot`]: the handler above, on the
/// request as it came (its body is not read, as the router's handler
/// does not read it).
pub(crate) fn check_request(s: &Shared, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    check_headers(s, &parts.headers)
}

fn check_headers(s: &Shared, headers: &HeaderMap) -> Response {
    let who = match s.authenticate(headers, true) {
        Ok(Some(w)) => w,
        Ok(None) => return ApiError::unauthorized("a bearer token is required").into_response(),
        Err(e) => return e.into_response(),
    };
    let Some(action) = header_str(headers, "x-meshguard-action").map(str::to_owned) else {
        return ApiError::bad_request("X-MeshGuard-Action is required").into_response();
    };
    let resource = header_str(headers, "x-meshguard-resource").map(str::to_owned);
    let req = match request_of(&who, headers, action, resource) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let audit_mode = s.config.mode == Mode::Audit;
    match decide(s, &req, |d, reason| {
        // In the order serde_json's map wrote them (sorted keys).
        let would_deny = audit_mode && d.effect != Effect::Allow;
        let mut body = Object::new()
            .string("action", &req.action)
            .bool("allowed", true)
            .string("decision", "allow")
            .string("policy", d.policy.unwrap_or("default"));
        if would_deny && let Some(r) = reason {
            body = body.string("reason", r);
        }
        body = body
            .string("rule", &rule_name(d))
            .string("traceId", req.trace_id.as_deref().unwrap_or_default());
        if would_deny {
            body = body.bool("wouldDeny", true);
        }
        body.into_response(StatusCode::OK)
    }) {
        Outcome::Allow(r) | Outcome::Refuse(r) => r,
    }
}

/// MeshGuard's action for a proxied call without `X-MeshGuard-Action`.
fn derived_action(method: &Method, path: &str) -> String {
    let verb = match *method {
        Method::GET | Method::HEAD => "read",
        Method::POST | Method::PUT | Method::PATCH => "write",
        Method::DELETE => "delete",
        ref other => return format!("{}:{path}", other.as_str().to_ascii_lowercase()),
    };
    format!("{verb}:{path}")
}

/// Headers never forwarded: hop-by-hop ones, the agent's token, the
/// admin token and the gateway's own.
fn forwardable(name: &HeaderName) -> bool {
    let n = name.as_str();
    !matches!(
        n,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "authorization"
            | "x-admin-token"
            | "content-length"
    ) && !n.starts_with("x-meshguard-")
}

async fn proxy(
    State(s): State<Shared>,
    Path(path): Path<String>,
    method: Method,
    uri: Uri,
    Headers(headers): Headers,
    crate::Body(body): crate::Body,
) -> Response {
    let who = match s.authenticate(&headers, true) {
        Ok(Some(w)) => w,
        Ok(None) => return ApiError::unauthorized("a bearer token is required").into_response(),
        Err(e) => return e.into_response(),
    };
    let action = header_str(&headers, "x-meshguard-action")
        .map_or_else(|| derived_action(&method, &path), str::to_owned);
    let resource =
        header_str(&headers, "x-meshguard-resource").map_or_else(|| path.clone(), str::to_owned);
    let req = match request_of(&who, &headers, action, Some(resource)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(target) = s.config.proxy_target.clone() else {
        return ApiError::new(
            StatusCode::BAD_GATEWAY,
            "no_upstream",
            "no PROXY_TARGET is configured: /proxy/check decides without forwarding",
        )
        .into_response();
    };
    let allowed = match decide(&s, &req, |_, _| StatusCode::OK.into_response()) {
        Outcome::Refuse(r) => return r,
        Outcome::Allow(r) => r,
    };
    let mut url = format!("{}/{}", target.trim_end_matches('/'), path);
    if let Some(q) = uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let Ok(m) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return ApiError::bad_request("unsupported method").into_response();
    };
    let mut up = s.http.request(m, &url);
    for (name, value) in &headers {
        if forwardable(name) {
            up = up.header(name.as_str(), value.as_bytes());
        }
    }
    if let Some(t) = &req.trace_id {
        up = up.header("x-meshguard-trace-id", t.as_str());
    }
    let upstream = match up.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                format!("{url}: {e}"),
            )
            .into_response();
        }
    };
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) && forwardable(&n)
        {
            out_headers.append(n, v);
        }
    }
    let bytes = match upstream.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                format!("{url}: {e}"),
            )
            .into_response();
        }
    };
    let mut r = (status, Body::from(bytes)).into_response();
    *r.headers_mut() = out_headers;
    for (n, v) in allowed.headers() {
        r.headers_mut().insert(n.clone(), v.clone());
    }
    r
}

// ---------------------------------------------------------------------
// Admin

fn admin(s: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    if s.config.admin_token.is_none() {
        return Err(ApiError::not_found(
            "the admin API is off: set ADMIN_TOKEN to turn it on",
        ));
    }
    if is_admin(s, headers) {
        Ok(())
    } else {
        s.metrics
            .auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err(ApiError::unauthorized("X-Admin-Token is missing or wrong"))
    }
}

fn agent_json(a: &Agent) -> Map<String, Json_> {
    let mut m = Map::new();
    m.insert("id".into(), a.id.clone().into());
    m.insert("name".into(), a.name.clone().into());
    m.insert("trustTier".into(), a.tier.clone().into());
    m.insert("tags".into(), a.tags.clone().into());
    m.insert("createdAt".into(), a.created_at.clone().into());
    if let Some(u) = &a.updated_at {
        m.insert("updatedAt".into(), u.clone().into());
    }
    if a.revoked {
        m.insert("revoked".into(), true.into());
    }
    m
}

async fn list_agents(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    match s.registry.list() {
        Ok(agents) => Json(serde_json::json!({
            "agents": agents.iter().map(agent_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => ApiError::internal(e.0).into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentBody {
    name: Option<String>,
    trust_tier: Option<String>,
    tags: Option<Vec<String>>,
    /// Accepted and ignored (GO and RS send it; writ's capabilities are
    /// its policies).
    #[allow(dead_code, reason = "accepted for the Go and Rust clients; not used")]
    capabilities: Option<Json_>,
    #[allow(dead_code, reason = "accepted for the docs' PATCH; not used")]
    metadata: Option<Json_>,
}

fn tier_of(text: Option<&str>) -> Result<Option<&'static str>, ApiError> {
    match text {
        None => Ok(None),
        Some(t) => registry::tier_name(t).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "trustTier `{t}` is not a tier: use untrusted, verified, trusted or privileged"
            ))
        }),
    }
}

async fn create_agent(
    State(s): State<Shared>,
    Headers(headers): Headers,
    crate::Body(body): crate::Body,
) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    let b: AgentBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("malformed agent: {e}")).into_response(),
    };
    let Some(name) = b.name.filter(|n| !n.trim().is_empty()) else {
        return ApiError::bad_request("an agent needs a `name`").into_response();
    };
    let tier = match tier_of(b.trust_tier.as_deref()) {
        Ok(t) => t.unwrap_or("verified"),
        Err(e) => return e.into_response(),
    };
    let tags = b.tags.unwrap_or_default();
    // With JWT_SECRET the token is a JWT; otherwise an opaque token the
    // registry keeps only the SHA-256 of.
    let opaque = (!s.verifier.is_enabled() || s.config.jwt_secret.is_none())
        .then(|| format!("wrt_{}", registry::random_hex(24)));
    let digest = opaque.as_deref().map(crate::sha256_hex);
    let agent = match s.registry.create(&name, tier, &tags, digest.as_deref()) {
        Ok(a) => a,
        Err(e) => return ApiError::internal(e.0).into_response(),
    };
    let token = match opaque {
        Some(t) => t,
        None => {
            let now = jsonwebtoken::get_current_timestamp();
            let claims = crate::identity::Claims {
                sub: agent.id.clone(),
                name: Some(agent.name.clone()),
                tier: Some(agent.tier.clone()),
                tags: agent.tags.clone(),
                iat: now,
                exp: now + s.config.token_ttl.as_secs(),
                iss: Some("meshguard".to_owned()),
                trust: None,
            };
            match s.verifier.issue(&claims) {
                Ok(t) => t,
                Err(e) => return ApiError::internal(e.0).into_response(),
            }
        }
    };
    let mut m = agent_json(&agent);
    m.insert("token".into(), token.into());
    (StatusCode::CREATED, Json(Json_::Object(m))).into_response()
}

async fn get_agent(
    State(s): State<Shared>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    match s.registry.get(&id) {
        Ok(Some(a)) => Json(Json_::Object(agent_json(&a))).into_response(),
        Ok(None) => ApiError::not_found(format!("no agent `{id}`")).into_response(),
        Err(e) => ApiError::internal(e.0).into_response(),
    }
}

async fn update_agent(
    State(s): State<Shared>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    crate::Body(body): crate::Body,
) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    let b: AgentBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("malformed agent: {e}")).into_response(),
    };
    let tier = match tier_of(b.trust_tier.as_deref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match s
        .registry
        .update(&id, b.name.as_deref(), tier, b.tags.as_deref())
    {
        Ok(Some(a)) => Json(Json_::Object(agent_json(&a))).into_response(),
        Ok(None) => {
            ApiError::not_found(format!("no agent `{id}` (or it is revoked)")).into_response()
        }
        Err(e) => ApiError::internal(e.0).into_response(),
    }
}

async fn revoke_agent(
    State(s): State<Shared>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    match s.registry.revoke(&id) {
        Ok(true) => Json(serde_json::json!({ "id": id, "revoked": true })).into_response(),
        Ok(false) => ApiError::not_found(format!("no agent `{id}` (or it is revoked already)"))
            .into_response(),
        Err(e) => ApiError::internal(e.0).into_response(),
    }
}

fn policy_json(p: &crate::policy::PolicyInfo, revision: &str) -> Json_ {
    serde_json::json!({
        "id": p.name,
        "name": p.name,
        "version": revision.get(..12).unwrap_or(revision),
        "rules": p.rules.iter().map(|r| serde_json::json!({
            "id": r.name,
            "name": r.name,
            "effect": r.effect,
            "actions": r.actions,
        })).collect::<Vec<_>>(),
    })
}

async fn list_policies(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    let loaded = s.policies.current();
    Json(serde_json::json!({
        "policies": loaded.policies.iter().map(|p| policy_json(p, &loaded.revision)).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn get_policy(
    State(s): State<Shared>,
    Headers(headers): Headers,
    Path(name): Path<String>,
) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    let loaded = s.policies.current();
    match loaded.policies.iter().find(|p| p.name == name) {
        Some(p) => Json(policy_json(p, &loaded.revision)).into_response(),
        None => ApiError::not_found(format!("no policy `{name}`")).into_response(),
    }
}

fn time_ms(text: &str) -> Result<i64, ApiError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| ApiError::bad_request(format!("`{text}` is not an RFC 3339 time: {e}")))
}

async fn audit(
    State(s): State<Shared>,
    Headers(headers): Headers,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) => n.min(10_000),
        Some(Err(_)) => return ApiError::bad_request("`limit` must be a number").into_response(),
    };
    let decision = match q.get("decision").map(String::as_str) {
        None | Some("") => None,
        Some(d @ ("allow" | "deny" | "approve")) => Some(d.to_owned()),
        Some(other) => {
            return ApiError::bad_request(format!(
                "`decision` `{other}`: use allow, deny or approve"
            ))
            .into_response();
        }
    };
    let from = match q.get("from").map(|t| time_ms(t)).transpose() {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let to = match q.get("to").map(|t| time_ms(t)).transpose() {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let query = crate::audit::Query {
        limit,
        decision,
        agent: q.get("agentId").or_else(|| q.get("agent")).cloned(),
        action: q.get("action").cloned(),
        from_ms: from,
        to_ms: to,
    };
    let s2 = std::sync::Arc::clone(&s);
    let rows = match tokio::task::spawn_blocking(move || s2.audit.query(&query)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return ApiError::internal(e.to_string()).into_response(),
    };
    let names: BTreeMap<String, String> = s
        .registry
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let entries: Vec<Json_> = rows
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("id".into(), e.id.clone().into());
            let ts = jiff::Timestamp::from_millisecond(e.time_ms)
                .map(|t| t.to_string())
                .unwrap_or_default();
            m.insert("timestamp".into(), ts.into());
            m.insert("action".into(), e.action.clone().into());
            m.insert("decision".into(), e.decision.clone().into());
            m.insert("agentId".into(), e.agent.clone().into());
            if let Some(n) = names.get(&e.agent) {
                m.insert("agentName".into(), n.clone().into());
            }
            let mut opt = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    m.insert(k.into(), v.clone().into());
                }
            };
            opt("resource", &e.target);
            opt("rule", &e.rule);
            opt("reason", &e.reason);
            opt("traceId", &e.trace_id);
            if let Json_::Object(ctx) = &e.context
                && !ctx.is_empty()
            {
                m.insert("meta".into(), Json_::Object(ctx.clone()));
            }
            Json_::Object(m)
        })
        .collect();
    Json(serde_json::json!({ "entries": entries })).into_response()
}

async fn audit_stats(State(s): State<Shared>, Headers(headers): Headers) -> Response {
    if let Err(e) = admin(&s, &headers) {
        return e.into_response();
    }
    let s2 = std::sync::Arc::clone(&s);
    match tokio::task::spawn_blocking(move || s2.audit.counts()).await {
        Ok(Ok(c)) => Json(serde_json::json!({
            "total": c.total, "allowed": c.allowed, "denied": c.denied, "period": "all",
        }))
        .into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allow answer is written by hand; it says what serde_json says
    /// of the same fields, byte for byte, for every string.
    #[test]
    fn objects_are_written_as_serde_json_writes_them() {
        let strings = [
            String::new(),
            "read:customer_data".to_owned(),
            "quote \" backslash \\ slash / tab \t nl \n".to_owned(),
            (0u8..0x20).map(char::from).collect::<String>(),
            "é ✓ 😀 \u{7f} \u{2028}".to_owned(),
        ];
        let mut compared = 0;
        for a in &strings {
            for b in &strings {
                let mut want = Map::new();
                want.insert("action".into(), a.clone().into());
                want.insert("allowed".into(), true.into());
                want.insert("rule".into(), b.clone().into());
                want.insert("wouldDeny".into(), false.into());
                let mut got = Object::new()
                    .string("action", a)
                    .bool("allowed", true)
                    .string("rule", b)
                    .bool("wouldDeny", false);
                got.0.push(b'}');
                assert_eq!(
                    String::from_utf8(got.0).ok(),
                    serde_json::to_string(&want).ok()
                );
                compared += 1;
            }
        }
        assert_eq!(compared, strings.len() * strings.len());
        assert_eq!(
            String::from_utf8({
                let mut empty = Object::new();
                empty.0.push(b'}');
                empty.0
            })
            .ok()
            .as_deref(),
            Some("{}")
        );
    }

    #[test]
    fn trace_ids_do_not_repeat_and_look_like_meshguards() {
        let n = 20_000;
        let ids: std::collections::HashSet<String> = (0..n).map(|_| trace_id()).collect();
        assert_eq!(ids.len(), n);
        for id in &ids {
            let hex = id.strip_prefix("trace_").unwrap_or_default();
            assert_eq!(hex.len(), 16, "{id}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
    }
}
