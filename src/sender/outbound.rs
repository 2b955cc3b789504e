//! The outbound sidecar endpoint. A local application POSTs an event to
//! `/outbound/<target>`; hookgate answers `202` with a delivery id and delivers it in the
//! background with the target's scheme, secret and retry policy.
//!
//! - Each target has a bounded in-memory queue: when it is full the answer is `503` (never a
//!   silent drop). **Queued deliveries do not survive a restart.**
//! - A target pauses after `pause_after` consecutive failed deliveries (Corgea pauses after
//!   10) and says so in the log; new events are refused with `503` while paused, queued ones
//!   wait. `POST /outbound/<target>/resume` lifts the pause.
//! - `GET /outbound/<target>` reports the target's state.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::{mpsc, Mutex, Notify};

use super::deliver::{AttemptResult, DeliveryOutcome, Sender, Sleeper};
use super::format::{render_template, TemplateValues};
use super::retry::RetryPolicy;
use super::sample::new_id;
use super::{now_secs, OutboundEvent, Signer};
use crate::metrics::Metrics;

/// Largest event body accepted from the local application.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// A configured delivery target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub url: Uri,
    pub signer: Signer,
    pub retry: RetryPolicy,
    /// Consecutive failed deliveries before the target pauses.
    pub pause_after: u32,
    /// Deliveries in progress at once.
    pub concurrency: usize,
    /// Corgea-style body template; `None` sends the posted body as it is.
    pub template: Option<String>,
}

/// The outbound listener's configuration.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub listen: SocketAddr,
    /// Queued deliveries per target.
    pub queue: usize,
    pub targets: Vec<Target>,
}

struct Job {
    delivery_id: String,
    event: OutboundEvent,
}

struct TargetState {
    target: Target,
    label: Arc<str>,
    tx: mpsc::Sender<Job>,
    rx: Mutex<mpsc::Receiver<Job>>,
    queued: AtomicUsize,
    paused: AtomicBool,
    resumed: Notify,
    consecutive_failures: AtomicU32,
    delivered: AtomicU64,
    failed: AtomicU64,
    attempts: AtomicU64,
}

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    #[error("no outbound target with this name")]
    UnknownTarget,
    #[error("the target is paused after repeated failures; resume it first")]
    Paused,
    #[error("the target's queue is full; retry later")]
    QueueFull,
    #[error("the event does not fit the target's body template: {0}")]
    Template(String),
}

impl EnqueueError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            EnqueueError::UnknownTarget => (StatusCode::NOT_FOUND, "unknown_target"),
            EnqueueError::Paused => (StatusCode::SERVICE_UNAVAILABLE, "target_paused"),
            EnqueueError::QueueFull => (StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
            EnqueueError::Template(_) => (StatusCode::BAD_REQUEST, "bad_event"),
        }
    }
}

/// A target's state, as reported by `GET /outbound/<target>`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetStatus {
    pub name: String,
    pub paused: bool,
    pub queued: usize,
    pub consecutive_failures: u32,
    pub delivered: u64,
    pub failed: u64,
    pub attempts: u64,
}

/// The running outbound side: queues and their workers.
#[derive(Clone)]
pub struct Outbound {
    targets: Arc<HashMap<String, Arc<TargetState>>>,
}

impl Outbound {
    /// Creates the queues and starts each target's workers.
    pub fn start(
        config: &OutboundConfig,
        sender: Sender,
        sleeper: Arc<dyn Sleeper>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut targets = HashMap::new();
        for target in &config.targets {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            let state = Arc::new(TargetState {
                target: target.clone(),
                label: Arc::from(target.name.as_str()),
                tx,
                rx: Mutex::new(rx),
                queued: AtomicUsize::new(0),
                paused: AtomicBool::new(false),
                resumed: Notify::new(),
                consecutive_failures: AtomicU32::new(0),
                delivered: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                attempts: AtomicU64::new(0),
            });
            for _ in 0..target.concurrency.max(1) {
                tokio::spawn(work(
                    state.clone(),
                    sender.clone(),
                    sleeper.clone(),
                    metrics.clone(),
                ));
            }
            targets.insert(target.name.clone(), state);
        }
        Outbound {
            targets: Arc::new(targets),
        }
    }

