//! Rejections: every way a request can be refused, and the one place that turns a refusal into
//! an HTTP answer (`{"error": "<code>", "message": "<text>"}` with the status that tells the
//! sender what to do). Messages describe the problem in general terms only: they never carry a
//! secret, an expected signature or any part of the body.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

use super::{full_body, Outcome, Response};

/// A refusal decided by one of the gateway's layers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no source is configured for this path")]
    UnknownSource,
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("body exceeds the source's limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body could not be read")]
    BodyRead,
    #[error("the request body was not received in time")]
    BodyTimeout,
    #[error("the signature header {header} is missing")]
    MissingSignature { header: http::HeaderName },
    #[error("the signature is not valid for this source: {reason}")]
    BadSignature { reason: &'static str },
    #[error("the authentication token is missing or wrong")]
    BadToken,
    #[error("the client address is not allowed for this source")]
    ForbiddenAddress,
    #[error("the delivery timestamp is missing")]
    MissingTimestamp,
    #[error("the delivery timestamp cannot be parsed: {reason}")]
    BadTimestamp { reason: &'static str },
    #[error("the delivery timestamp is older than the source's window of {window}")]
    StaleTimestamp { window: String },
    #[error("the delivery timestamp is further in the future than the allowed skew of {skew}")]
    FutureTimestamp { skew: String },
    #[error("the event id is missing")]
    MissingEventId,
    #[error("the body is not valid JSON where a field is needed: {reason}")]
    BadJson { reason: String },
    #[error("this event is still being delivered by an earlier attempt; retry later")]
    InFlight { retry_after: Duration },
    #[error("the gateway is receiving too many request bodies at once; retry later")]
    BodyBudget { retry_after: Duration },
    #[error("the gateway is at its concurrency limit; retry later")]
    Overloaded { retry_after: Duration },
    #[error("the deduplication store is unavailable; retry later")]
    DedupUnavailable { retry_after: Duration },
    #[error("the handshake request is malformed: {reason}")]
    BadHandshake { reason: &'static str },
    #[error("the handshake's verify token is wrong")]
    BadVerifyToken,
    #[error("the provider's signing keys could not be fetched; retry later")]
    KeyFetchFailed { retry_after: Duration },
    #[error("the event could not be stored for delivery; retry later")]
    QueueUnavailable { retry_after: Duration },
    #[error("the delivery queue is full; retry later")]
    QueueFull { retry_after: Duration },
    #[error("the upstream could not be reached")]
    UpstreamUnavailable,
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
}

impl Rejection {
    /// The HTTP status for this refusal.
    pub fn status(&self) -> StatusCode {
        use Rejection::*;
        match self {
            UnknownSource => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRead
            | MissingTimestamp
            | BadTimestamp { .. }
            | MissingEventId
            | BadJson { .. }
            | BadHandshake { .. } => StatusCode::BAD_REQUEST,
            BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            MissingSignature { .. }
            | BadSignature { .. }
            | BadToken
            | StaleTimestamp { .. }
            | FutureTimestamp { .. } => StatusCode::UNAUTHORIZED,
            ForbiddenAddress | BadVerifyToken => StatusCode::FORBIDDEN,
            // 503, not 409: a 4xx is final for senders that never retry one (CertifyClouds).
            InFlight { .. }
            | DedupUnavailable { .. }
            | Overloaded { .. }
            | BodyBudget { .. }
            | KeyFetchFailed { .. }
            | QueueUnavailable { .. }
            | QueueFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The stable machine-readable code, also used as the outcome in logs.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            UnknownSource => "unknown_source",
            MethodNotAllowed => "method_not_allowed",
            PayloadTooLarge { .. } => "payload_too_large",
            BodyRead => "bad_body",
            BodyTimeout => "body_timeout",
            MissingSignature { .. } => "missing_signature",
            BadSignature { .. } => "bad_signature",
            BadToken => "bad_token",
            ForbiddenAddress => "forbidden_address",
            MissingTimestamp => "missing_timestamp",
            BadTimestamp { .. } => "bad_timestamp",
            StaleTimestamp { .. } => "stale_timestamp",
            FutureTimestamp { .. } => "future_timestamp",
            MissingEventId => "missing_event_id",
            BadJson { .. } => "bad_json",
            InFlight { .. } => "in_flight",
            DedupUnavailable { .. } => "dedup_unavailable",
            Overloaded { .. } => "overloaded",
            BodyBudget { .. } => "body_budget_exhausted",
            BadHandshake { .. } => "bad_handshake",
            BadVerifyToken => "bad_verify_token",
            KeyFetchFailed { .. } => "key_fetch_failed",
            QueueUnavailable { .. } => "queue_unavailable",
            QueueFull { .. } => "queue_full",
            UpstreamUnavailable => "upstream_unavailable",
            UpstreamTimeout => "upstream_timeout",
        }
    }

    /// Renders the refusal as the JSON answer sent to the client.
    pub fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let mut response = http::Response::new(full_body(Bytes::from(body.to_string())));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match &self {
            Rejection::InFlight { retry_after }
            | Rejection::DedupUnavailable { retry_after }
            | Rejection::Overloaded { retry_after }
            | Rejection::BodyBudget { retry_after }
            | Rejection::KeyFetchFailed { retry_after }
            | Rejection::QueueUnavailable { retry_after }
            | Rejection::QueueFull { retry_after } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
            }
            Rejection::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        Outcome::Rejected(self.code()).mark(response.extensions_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_json_with_status_and_retry_after() {
        let response = Rejection::InFlight {
            retry_after: Duration::from_secs(7),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "in_flight");
        assert!(json["message"].as_str().unwrap().contains("retry later"));
    }

    #[test]
    fn statuses_follow_the_documented_table() {
        assert_eq!(Rejection::UnknownSource.status(), 404);
        assert_eq!(Rejection::PayloadTooLarge { limit: 1 }.status(), 413);
        assert_eq!(Rejection::BadSignature { reason: "x" }.status(), 401);
        assert_eq!(Rejection::MissingTimestamp.status(), 400);
        assert_eq!(
            Rejection::StaleTimestamp {
                window: "5m".into()
            }
            .status(),
            401
        );
        assert_eq!(Rejection::UpstreamUnavailable.status(), 502);
        assert_eq!(Rejection::UpstreamTimeout.status(), 504);
    }
}
