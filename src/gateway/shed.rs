//! Load shedding: at most `max_concurrent_requests` requests are in progress at once; beyond
//! that the answer is an immediate 503 with `Retry-After`, so senders back off and retry
//! instead of piling up in a queue that only grows.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{ready, Either, Ready};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use super::rejection::Rejection;
use super::Response;

/// What a shed request is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(super) struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    pub(super) fn new(max_concurrent: usize) -> Self {
        ShedLayer {
            permits: Arc::new(Semaphore::new(max_concurrent)),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
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
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Either::Right(Permitted {
                inner: self.inner.call(req),
                _permit: permit,
            }),
            Err(_) => Either::Left(ready(Ok(Rejection::Overloaded {
                retry_after: RETRY_AFTER,
            }
            .into_response()))),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's future holding its permit until it completes or is dropped.
    pub(super) struct Permitted<F> {
        #[pin]
        inner: F,
        _permit: OwnedSemaphorePermit,
    }
}

impl<F: Future> Future for Permitted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}