    /// Queues one event; returns its delivery id and event id.
    pub fn enqueue(
        &self,
        target: &str,
        body: Bytes,
        event_id: Option<String>,
        event_type: Option<String>,
    ) -> Result<(String, String), EnqueueError> {
        let state = self
            .targets
            .get(target)
            .ok_or(EnqueueError::UnknownTarget)?;
        if state.paused.load(Ordering::SeqCst) {
            return Err(EnqueueError::Paused);
        }
        let id = event_id.unwrap_or_else(|| new_id("evt_"));
        let body = match &state.target.template {
            None => body,
            Some(template) => {
                let payload = std::str::from_utf8(&body)
                    .ok()
                    .filter(|text| serde_json::from_str::<serde_json::Value>(text).is_ok())
                    .ok_or_else(|| EnqueueError::Template("the payload is not JSON".into()))?;
                let values = TemplateValues {
                    payload,
                    unix_secs: now_secs(),
                    event_type: event_type.as_deref().unwrap_or(""),
                    event_id: &id,
                };
                let rendered = render_template(template, &values)
                    .map_err(|e| EnqueueError::Template(e.to_string()))?;
                Bytes::from(rendered)
            }
        };
        let delivery_id = new_id("dlv_");
        let job = Job {
            delivery_id: delivery_id.clone(),
            event: OutboundEvent {
                body,
                id: id.clone(),
                event_type,
            },
        };
        state.queued.fetch_add(1, Ordering::SeqCst);
        if state.tx.try_send(job).is_err() {
            state.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EnqueueError::QueueFull);
        }
        Ok((delivery_id, id))
    }

    /// Lifts a pause. Returns false for an unknown target.
    pub fn resume(&self, target: &str) -> bool {
        let Some(state) = self.targets.get(target) else {
            return false;
        };
        state.consecutive_failures.store(0, Ordering::SeqCst);
        state.paused.store(false, Ordering::SeqCst);
        state.resumed.notify_waiters();
        tracing::info!(target = %target, "outbound target resumed");
        true
    }

    /// Updates the queue-depth gauges (called on scrape).
    pub fn record_queues(&self, metrics: &Metrics) {
        for state in self.targets.values() {
            metrics.outbound_queue(&state.label, state.queued.load(Ordering::SeqCst));
        }
    }

    pub fn status(&self, target: &str) -> Option<TargetStatus> {
        let s = self.targets.get(target)?;
        Some(TargetStatus {
            name: target.to_string(),
            paused: s.paused.load(Ordering::SeqCst),
            queued: s.queued.load(Ordering::SeqCst),
            consecutive_failures: s.consecutive_failures.load(Ordering::SeqCst),
            delivered: s.delivered.load(Ordering::SeqCst),
            failed: s.failed.load(Ordering::SeqCst),
            attempts: s.attempts.load(Ordering::SeqCst),
        })
    }

    /// The HTTP service of the outbound listener.
    pub async fn handle(&self, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix("/outbound/") else {
            return error(StatusCode::NOT_FOUND, "unknown_target", "no such endpoint");
        };
        let (name, action) = match rest.split_once('/') {
            Some((name, action)) => (name.to_string(), Some(action.to_string())),
            None => (rest.to_string(), None),
        };
        match (req.method().clone(), action.as_deref()) {
            (Method::POST, None) => self.accept(&name, req).await,
            (Method::POST, Some("resume")) => match self.resume(&name) {
                true => json(StatusCode::OK, &serde_json::json!({"status": "resumed"})),
                false => error(
                    StatusCode::NOT_FOUND,
                    "unknown_target",
                    "no outbound target with this name",
                ),
            },
            (Method::GET, None) => match self.status(&name) {
                Some(status) => json(StatusCode::OK, &status),
                None => error(
                    StatusCode::NOT_FOUND,
                    "unknown_target",
                    "no outbound target with this name",
                ),
            },
            (_, None) | (_, Some("resume")) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use POST (or GET for status)",
            ),
            _ => error(StatusCode::NOT_FOUND, "unknown_target", "no such endpoint"),
        }
    }

    async fn accept(
        &self,
        name: &str,
        req: http::Request<Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let event_id = header("x-hookgate-event-id");
        let event_type = header("x-hookgate-event-type");
        let body = match Limited::new(req.into_body(), MAX_EVENT_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "events are limited to 1 MiB",
                )
            }
        };
        match self.enqueue(name, body, event_id, event_type) {
            Ok((delivery_id, event_id)) => json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"delivery_id": delivery_id, "event_id": event_id}),
            ),
            Err(e) => {
                let (status, code) = e.status();
                let mut response = error(status, code, &e.to_string());
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                }
                response
            }
        }
    }

    /// A tower service for [`crate::server::run`].
    pub fn service(
        &self,
    ) -> impl tower::Service<
        http::Request<Incoming>,
        Response = http::Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl std::future::Future<Output = Result<http::Response<Full<Bytes>>, Infallible>>
                     + Send,
    > + Clone
           + Send
           + 'static {
        let outbound = self.clone();
        tower::service_fn(move |req| {
            let outbound = outbound.clone();
            async move { Ok::<_, Infallible>(outbound.handle(req).await) }
        })
    }
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> http::Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).expect("serialisable");
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> http::Response<Full<Bytes>> {
    json(
        status,
        &serde_json::json!({"error": code, "message": message}),
    )
}

