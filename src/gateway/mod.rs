//! The inbound gateway: the tower stack every delivery passes through, built in one place
//! ([`Gateway::stack`]), served by [`serve`] until a shutdown signal. Each concern is one layer in its own module; a rejection is a `Response`
//! (never a service error), so every layer's error type is `Infallible`.

mod admit;
mod body;
mod dedup;
mod detach;
mod facts;
mod fields;
mod finish;
mod forward;
mod freshness;
mod handshake;
mod held;
mod keyed;
mod limit;
mod outstanding;
mod queue;
mod rejection;
mod route;
mod shadow;
mod shed;
mod trace;
mod upstream;
mod verify;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::config::DedupBackend;
use crate::dedup::{DedupStore, MemoryStore, RedisStore, Store};
use crate::metrics::Metrics;
use crate::server::Limits;
use crate::source::Source;

pub use queue::queue_targets;
pub use rejection::Rejection;
pub use route::Routes;

pub use crate::server::{BoxError, PeerAddr};
/// The body of every response the gateway sends.
pub type Body = BoxBody<Bytes, BoxError>;
pub type Response = http::Response<Body>;
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// A complete body from bytes.
pub fn full_body(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// What happened to a request; carried in the response's extensions ([`Settled`]) for the
/// request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed every check and was sent to the upstream (whatever it answered).
    Forwarded,
    /// A repeat of a delivered event: answered 2xx, not forwarded.
    Duplicate,
    /// Stored durably for the delivery engine and answered `202` (a queued source).
    Queued,
    /// Refused by a layer; the code is the JSON error code.
    Rejected(&'static str),
    /// A handshake the gateway answered itself (never forwarded).
    Handshake,
}

impl Outcome {
    /// Records this outcome in a response's extensions.
    pub fn mark(self, extensions: &mut http::Extensions) {
        Settled::entry(extensions).outcome = Some(self);
    }

    /// The outcome recorded in a response's extensions.
    pub fn of(extensions: &http::Extensions) -> Option<Outcome> {
        extensions.get::<Settled>().and_then(|s| s.outcome)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Duplicate => "duplicate",
            Outcome::Queued => "queued",
            Outcome::Rejected(code) => code,
            Outcome::Handshake => "handshake",
        }
    }
}

/// The delivery's event id, for the upstream: in `X-Hookgate-Event-Id` when the signature
/// covers it, in `X-Hookgate-Unsigned-Event-Id` when it does not (anyone replaying a captured
/// body could have rewritten it).
#[derive(Debug, Clone)]
pub struct EventId {
    pub id: String,
    pub signed: bool,
}

/// The source the route layer chose for `req`, borrowed where it was left: every serving
/// thread shares the source's reference count, so a layer that can read it in place takes none.
fn routed<B>(req: &http::Request<B>) -> &Arc<Source> {
    req.extensions()
        .get::<Arc<Source>>()
        .expect("the route layer runs first")
}

/// The source a response belongs to (for the request log), recorded by the route layer.
#[derive(Debug, Clone)]
pub struct RoutedTo(pub Arc<Source>);

/// What the request log reads from a response: how the request ended and the source it was
/// routed to, in one response extension (each extension is a heap allocation).
#[derive(Debug, Clone, Default)]
pub struct Settled {
    pub outcome: Option<Outcome>,
    pub source: Option<Arc<Source>>,
}

impl Settled {
    /// The response's record, created on first use.
    fn entry(extensions: &mut http::Extensions) -> &mut Settled {
        extensions.get_or_insert_default::<Settled>()
    }
}

/// hookgate's id for one request: in the log line, the response and the upstream request.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id of the request, for a log line: every warning logged while a request is handled
    /// names it (there is no per-request span at the default level; see `trace`).
    pub fn of<B>(req: &http::Request<B>) -> &str {
        Self::log_str(facts::Facts::of(req).and_then(|f| f.request_id.as_ref()))
    }

    /// An id for a log line, `-` when there is none (a stack driven without the trace layer).
    pub fn log_str(id: Option<&RequestId>) -> &str {
        id.and_then(|id| id.0.to_str().ok()).unwrap_or("-")
    }
}

/// Everything the stack needs, built from a validated [`Config`].
#[derive(Clone)]
pub struct Gateway {
    /// Swapped whole on reload; each request keeps the snapshot it was routed with.
    routes: Arc<ArcSwap<Routes>>,
    store: Store,
    client: upstream::UpstreamClient,
    metrics: Arc<Metrics>,
    limits: Limits,
    runtime: crate::server::Runtime,
    shed: shed::ShedLayer,
    bodies: body::BodyBudget,
    outstanding: outstanding::Outstanding,
    /// The delivery engine of queued sources, once started.
    queue: queue::QueueHandle,
    /// Wall time for freshness, uptime for dedup expiries; injectable for tests.
    clock: SharedClock,
}

impl Gateway {
    pub fn new(config: &Config) -> Self {
        Self::with_metrics(config, Arc::new(Metrics::default()))
    }

    pub fn with_metrics(config: &Config, metrics: Arc<Metrics>) -> Self {
        Self::with_clock(config, metrics, SystemClock::shared())
    }

