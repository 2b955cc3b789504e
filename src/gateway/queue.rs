//! The queued delivery mode: the branch point that replaces the forward for a source with
//! `delivery = "queue"`. A verified, fresh, claimed delivery is stored in the durable delivery
//! engine (committed and fsynced) and answered `202` with its delivery id; the engine then
//! delivers the same bytes to the source's upstream, with the headers the forward would have
//! sent ([`forward::upstream_headers`](super::forward::upstream_headers)), under the source's
//! retry policy, across restarts.
//!
//! - The dedup layer above completes the claim on the `202` (the event is durable) and
//!   releases it on anything else, so a sender's retry after a refusal goes through.
//! - The same event id stored again (a retry that crossed a restart, when the dedup memory was
//!   lost) is answered as a duplicate, not stored twice.
//! - A store that cannot commit, or no engine, answers `503 queue_unavailable`, and a queue
//!   holding `[delivery] max_pending` deliveries `503 queue_full`, both with `Retry-After`:
//!   nothing is acknowledged that is not durable, nothing is dropped silently.
//! - Sync sources go to the forward, untouched.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use tower::Service;

use super::dedup::duplicate_response;
use super::facts::Facts;
use super::forward::upstream_headers;
use super::rejection::Rejection;
use super::{full_body, BoxFuture, EventId, Outcome, PeerAddr, RequestId, Response};
use crate::delivery::{Engine, EnqueueError, HealthRules, NewDelivery, TargetSpec};
use crate::sender::deliver::Sender;
use crate::sender::retry::RetryPolicy;
use crate::sender::sample::new_id;
use crate::sidecar::delivery_label;
use crate::source::{DeliveryMode, Source};

/// How long a sender is asked to wait when the store cannot take an event.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a sender is asked to wait when `[delivery] max_pending` deliveries wait already.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The engine queued sources deliver through; set once it has started (shared by clones).
#[derive(Clone, Default)]
pub(super) struct QueueHandle(Arc<ArcSwapOption<Engine>>);

impl QueueHandle {
    pub(super) fn set(&self, engine: Engine) {
        self.0.store(Some(Arc::new(engine)));
    }

    pub(super) fn engine(&self) -> Option<Arc<Engine>> {
        self.0.load_full()
    }
}

/// The delivery engine's targets for `sources`' queued ones: the upstream's URL, the source's
/// retry policy with its `upstream_timeout` per attempt, and `client` (which trusts
/// `[upstream_tls] ca`). A queued source's target never turns new events away: paused or
/// disabled by the operator, its deliveries wait for a resume.
pub fn queue_targets(sources: &[Arc<Source>], client: &Sender) -> Vec<TargetSpec> {
    sources
        .iter()
        .filter_map(|source| {
            let DeliveryMode::Queue { retry } = &source.delivery else {
                return None;
            };
            let mut retry = match RetryPolicy::parse(retry) {
                Ok(policy) => policy,
                Err(error) => {
                    // Validated with the configuration; never expected here.
                    tracing::error!(source = %source.name, %error, "retry policy unusable");
                    return None;
                }
            };
            retry.timeout = source.upstream.timeout;
            let url = source.upstream.destination.uri.clone();
            Some(TargetSpec {
                name: DeliveryMode::target_name(&source.name),
                url,
                signer: None,
                retry,
                health: HealthRules {
                    pause_after: None,
                    disable_after: None,
                    disable_on_gone: false,
                },
                concurrency: QUEUE_CONCURRENCY,
                client: Some(client.clone()),
                hold_when_stopped: true,
            })
        })
        .collect()
}

/// Attempts in flight at once to one queued source's upstream.
const QUEUE_CONCURRENCY: usize = 16;

/// The innermost service: queued sources are stored, the others forwarded by `F`.
#[derive(Clone)]
pub(super) struct QueueOrForward<F> {
    forward: F,
    queue: QueueHandle,
}

