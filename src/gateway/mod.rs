//! The inbound gateway: the tower stack every delivery passes through, built in one place
//! ([`Gateway::stack`]), and the accept loop ([`serve`]) that runs it on a listener until a
//! shutdown signal. Each concern is one layer in its own module; a rejection is a `Response`
//! (never a service error), so every layer's error type is `Infallible`.

mod body;
mod dedup;
mod forward;
mod freshness;
mod route;
mod trace;
mod verify;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};

use crate::config::Config;
use crate::dedup::MemoryStore;
use crate::source::Source;

pub use route::Routes;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response the gateway sends.
pub type Body = BoxBody<Bytes, BoxError>;
pub type Response = http::Response<Body>;
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// A complete body from bytes.
pub fn full_body(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// What happened to a request; carried in the response's extensions for the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed every check and was sent to the upstream (whatever it answered).
    Forwarded,
    /// A repeat of a delivered event: answered 2xx, not forwarded.
    Duplicate,
    /// Refused by a layer; the code is the JSON error code.
    Rejected(&'static str),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(code) => code,
        }
    }
}

/// The TCP peer of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The verified event id, for the upstream's `X-Hookgate-Event-Id` header.
#[derive(Debug, Clone)]
pub struct EventId(pub String);

/// The source a response belongs to (for the request log).
#[derive(Debug, Clone)]
pub struct RoutedTo(pub Arc<Source>);

/// Header-level protocol limits of the public listener.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BUF: usize = 64 * 1024;
/// How long in-flight requests may take to finish after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Everything the stack needs, built from a validated [`Config`].
#[derive(Clone)]
pub struct Gateway {
    routes: Arc<Routes>,
    store: MemoryStore,
    client: forward::UpstreamClient,
}

impl Gateway {
    pub fn new(config: &Config) -> Self {
        Gateway {
            routes: Arc::new(Routes::new(&config.sources)),
            store: MemoryStore::new(config.dedup_capacity),
            client: forward::UpstreamClient::new(),
        }
    }

    /// The dedup store (shared by every clone of the stack).
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The request's way through the gateway, outermost first.
    pub fn stack(
        &self,
    ) -> impl Service<
        http::Request<Incoming>,
        Response = Response,
        Error = Infallible,
        Future = impl Future<Output = Result<Response, Infallible>> + Send,
    > + Clone
           + Send
           + 'static {
        ServiceBuilder::new()
            // One log line per request with its outcome and latency; sees every answer,
            // including the rejections of the layers below.
            .layer(trace::TraceLayer)
            // Path → source before anything is read: unknown paths cost nothing and the
            // gateway can never be used as an open proxy.
            .layer(route::RouteLayer::new(self.routes.clone()))
            // Bounded body read (413 while reading), so verification sees the exact bytes.
            .layer(body::CollectLayer)
            // Authenticity first: nothing below trusts an unverified byte.
            .layer(verify::VerifyLayer)
            // Freshness after verification, so a signed timestamp is a trusted one.
            .layer(freshness::FreshnessLayer)
            // Dedup last before the upstream: only authentic, fresh deliveries claim keys.
            .layer(dedup::DedupLayer::new(self.store.clone()))
            .service(forward::Forward::new(self.client.clone()))
    }
}

/// Adds the connection's peer address to each request.
#[derive(Clone)]
struct WithPeer<S> {
    peer: SocketAddr,
    inner: S,
}

impl<S> Service<http::Request<Incoming>> for WithPeer<S>
where
    S: Service<http::Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(PeerAddr(self.peer));
        self.inner.call(req)
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting and lets
/// open requests finish (up to a grace period).
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let stack = gateway.stack();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BUF as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of descriptors and similar: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(WithPeer { peer, inner: stack.clone() });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing open requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("grace period over; closing remaining connections");
        }
    }
    Ok(())
}
