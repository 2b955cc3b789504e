//! The JSON answers of hookgate's local endpoints (the admin plane and the outbound sidecar):
//! a value with its status, or `{"error": "<code>", "message": "<text>"}`.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::Full;

/// A complete answer.
pub(crate) type Answer = http::Response<Full<Bytes>>;

/// `value` as JSON with `status`.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Answer {
    let body = serde_json::to_vec(value).expect("JSON values serialise");
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A refusal: its stable code and a short message (never a secret or a body).
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    json(
        status,
        &serde_json::json!({"error": code, "message": message}),
    )
}
