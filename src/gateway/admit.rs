//! Admission from the request head, before a byte of body is read: the client address
//! allowlist (403), the static header token (401) and the presence of the signature header
//! (401). A request that fails any of them is answered at once, so an unauthenticated client
//! cannot make the gateway receive, buffer or time an upload. The path token was already
//! checked by the route layer; the signature itself needs the body and is checked by
//! [`super::verify`].

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{ready, Either, Ready};
use http::HeaderMap;
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::rejection::Rejection;
use super::{shadow, PeerAddr, Response};
use crate::extract::{header_value, HeaderLookup};
use crate::metrics::Metrics;
use crate::source::Source;

/// Checks what the head alone can tell about a request for `source` from `peer`.
pub(super) fn check_head(
    source: &Source,
    peer: Option<PeerAddr>,
    headers: &HeaderMap,
) -> Result<(), Rejection> {
    if let Some(list) = &source.addresses {
        if !peer.is_some_and(|PeerAddr(p)| list.allows(p.ip(), headers)) {
            return Err(Rejection::ForbiddenAddress);
        }
    }
    if let Some(token) = &source.token {
        if !token.check(headers) {
            return Err(Rejection::BadToken);
        }
    }
    if let Some(check) = source.signature.as_ref().filter(|c| c.method.has_header()) {
        let header = &check.scheme.header;
        match header_value(headers, header) {
            HeaderLookup::Value(_) => {}
            HeaderLookup::Missing => {
                return Err(Rejection::MissingSignature {
                    header: header.clone(),
                })
            }
            HeaderLookup::Repeated => {
                return Err(Rejection::BadSignature {
                    reason: "signature header repeated",
                })
            }
            HeaderLookup::Invalid => {
                return Err(Rejection::BadSignature {
                    reason: "signature header is not ASCII",
                })
            }
        }
    }
    Ok(())
}

#[derive(Clone)]
pub(super) struct AdmitLayer {
    metrics: Arc<Metrics>,
}

impl AdmitLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        AdmitLayer { metrics }
    }
}

impl<S> Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Admit<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<http::Request<Incoming>> for Admit<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Incoming>) -> Self::Future {
        let peer = req.extensions().get::<PeerAddr>().copied();
        let checked = check_head(super::routed(&req), peer, req.headers()).or_else(|rejection| {
            let source = super::routed(&req).clone();
            shadow::refuse_or_record(&source, &mut req, rejection, &self.metrics)
        });
        match checked {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(rejection) => {
                self.metrics
                    .refused_before_body(&super::routed(&req).name, rejection.code());
                Either::Left(ready(Ok(rejection.into_response())))
            }
        }
    }
}
