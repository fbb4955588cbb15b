//! The web window's answers: the page and its two assets, the status as JSON, the live
//! stream of it, and `/metrics`. Every request that is not one of these gets a status code
//! and a line of text saying what would work.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue,
    REFERRER_POLICY, RETRY_AFTER, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::{Semaphore, watch};
use tonic::body::Body;

use super::events;
use super::metrics;
use super::snapshot::StatusSource;

/// Live views (server-sent event streams) open at once; each costs a snapshot a second.
pub const MAX_LIVE_VIEWS: usize = 8;

const PAGE: &[u8] = include_bytes!("assets/index.html");
const SCRIPT: &[u8] = include_bytes!("assets/app.js");
const STYLE: &[u8] = include_bytes!("assets/style.css");

/// The page runs only its own script and style, and talks only to this bridge: whatever a
/// status field holds, it cannot load or run anything else.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const ROUTES: &str = "the bridge serves /, /api/status, /api/events and /metrics";

pub struct Endpoints {
    source: StatusSource,
    live_views: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
}

impl Endpoints {
    pub fn new(source: StatusSource, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            source,
            live_views: Arc::new(Semaphore::new(MAX_LIVE_VIEWS)),
            shutdown,
        }
    }

    /// The answer to `request`; its body is never read.
    pub async fn respond<B>(&self, request: Request<B>) -> Response<Body> {
        if request.method() != Method::GET {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not served here; only GET is", request.method()),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        match request.uri().path() {
            "/" | "/index.html" => asset(PAGE, "text/html; charset=utf-8"),
            "/app.js" => asset(SCRIPT, "text/javascript; charset=utf-8"),
            "/style.css" => asset(STYLE, "text/css; charset=utf-8"),
            "/api/status" => self.json().await,
            "/api/events" => self.live(),
            "/metrics" => self.metrics().await,
            path => text(
                StatusCode::NOT_FOUND,
                format!("nothing at {path}: {ROUTES}"),
            ),
        }
    }

    async fn json(&self) -> Response<Body> {
        let status = match self.source.snapshot().await {
            Ok(status) => status,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        match serde_json::to_vec(&status) {
            Ok(json) => bytes(StatusCode::OK, "application/json", json.into()),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    fn live(&self) -> Response<Body> {
        let Ok(permit) = self.live_views.clone().try_acquire_owned() else {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_LIVE_VIEWS} live views are open already; close one and retry"),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("10"));
            return response;
        };
        let stream = events::stream(self.source.clone(), permit, self.shutdown.clone());
        let mut response = Response::new(Body::new(stream));
        set(&mut response, CONTENT_TYPE, "text/event-stream");
        set(&mut response, CACHE_CONTROL, "no-store");
        response
    }

    async fn metrics(&self) -> Response<Body> {
        match self.source.snapshot().await {
            Ok(status) => bytes(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::render(&status).into(),
            ),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

fn set(response: &mut Response<Body>, name: HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    set(&mut response, CONTENT_TYPE, content_type);
    set(&mut response, CACHE_CONTROL, "no-store");
    set(&mut response, X_CONTENT_TYPE_OPTIONS, "nosniff");
    response
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    bytes(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n").into(),
    )
}

/// The page's files: revalidated on each load (they change with the binary).
fn asset(body: &'static [u8], content_type: &'static str) -> Response<Body> {
    let mut response = bytes(StatusCode::OK, content_type, Bytes::from_static(body));
    set(&mut response, CACHE_CONTROL, "no-cache");
    set(&mut response, CONTENT_SECURITY_POLICY, PAGE_POLICY);
    set(&mut response, REFERRER_POLICY, "no-referrer");
    response
}
