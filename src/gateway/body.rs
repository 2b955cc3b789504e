//! Body collection: reads the whole body (the signature covers exact bytes) within the source's
//! size limit and read deadline. A declared `Content-Length` over the limit is refused before
//! reading; a chunked or lying body is cut off the moment it passes the limit. Either way: 413.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::{BoxFuture, Response};
use crate::error::Rejection;
use crate::source::Source;

#[derive(Debug, Clone, Copy)]
pub struct CollectLayer;

impl<S> Layer<S> for CollectLayer {
    type Service = Collect<S>;

    fn layer(&self, inner: S) -> Collect<S> {
        Collect { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Collect<S> {
    inner: S,
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
        // The ready clone is used now; the fresh clone waits for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let source = req
                .extensions()
                .get::<Arc<Source>>()
                .cloned()
                .expect("the route layer runs first");
            let limit = source.max_body;
            let (parts, body) = req.into_parts();
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > limit as u64) {
                return Ok(Rejection::PayloadTooLarge { limit }.into_response());
            }
            let read =
                tokio::time::timeout(source.body_timeout, Limited::new(body, limit).collect());
            let bytes = match read.await {
                Err(_) => return Ok(Rejection::BodyTimeout.into_response()),
                Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                    return Ok(Rejection::PayloadTooLarge { limit }.into_response())
                }
                Ok(Err(_)) => return Ok(Rejection::BodyRead.into_response()),
                Ok(Ok(collected)) => collected.to_bytes(),
            };
            inner.call(http::Request::from_parts(parts, bytes)).await
        })
    }
}
