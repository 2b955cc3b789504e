//! The outermost layer: gives each request an id (returned to the sender and passed upstream),
//! records its metrics, and writes one structured log line — request id, source, outcome,
//! status and latency. Warnings logged while the request is handled carry the same
//! `request_id` field. It never logs bodies, header values or the raw path (which may hold a
//! path token).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method};
use hyper::body::Incoming;
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};

use super::facts::Facts;
use super::finish::{OnResponse, Then};
use super::held::PerCopy;
use super::{RequestId, Response, Settled};
use crate::metrics::Metrics;
use crate::telemetry::RequestLine;

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
            metrics: PerCopy::new(self.metrics.clone()),
        }
    }
}

#[derive(Clone)]
pub(super) struct Trace<S> {
    inner: S,
    /// Handed to each request's line; one count per copy of the stack ([`PerCopy`]).
    metrics: PerCopy<Arc<Metrics>>,
}

/// A new request id: 16 hex digits. One allocation, shared by the copies of the id (the log
/// line's, the upstream's header, the response's): `Bytes::from_owner` counts references from
/// the start, where bytes from a `Vec` allocate again when first cloned.
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u64(..);
    let mut text = [0u8; 16];
    for (i, digit) in text.iter_mut().enumerate() {
        *digit = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_maybe_shared(Bytes::from_owner(text)).expect("hex is a valid header value")
}

impl<S> Service<http::Request<Incoming>> for Trace<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Instrumented<Then<S::Future, Finish>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Incoming>) -> Self::Future {
        let started = Instant::now();
        let method = req.method().clone();
        let id = new_request_id();
        let facts = Facts::of_mut(&mut req);
        facts.request_id = Some(RequestId(id.clone()));
        facts.received = Some(started);
        // The warnings logged while a request is handled name its id themselves
        // (`RequestId::of`), so at the default level there is no per-request span to create,
        // format and enter on every poll (10-14 % of a request's CPU with the request line,
        // docs/performance.md). With `RUST_LOG=debug` the span groups the libraries' events.
        let span = tracing::debug_span!("request", request_id = id.to_str().unwrap_or_default());
        let response = span.in_scope(|| self.inner.call(req));
        let finish = Finish {
            started,
            method,
            id,
            metrics: self.metrics.handle(),
            in_span: !span.is_disabled(),
        };
        Then::new(response, finish).instrument(span)
    }
}

/// What the request line needs once the response is known.
pub(super) struct Finish {
    started: Instant,
    method: Method,
    id: HeaderValue,
    metrics: PerCopy<Arc<Metrics>>,
    /// The request's span is enabled (`RUST_LOG=debug`): the line is written inside it.
    in_span: bool,
}

impl OnResponse for Finish {
    /// Records the metrics, writes the request line and returns the id to the sender.
    fn on_response(self, response: &mut Response) {
        let elapsed = self.started.elapsed();
        let settled = response.extensions().get::<Settled>();
        let source = settled.and_then(|s| s.source.as_deref());
        let outcome = settled
            .and_then(|s| s.outcome)
            .map_or("unknown", |outcome| outcome.as_str());
        self.metrics.request(
            source.map(|s| (&s.name, &s.metric_handles)),
            outcome,
            elapsed,
        );
        RequestLine {
            request_id: self.id.to_str().unwrap_or_default(),
            source: source.map_or("-", |s| &*s.name),
            outcome,
            status: response.status().as_u16(),
            method: self.method.as_str(),
            latency: elapsed,
        }
        .log(self.in_span);
        response
            .headers_mut()
            .insert(super::forward::X_HOOKGATE_REQUEST_ID, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_16_lowercase_hex_digits_and_differ() {
        let ids: Vec<String> = (0..64)
            .map(|_| new_request_id().to_str().unwrap().to_string())
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 16, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
