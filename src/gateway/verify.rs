//! Authentication of each delivery against its source: client address allowlist (403), static
//! header token (401) and signature (401), in that order, all of them when several are set.
//! Secrets are compared in constant time; the answer says *what* failed, never the expected
//! value. The path token is checked earlier, by the route layer.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{ready, Either, Ready};
use tower::{Layer, Service};

use super::{PeerAddr, Response};
use crate::error::Rejection;
use crate::scheme::SignatureError;
use crate::source::Source;

#[derive(Debug, Clone, Copy)]
pub struct VerifyLayer;

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Verify { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Verify<S> {
    inner: S,
}

/// Checks one request against its source's authentication settings.
pub fn authenticate(source: &Source, req: &http::Request<Bytes>) -> Result<(), Rejection> {
    if let Some(list) = &source.addresses {
        let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
        if !peer.is_some_and(|ip| list.allows(ip, req.headers())) {
            return Err(Rejection::ForbiddenAddress);
        }
    }
    if let Some(token) = &source.token {
        if !token.check(req.headers()) {
            return Err(Rejection::BadToken);
        }
    }
    if let Some(check) = &source.signature {
        check
            .scheme
            .verify(&check.keys, req.headers(), req.body())
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
        match authenticate(&source, &req) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
        }
    }
}
