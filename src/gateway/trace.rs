//! The outermost layer: gives each request an id (returned to the sender and passed upstream),
//! records its metrics, and writes one structured log line — request id, source, outcome,
//! status and latency. It never logs bodies, header values or the raw path (which may hold a
//! path token).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::HeaderValue;
use hyper::body::Incoming;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{BoxFuture, Outcome, RequestId, Response, RoutedTo};
use crate::metrics::Metrics;

#[derive(Clone)]
pub(super) struct TraceLayer {
    metrics: Arc<Metrics>,
}

impl TraceLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        TraceLayer { metrics }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Trace<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// A new request id: 16 hex digits.
fn new_request_id() -> HeaderValue {
    let text = format!("{:016x}", fastrand::u64(..));
    HeaderValue::from_str(&text).expect("hex is a valid header value")
}

impl<S> Service<http::Request<Incoming>> for Trace<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Incoming>) -> BoxFuture {
        let started = Instant::now();
        let method = req.method().clone();
        let id = new_request_id();
        req.extensions_mut().insert(RequestId(id.clone()));
        // Every event logged while this request is handled (the spawned forward included, which
        // carries this span along) names the request.
        let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
        let response = span.in_scope(|| self.inner.call(req));
        let metrics = self.metrics.clone();
        let handled = async move {
            let mut response = response.await?;
            let elapsed = started.elapsed();
            let source = response.extensions().get::<RoutedTo>().map(|r| &r.0.name);
            let outcome = response
                .extensions()
                .get::<Outcome>()
                .map_or("unknown", Outcome::as_str);
            metrics.request(source, outcome, elapsed);
            tracing::info!(
                target: "hookgate::request",
                request_id = id.to_str().unwrap_or_default(),
                source = source.map_or("-", |s| &**s),
                %outcome,
                status = response.status().as_u16(),
                %method,
                latency_ms = format_args!("{:.2}", elapsed.as_secs_f64() * 1000.0),
                "request"
            );
            response.headers_mut().insert("x-hookgate-request-id", id);
            Ok(response)
        };
        Box::pin(handled.instrument(span))
    }
}
