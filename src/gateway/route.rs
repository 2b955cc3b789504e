//! Routing: the request path selects exactly one configured source, or the answer is 404.
//! Paths are matched as received (no decoding, no normalisation), so `..`, encoded slashes and
//! other tricks simply match nothing. A source with a path token is reached only at
//! `<path>/<token>`, the token compared in constant time; a wrong token is a plain 404.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use futures_util::future::{ready, Either, Ready};
use http::Method;
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::finish::{OnResponse, Then};
use super::rejection::Rejection;
use super::{Response, RoutedTo, Settled};
use crate::source::Source;

/// The routing table. Paths are hashed with foldhash rather than SipHash: the table only
/// holds the configured paths, so a sender's path can make a lookup probe no longer than the
/// configuration's own collisions do, and a keyed hash buys nothing (SipHash was some 150
/// instructions of every request).
#[derive(Debug, Default)]
pub struct Routes {
    by_path: HashMap<String, Arc<Source>, foldhash::fast::RandomState>,
}

impl Routes {
    pub fn new(sources: &[Arc<Source>]) -> Self {
        Routes {
            by_path: sources
                .iter()
                .map(|s| (s.path.clone(), s.clone()))
                .collect(),
        }
    }

    /// Every source in the table.
    pub fn sources(&self) -> Vec<Arc<Source>> {
        let mut all: Vec<Arc<Source>> = self.by_path.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The source for `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Arc<Source>> {
        if let Some(source) = self.by_path.get(path) {
            return source.path_token.is_none().then_some(source);
        }
        let (prefix, token) = path.rsplit_once('/')?;
        let source = self.by_path.get(prefix)?;
        let tokens = source.path_token.as_ref()?;
        tokens.matches(token.as_bytes()).then_some(source)
    }
}

#[derive(Debug, Clone)]
pub(super) struct RouteLayer {
    routes: Arc<ArcSwap<Routes>>,
}

impl RouteLayer {
    pub(super) fn new(routes: Arc<ArcSwap<Routes>>) -> Self {
        RouteLayer { routes }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        Route {
            routes: self.routes.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Route<S> {
    routes: Arc<ArcSwap<Routes>>,
    inner: S,
}

impl<S> Service<http::Request<Incoming>> for Route<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Then<S::Future, RoutedTo>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Incoming>) -> Self::Future {
        let Some(source) = self.routes.load().find(req.uri().path()).cloned() else {
            return Either::Left(ready(Ok(Rejection::UnknownSource.into_response())));
        };
        let routed = RoutedTo(source.clone());
        let get_handshake =
            req.method() == Method::GET && source.handshake.as_ref().is_some_and(|h| h.is_get());
        if req.method() != Method::POST && !get_handshake {
            let mut response = Rejection::MethodNotAllowed.into_response();
            routed.on_response(&mut response);
            return Either::Left(ready(Ok(response)));
        }
        req.extensions_mut().insert(source);
        Either::Right(Then::new(self.inner.call(req), routed))
    }
}

impl OnResponse for RoutedTo {
    /// Names the source on the response, for the request log.
    fn on_response(self, response: &mut Response) {
        Settled::entry(response.extensions_mut()).source = Some(self.0);
    }
}
