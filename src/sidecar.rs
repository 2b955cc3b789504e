//! The outbound sidecar endpoint, on the durable delivery engine. A local application POSTs
//! an event to `/outbound/<target>`; hookgate stores it (fsynced) and only then answers `202`
//! with the delivery id and the event id; the [`Engine`] delivers it with the target's scheme,
//! secret and retry policy, across restarts.
//!
//! - `X-Hookgate-Event-Id` names the event (default: a fresh `evt_…`); the same id posted
//!   again for the same target is not stored twice: the answer is `200` with the stored
//!   delivery's id and `"duplicate": true`.
//! - `X-Hookgate-Event-Type` is the event type (signed by presets that sign it).
//! - A paused or disabled target refuses new events with `503` + `Retry-After`; stored ones
//!   wait. `POST /outbound/<target>/resume` makes it active again; `GET /outbound/<target>`
//!   reports its health.
//! - A store that cannot commit answers `503`: nothing is acknowledged that is not durable.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::delivery::{Engine, EnqueueError, NewDelivery, TargetMode};
use crate::sender::format::{render_template, TemplateValues};
use crate::sender::now_secs;
use crate::sender::outbound::OutboundConfig;
use crate::sender::sample::new_id;

/// Largest event body accepted from the local application.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// The text form of a delivery id (`dlv_<n>`), as the endpoints answer it.
pub fn delivery_label(id: i64) -> String {
    format!("dlv_{id}")
}

/// The delivery id in `dlv_<n>` or `<n>`.
pub fn parse_delivery_label(text: &str) -> Option<i64> {
    text.strip_prefix("dlv_").unwrap_or(text).parse().ok()
}

use crate::answer::{error, json, Answer};

/// The running sidecar endpoint: the targets' templates and the engine.
#[derive(Clone)]
pub struct Sidecar {
    engine: Engine,
    /// Body template per target (`None`: the posted body as it is).
    templates: Arc<HashMap<String, Option<String>>>,
}

impl Sidecar {
    /// The endpoint for `config`'s targets, delivering through `engine` (started with them).
    pub fn new(config: &OutboundConfig, engine: Engine) -> Self {
        let templates = config
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.template.clone()))
            .collect();
        Sidecar {
            engine,
            templates: Arc::new(templates),
        }
    }

    /// The engine deliveries go through.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Renders the body for `target` and stores it durably.
    async fn enqueue(
        &self,
        target: &str,
        body: Bytes,
        event_id: Option<String>,
        event_type: Option<String>,
    ) -> Result<Answer, Answer> {
        let Some(template) = self.templates.get(target) else {
            return Err(error(
                StatusCode::NOT_FOUND,
                "unknown_target",
                "no outbound target with this name",
            ));
        };
        let id = event_id.unwrap_or_else(|| new_id("evt_"));
        let body = match template {
            None => body,
            Some(template) => {
                let bad = |m: String| {
                    error(
                        StatusCode::BAD_REQUEST,
                        "bad_event",
                        &format!("the event does not fit the target's body template: {m}"),
                    )
                };
                let payload = std::str::from_utf8(&body)
                    .ok()
                    .filter(|text| serde_json::from_str::<serde_json::Value>(text).is_ok())
                    .ok_or_else(|| bad("the payload is not JSON".into()))?;
                let values = TemplateValues {
                    payload,
                    unix_secs: now_secs(),
                    event_type: event_type.as_deref().unwrap_or(""),
                    event_id: &id,
                };
                Bytes::from(render_template(template, &values).map_err(|e| bad(e.to_string()))?)
            }
        };
        let enqueued = self
            .engine
            .enqueue(NewDelivery {
                target: target.to_string(),
                event_id: id.clone(),
                event_type,
                body,
                headers: Vec::new(),
                not_before_ms: None,
            })
            .await
            .map_err(|e| refusal(&e))?;
        let (status, duplicate) = match enqueued.created {
            true => (StatusCode::ACCEPTED, false),
            false => (StatusCode::OK, true),
        };
        Ok(json(
            status,
            &serde_json::json!({
                "delivery_id": delivery_label(enqueued.id),
                "event_id": id,
                "duplicate": duplicate,
            }),
        ))
    }

    /// The HTTP service of the outbound listener.
    pub async fn handle(&self, req: http::Request<Incoming>) -> Answer {
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix("/outbound/") else {
            return error(StatusCode::NOT_FOUND, "unknown_target", "no such endpoint");
        };
        let (name, action) = match rest.split_once('/') {
            Some((name, action)) => (name.to_string(), Some(action.to_string())),
            None => (rest.to_string(), None),
        };
        let unknown = || {
            error(
                StatusCode::NOT_FOUND,
                "unknown_target",
                "no outbound target with this name",
            )
        };
        match (req.method().clone(), action.as_deref()) {
            (Method::POST, None) => self.accept(&name, req).await,
            (Method::POST, Some("resume")) => match self.engine.resume(&name).await {
                Ok(true) => json(StatusCode::OK, &serde_json::json!({"status": "resumed"})),
                Ok(false) => unknown(),
                Err(e) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    &e.to_string(),
                ),
            },
            (Method::GET, None) => match self.engine.target(&name).await {
                Some(status) => {
                    let mut value = serde_json::to_value(&status).expect("serialisable");
                    value["paused"] = (status.health.mode != TargetMode::Active).into();
                    json(StatusCode::OK, &value)
                }
                None => unknown(),
            },
            (_, None) | (_, Some("resume")) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use POST (or GET for status)",
            ),
            _ => error(StatusCode::NOT_FOUND, "unknown_target", "no such endpoint"),
        }
    }

    async fn accept(&self, name: &str, req: http::Request<Incoming>) -> Answer {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let event_id = header("x-hookgate-event-id").filter(|id| !id.is_empty());
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
        match self.enqueue(name, body, event_id, event_type).await {
            Ok(answer) | Err(answer) => answer,
        }
    }

    /// A tower service for [`crate::server::run`].
    pub fn service(
        &self,
    ) -> impl tower::Service<
        http::Request<Incoming>,
        Response = Answer,
        Error = Infallible,
        Future = impl std::future::Future<Output = Result<Answer, Infallible>> + Send,
    > + Clone
           + Send
           + 'static {
        let sidecar = self.clone();
        tower::service_fn(move |req| {
            let sidecar = sidecar.clone();
            async move { Ok::<_, Infallible>(sidecar.handle(req).await) }
        })
    }
}

/// The answer to an event the engine did not accept.
fn refusal(e: &EnqueueError) -> Answer {
    let (status, code) = match e {
        EnqueueError::UnknownTarget => (StatusCode::NOT_FOUND, "unknown_target"),
        EnqueueError::Paused(_) => (StatusCode::SERVICE_UNAVAILABLE, "target_paused"),
        EnqueueError::Disabled(_) => (StatusCode::SERVICE_UNAVAILABLE, "target_disabled"),
        EnqueueError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        EnqueueError::Full(_) => (StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
        EnqueueError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
    };
    if let EnqueueError::Store(error) = e {
        tracing::error!(%error, "an outbound event could not be stored; refused with 503");
    }
    let mut answer = error(status, code, &e.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    }
    answer
}
