//! The status listener: gRPC (HTTP/2) and the web window (HTTP/1.1) on one port, within
//! fixed bounds, so that nothing a client sends makes the bridge hold memory without limit:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once (more wait in the kernel's backlog);
//! - a connection's first bytes within [`HEAD_TIMEOUT`], and each HTTP/1.1 request head
//!   (request line and headers) at most [`MAX_HEAD_BYTES`], read within [`HEAD_TIMEOUT`]
//!   (hyper answers a larger head with 431 and closes a slow one);
//! - at most [`MAX_STREAMS`] HTTP/2 streams per connection, with headers of at most
//!   [`MAX_HEAD_BYTES`];
//! - request bodies are never read by the web endpoints, and the gRPC status service decodes
//!   messages of at most [`MAX_GRPC_REQUEST`] bytes (its one request is empty).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use http::header::CONTENT_TYPE;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::service::Routes;
use tower_service::Service;

use super::endpoints::Endpoints;
use super::snapshot::StatusSource;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Largest request head (HTTP/1.1) or header list (HTTP/2) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A request head must arrive within this.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent HTTP/2 streams per connection.
pub const MAX_STREAMS: u32 = 16;
/// Largest gRPC request message decoded (`StatusRequest` is empty).
pub const MAX_GRPC_REQUEST: usize = 1024;
/// Longest wait at shutdown for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// A failed accept (e.g. out of file descriptors) is retried after this.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Serves `grpc` and the web window on `addr` until `shutdown` flips; returns the bound
/// address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    grpc: Routes,
    source: StatusSource,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ServeError> {
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let endpoints = Arc::new(Endpoints::new(source, shutdown.clone()));
    let task = tokio::spawn(accept(listener, grpc.prepare(), endpoints, shutdown));
    Ok((bound, task))
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    builder
}

async fn accept(
    listener: TcpListener,
    grpc: Routes,
    endpoints: Arc<Endpoints>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = builder();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = async {
                let permit = connections.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
            _ = shutdown.changed() => break,
        };
        let (permit, stream) = match accepted {
            (Ok(permit), Ok((stream, _))) => (permit, stream),
            (_, Err(e)) => {
                tracing::warn!("the status listener cannot accept a connection: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            // The semaphore is never closed.
            (Err(_), _) => break,
        };
        let _ = stream.set_nodelay(true);
        let grpc = grpc.clone();
        let endpoints = endpoints.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let grpc = grpc.clone();
            let endpoints = endpoints.clone();
            async move {
                let response = match is_grpc(&request) {
                    true => call_grpc(grpc, request).await,
                    false => endpoints.respond(request).await,
                };
                Ok::<_, Infallible>(response)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            // hyper waits for a connection's first bytes (to tell HTTP/1.1 from HTTP/2)
            // without a deadline: a client that connects and says nothing would keep its
            // place for ever.
            match tokio::time::timeout(HEAD_TIMEOUT, stream.peek(&mut [0])).await {
                Ok(Ok(1)) => {}
                // Silent, gone, or broken.
                _ => return,
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!("a status connection ended: {e}");
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("status connections still open at shutdown were dropped");
    }
}

/// gRPC requests say so in their content type (`application/grpc`, `application/grpc+proto`).
fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"))
}

async fn call_grpc(mut grpc: Routes, request: Request<Incoming>) -> http::Response<Body> {
    let Ok(()) = std::future::poll_fn(|cx| {
        <Routes as Service<Request<Incoming>>>::poll_ready(&mut grpc, cx)
    })
    .await;
    let Ok(response) = grpc.call(request).await;
    response
}
