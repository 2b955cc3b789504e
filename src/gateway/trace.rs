//! The outermost layer: one structured log line per request — source, outcome, status and
//! latency. It never logs bodies, header values or the raw path (which may hold a path token).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::Incoming;
use tower::{Layer, Service};

use super::{BoxFuture, Outcome, Response, RoutedTo};

#[derive(Debug, Clone, Copy)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
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

    fn call(&mut self, req: http::Request<Incoming>) -> BoxFuture {
        let started = Instant::now();
        let method = req.method().clone();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            let source = response
                .extensions()
                .get::<RoutedTo>()
                .map_or("-", |r| r.0.name.as_str());
            let outcome = response
                .extensions()
                .get::<Outcome>()
                .map_or("unknown", Outcome::as_str);
            tracing::info!(
                target: "hookgate::request",
                %source,
                %outcome,
                status = response.status().as_u16(),
                %method,
                latency_ms = format_args!("{latency_ms:.2}"),
                "request"
            );
            Ok(response)
        })
    }
}
