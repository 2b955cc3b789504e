//! Body collection: reads the whole body (the signature covers exact bytes) within the source's
//! size limit, its read deadline and the gateway-wide budget for bodies not yet verified.
//! A declared `Content-Length` over the limit is refused before reading (413); a chunked or
//! lying body is cut off the moment it passes the limit (413). The budget
//! ([`BodyBudget`], `limits.max_pending_body_bytes`) is taken for the declared length before
//! the first byte is read, or frame by frame for a chunked body, and given back once the body
//! is complete (verification follows at once); an upload that does not fit is answered
//! 503 + `Retry-After`, so memory under an upload flood is bounded by configuration.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::facts::Facts;
use super::held::{Held, PerCopy};
use super::limit::{Limit, Taken};
use super::rejection::Rejection;
use super::{BoxError, BoxFuture, Response};
use crate::metrics::Metrics;
use crate::source::Source;

/// What a sender refused for want of budget is told to wait.
const BUDGET_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The bytes all unverified bodies being received may hold together.
#[derive(Clone, Debug)]
pub(super) struct BodyBudget(Arc<Limit>);

impl BodyBudget {
    pub(super) fn new(total: usize) -> Self {
        BodyBudget(Arc::new(Limit::new(total.max(1))))
    }

    /// Bytes reserved now.
    pub(super) fn in_use(&self) -> usize {
        self.0.in_use()
    }

    pub(super) fn total(&self) -> usize {
        self.0.max()
    }

    /// Reserves `bytes` for a body read while this budget (the stack copy's) is borrowed: no
    /// reference count taken.
    fn reserve(&self, bytes: usize) -> Option<Taken<&Limit>> {
        Limit::take(&*self.0, bytes)
    }
}

/// The budget could not cover the next frame of a body.
#[derive(Debug, thiserror::Error)]
#[error("the pending body budget is exhausted")]
struct BudgetExhausted;

/// A body that holds budget for the bytes it has produced (or was declared to produce).
struct Budgeted<'a, B> {
    inner: B,
    budget: &'a BodyBudget,
    held: Option<Taken<&'a Limit>>,
    /// True when the declared length was reserved up front.
    prepaid: bool,
}

impl<B> Body for Budgeted<'_, B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let (false, Some(data)) = (self.prepaid, frame.data_ref()) {
            let Some(permit) = self.budget.reserve(data.len()) else {
                return Poll::Ready(Some(Err(BudgetExhausted.into())));
            };
            match &mut self.held {
                Some(held) => held.merge(permit),
                None => self.held = Some(permit),
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Clone)]
pub(super) struct CollectLayer {
    budget: BodyBudget,
    metrics: Arc<Metrics>,
}

impl CollectLayer {
    pub(super) fn new(budget: BodyBudget, metrics: Arc<Metrics>) -> Self {
        CollectLayer { budget, metrics }
    }
}

impl<S> Layer<S> for CollectLayer {
    type Service = Collect<S>;

    fn layer(&self, inner: S) -> Collect<S> {
        Collect {
            inner: Held::new(inner),
            parts: PerCopy::new(Parts {
                budget: self.budget.clone(),
                metrics: self.metrics.clone(),
            }),
        }
    }
}

#[derive(Clone)]
pub(super) struct Collect<S> {
    /// Called once the body is in; held per copy of the stack, not cloned per request.
    inner: Held<S>,
    parts: PerCopy<Parts>,
}

/// What a body read uses, one copy per copy of the stack ([`PerCopy`]).
#[derive(Clone)]
struct Parts {
    budget: BodyBudget,
    metrics: Arc<Metrics>,
}

impl<S> Service<http::Request<Incoming>> for Collect<S>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Incoming>) -> BoxFuture {
        let inner = self.inner.handle();
        let parts = self.parts.handle();
        Box::pin(async move {
            let Parts { budget, metrics } = &*parts;
            let (parts, body) = req.into_parts();
            // Read where the route layer left it (no reference count taken: every serving
            // thread shares the source's).
            let source = parts
                .extensions
                .get::<Arc<Source>>()
                .expect("the route layer runs first");
            let limit = source.max_body;
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let refuse = |rejection: Rejection| {
                metrics.refused_before_body(&source.name, rejection.code());
                Ok(rejection.into_response())
            };
            if declared.is_some_and(|len| len > limit as u64) {
                return refuse(Rejection::PayloadTooLarge { limit });
            }
            let held = match declared {
                Some(len) if len > 0 => match budget.reserve(len as usize) {
                    Some(permit) => Some(permit),
                    None => {
                        return refuse(Rejection::BodyBudget {
                            retry_after: BUDGET_RETRY_AFTER,
                        })
                    }
                },
                _ => None,
            };
            let body = Budgeted {
                prepaid: declared.is_some(),
                inner: body,
                budget,
                held,
            };
            // The body's time counts from when the head had been read: the trace layer's
            // reading of the clock, not one more here.
            let received = parts
                .extensions
                .get::<Facts>()
                .and_then(|facts| facts.received)
                .unwrap_or_else(Instant::now);
            let deadline = tokio::time::Instant::from_std(received) + source.body_timeout;
            let read = tokio::time::timeout_at(deadline, Limited::new(body, limit).collect());
            // The budget is given back as the read ends (the body is dropped by `collect`);
            // verification runs synchronously in `inner.call` right after.
            let bytes = match read.await {
                Err(_) => return Ok(Rejection::BodyTimeout.into_response()),
                Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                    return Ok(Rejection::PayloadTooLarge { limit }.into_response())
                }
                Ok(Err(error)) if error.downcast_ref::<BudgetExhausted>().is_some() => {
                    return Ok(Rejection::BodyBudget {
                        retry_after: BUDGET_RETRY_AFTER,
                    }
                    .into_response())
                }
                Ok(Err(_)) => return Ok(Rejection::BodyRead.into_response()),
                Ok(Ok(collected)) => collected.to_bytes(),
            };
            inner.call(http::Request::from_parts(parts, bytes)).await
        })
    }
}
