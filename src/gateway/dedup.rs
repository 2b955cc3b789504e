//! Deduplication in front of the upstream, keeping the rule that never loses an event:
//! claim the key (absent → in flight), forward, then mark it delivered only on a 2xx; on any
//! other answer, a timeout or a crash, release it so the sender's retry goes through.
//!
//! - duplicate of a delivered event → 200 with `X-Hookgate-Duplicate: delivered`, not forwarded;
//! - duplicate of an in-flight event → waits for the first copy's outcome, at most the source's
//!   `inflight_wait`: delivered → the duplicate answer (200); released → this request claims
//!   the key and is forwarded; still pending → 503 `in_flight` with `Retry-After` (a status
//!   every provider retries; a 4xx would be final for senders that never retry one).
//!
//! The wait is event-driven: the request registers with the store's waiters, re-reads the key,
//! and sleeps until the key settles (a local wake-up, or for Redis a message on the process's
//! one pub/sub subscription), with one final read when the wait ends. No polling.
//!
//! A promote that fails after a 2xx (Redis only) is never allowed to open a replay: the store
//! retries it, keeps the key delivered in process, and this layer warns and counts it.
//!
//! The forward runs inline in the request's future under a [`Detached`] guard: if the sender
//! hangs up mid-request, the rest of it moves to a task instead of being cancelled, so the
//! claim's fate always matches what the upstream actually did.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use smallvec::{smallvec, SmallVec};
use tower::{Layer, Service};

use super::detach::Detached;
use super::facts::Facts;
use super::fields::BodyFields;
use super::held::{Held, PerCopy};
use super::outstanding::{self, Outstanding, Slot};
use super::rejection::Rejection;
use super::{full_body, shadow, BoxFuture, EventId, Outcome, RequestId, Response};
use crate::dedup::{ClaimOutcome, DedupKey, DedupStore, StoreError};
use crate::extract::{HeaderLookup, JsonError, ValueSource};
use crate::metrics::Metrics;
use crate::source::{DedupPolicy, MissingId, Source};

/// How much longer than the upstream timeout an in-flight claim lives, so it never lapses
/// while its request is still running (and still lapses if its holder dies).
const CLAIM_MARGIN: Duration = Duration::from_secs(5);
/// Retry-After when the store cannot answer.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(super) struct DedupLayer<D> {
    store: D,
    outstanding: Outstanding,
    metrics: Arc<Metrics>,
}

impl<D> DedupLayer<D> {
    pub(super) fn new(store: D, outstanding: Outstanding, metrics: Arc<Metrics>) -> Self {
        DedupLayer {
            store,
            outstanding,
            metrics,
        }
    }
}

impl<S, D: Clone> Layer<S> for DedupLayer<D> {
    type Service = Dedup<S, D>;

    fn layer(&self, inner: S) -> Dedup<S, D> {
        Dedup {
            inner: Held::new(inner),
            parts: PerCopy::new(Parts {
                store: self.store.clone(),
                outstanding: self.outstanding.clone(),
                metrics: self.metrics.clone(),
            }),
        }
    }
}

#[derive(Clone)]
pub(super) struct Dedup<S, D> {
    /// Called once the keys are claimed; held per copy of the stack, not cloned per request.
    inner: Held<S>,
    parts: PerCopy<Parts<D>>,
}

/// A delivery's dedup keys: one to three (event id, body digest, transmission id), inline.
pub(super) type Keys = SmallVec<[DedupKey; 3]>;

/// The keys a delivery claims, and its event id if it has one.
pub(super) fn keys_for(
    source: &Source,
    policy: &DedupPolicy,
    req: &http::Request<Bytes>,
    fields: &BodyFields,
) -> Result<(Keys, Option<String>), Rejection> {
    let reject_missing = policy.on_missing == MissingId::Reject;
    let id = match &policy.id {
        None => None,
        Some(ValueSource::Body(path)) => match fields.get(source, path) {
            Ok(value) => value.and_then(|v| v.as_id()),
            // A key given twice is refused, never guessed: the receiver might read the other one.
            Err(error @ JsonError::DuplicateKey(_)) => {
                return Err(Rejection::BadJson {
                    reason: error.to_string(),
                })
            }
            Err(error) if reject_missing => {
                return Err(Rejection::BadJson {
                    reason: error.to_string(),
                })
            }
            Err(_) => None,
        },
        Some(header @ ValueSource::Header(_)) => match header.header(req.headers()) {
            HeaderLookup::Value(v) if !v.is_empty() => Some(v.to_string()),
            _ => None,
        },
        Some(ValueSource::SignatureParam(_)) => None,
    };
    let body_key = || DedupKey::for_body(&policy.scope, req.body());
    let mut keys = match &id {
        Some(id) if policy.id_signed => smallvec![DedupKey::for_id(&policy.scope, id.as_bytes())],
        // An unsigned id can be rewritten by a replayer; the body digest cannot.
        Some(id) => smallvec![DedupKey::for_id(&policy.scope, id.as_bytes()), body_key()],
        None if reject_missing => return Err(Rejection::MissingEventId),
        None => smallvec![body_key()],
    };
    if let Some(name) = &policy.transmission_key {
        // Verified before this layer, so present and signed.
        if let Some(value) = req.headers().get(name) {
            let tagged = [b"transmission\0".as_slice(), value.as_bytes()].concat();
            keys.push(DedupKey::for_id(&policy.scope, &tagged));
        }
    }
    Ok((keys, id))
}

