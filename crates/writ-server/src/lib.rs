//! `writ serve`: a self-hosted decision gateway.
//!
//! One process answers policy decisions over HTTP with the same runtime
//! and bundle agents embed, in two dialects:
//!
//! - the native API (`POST /v1/check`, `/v1/check/batch`, `GET
//!   /v1/policy`, `/health`, `/metrics`): the request and decision JSON
//!   of `writ eval`;
//! - MeshGuard's wire protocol (`GET /proxy/check`, `ALL /proxy/{path}`,
//!   the admin endpoints), so that MeshGuard's own clients work by
//!   changing only `MESHGUARD_GATEWAY_URL`.
//!
//! Every decision goes to the audit log. Policies reload atomically on
//! SIGHUP and on file change, keeping the last good one when a reload
//! fails. See `docs/server.md`.

pub mod audit;
pub mod config;
pub mod error;
mod explain;
pub mod hot;
pub mod identity;
mod meshguard;
pub mod metrics;
mod native;
pub mod policy;
pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::Router;
use axum::http::HeaderMap;
use sha2::Digest as _;
use writ_runtime::{Decision, InProcess, LimitStore, OnStoreFailure, Request, Tier};

pub use config::{Config, Flags, Mode};
use error::ApiError;
use identity::Verifier;
use policy::{Loaded, Policies, Source};
use registry::Registry;

