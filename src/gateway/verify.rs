//! Signature verification of each delivery over its exact body bytes (401). The checks that
//! need only the head (address allowlist, static token, signature header present) ran in
//! [`super::admit`] before the body was read; the path token in the route layer. Secrets are
//! compared in constant time; the answer says *what* failed, never the expected value.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{ready, Either, Ready};
use tower::{Layer, Service};

use super::admit::check_head;
use super::keyed;
use super::rejection::Rejection;
use super::{BoxFuture, PeerAddr, Response};
use crate::clock::SharedClock;
use crate::scheme::{Request, SignatureError};
use crate::source::method::Method;
use crate::source::Source;

#[derive(Clone)]
pub(super) struct VerifyLayer {
    /// Token lifetimes and key-cache expiry read this clock.
    clock: SharedClock,
}

impl VerifyLayer {
    pub(super) fn new(clock: SharedClock) -> Self {
        VerifyLayer { clock }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Verify {
            inner,
            clock: self.clock.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Verify<S> {
    inner: S,
    clock: SharedClock,
}

/// Checks one request against every authentication setting of its source: the head checks of
/// [`super::admit`] (which the stack has already run) and the signature over the body, at
/// `now_ms`. Keys are never fetched here (see [`keyed::verify_local`]).
pub(super) fn authenticate(
    source: &Source,
    req: &http::Request<Bytes>,
    now_ms: i64,
) -> Result<(), Rejection> {
    let peer = req.extensions().get::<PeerAddr>().copied();
    check_head(source, peer, req.headers())?;
    verify_signature(source, req, now_ms)
}

/// Checks the signature over the exact body bytes, in constant time.
fn verify_signature(
    source: &Source,
    req: &http::Request<Bytes>,
    now_ms: i64,
) -> Result<(), Rejection> {
    if let Some(check) = source.signature.as_ref() {
        if !matches!(check.method, Method::Header) {
            return keyed::verify_local(check, req, now_ms);
        }
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let request = Request {
            method: req.method().as_str(),
            path_and_query,
            headers: req.headers(),
            body: req.body(),
        };
        check
            .scheme
            .verify_request(&check.keys, &check.public_keys, &request)
            .map(|_position| ())
            .map_err(|error| match error {
                SignatureError::Missing => Rejection::MissingSignature {
                    header: check.scheme.header.clone(),
                },
                SignatureError::Invalid(reason) => Rejection::BadSignature { reason },
                SignatureError::Mismatch => Rejection::BadSignature {
                    reason: "no configured secret produces this signature",
                },
            })?;
    }
    Ok(())
}

impl<S> Service<http::Request<Bytes>> for Verify<S>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Either<S::Future, BoxFuture>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Bytes>) -> Self::Future {
        let source = req
            .extensions()
            .get::<Arc<Source>>()
            .cloned()
            .expect("the route layer runs first");
        // The head checks ran before the body was read (admit layer).
        if source.signature.as_ref().is_some_and(keyed::fetches) {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            let clock = self.clock.clone();
            return Either::Right(Either::Right(Box::pin(async move {
                let check = source.signature.as_ref().expect("checked above");
                match keyed::verify_fetched(check, &req, &clock).await {
                    Ok(()) => inner.call(req).await,
                    Err(rejection) => Ok(rejection.into_response()),
                }
            })));
        }
        match verify_signature(&source, &req, self.clock.wall_ms()) {
            Ok(()) => Either::Right(Either::Left(self.inner.call(req))),
            Err(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
        }
    }
}
