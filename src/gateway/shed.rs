//! Load shedding: at most `max_concurrent_requests` requests are in progress at once; beyond
//! that the answer is an immediate 503 with `Retry-After`, so senders back off and retry
//! instead of piling up in a queue that only grows.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{ready, Either, Ready};
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::held::PerCopy;
use super::rejection::Rejection;
use super::Response;
use crate::allowance::Allowance;

/// What a shed request is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(super) struct ShedLayer {
    permits: Allowance,
}

impl ShedLayer {
    pub(super) fn new(max_concurrent: usize) -> Self {
        ShedLayer {
            permits: Allowance::new(max_concurrent),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            permits: PerCopy::new(self.permits.clone()),
        }
    }
}

#[derive(Clone)]
pub(super) struct Shed<S> {
    inner: S,
    /// The limit, through a handle of this copy of the stack's ([`PerCopy`]): a request's
    /// permit counts a reference only its connection's thread touches.
    permits: PerCopy<Allowance>,
}

impl<S> Service<http::Request<Incoming>> for Shed<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Permitted<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        if self.permits.take(1) {
            Either::Right(Permitted {
                inner: self.inner.call(req),
                _permit: Permit(self.permits.handle()),
            })
        } else {
            Either::Left(ready(Ok(Rejection::Overloaded {
                retry_after: RETRY_AFTER,
            }
            .into_response())))
        }
    }
}

/// One request in progress, given back on drop.
pub(super) struct Permit(PerCopy<Allowance>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.give(1);
    }
}

pin_project_lite::pin_project! {
    /// A request's future holding its permit until it completes or is dropped.
    pub(super) struct Permitted<F> {
        #[pin]
        inner: F,
        _permit: Permit,
    }
}

impl<F: Future> Future for Permitted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}