/// Why the server could not start.
#[derive(Debug)]
pub struct ServeError(pub String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// Everything a request handler reaches.
#[derive(Debug)]
pub struct State {
    pub config: Config,
    pub policies: Arc<Policies>,
    pub registry: Registry,
    pub verifier: Verifier,
    pub audit: audit::Audit,
    pub metrics: metrics::Metrics,
    pub http: reqwest::Client,
    pub started: Instant,
}

/// The handlers' shared state.
pub type Shared = Arc<State>;

/// Who asks, once the token is checked.
#[derive(Clone, Debug, Default)]
pub struct Principal {
    /// The agent id decisions are made for (and limits counted by).
    pub agent: String,
    pub name: Option<String>,
    pub tier: Option<Tier>,
    pub tags: Vec<String>,
    /// An opaque token, passed to the runtime for `token_prefix` policies.
    pub token: Option<String>,
}

impl State {
    /// Sets the server up: the limit store, the policy, the registry, the
    /// token verifier and the audit log.
    ///
    /// # Errors
    /// Anything that keeps the server from serving correctly.
    pub fn new(config: Config) -> Result<State, ServeError> {
        let on_failure = match config.on_store_failure {
            config::StoreFailure::Deny => OnStoreFailure::Deny,
            config::StoreFailure::Allow => OnStoreFailure::Allow,
        };
        let store: Arc<dyn LimitStore> = match &config.limits {
            Some(url) => Arc::new(
                writ_runtime::RedisStore::open(url)
                    .map_err(|e| ServeError(format!("--limits {url}: {e}")))?,
            ),
            None => Arc::new(InProcess::new()),
        };
        let store_failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let store: Arc<dyn LimitStore> = Arc::new(metrics::CountingStore {
            inner: store,
            failures: Arc::clone(&store_failures),
        });
        let key = match &config.verify {
            Some(path) => {
                Some(writ_compiler::keys::read(path).map_err(|e| ServeError(e.to_string()))?)
            }
            None => None,
        };
        let source = match (&config.bundle, &config.bundle_url) {
            (Some(path), _) => Source::Bundle {
                path: path.clone(),
                key,
            },
            (None, Some(url)) => Source::Fetched {
                url: url.clone(),
                key,
            },
            (None, None) => Source::Files(config.policies.clone()),
        };
        let fetched = match &source {
            Source::Fetched { url, .. } => Some(fetch_blocking(url)?),
            _ => None,
        };
        let policies = Policies::open(source, store, on_failure, fetched)
            .map_err(|e| ServeError(e.to_string()))?;
        let registry = Registry::open(&config.db_path).map_err(|e| ServeError(e.to_string()))?;
        let verifier = Verifier::new(
            config.jwt_secret.as_deref(),
            &config.jwt_public_keys,
            config.jwt_issuer.clone(),
        )
        .map_err(|e| ServeError(e.to_string()))?;
        let audit =
            audit::Audit::open(&config.audit_path, config.audit_nice).map_err(ServeError)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ServeError(format!("HTTP client: {e}")))?;
        Ok(State {
            config,
            policies: Arc::new(policies),
            registry,
            verifier,
            audit,
            metrics: metrics::Metrics::with_store_failures(store_failures),
            http,
            started: Instant::now(),
        })
    }

    /// Checks the request's token. `Ok(None)`: no token, and none needed.
    ///
    /// # Errors
    /// 401 for a missing (when needed), malformed, bad, expired or revoked
    /// token.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        required: bool,
    ) -> Result<Option<Principal>, ApiError> {
        let result = self.authenticate_inner(headers, required || self.config.authenticates());
        if result.is_err() {
            self.metrics.auth_failures.fetch_add(1, Relaxed);
        }
        result
    }

    fn authenticate_inner(
        &self,
        headers: &HeaderMap,
        required: bool,
    ) -> Result<Option<Principal>, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return if required {
                Err(ApiError::unauthorized(
                    "a bearer token is required (Authorization: Bearer <token>)",
                ))
            } else {
                Ok(None)
            };
        };
        let token = value
            .to_str()
            .ok()
            .and_then(identity::bearer)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        if identity::looks_like_jwt(token) && self.verifier.is_enabled() {
            let claims = self
                .verifier
                .verify(token)
                .map_err(|e| ApiError::unauthorized(e.0))?;
            let registered = self
                .registry
                .get(&claims.sub)
                .map_err(|e| ApiError::internal(e.0))?;
            return match registered {
                Some(a) if a.revoked => Err(ApiError::unauthorized(format!(
                    "agent `{}` is revoked",
                    a.id
                ))),
                // The registry's tier and tags win over the token's: an
                // admin may have changed them since it was issued.
                Some(a) => Ok(Some(Principal {
                    tier: Tier::parse(&a.tier),
                    agent: a.id,
                    name: Some(a.name),
                    tags: a.tags,
                    token: None,
                })),
                None => Ok(Some(Principal {
                    tier: claims
                        .tier
                        .as_deref()
                        .or(claims.trust.as_deref())
                        .and_then(registry::tier_name)
                        .and_then(Tier::parse),
                    agent: claims.sub.clone(),
                    name: claims.name.clone(),
                    tags: claims.tags.clone(),
                    token: None,
                })),
            };
        }
        let digest = sha256_hex(token);
        if let Some(a) = self
            .registry
            .by_token(&digest)
            .map_err(|e| ApiError::internal(e.0))?
        {
            if a.revoked {
                return Err(ApiError::unauthorized(format!(
                    "agent `{}` is revoked",
                    a.id
                )));
            }
            return Ok(Some(Principal {
                tier: Tier::parse(&a.tier),
                agent: a.id,
                name: Some(a.name),
                tags: a.tags,
                token: None,
            }));
        }
        if self
            .policies
            .current()
            .token_prefixes
            .iter()
            .any(|p| token.starts_with(p.as_str()))
        {
            // A `token_prefix` token: the runtime maps it to its role
            // profile (and denies one that matches none). Limits count
            // per token.
            return Ok(Some(Principal {
                agent: format!("token-{}", digest.get(..16).unwrap_or(&digest)),
                token: Some(token.to_owned()),
                ..Principal::default()
            }));
        }
        Err(ApiError::unauthorized(if identity::looks_like_jwt(token) {
            "JWTs are not accepted: no JWT_SECRET or public key is configured"
        } else {
            "unknown token"
        }))
    }

    /// Decides `req` on `loaded`, records it and counts it; `f` builds
    /// the answer from the decision and its reason (`reason_text`, made
    /// once for the record and the answer).
    pub fn decide<R>(
        &self,
        loaded: &Loaded,
        req: &Request,
        f: impl FnOnce(&Decision<'_>, Option<&str>) -> R,
    ) -> R {
        let t = Instant::now();
        let d = if self.config.limits.is_some() {
            blocking(|| loaded.runtime.check(req))
        } else {
            loaded.runtime.check(req)
        };
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let reason = d.reason_text(req);
        self.audit
            .record(req, &d, &loaded.revision_arc, reason.as_deref());
        let outcome = if d.retry_after_s.is_some() {
            "rate_limited"
        } else {
            d.effect.as_str()
        };
        self.metrics.decision(outcome, d.policy, d.rule, ns);
        f(&d, reason.as_deref())
    }
}

/// The request's headers, taken out of it rather than copied (axum's
/// `HeaderMap` extractor clones them, an allocation per header on every
/// request). Handlers take them before the body, which needs none of them.
#[derive(Debug)]
pub struct Headers(pub HeaderMap);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Headers {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Headers, Self::Rejection> {
        Ok(Headers(std::mem::take(&mut parts.headers)))
    }
}