/// What a dedup layer's requests use, one copy per copy of the stack ([`PerCopy`]).
#[derive(Clone)]
struct Parts<D> {
    store: D,
    outstanding: Outstanding,
    metrics: Arc<Metrics>,
}

/// The claims one request holds. Dropped unsettled (a panic, a cancelled task): released.
struct Claims<D: DedupStore + Clone> {
    parts: PerCopy<Parts<D>>,
    source: Arc<str>,
    /// For the warnings of a claim that cannot be settled.
    request_id: Option<RequestId>,
    held: outstanding::Claims,
    /// Where the claims are registered in `parts.outstanding` while the request is in
    /// progress.
    tracked: Option<Slot>,
}

impl<D: DedupStore + Clone> Claims<D> {
    fn untrack(&mut self) {
        if let Some(slot) = self.tracked.take() {
            self.parts.outstanding.settle(slot);
        }
    }

    async fn complete(mut self, ttl: Duration) {
        self.untrack();
        for (key, token) in std::mem::take(&mut self.held) {
            if let Err(error) = self.parts.store.complete(key, token, ttl).await {
                self.parts.metrics.dedup_promote_deferred(&self.source);
                tracing::warn!(
                    request_id = RequestId::log_str(self.request_id.as_ref()),
                    source = %self.source,
                    %error,
                    "could not mark an event delivered in the dedup store");
            }
        }
    }

    async fn release(mut self) {
        self.untrack();
        for (key, token) in std::mem::take(&mut self.held) {
            if let Err(error) = self.parts.store.release(key, token).await {
                tracing::warn!(
                    request_id = RequestId::log_str(self.request_id.as_ref()),
                    %error,
                    "could not release a dedup claim; it will lapse by itself"
                );
            }
        }
    }
}

impl<D: DedupStore + Clone> Drop for Claims<D> {
    /// Releases the claims from a task, and only then takes them off the outstanding list. A
    /// task that never runs (its runtime is shutting down: a per-core serving thread ending
    /// after the grace period drops its requests) leaves them listed, so
    /// [`Outstanding::take_all`] still releases them.
    fn drop(&mut self) {
        let tracked = self.tracked.take();
        if self.held.is_empty() {
            if let Some(slot) = tracked {
                self.parts.outstanding.settle(slot);
            }
            return;
        }
        let held = std::mem::take(&mut self.held);
        let parts = self.parts.handle();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for (key, token) in held {
                    let _ = parts.store.release(key, token).await;
                }
                if let Some(slot) = tracked {
                    parts.outstanding.settle(slot);
                }
            });
        }
    }
}

/// How long a request may wait, in all, for its keys' holders to settle: the clock is read
/// only when a key is first found in flight (rare), not for every request.
enum Wait {
    /// Nobody has waited yet: the time allowed.
    For(Duration),
    /// The waiting began: until when it may go on.
    Until(tokio::time::Instant),
}

impl Wait {
    fn deadline(&mut self) -> tokio::time::Instant {
        let deadline = match *self {
            Wait::For(allowed) => tokio::time::Instant::now() + allowed,
            Wait::Until(deadline) => deadline,
        };
        *self = Wait::Until(deadline);
        deadline
    }
}

/// Claims `key`; while another request holds it, waits (as long as `wait` still allows) for it
/// to settle and claims again. Returns `InFlight` only if it is still held when the wait ends.
async fn claim_or_wait<D: DedupStore>(
    store: &D,
    key: DedupKey,
    in_flight_ttl: Duration,
    wait: &mut Wait,
) -> Result<ClaimOutcome, StoreError> {
    let first = store.claim(key, in_flight_ttl).await?;
    if first != ClaimOutcome::InFlight {
        return Ok(first);
    }
    let deadline = wait.deadline();
    loop {
        // Register before re-reading, so a settlement in between still wakes us.
        let settled = store.watch(key);
        match store.claim(key, in_flight_ttl).await? {
            ClaimOutcome::InFlight => {}
            other => return Ok(other),
        }
        if tokio::time::timeout_at(deadline, settled.wait())
            .await
            .is_err()
        {
            // One final read: the holder may have died and its claim lapsed.
            return store.claim(key, in_flight_ttl).await;
        }
    }
}

