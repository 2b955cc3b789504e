//! One signing helper per preset, each an independent formula written out as the provider
//! documents it — never hookgate's own signer: a test that signs with the code under test
//! would only prove the code agrees with itself. Signatures are returned as header values;
//! `ts` is whatever the provider puts in its timestamp header (usually unix seconds).

use std::fmt::Display;

use super::{b64, b64url, headers, hex_sig, hmac_sha256, iso};

/// CloudKeep's signature header.
pub(crate) const CLOUDKEEP_HEADER: &str = "X-CloudKeep-Signature-256";

/// CloudKeep (seed 001): `sha256=<hex HMAC-SHA256 of the raw body>`.
pub(crate) fn cloudkeep(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex_sig(secret, body))
}

/// The CloudKeep signature header for `body`.
pub(crate) fn cloudkeep_headers(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    headers(&[(CLOUDKEEP_HEADER, &cloudkeep(secret, body))])
}

/// A CloudKeep delivery of event `id` stamped `stamp` (unix seconds): the body
/// `{"id":…,"timestamp":…}` and its signature header.
pub(crate) fn cloudkeep_event(
    secret: &str,
    id: &str,
    stamp: i64,
) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(r#"{{"id":"{id}","timestamp":"{}"}}"#, iso(stamp));
    (
        cloudkeep_headers(secret, body.as_bytes()),
        body.into_bytes(),
    )
}

/// PolicyCortex (seed 003), `X-PolicyCortex-Signature`: `'sha256=' + hex HMAC-SHA256 of the
/// payload`.
pub(crate) fn policycortex(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex_sig(secret, body))
}

/// GitHub, `X-Hub-Signature-256`: `sha256=<hex HMAC-SHA256 of the body>`.
pub(crate) fn github(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex_sig(secret, body))
}

/// Corgea (seed 004), `X-Corgea-Signature`: hex HMAC-SHA256 of the payload, no prefix.
pub(crate) fn corgea(secret: &str, body: &[u8]) -> String {
    hex_sig(secret, body)
}

/// VaaS (seed 002), `VaaS-Signature`: base64url HMAC-SHA256 of the raw body (the signed bytes
/// are assumed; the docs do not say).
pub(crate) fn vaas(secret: &str, body: &[u8]) -> String {
    b64url(&hmac_sha256(secret.as_bytes(), body))
}

/// Shopify, `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
pub(crate) fn shopify(secret: &str, body: &[u8]) -> String {
    b64(&hmac_sha256(secret.as_bytes(), body))
}

/// Stripe, `Stripe-Signature`: `t=<ts>,v1=<hex HMAC-SHA256 of "{ts}.{body}">`.
pub(crate) fn stripe(secret: &str, ts: impl Display, body: &[u8]) -> String {
    format!("t={ts},v1={}", stripe_v1(secret, &ts, body))
}

/// Stripe's `v1` value alone (for headers built around it): hex HMAC-SHA256 of
/// `"{ts}.{body}"`.
pub(crate) fn stripe_v1(secret: &str, ts: impl Display, body: &[u8]) -> String {
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    hex_sig(secret, &signed)
}

/// Slack, `X-Slack-Signature`: `v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">`.
pub(crate) fn slack(secret: &str, ts: impl Display, body: &[u8]) -> String {
    let mut signed = format!("v0:{ts}:").into_bytes();
    signed.extend_from_slice(body);
    format!("v0={}", hex_sig(secret, &signed))
}

/// Standard Webhooks, `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{ts}.{body}">`
/// keyed with the key bytes (see [`whsec_key`]).
pub(crate) fn standard_webhooks(key: &[u8], id: &str, ts: impl Display, body: &[u8]) -> String {
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1,{}", b64(&hmac_sha256(key, &signed)))
}

/// The key bytes of a Standard Webhooks secret: `whsec_` + base64 of the key.
pub(crate) fn whsec_key(secret: &str) -> Vec<u8> {
    base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        secret.trim_start_matches("whsec_"),
    )
    .unwrap()
}

/// The headers of a Standard Webhooks delivery of event `id` stamped `ts` (unix seconds).
pub(crate) fn standard_webhooks_headers(
    key: &[u8],
    id: &str,
    ts: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let signature = standard_webhooks(key, id, &ts, body);
    headers(&[
        ("webhook-id", id),
        ("webhook-timestamp", &ts),
        ("webhook-signature", &signature),
    ])
}
