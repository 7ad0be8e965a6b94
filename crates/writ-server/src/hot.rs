//! The two calls agents make before every action, `POST /v1/check` and
//! `GET /proxy/check`, answered without going through axum's router.
//!
//! Everything else goes to the router. The router's work per request
//! (matching the path among every route, cloning and boxing each layer's
//! service, the middleware's boxed future) cost about as much as deciding;
//! for these two routes [`Service`] matches the method and the exact path
//! itself and calls the same handlers, with the same request count and
//! timeout (`guarded`) and the same body limit (`read_body`) as the
//! router's layers and extractors. Their answers are the router's, byte
//! for byte: `tests/api.rs` asks both ways.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;

use crate::Shared;

/// The server's service: the hot routes, then the router.
#[derive(Clone)]
pub struct Service {
    state: Shared,
    router: Router,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    #[must_use]
    pub fn new(state: Shared, router: Router) -> Service {
        Service { state, router }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl tower::Service<Request> for Service {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready, and so are the hot routes.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Answer {
        let path = req.uri().path();
        if req.method() == Method::POST && path == "/v1/check" {
            let s = Shared::clone(&self.state);
            return Box::pin(async move {
                let r = crate::guarded(&s, crate::native::check_request(&s, req)).await;
                Ok(with_length(r))
            });
        }
        if req.method() == Method::GET && path == "/proxy/check" {
            let s = Shared::clone(&self.state);
            return Box::pin(async move {
                let r =
                    crate::guarded(&s, async { crate::meshguard::check_request(&s, req) }).await;
                Ok(with_length(r))
            });
        }
        Box::pin(tower::Service::call(&mut self.router, req))
    }
}

/// `Content-Length` from a body of known length, as the router's routes
/// set it.
fn with_length(mut r: Response) -> Response {
    use axum::body::HttpBody as _;
    if !r.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(n) = r.body().size_hint().exact()
    {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    r
}
