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
use tower::{Layer, Service};

use super::held::PerCopy;
use super::limit::{Limit, Taken};
use super::rejection::Rejection;
use super::Response;

/// What a shed request is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(super) struct ShedLayer {
    requests: Arc<Limit>,
}

impl ShedLayer {
    pub(super) fn new(max_concurrent: usize) -> Self {
        ShedLayer {
            requests: Arc::new(Limit::new(max_concurrent)),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            requests: PerCopy::new(self.requests.clone()),
        }
    }
}

#[derive(Clone)]
pub(super) struct Shed<S> {
    inner: S,
    /// The process's limit, through a handle of this copy of the stack's: a request's
    /// reference count stays on its connection's thread.
    requests: PerCopy<Arc<Limit>>,
}

/// A request's place among those in progress.
pub(super) struct Place(PerCopy<Arc<Limit>>);

impl std::ops::Deref for Place {
    type Target = Limit;

    fn deref(&self) -> &Limit {
        &self.0
    }
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
        match Limit::take(Place(self.requests.handle()), 1) {
            Some(place) => Either::Right(Permitted {
                inner: self.inner.call(req),
                _place: place,
            }),
            None => Either::Left(ready(Ok(Rejection::Overloaded {
                retry_after: RETRY_AFTER,
            }
            .into_response()))),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's future holding its place until it completes or is dropped.
    pub(super) struct Permitted<F> {
        #[pin]
        inner: F,
        _place: Taken<Place>,
    }
}

impl<F: Future> Future for Permitted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}
