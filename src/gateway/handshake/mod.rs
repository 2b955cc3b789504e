//! Handshakes answered by the gateway itself and never forwarded: the endpoint verification
//! requests some providers send before (or between) deliveries. Each is answered only after
//! whatever the provider signs has been verified, then logged (source and kind) and counted
//! (`hookgate_handshakes_total{source,kind}`).
//!
//! - [`GetLayer`], right after routing: Meta's and Dropbox's `GET` challenges. The provider
//!   signs nothing; the address allowlist still applies and Meta's verify token is checked in
//!   constant time. Sources without a `GET` handshake never see a `GET` (the route layer
//!   answers 405).
//! - [`PostLayer`], right after freshness: Slack's, Zoom's, Twitch's and Discord's signed
//!   handshakes, answered only when the signature verified (and, in shadow mode, no check
//!   failed); anything else goes on to dedup and the upstream.
//!
//! What each handshake looks like and how it is answered is in [`answer`].

mod answer;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{ready, Either, Ready};
use http::Method;
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::facts::Facts;
use super::verify::Verified;
use super::{shadow, PeerAddr, RequestId, Response};
use crate::metrics::Metrics;
use crate::source::{Handshake, Source};

/// Logs and counts an answered handshake.
fn answered<B>(metrics: &Metrics, source: &Source, handshake: &Handshake, req: &http::Request<B>) {
    let kind = handshake.kind.name();
    tracing::info!(request_id = RequestId::of(req), source = %source.name, kind, "handshake answered");
    metrics.handshake(&source.name, kind);
}

/// Answers `GET` handshakes before anything else reads the request.
#[derive(Clone)]
pub(super) struct GetLayer {
    metrics: Arc<Metrics>,
}

impl GetLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        GetLayer { metrics }
    }
}

impl<S> Layer<S> for GetLayer {
    type Service = Get<S>;

    fn layer(&self, inner: S) -> Get<S> {
        Get {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Get<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<http::Request<Incoming>> for Get<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        if req.method() != Method::GET {
            return Either::Right(self.inner.call(req));
        }
        let source = req
            .extensions()
            .get::<Arc<Source>>()
            .cloned()
            .expect("the route layer runs first");
        let Some(handshake) = source.handshake.as_ref().filter(|h| h.is_get()) else {
            return Either::Left(ready(
                Ok(super::Rejection::MethodNotAllowed.into_response()),
            ));
        };
        if let Some(list) = &source.addresses {
            let peer = req.extensions().get::<PeerAddr>().copied();
            if !peer.is_some_and(|PeerAddr(p)| list.allows(p.ip(), req.headers())) {
                return Either::Left(ready(
                    Ok(super::Rejection::ForbiddenAddress.into_response()),
                ));
            }
        }
        let response = match answer::get(
            handshake.kind,
            handshake.verify_tokens.as_ref(),
            req.uri().query(),
        ) {
            Ok(response) => {
                answered(&self.metrics, &source, handshake, &req);
                response
            }
            Err(rejection) => {
                tracing::warn!(request_id = RequestId::of(&req), source = %source.name, kind = handshake.kind.name(), code = rejection.code(), "handshake refused");
                rejection.into_response()
            }
        };
        Either::Left(ready(Ok(response)))
    }
}

/// Answers signed `POST` handshakes once the signature and freshness checks passed.
#[derive(Clone)]
pub(super) struct PostLayer {
    metrics: Arc<Metrics>,
}

impl PostLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        PostLayer { metrics }
    }
}

impl<S> Layer<S> for PostLayer {
    type Service = Post<S>;

    fn layer(&self, inner: S) -> Post<S> {
        Post {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Post<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<http::Request<Bytes>> for Post<S>
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
        let source = super::routed(&req);
        let handshake = source
            .handshake
            .as_ref()
            .filter(|h| h.kind.needs_signature());
        // Only a request whose signature verified (and, in shadow mode, that failed no check)
        // is answered; anything else is an ordinary delivery.
        let verified = Facts::of(&req).and_then(|f| f.verified);
        let (Some(handshake), Some(Verified { position })) = (handshake, verified) else {
            return Either::Right(self.inner.call(req));
        };
        if shadow::failed(&req) {
            return Either::Right(self.inner.call(req));
        }
        let key = source
            .signature
            .as_ref()
            .and_then(|check| check.keys.get(position));
        match answer::post(handshake.kind, &req, key) {
            Ok(None) => Either::Right(self.inner.call(req)),
            Ok(Some(response)) => {
                answered(&self.metrics, source, handshake, &req);
                Either::Left(ready(Ok(response)))
            }
            Err(rejection) => {
                tracing::warn!(request_id = RequestId::of(&req), source = %source.name, kind = handshake.kind.name(), code = rejection.code(), "handshake refused");
                Either::Left(ready(Ok(rejection.into_response())))
            }
        }
    }
}