impl<F> QueueOrForward<F> {
    pub(super) fn new(forward: F, queue: QueueHandle) -> Self {
        QueueOrForward { forward, queue }
    }
}

impl<F> Service<http::Request<Bytes>> for QueueOrForward<F>
where
    F: Service<http::Request<Bytes>, Response = Response, Error = Infallible, Future = BoxFuture>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.forward.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Bytes>) -> BoxFuture {
        if super::routed(&req).delivery == DeliveryMode::Sync {
            return self.forward.call(req);
        }
        let source = super::routed(&req).clone();
        let engine = self.queue.engine();
        Box::pin(async move { Ok(enqueue(engine, &source, req).await) })
    }
}

/// A header value as text for the store (UTF-8 kept; other bytes replaced, and said so).
fn header_text(source: &Source, name: &str, value: &HeaderValue) -> String {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => text.to_string(),
        Err(_) => {
            tracing::warn!(source = %source.name, header = name, "a header value is not UTF-8; stored with replacement characters");
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        }
    }
}

/// Stores the delivery and answers `202`, a duplicate answer, or `503`.
async fn enqueue(
    engine: Option<Arc<Engine>>,
    source: &Source,
    req: http::Request<Bytes>,
) -> Response {
    let unavailable = || {
        Rejection::QueueUnavailable {
            retry_after: STORE_RETRY_AFTER,
        }
        .into_response()
    };
    let Some(engine) = engine else {
        tracing::error!(request_id = RequestId::of(&req), source = %source.name, "queued source without a delivery engine; answering 503");
        return unavailable();
    };
    let peer = req.extensions().get::<PeerAddr>().copied();
    let facts = Facts::of(&req);
    let request_id = facts.and_then(|f| f.request_id.clone());
    let log_id = request_id.clone();
    let log_id = RequestId::log_str(log_id.as_ref());
    // The provider's id when there is one; else hookgate's own, stable across attempts, so
    // the upstream can still recognise a repeated attempt.
    let event = facts
        .and_then(|f| f.event_id.clone())
        .unwrap_or_else(|| EventId {
            id: new_id("evt_"),
            signed: true,
        });
    let verdict = facts.and_then(|f| f.verdict).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    upstream_headers(
        &mut headers,
        source,
        peer,
        Some(event.clone()),
        request_id,
        verdict,
    );
    // The engine's client sets the length of the stored body itself.
    headers.remove(header::CONTENT_LENGTH);
    let headers = headers
        .iter()
        .map(|(name, value)| (name.to_string(), header_text(source, name.as_str(), value)))
        .collect();
    let stored = engine
        .enqueue(NewDelivery {
            target: DeliveryMode::target_name(&source.name),
            event_id: event.id.clone(),
            event_type: None,
            body,
            headers,
            not_before_ms: None,
        })
        .await;
    match stored {
        Ok(enqueued) if enqueued.created => {
            let body = serde_json::json!({
                "status": "queued",
                "delivery_id": delivery_label(enqueued.id),
                "event_id": event.id,
            });
            let mut response = http::Response::new(full_body(Bytes::from(body.to_string())));
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Outcome::Queued.mark(response.extensions_mut());
            response
        }
        Ok(_) => duplicate_response(),
        Err(error @ EnqueueError::Full(_)) => {
            tracing::warn!(request_id = log_id, source = %source.name, %error, "a verified event was not queued; answered 503");
            Rejection::QueueFull {
                retry_after: FULL_RETRY_AFTER,
            }
            .into_response()
        }
        Err(error) => {
            match &error {
                EnqueueError::Store(_) => {
                    tracing::error!(request_id = log_id, source = %source.name, %error, "a verified event could not be stored; answered 503 so the sender retries");
                }
                _ => {
                    tracing::warn!(request_id = log_id, source = %source.name, %error, "a verified event was not queued; answered 503")
                }
            }
            unavailable()
        }
    }
}
