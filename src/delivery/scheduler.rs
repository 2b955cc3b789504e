//! The scheduler: one task that claims the due deliveries of every active target (as many as
//! the target has free concurrency slots), starts their attempts, then sleeps — through the
//! injected [`Sleeper`](crate::sender::deliver::Sleeper) — until the earliest next due time
//! or a wake-up (an enqueue, a finished attempt, a resume, a redelivery).
//!
//! An attempt signs afresh (new timestamp and delivery id; the event id stays), posts with
//! the policy's timeout, decides what follows ([`next_step`]) and the target's health
//! ([`after_attempt`]), and records all of it in one commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;

use super::engine::{Inner, TargetRt, TargetSpec};
use super::metrics::AttemptKind;
use super::policy::{after_attempt, millis, next_step};
use super::store::*;
use crate::sender::retry::{classify, Verdict};
use crate::sender::OutboundEvent;

/// How long the scheduler backs off after a store error.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

/// The scheduler loop; returns after a graceful shutdown.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut attempts = JoinSet::new();
    while !inner.stopping.load(Ordering::SeqCst) {
        let wake = inner.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        while attempts.try_join_next().is_some() {}
        let now = inner.now_ms();
        let mut eligible = Vec::new();
        let mut failed = false;
        let targets = inner.targets.load_full();
        for rt in targets.values() {
            if rt.mode() != TargetMode::Active {
                continue;
            }
            let spec = rt.spec.load_full();
            let free = rt.permits.available_permits();
            if free > 0 {
                let lease = now + millis(spec.retry.timeout + inner.options.lease_margin);
                match inner.store.claim_due(&spec.name, now, lease, free).await {
                    Ok(claimed) => {
                        for delivery in claimed {
                            let Ok(permit) = rt.permits.clone().try_acquire_owned() else {
                                break;
                            };
                            attempts.spawn(attempt(inner.clone(), rt.clone(), delivery, permit));
                        }
                    }
                    Err(e) => {
                        tracing::error!(target = %spec.name, error = %e, "cannot claim due deliveries");
                        failed = true;
                    }
                }
            }
            if rt.permits.available_permits() > 0 {
                eligible.push(spec.name.clone());
            }
        }
        let next = match inner.store.next_due(eligible).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the next due delivery");
                failed = true;
                None
            }
        };
        let sleep = match (failed, next) {
            (true, _) => Some(STORE_BACKOFF),
            (false, Some(at)) if at <= now => continue,
            (false, Some(at)) => Some(Duration::from_millis(u64::try_from(at - now).unwrap_or(0))),
            (false, None) => None,
        };
        match sleep {
            Some(delay) => {
                tokio::select! {
                    () = inner.io.sleeper.sleep(delay) => {}
                    () = &mut wake => {}
                }
            }
            None => wake.await,
        }
    }
    let grace = inner.options.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while attempts.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight = attempts.len(),
            "attempts still running at shutdown are retried after restart"
        );
    }
}

/// The headers of one attempt: the stored ones, then the signer's.
fn attempt_headers(
    spec: &TargetSpec,
    delivery: &Claimed,
    unix_secs: i64,
    number: u32,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &delivery.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(signer) = &spec.signer {
        let event = OutboundEvent {
            body: delivery.body.clone(),
            id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
        };
        for (name, value) in &signer.headers(&event, unix_secs, number) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers
}

/// One attempt of a claimed delivery, recorded with what follows it.
async fn attempt(
    inner: Arc<Inner>,
    rt: Arc<TargetRt>,
    delivery: Claimed,
    permit: OwnedSemaphorePermit,
) {
    let spec = rt.spec.load_full();
    let started_ms = inner.now_ms();
    let number = delivery.attempts + 1;
    let headers = attempt_headers(&spec, &delivery, started_ms.div_euclid(1000), number);
    let client = spec.client.as_ref().unwrap_or(&inner.io.sender);
    let timer = Instant::now();
    let posted = tokio::time::timeout(
        spec.retry.timeout,
        client.post(&spec.url, headers, delivery.body.clone()),
    )
    .await;
    let latency = timer.elapsed();
    let (status, error, verdict) = match posted {
        Err(_) => (
            None,
            Some("timeout".to_string()),
            Verdict::Retry { after: None },
        ),
        Ok(Err(e)) => (None, Some(e), Verdict::Retry { after: None }),
        Ok(Ok((status, headers, _))) => (Some(status.as_u16()), None, classify(status, &headers)),
    };
    let now = inner.now_ms();
    let outcome = next_step(
        &spec.retry,
        &inner.options.limits,
        delivery.cycle_attempts + 1,
        delivery.cycle_started_ms.unwrap_or(started_ms),
        now,
        verdict,
        status,
    );
    let kind = match outcome {
        AttemptOutcome::Delivered => AttemptKind::Success,
        AttemptOutcome::Retry { .. } => AttemptKind::Retry,
        AttemptOutcome::Failed { .. } => AttemptKind::Final,
    };
    let no_answer = error.as_ref().map(|e| e == "timeout");
    let record = AttemptRecord {
        number,
        started_ms,
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        status,
        error,
    };
    tracing::info!(
        target = %spec.name,
        delivery = delivery.id,
        attempt = number,
        status = ?record.status,
        error = ?record.error,
        latency_ms = record.latency_ms,
        outcome = ?outcome,
        "delivery attempt"
    );
    let mut health = rt.health.lock().await;
    let next = after_attempt(&health, &spec.health, now, status, &outcome);
    let history = inner.options.limits.history;
    match inner
        .store
        .record_attempt(delivery.id, record, outcome, next.clone(), history)
        .await
    {
        Ok(()) => {
            inner.counters.attempt(kind, no_answer);
            if kind != AttemptKind::Retry {
                inner.pending.fetch_sub(1, Ordering::SeqCst);
            }
            rt.counters.attempt(kind, no_answer);
            if next.mode != health.mode {
                tracing::warn!(
                    target = %spec.name,
                    mode = ?next.mode,
                    reason = next.reason.as_deref().unwrap_or(""),
                    "delivery target stopped; resume it to deliver again"
                );
            }
            rt.mode.store(next.mode.code(), Ordering::SeqCst);
            *health = next;
        }
        // The delivery stays leased until restart, when it is attempted again: not lost.
        Err(e) => tracing::error!(
            target = %spec.name,
            delivery = delivery.id,
            error = %e,
            "cannot record an attempt; the delivery is retried after restart"
        ),
    }
    drop(health);
    drop(permit);
    inner.wake.notify_one();
}
