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
use super::rejection::Rejection;
use super::{shadow, PeerAddr, Response};
use crate::metrics::Metrics;
use crate::scheme::{Request, SignatureError};
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
}

impl VerifyLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        VerifyLayer { metrics }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Verify {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Verify<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// Checks one request against every authentication setting of its source: the head checks of
/// [`super::admit`] (which the stack has already run) and the signature over the body.
pub(super) fn authenticate(source: &Source, req: &http::Request<Bytes>) -> Result<(), Rejection> {
    let peer = req.extensions().get::<PeerAddr>().copied();
    check_head(source, peer, req.headers())?;
    verify_signature(source, req).map(|_| ())
}

/// Checks the signature over the exact body bytes, in constant time. `Ok` holds the position
/// of the secret or key that verified it (`None` for a source without a signature).
fn verify_signature(
    source: &Source,
    req: &http::Request<Bytes>,
) -> Result<Option<usize>, Rejection> {
    let Some(check) = &source.signature else {
        return Ok(None);
    };
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

impl<S> Service<http::Request<Bytes>> for Verify<S>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Bytes>) -> Self::Future {
        let source = req
            .extensions()
            .get::<Arc<Source>>()
            .cloned()
            .expect("the route layer runs first");
        // The head checks ran before the body was read (admit layer).
        let verified = match verify_signature(&source, &req) {
            Ok(verified) => verified,
            Err(rejection) => {
                match shadow::refuse_or_record(&source, &mut req, rejection, &self.metrics) {
                    Ok(()) => None,
                    Err(rejection) => return Either::Left(ready(Ok(rejection.into_response()))),
                }
            }
        };
        if let Some(position) = verified {
            self.metrics.secret_matched(&source.name, position);
            req.extensions_mut().insert(Verified { position });
        }
        Either::Right(self.inner.call(req))
    }
}
