//! Forwarding a verified delivery to its source's upstream over a pooled connection
//! (`super::upstream`): the body
//! byte for byte, the headers minus hop-by-hop ones, minus any incoming `X-Hookgate-*` (so
//! the upstream can trust the ones hookgate adds) and minus the client's forwarding headers
//! (unless the peer is a trusted proxy), plus hookgate's `X-Forwarded-For`, `X-Real-IP`,
//! `X-Hookgate-Source`, `X-Hookgate-Event-Id` (a signed id only) and, for a shadow-mode
//! source, `X-Hookgate-Verification`. The query string is
//! dropped unless the source sets `forward_query`. The upstream's status, headers and body go back to the sender, so
//! its retry logic keeps working. Unreachable upstream: 502; no answer in time: 504.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Extensions, Version};
use http_body_util::{BodyExt, Full};
use ipnet::IpNet;
use tower::Service;

use super::facts::Facts;
use super::held::PerCopy;
use super::rejection::Rejection;
use super::shadow::{self, Verdict};
use super::upstream::UpstreamClient;
use super::{BoxFuture, EventId, Outcome, PeerAddr, RequestId, Response};
use crate::access::contains;
use crate::metrics::Metrics;
use crate::source::Source;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The names hookgate sets on the upstream request (and `X-Hookgate-Request-Id` on the
/// answer), parsed once rather than on every request.
pub(super) const X_HOOKGATE_SOURCE: HeaderName = HeaderName::from_static("x-hookgate-source");
pub(super) const X_HOOKGATE_EVENT_ID: HeaderName = HeaderName::from_static("x-hookgate-event-id");
pub(super) const X_HOOKGATE_UNSIGNED_EVENT_ID: HeaderName =
    HeaderName::from_static("x-hookgate-unsigned-event-id");
pub(super) const X_HOOKGATE_REQUEST_ID: HeaderName =
    HeaderName::from_static("x-hookgate-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Removes hop-by-hop headers, including those the `Connection` header names. One pass over
/// the names first: most messages carry none, and a removal is a hashed lookup each.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let is_hop = |name: &HeaderName| HOP_BY_HOP.contains(name) || *name == PROXY_CONNECTION;
    if !headers.keys().any(is_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        remove_connection_named(headers);
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
    headers.remove(PROXY_CONNECTION);
}

fn remove_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// Removes every incoming header hookgate itself sets, so none can be spoofed.
fn strip_own_headers(headers: &mut HeaderMap) {
    let is_own = |name: &HeaderName| name.as_str().starts_with("x-hookgate-");
    if !headers.keys().any(is_own) {
        return;
    }
    let own: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-hookgate-"))
        .cloned()
        .collect();
    for name in own {
        headers.remove(name);
    }
}

/// Headers in which a client or proxy describes where a request came from.
const FORWARDING: [HeaderName; 6] = [
    header::FORWARDED,
    X_FORWARDED_FOR,
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-port"),
    X_REAL_IP,
];

/// Removes every incoming forwarding header (one pass over the names first).
fn strip_forwarding(headers: &mut HeaderMap) {
    if headers.keys().any(|name| FORWARDING.contains(name)) {
        for name in FORWARDING {
            headers.remove(name);
        }
    }
}

/// Sets the forwarding headers the upstream sees. From a trusted proxy, what the proxy wrote
/// is kept and the peer is appended to `X-Forwarded-For`; from anyone else, every incoming
/// forwarding header is dropped and replaced by hookgate's own: `X-Forwarded-For` and
/// `X-Real-IP` set to the TCP peer.
fn set_forwarding_headers(headers: &mut HeaderMap, peer: Option<PeerAddr>, trusted: &[IpNet]) {
    let Some(PeerAddr(peer)) = peer else {
        strip_forwarding(headers);
        return;
    };
    if contains(trusted, peer.ip()) {
        let ip = peer.ip().to_string();
        let previous: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let chain = if previous.is_empty() {
            ip
        } else {
            format!("{}, {ip}", previous.join(", "))
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        return;
    }
    strip_forwarding(headers);
    let value = peer_value(peer.ip());
    headers.insert(X_FORWARDED_FOR, value.clone());
    headers.insert(X_REAL_IP, value);
}

thread_local! {
    /// The last peer address this thread wrote as a header value, and that value: a sender's
    /// deliveries come from a few addresses, over kept-alive connections, so the address is
    /// formatted once rather than for every request (an allocation and some 700 instructions,
    /// `bench/instructions.py`). The value's bytes are shared by the requests that carry it.
    static LAST_PEER: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

/// `ip` as a header value.
fn peer_value(ip: IpAddr) -> HeaderValue {
    LAST_PEER.with_borrow_mut(|last| match last {
        Some((cached, value)) if *cached == ip => value.clone(),
        _ => {
            // An address's text is always a valid header value.
            let value = HeaderValue::from_maybe_shared(Bytes::from(ip.to_string()))
                .expect("an IP address is a valid header value");
            *last = Some((ip, value.clone()));
            value
        }
    })
}

/// Turns a verified request's headers into the upstream's: hop-by-hop, `Expect` and
/// incoming `X-Hookgate-*` headers removed, `Host` set to the upstream's, the forwarding
/// headers set ([`set_forwarding_headers`]), and hookgate's `X-Hookgate-Source`,
/// `X-Hookgate-Event-Id` (or `X-Hookgate-Unsigned-Event-Id`) and `X-Hookgate-Request-Id`.
/// Shared by the forward and the queued mode, so the upstream sees the same either way.
pub(super) fn upstream_headers(
    headers: &mut HeaderMap,
    source: &Source,
    peer: Option<PeerAddr>,
    event_id: Option<EventId>,
    request_id: Option<RequestId>,
    verdict: Verdict,
) {
    // Room for the headers added below at once, rather than growing (and rehashing) the
    // map the sender's headers filled to its capacity.
    headers.reserve(8);
    strip_hop_by_hop(headers);
    strip_own_headers(headers);
    headers.remove(header::EXPECT);
    headers.insert(header::HOST, source.upstream.host_header.clone());
    set_forwarding_headers(headers, peer, &source.trusted_proxies);
    headers.insert(X_HOOKGATE_SOURCE, source.upstream.source_header.clone());
    if let Some(event) = event_id {
        let name = if event.signed {
            X_HOOKGATE_EVENT_ID
        } else {
            X_HOOKGATE_UNSIGNED_EVENT_ID
        };
        // The id's own bytes become the value (checked as `from_str` checks them), not a copy.
        if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(event.id)) {
            headers.insert(name, value);
        }
    }
    if let Some(RequestId(id)) = request_id {
        headers.insert(X_HOOKGATE_REQUEST_ID, id);
    }
    if !source.enforce {
        headers.insert(shadow::HEADER, verdict.header_value());
    }
}

/// The request's extensions, emptied of its [`Facts`], to carry the answer's: the upstream's
/// answer has none of its own, and a first extension costs three allocations (the map, its
/// table and the value), where the request's map already exists with room to spare.
fn reuse_for_answer(mut extensions: Extensions) -> Extensions {
    extensions.remove::<Facts>();
    extensions
}

/// The innermost service: sends the delivery upstream.
#[derive(Clone)]
pub(super) struct Forward(PerCopy<Parts>);

/// What a forward uses, one copy per copy of the stack ([`PerCopy`]).
#[derive(Clone)]
struct Parts {
    client: UpstreamClient,
    metrics: Arc<Metrics>,
}

impl Forward {
    pub(super) fn new(client: UpstreamClient, metrics: Arc<Metrics>) -> Self {
        Forward(PerCopy::new(Parts { client, metrics }))
    }
}

impl Service<http::Request<Bytes>> for Forward {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<Bytes>) -> BoxFuture {
        let parts = self.0.handle();
        Box::pin(async move {
            let Parts { client, metrics } = &*parts;
            let peer = req.extensions().get::<PeerAddr>().copied();
            let facts = Facts::of_mut(&mut req);
            let event_id = facts.event_id.take();
            let request_id = facts.request_id.take();
            let verdict = facts.verdict.unwrap_or_default();
            let (parts, body) = req.into_parts();
            // Read where the route layer left it (no reference count taken: every serving
            // thread shares the source's).
            let source = parts
                .extensions
                .get::<Arc<Source>>()
                .expect("the route layer runs first");
            // The query string is not covered by any signature: dropped unless the source
            // asks for it.
            let query = parts.uri.query().filter(|_| source.forward_query);
            let Ok(uri) = source.upstream.origin(query) else {
                return Ok(Rejection::UpstreamUnavailable.into_response());
            };

            let mut headers = parts.headers;
            let request_log = request_id.clone();
            upstream_headers(&mut headers, source, peer, event_id, request_id, verdict);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));

            let mut upstream = http::Request::new(Full::new(body));
            *upstream.method_mut() = parts.method;
            *upstream.uri_mut() = uri;
            *upstream.version_mut() = Version::HTTP_11;
            *upstream.headers_mut() = headers;

            let started = Instant::now();
            // The deadline from `started`: one reading of the clock for both.
            let deadline = tokio::time::Instant::from_std(started) + source.upstream.timeout;
            match tokio::time::timeout_at(
                deadline,
                client.request(&source.upstream.destination, upstream, started),
            )
            .await
            {
                Err(_) => Ok(Rejection::UpstreamTimeout.into_response()),
                Ok(Err(error)) => {
                    tracing::warn!(
                        request_id = RequestId::log_str(request_log.as_ref()),
                        source = %source.name,
                        %error,
                        "upstream unreachable"
                    );
                    Ok(Rejection::UpstreamUnavailable.into_response())
                }
                Ok(Ok(response)) => {
                    metrics.upstream(
                        &source.name,
                        &source.metric_handles,
                        response.status().as_u16(),
                        started.elapsed(),
                    );
                    let (mut answer, body) = response.into_parts();
                    strip_hop_by_hop(&mut answer.headers);
                    answer.extensions = reuse_for_answer(parts.extensions);
                    Outcome::Forwarded.mark(&mut answer.extensions);
                    Ok(http::Response::from_parts(
                        answer,
                        body.map_err(Into::into).boxed(),
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        headers.insert("x-secret-hop", "1".parse().unwrap());
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert("x-cloudkeep-signature-256", "sha256=00".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        assert!(headers.get("x-secret-hop").is_none());
        assert!(headers.get(header::CONNECTION).is_none());
        assert!(headers.get(header::TRANSFER_ENCODING).is_none());
        assert!(headers.get("x-cloudkeep-signature-256").is_some());
    }

    #[test]
    fn spoofed_own_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert("x-hookgate-source", "evil".parse().unwrap());
        headers.insert("x-hookgate-event-id", "evil".parse().unwrap());
        headers.insert("x-other", "kept".parse().unwrap());
        strip_own_headers(&mut headers);
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn each_peer_gets_its_own_address_whatever_the_last_one_was() {
        let peers = [
            "10.0.0.1",
            "2001:db8::7",
            "10.0.0.1",
            "10.0.0.1",
            "192.0.2.9",
        ];
        for text in peers {
            let mut headers = HeaderMap::new();
            headers.insert(X_FORWARDED_FOR, "203.0.113.66".parse().unwrap());
            let peer = PeerAddr(std::net::SocketAddr::new(text.parse().unwrap(), 443));
            set_forwarding_headers(&mut headers, Some(peer), &[]);
            assert_eq!(headers.get_all(X_FORWARDED_FOR).iter().count(), 1);
            assert_eq!(headers[X_FORWARDED_FOR], text);
            assert_eq!(headers[X_REAL_IP], text);
        }
    }
}