    /// A gateway reading time off `clock` (freshness and the in-memory dedup store's expiries),
    /// so tests can run it at any uptime or moment without waiting.
    pub fn with_clock(config: &Config, metrics: Arc<Metrics>, clock: SharedClock) -> Self {
        Gateway {
            routes: Arc::new(ArcSwap::from_pointee(Routes::new(&config.sources))),
            store: match &config.dedup_backend {
                DedupBackend::Memory { capacity } => {
                    Store::Memory(MemoryStore::with_clock(*capacity, clock.clone()))
                }
                DedupBackend::Redis(settings) => Store::Redis(
                    RedisStore::new(settings.clone())
                        .expect("the URL was validated with the configuration"),
                ),
            },
            client: match config.runtime {
                crate::server::Runtime::Shared => {
                    upstream::UpstreamClient::new(config.upstream_ca.as_deref())
                }
                crate::server::Runtime::PerCore => {
                    upstream::UpstreamClient::new(config.upstream_ca.as_deref()).per_thread()
                }
            },
            metrics,
            limits: config.limits,
            runtime: config.runtime,
            shed: shed::ShedLayer::new(config.limits.max_concurrent_requests),
            bodies: body::BodyBudget::new(config.limits.max_pending_body_bytes),
            outstanding: outstanding::Outstanding::default(),
            queue: queue::QueueHandle::default(),
            clock,
        }
    }

    /// The dedup store (shared by every clone of the stack).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Releases the dedup claims of requests that have not finished (at shutdown, after the
    /// grace period), so their senders' retries go through. Returns how many were released.
    pub async fn release_unfinished(&self) -> usize {
        let claims = self.outstanding.take_all();
        for (key, token) in &claims {
            if let Err(error) = self.store.release(*key, *token).await {
                tracing::warn!(%error, "could not release a claim at shutdown; it will lapse");
            }
        }
        claims.len()
    }

    /// Hands queued sources the delivery engine (every clone of the stack sees it). Until
    /// then, a queued source answers `503`.
    pub fn set_engine(&self, engine: crate::delivery::Engine) {
        self.queue.set(engine);
    }

    /// The listener limits from the configuration.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Bytes of unverified bodies being received now, and their budget.
    pub fn pending_bodies(&self) -> (usize, usize) {
        (self.bodies.in_use(), self.bodies.total())
    }

    /// The sources currently served.
    pub fn sources(&self) -> Vec<Arc<Source>> {
        self.routes.load().sources()
    }

    /// Serves `config`'s sources from now on. Requests already routed finish on the sources
    /// they were routed to; the dedup store is untouched (keys are scoped by source name).
    pub fn swap_sources(&self, config: &Config) {
        self.routes.store(Arc::new(Routes::new(&config.sources)));
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
            .layer(trace::TraceLayer::new(self.metrics.clone()))
            // Shed load before any work is done: a full gateway answers 503 at once rather
            // than queueing (the permit count is shared by every connection).
            .layer(self.shed.clone())
            // Path → source before anything is read: unknown paths cost nothing and the
            // gateway can never be used as an open proxy.
            .layer(route::RouteLayer::new(self.routes.clone()))
            // Meta's and Dropbox's GET challenges, answered before admission (the provider
            // signs nothing and sends no signature header); other GETs never get here.
            .layer(handshake::GetLayer::new(self.metrics.clone()))
            // Everything the head can tell, before a byte of body is read: address allowlist,
            // static token, signature header present. Unauthenticated uploads cost nothing.
            .layer(admit::AdmitLayer::new(self.metrics.clone()))
            // Bounded body read (413 while reading) within the shared budget for unverified
            // bodies (503 past it), so verification sees the exact bytes.
            .layer(body::CollectLayer::new(
                self.bodies.clone(),
                self.metrics.clone(),
            ))
            // Authenticity first: nothing below trusts an unverified byte.
            .layer(verify::VerifyLayer::new(
                self.metrics.clone(),
                self.clock.clone(),
            ))
            // Freshness after verification, so a signed timestamp is a trusted one.
            .layer(freshness::FreshnessLayer::new(
                self.clock.clone(),
                self.metrics.clone(),
            ))
            // Signed handshakes (Slack, Zoom, Twitch, Discord) are answered here, verified and
            // fresh, and never claim a dedup key or reach the upstream.
            .layer(handshake::PostLayer::new(self.metrics.clone()))
            // Dedup last before the upstream: only authentic, fresh deliveries claim keys.
            .layer(dedup::DedupLayer::new(
                self.store.clone(),
                self.outstanding.clone(),
                self.metrics.clone(),
            ))
            // The branch point of the delivery mode: a queued source's delivery is stored
            // and answered 202; a sync source's is forwarded and the upstream's answer passed back.
            .service(queue::QueueOrForward::new(
                forward::Forward::new(self.client.clone(), self.metrics.clone()),
                self.queue.clone(),
            ))
    }
}

/// The verify → freshness → dedup-key decision for one delivery, without any I/O: what the
/// stack decides before it claims keys and forwards. Used by the fuzz targets and tests.
pub fn decide(
    source: &Source,
    req: &http::Request<Bytes>,
    now_ms: i64,
) -> Result<Vec<crate::dedup::DedupKey>, crate::gateway::Rejection> {
    verify::authenticate(source, req, now_ms)?;
    let fields = fields::BodyFields::read(source, req.body());
    freshness::check(source, req, &fields, now_ms)?;
    match &source.dedup {
        Some(policy) => {
            dedup::keys_for(source, policy, req, &fields).map(|(keys, _)| keys.to_vec())
        }
        None => Ok(Vec::new()),
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting and lets
/// open requests finish (up to a grace period).
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_tls(listener, None, gateway, shutdown).await
}

/// [`serve`], terminating TLS when `tls` is given. After the grace period, the dedup claims of
/// requests that did not finish are released so their senders' retries go through.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let options = crate::server::Listener {
        tls,
        limits: gateway.limits(),
        metrics: Some(gateway.metrics.clone()),
        threads: gateway.runtime.threads(),
    };
    crate::server::serve(listener, options, gateway.stack(), shutdown).await?;
    let released = gateway.release_unfinished().await;
    if released > 0 {
        tracing::warn!(
            released,
            "released the dedup claims of requests that did not finish"
        );
    }
    Ok(())
}