/// Runs `f`, which may wait on the network (a decision counting a limit
/// in Redis waits up to the store's timeout), without holding up other
/// requests: on a multi-threaded runtime (the server's) the worker hands
/// its other tasks to another thread first. Otherwise a Redis that stops
/// answering would take every worker, and `/health` and decisions without
/// limits would wait with them.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// SHA-256 of `text`, hex.
#[must_use]
pub fn sha256_hex(text: &str) -> String {
    policy::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// The router: every endpoint of both APIs.
///
/// `POST /v1/check` and `GET /proxy/check` do not reach it in `writ
/// serve`: [`hot`] answers them first. A layer added here must be added
/// to them there too (today: `guarded`, and `read_body`'s limit).
/// `DefaultBodyLimit` stays as a backstop for any extractor that reads a
/// body without [`Body`].
pub fn router(state: Shared) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .merge(native::routes())
        .merge(meshguard::routes())
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .with_state(state)
}

/// The service `writ serve` answers with: the hot routes ([`hot`]),
/// then [`router`].
#[must_use]
pub fn service(state: Shared) -> hot::Service {
    let router = router(Arc::clone(&state));
    hot::Service::new(state, router)
}

async fn count_requests(
    axum::extract::State(state): axum::extract::State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    guarded(&state, next.run(req)).await
}

/// What every request goes through: counted, and answered 504 when
/// `answer` takes longer than `--request-timeout`.
///
/// The timer is armed only when the answer is not ready at its first
/// poll (a `GET /proxy/check` always is; a body still on its way is
/// not), which spares most answers putting an entry in tokio's timer
/// wheel and taking it out again. The deadline still counts from here.
pub(crate) async fn guarded(
    state: &State,
    answer: impl Future<Output = axum::response::Response>,
) -> axum::response::Response {
    state.metrics.requests.fetch_add(1, Relaxed);
    let timeout = state.config.request_timeout;
    // A timeout too long to add to the clock is no timeout (as tokio's
    // own `timeout` takes it).
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let mut answer = std::pin::pin!(answer);
    let first = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match answer.as_mut().poll(cx) {
            std::task::Poll::Ready(r) => Some(r),
            std::task::Poll::Pending => None,
        })
    })
    .await;
    if let Some(r) = first {
        return r;
    }
    let Some(deadline) = deadline else {
        return answer.await;
    };
    match tokio::time::timeout_at(deadline, answer).await {
        Ok(r) => r,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("no answer within {} s", timeout.as_secs()),
        )),
    }
}

/// A request's body, read whole up to `--max-body-bytes`.
///
/// # Errors
/// 413 `body_too_large` past the limit (before reading anything when
/// `Content-Length` says so); 400 when the body cannot be read.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    let too_large = || {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {limit} bytes (--max-body-bytes)"),
        )
    };
    // A `Content-Length` past the limit is refused before anything is
    // read; a body without one is cut off where it passes the limit.
    if usize::try_from(axum::body::HttpBody::size_hint(&body).lower()).map_or(true, |n| n > limit) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

/// A request body, read by [`read_body`] (axum's own extractors answer
/// a body over the limit in plain text; this one in the API's JSON).
#[derive(Debug)]
pub struct Body(pub axum::body::Bytes);

impl axum::extract::FromRequest<Shared> for Body {
    type Rejection = axum::response::Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &Shared,
    ) -> Result<Body, Self::Rejection> {
        read_body(req.into_body(), state.config.max_body_bytes)
            .await
            .map(Body)
            .map_err(axum::response::IntoResponse::into_response)
    }
}

/// Fetches a bundle URL (at start). On a multi-thread runtime the worker
/// blocks in place (its other tasks move on); a current-thread runtime
/// cannot, so the fetch runs on a thread and runtime of its own.
fn fetch_blocking(url: &str) -> Result<Vec<u8>, ServeError> {
    let fetch = async {
        let r = reqwest::get(url)
            .await
            .map_err(|e| ServeError(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(ServeError(format!("{url}: HTTP {}", r.status())));
        }
        r.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ServeError(format!("{url}: {e}")))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fetch))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| ServeError(format!("{url}: {e}")))?
                        .block_on(fetch)
                })
                .join()
                .unwrap_or_else(|_| Err(ServeError(format!("{url}: the fetch failed"))))
        }),
    }
}

/// The runtime `writ serve` runs on: tokio's multi-thread runtime with
/// one worker per core the process may run on, or `threads` workers; with
/// `threads` 1, a current-thread runtime (everything on one thread, no
/// work stealing).
///
/// # Errors
/// `threads` 0, or a runtime that cannot start.
pub fn runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Some(0) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the server needs at least one thread",
            ));
        }
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(usize::from(n));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

