//! The admin endpoints of the durable delivery engine:
//!
//! - `GET /deliveries?state=pending|delivered|failed&target=<name>&limit=<n>&before=<id>`:
//!   deliveries newest first, at most 500 (default 100); `next_before`
//!   pages on.
//! - `GET /deliveries/<id>`: one delivery and its kept attempts (status, latency, error; never
//!   the body).
//! - `POST /deliveries/<id>/redeliver`: a delivered or failed delivery attempted again now.
//! - `GET /targets`, `POST /targets/<name>/pause`, `POST /targets/<name>/resume`.
//!
//! Without an engine (no `[outbound]` and no queued source) they answer `404 delivery_off`.

use http::{Method, StatusCode};

use super::Admin;
use crate::answer::{error, json, Answer};
use crate::delivery::{DeliveryState, DeliverySummary, Engine, ListFilter, StoreError};
use crate::sidecar::{delivery_label, parse_delivery_label};

/// Deliveries listed when no `limit` is given.
const DEFAULT_LIST: usize = 100;
/// The most deliveries one listing answers.
const MAX_LIST: usize = 500;

/// Whether `path` is one of these endpoints.
pub(super) fn owns(path: &str) -> bool {
    ["/deliveries", "/targets"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

fn summary(s: &DeliverySummary) -> serde_json::Value {
    let mut value = serde_json::to_value(s).expect("summaries serialise");
    value["id"] = delivery_label(s.id).into();
    value
}

fn store_error(e: &StoreError) -> Answer {
    match e {
        StoreError::NotFound(_) => error(
            StatusCode::NOT_FOUND,
            "unknown_delivery",
            "no delivery with this id",
        ),
        StoreError::StillPending(_) => error(
            StatusCode::CONFLICT,
            "still_pending",
            "the delivery is still pending; it is attempted on its schedule",
        ),
        other => {
            tracing::warn!(error = %other, "delivery store call failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "delivery_store_unavailable",
                &other.to_string(),
            )
        }
    }
}

fn bad_request(message: &str) -> Answer {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn unknown_target() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "unknown_target",
        "no delivery target with this name",
    )
}

/// The listing's filter from a query string.
/// A refusal is the `bad_request` message.
fn filter(query: Option<&str>) -> Result<ListFilter, &'static str> {
    let mut filter = ListFilter {
        limit: DEFAULT_LIST,
        ..ListFilter::default()
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "state" => {
                filter.state = Some(match value {
                    "pending" => DeliveryState::Pending,
                    "delivered" => DeliveryState::Delivered,
                    "failed" => DeliveryState::Failed,
                    _ => return Err("state is pending, delivered or failed"),
                })
            }
            "target" => filter.target = Some(value.to_string()),
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIST).contains(&n) => filter.limit = n,
                _ => return Err("limit is a number from 1 to 500"),
            },
            "before" => match parse_delivery_label(value) {
                Some(id) => filter.before_id = Some(id),
                None => return Err("before is a delivery id (dlv_<n>)"),
            },
            _ => return Err("known parameters: state, target, limit, before"),
        }
    }
    Ok(filter)
}

impl Admin {
    /// Answers a call to one of these endpoints (see [`owns`]).
    pub(super) async fn deliveries(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Answer {
        let Some(engine) = &self.engine else {
            return error(
                StatusCode::NOT_FOUND,
                "delivery_off",
                "no delivery engine runs: configure [outbound] to deliver through it",
            );
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            (&Method::GET, ["deliveries"]) => list(engine, query).await,
            (&Method::GET, ["deliveries", id]) => match parse_delivery_label(id) {
                None => unknown_delivery(),
                Some(id) => match engine.get(id).await {
                    Ok(Some(detail)) => json(
                        StatusCode::OK,
                        &serde_json::json!({
                            "delivery": summary(&detail.delivery),
                            "attempts": detail.attempts,
                        }),
                    ),
                    Ok(None) => unknown_delivery(),
                    Err(e) => store_error(&e),
                },
            },
            (&Method::POST, ["deliveries", id, "redeliver"]) => match parse_delivery_label(id) {
                None => unknown_delivery(),
                Some(id) => match engine.redeliver(id).await {
                    Ok(s) => {
                        tracing::info!(delivery = id, target = %s.target, "redelivery requested by operator");
                        json(
                            StatusCode::ACCEPTED,
                            &serde_json::json!({"redelivering": true, "delivery": summary(&s)}),
                        )
                    }
                    Err(e) => store_error(&e),
                },
            },
            (&Method::GET, ["targets"]) => json(
                StatusCode::OK,
                &serde_json::json!({"targets": engine.targets().await}),
            ),
            (&Method::POST, ["targets", name, action @ ("pause" | "resume")]) => {
                let changed = if *action == "pause" {
                    engine.pause(name).await
                } else {
                    engine.resume(name).await
                };
                match changed {
                    Ok(false) => unknown_target(),
                    Ok(true) => match engine.target(name).await {
                        Some(status) => json(StatusCode::OK, &status),
                        None => unknown_target(),
                    },
                    Err(e) => store_error(&e),
                }
            }
            (_, ["deliveries"] | ["deliveries", _] | ["targets"])
            | (_, ["deliveries", _, "redeliver"] | ["targets", _, "pause" | "resume"]) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "wrong method",
            ),
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
        }
    }
}

fn unknown_delivery() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "unknown_delivery",
        "no delivery with this id",
    )
}

async fn list(engine: &Engine, query: Option<&str>) -> Answer {
    let filter = match filter(query) {
        Ok(f) => f,
        Err(message) => return bad_request(message),
    };
    let limit = filter.limit;
    match engine.list(filter).await {
        Ok(found) => {
            let next = (found.len() == limit)
                .then(|| found.last().map(|s| delivery_label(s.id)))
                .flatten();
            let deliveries: Vec<_> = found.iter().map(summary).collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"deliveries": deliveries, "next_before": next}),
            )
        }
        Err(e) => store_error(&e),
    }
}
