//! Signature verification of each delivery over its exact body bytes (401). The checks that
//! need only the head (address allowlist, static token, signature header present) ran in
//! [`super::admit`] before the body was read; the path token in the route layer. Secrets are
//! compared in constant time; the answer says *what* failed, never the expected value.
//! Sources whose keys come from the network (see [`super::keyed`]) are verified
//! asynchronously; a shadow source's failure is recorded and the request goes on.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{ready, Either, Ready};
use tower::{Layer, Service};

use super::admit::check_head;
use super::facts::Facts;
use super::keyed;
use super::rejection::Rejection;
use super::{shadow, BoxFuture, PeerAddr, Response};
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::scheme::{Request, SignatureError};
use crate::source::method::Method;
use crate::source::Source;

/// Set on a request whose signature verified: the position of the configured secret (or
/// public key) that verified it, 0 for the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verified {
    pub(super) position: usize,
}

#[derive(Clone)]
pub(super) struct VerifyLayer {
    metrics: Arc<Metrics>,
    /// Token lifetimes and key-cache expiry read this clock.
    clock: SharedClock,
}

impl VerifyLayer {
    pub(super) fn new(metrics: Arc<Metrics>, clock: SharedClock) -> Self {
        VerifyLayer { metrics, clock }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Verify {
            inner,
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Verify<S> {
    inner: S,
    metrics: Arc<Metrics>,
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
    verify_signature(source, req, || now_ms).map(|_| ())
}

/// Checks the signature over the exact body bytes, in constant time. `Ok` holds the position
/// of the secret or key that verified it (`None` for a source without a signature, or one
/// whose keys are not configured positions).
fn verify_signature(
    source: &Source,
    req: &http::Request<Bytes>,
    now_ms: impl FnOnce() -> i64,
) -> Result<Option<usize>, Rejection> {
    let Some(check) = &source.signature else {
        return Ok(None);
    };
    if !matches!(check.method, Method::Header) {
        // Only token lifetimes read the clock: not read for the signature schemes.
        return keyed::verify_local(check, req, now_ms());
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
        .map(Some)
        .map_err(|error| match error {
            SignatureError::Missing => Rejection::MissingSignature {
                header: check.scheme.header.clone(),
            },
            SignatureError::Invalid(reason) => Rejection::BadSignature { reason },
            SignatureError::Mismatch => Rejection::BadSignature {
                reason: "no configured secret produces this signature",
            },
        })
}

/// Turns a verification outcome into go/refuse: a refusal of a shadow source is recorded and
/// the request goes on; a match is counted by key position and marked on the request.
fn settle(
    req: &mut http::Request<Bytes>,
    outcome: Result<Option<usize>, Rejection>,
    metrics: &Metrics,
) -> Result<(), Rejection> {
    let verified = match outcome {
        Ok(verified) => verified,
        Err(rejection) => {
            let source = super::routed(req).clone();
            shadow::refuse_or_record(&source, req, rejection, metrics)?;
            None
        }
    };
    if let Some(position) = verified {
        let source = super::routed(req);
        metrics.secret_matched(&source.name, &source.metric_handles, position);
        Facts::of_mut(req).verified = Some(Verified { position });
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

    fn call(&mut self, mut req: http::Request<Bytes>) -> Self::Future {
        // The head checks ran before the body was read (admit layer).
        let fetches = super::routed(&req)
            .signature
            .as_ref()
            .is_some_and(keyed::fetches);
        if fetches {
            let source = super::routed(&req).clone();
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            let clock = self.clock.clone();
            let metrics = self.metrics.clone();
            return Either::Right(Either::Right(Box::pin(async move {
                let check = source.signature.as_ref().expect("checked above");
                let outcome = keyed::verify_fetched(check, &req, &clock).await;
                match settle(&mut req, outcome, &metrics) {
                    Ok(()) => inner.call(req).await,
                    Err(rejection) => Ok(rejection.into_response()),
                }
            })));
        }
        let outcome = verify_signature(super::routed(&req), &req, || self.clock.wall_ms());
        match settle(&mut req, outcome, &self.metrics) {
            Ok(()) => Either::Right(Either::Left(self.inner.call(req))),
            Err(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
        }
    }
}
