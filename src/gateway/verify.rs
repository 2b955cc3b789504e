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
use super::{PeerAddr, Response};
use crate::scheme::{Request, SignatureError};
use crate::source::Source;

#[derive(Debug, Clone, Copy)]
pub(super) struct VerifyLayer;

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Verify { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Verify<S> {
    inner: S,
}

/// Checks one request against every authentication setting of its source: the head checks of
/// [`super::admit`] (which the stack has already run) and the signature over the body.
pub(super) fn authenticate(source: &Source, req: &http::Request<Bytes>) -> Result<(), Rejection> {
    let peer = req.extensions().get::<PeerAddr>().copied();
    check_head(source, peer, req.headers())?;
    verify_signature(source, req)
}

/// Checks the signature over the exact body bytes, in constant time.
fn verify_signature(source: &Source, req: &http::Request<Bytes>) -> Result<(), Rejection> {
    if let Some(check) = &source.signature {
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
    S: Service<http::Request<Bytes>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

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
        match verify_signature(&source, &req) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
        }
    }
}