/// One worker of a target: takes jobs in order and delivers them.
async fn work(
    state: Arc<TargetState>,
    sender: Sender,
    sleeper: Arc<dyn Sleeper>,
    metrics: Arc<Metrics>,
) {
    loop {
        let job = {
            let mut rx = state.rx.lock().await;
            // Hold back while paused; queued jobs wait for the resume.
            loop {
                let resumed = state.resumed.notified();
                if !state.paused.load(Ordering::SeqCst) {
                    break;
                }
                resumed.await;
            }
            rx.recv().await
        };
        let Some(job) = job else { return };
        state.queued.fetch_sub(1, Ordering::SeqCst);
        let target = &state.target;
        let report = sender
            .deliver(
                &target.url,
                &target.signer,
                &job.event,
                &target.retry,
                sleeper.as_ref(),
                |attempt| {
                    state.attempts.fetch_add(1, Ordering::SeqCst);
                    match &attempt.result {
                        AttemptResult::Status(s) => {
                            metrics.outbound_attempt(&state.label, Some(*s), "")
                        }
                        AttemptResult::Timeout => {
                            metrics.outbound_attempt(&state.label, None, "timeout")
                        }
                        AttemptResult::Error(_) => {
                            metrics.outbound_attempt(&state.label, None, "error")
                        }
                    }
                    tracing::info!(
                        target = %target.name,
                        delivery = %job.delivery_id,
                        "{attempt}"
                    );
                },
            )
            .await;
        match report.outcome {
            DeliveryOutcome::Delivered => {
                metrics.outbound_delivery(&state.label, "delivered");
                state.consecutive_failures.store(0, Ordering::SeqCst);
                state.delivered.fetch_add(1, Ordering::SeqCst);
                tracing::info!(target = %target.name, delivery = %job.delivery_id, attempts = report.attempts.len(), "delivered");
            }
            outcome => {
                let kind = match outcome {
                    DeliveryOutcome::Rejected(_) => "rejected",
                    _ => "exhausted",
                };
                metrics.outbound_delivery(&state.label, kind);
                state.failed.fetch_add(1, Ordering::SeqCst);
                let failures = state.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::warn!(target = %target.name, delivery = %job.delivery_id, ?outcome, attempts = report.attempts.len(), "delivery failed");
                if failures >= target.pause_after && !state.paused.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        target = %target.name,
                        failures,
                        "outbound target paused after consecutive failures; POST /outbound/{}/resume to lift",
                        target.name
                    );
                }
            }
        }
    }
}