/// Serves until SIGTERM or Ctrl-C; reloads on SIGHUP and on change.
/// `ready` is told the bound address once the server listens.
///
/// # Errors
/// When the server cannot start.
pub async fn run(config: Config, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let bind = config.bind;
    let state: Shared = Arc::new(State::new(config)?);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| ServeError(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError(format!("{bind}: {e}")))?;
    let tls = match (&state.config.tls_cert, &state.config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::config(cert, key)?),
        _ => None,
    };
    let _watcher = reload::start(&state);
    check_audit_nice(state.config.audit_nice);
    start_pruning(&state);
    ready(addr);
    let app = tower::make::Shared::new(service(Arc::clone(&state)));
    match tls {
        Some(config) => axum::serve(tls::Listener::new(listener, config)?, app)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| ServeError(format!("server: {e}")))?,
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| ServeError(format!("server: {e}")))?,
    }
    state
        .audit
        .flush()
        .map_err(|e| ServeError(format!("audit log: {e}")))
}

/// Says at start when the audit log's threads cannot lower their
/// priority (a system call filter, say): they then run at the server's,
/// which is safe but loses what `--audit-nice` is for. A throwaway thread
/// tries what the log's threads do.
fn check_audit_nice(nice: u8) {
    if nice == 0 || !cfg!(target_os = "linux") {
        return;
    }
    let lowered = std::thread::Builder::new()
        .name("writ-nice-probe".to_owned())
        .spawn(move || writ_audit::lower_this_thread(nice))
        .ok()
        .and_then(|t| t.join().ok())
        .flatten();
    if lowered.is_none() {
        eprintln!(
            "writ serve: the audit log's threads cannot lower their priority (--audit-nice {nice}); they run at the server's"
        );
    }
}

/// Prunes the audit log at start and every [`audit::PRUNE_EVERY`], when
/// `AUDIT_RETENTION_DAYS` is not 0 (with a JSON Lines log, says at start
/// that it is kept whole).
fn start_pruning(state: &Shared) {
    let days = state.config.audit_retention_days;
    if days == 0 {
        return;
    }
    if !state.audit.is_sqlite() {
        eprintln!(
            "writ serve: AUDIT_RETENTION_DAYS={days} applies to SQLite audit logs; {} is JSON Lines and is kept whole (rotate it, or set AUDIT_RETENTION_DAYS=0)",
            state.config.audit_path.display()
        );
        return;
    }
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(audit::PRUNE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let s = Arc::clone(&state);
            // A thread of its own, at the audit writer's priority (a
            // nice value, once raised, cannot be lowered again without
            // privilege: not on one of tokio's pooled threads). The
            // process may exit during a prune: SQLite rolls its open
            // transaction back, and the log stays whole.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("writ-audit-prune".to_owned())
                .spawn(move || {
                    let _ = writ_audit::lower_this_thread(s.config.audit_nice);
                    let _ = tx.send(s.audit.prune(days, writ_audit::now_ms()));
                });
            let pruned = match spawned {
                Ok(_) => rx.await.unwrap_or_else(|_| {
                    state.audit.prune_failed();
                    Err("the pruning thread stopped".to_owned())
                }),
                Err(e) => {
                    state.audit.prune_failed();
                    Err(format!("cannot start the pruning thread: {e}"))
                }
            };
            match pruned {
                Ok(Some(r)) if r.rows > 0 => eprintln!(
                    "writ serve: audit log: pruned {} records written over {days} day{} ago; it now starts after seq {}",
                    r.records,
                    if days == 1 { "" } else { "s" },
                    r.anchor.map_or(0, |a| a.through_seq)
                ),
                Err(e) => eprintln!("writ serve: audit log: cannot prune: {e}"),
                _ => {}
            }
        }
    });
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

mod reload;
pub mod tls;

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn threads_choose_the_runtime() {
        let flavor = |t| super::runtime(t).map(|r| r.handle().runtime_flavor());
        assert_eq!(flavor(Some(1)).ok(), Some(RuntimeFlavor::CurrentThread));
        assert_eq!(flavor(Some(2)).ok(), Some(RuntimeFlavor::MultiThread));
        assert_eq!(flavor(None).ok(), Some(RuntimeFlavor::MultiThread));
        let workers = super::runtime(Some(3)).map(|r| r.metrics().num_workers());
        assert_eq!(workers.ok(), Some(3));
        assert!(super::runtime(Some(0)).is_err());
    }
}