/// The answer to a repeat of a delivered (or, for a queued source, stored) event.
pub(super) fn duplicate_response() -> Response {
    let body = r#"{"status":"duplicate","message":"this event was already delivered; it was not forwarded again"}"#;
    let mut response = http::Response::new(full_body(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-hookgate-duplicate",
        HeaderValue::from_static("delivered"),
    );
    Outcome::Duplicate.mark(response.extensions_mut());
    response
}

impl<S, D> Service<http::Request<Bytes>> for Dedup<S, D>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    D: DedupStore + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Bytes>) -> BoxFuture {
        let inner = self.inner.handle();
        let parts = self.parts.handle();
        Box::pin(async move {
            let (store, metrics) = (&parts.store, &parts.metrics);
            let source = req
                .extensions()
                .get::<Arc<Source>>()
                .cloned()
                .expect("the route layer runs first");
            let Some(policy) = &source.dedup else {
                return inner.call(req).await;
            };
            // Shadow mode: a delivery that failed a check is forwarded without claiming a key,
            // so a forgery can never hold back the real delivery of the same event.
            if shadow::failed(&req) {
                return inner.call(req).await;
            }
            let fields = BodyFields::of(&mut req);
            let (keys, id) = match keys_for(&source, policy, &req, &fields) {
                Ok(found) => found,
                Err(rejection) => {
                    return match shadow::refuse_or_record(&source, &mut req, rejection, metrics) {
                        Ok(()) => inner.call(req).await,
                        Err(rejection) => Ok(rejection.into_response()),
                    }
                }
            };
            if let Some(id) = id {
                Facts::of_mut(&mut req).event_id = Some(EventId {
                    id,
                    signed: policy.id_signed,
                });
            }
            let in_flight_ttl = source.upstream.timeout + CLAIM_MARGIN;
            let mut wait = Wait::For(policy.inflight_wait);
            let mut claims = Claims {
                parts: parts.handle(),
                source: source.name.clone(),
                request_id: Facts::of(&req).and_then(|f| f.request_id.clone()),
                held: SmallVec::new(),
                tracked: None,
            };
            for key in keys {
                let refusal = match claim_or_wait(store, key, in_flight_ttl, &mut wait).await {
                    Ok(ClaimOutcome::Claimed(token)) => {
                        claims.held.push((key, token));
                        continue;
                    }
                    Ok(ClaimOutcome::Delivered) => duplicate_response(),
                    Ok(ClaimOutcome::InFlight) => Rejection::InFlight {
                        retry_after: source.upstream.timeout.max(Duration::from_secs(1)),
                    }
                    .into_response(),
                    Err(error) if store.fails_open() => {
                        // Chosen by the operator: deliver without dedup rather than delay.
                        tracing::warn!(request_id = RequestId::of(&req), source = %source.name, %error, "dedup store failed; forwarding without dedup (fail_open)");
                        metrics.dedup_fail_open(&source.name);
                        claims.release().await;
                        return inner.call(req).await;
                    }
                    Err(error) => {
                        tracing::warn!(request_id = RequestId::of(&req), source = %source.name, %error, "dedup store failed; answering 503 (fail_closed)");
                        Rejection::DedupUnavailable {
                            retry_after: STORE_RETRY_AFTER,
                        }
                        .into_response()
                    }
                };
                claims.release().await;
                if !source.enforce {
                    // Shadow mode: duplicates (and a dedup store that cannot answer) are
                    // forwarded too, marked; they claim nothing.
                    let code = Outcome::of(refusal.extensions())
                        .map_or("duplicate", |outcome| outcome.as_str());
                    shadow::record(&source, &mut req, code, metrics);
                    return inner.call(req).await;
                }
                return Ok(refusal);
            }
            let ttl = policy.ttl;
            claims.tracked = Some(parts.outstanding.track(claims.held.clone()));
            // Inline on the request's own future; handed to a task only if the sender hangs up
            // before the upstream has answered (the claim must follow what the upstream did); then
            // it takes the request's span along, so the forward's warnings name the request.
            let delivery = Detached::new(async move {
                let response = match inner.call(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if response.status().is_success() {
                    claims.complete(ttl).await;
                } else {
                    claims.release().await;
                }
                response
            });
            Ok(delivery.await)
        })
    }
}
