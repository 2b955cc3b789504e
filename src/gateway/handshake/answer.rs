//! What each handshake looks like and what it is answered, as functions of the request alone.
//! Reflected values (challenges, plain tokens) come from whoever sent the request: they are
//! answered only when non-empty, at most [`MAX_CHALLENGE`] bytes and made of the characters
//! random tokens use (letters, digits, `- _ . ~ + / =`), else 400; answers are `text/plain`
//! or JSON, always with `X-Content-Type-Options: nosniff`, so no browser renders them as HTML.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use super::super::rejection::Rejection;
use super::super::{full_body, Outcome, Response};
use crate::access::TokenSet;
use crate::scheme::{form_pairs, SigningKey};
use crate::source::HandshakeKind;

/// The longest challenge or token reflected back.
pub(super) const MAX_CHALLENGE: usize = 256;

/// Twitch's message type header (<https://dev.twitch.tv/docs/eventsub/handling-webhook-events/>).
const TWITCH_MESSAGE_TYPE: &str = "twitch-eventsub-message-type";

fn bad(reason: &'static str) -> Rejection {
    Rejection::BadHandshake { reason }
}

/// `value` if it is safe to reflect.
fn safe(value: &str) -> Result<&str, Rejection> {
    if value.is_empty() || value.len() > MAX_CHALLENGE {
        return Err(bad("the challenge is empty or longer than 256 bytes"));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b);
    if !value.bytes().all(allowed) {
        return Err(bad(
            "the challenge has characters other than letters, digits and - _ . ~ + / =",
        ));
    }
    Ok(value)
}

fn answer(content_type: &'static str, body: String) -> Response {
    let mut response = http::Response::new(full_body(Bytes::from(body)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Outcome::Handshake.mark(response.extensions_mut());
    response
}

fn text(challenge: &str) -> Result<Response, Rejection> {
    Ok(answer("text/plain", safe(challenge)?.to_string()))
}

fn json(value: Value) -> Response {
    answer("application/json", value.to_string())
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

/// The body as a JSON object, `None` when it is not one.
fn object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn string_field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// A verified `POST`: `Ok(Some(answer))` when it is `kind`'s handshake, `Ok(None)` when it is
/// an ordinary delivery (forwarded), `Err` when it is a handshake that cannot be answered.
/// `key` is the HMAC key that verified the request (Zoom answers with it).
pub(super) fn post(
    kind: HandshakeKind,
    req: &http::Request<Bytes>,
    key: Option<&SigningKey>,
) -> Result<Option<Response>, Rejection> {
    let body = req.body();
    match kind {
        // https://api.slack.com/events/url_verification : `{"type":"url_verification",
        // "challenge":…}`, answered 200 with the challenge in plaintext.
        HandshakeKind::Slack => {
            if !contains(body, b"url_verification") {
                return Ok(None);
            }
            let Some(map) = object(body) else {
                return Ok(None);
            };
            if string_field(&map, "type") != Some("url_verification") {
                return Ok(None);
            }
            let challenge = string_field(&map, "challenge").ok_or(bad("no challenge"))?;
            text(challenge).map(Some)
        }
        // https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint :
        // `{"event":"endpoint.url_validation","payload":{"plainToken":…}}`, answered with
        // `{"plainToken":…,"encryptedToken": hex(HMAC-SHA256(secret token, plainToken))}`.
        HandshakeKind::Zoom => {
            if !contains(body, b"endpoint.url_validation") {
                return Ok(None);
            }
            let Some(map) = object(body) else {
                return Ok(None);
            };
            if string_field(&map, "event") != Some("endpoint.url_validation") {
                return Ok(None);
            }
            let token = map
                .get("payload")
                .and_then(|p| p.get("plainToken"))
                .and_then(Value::as_str)
                .ok_or(bad("no payload.plainToken"))?;
            let token = safe(token)?;
            let key = key.ok_or(bad("no secret verified the request"))?;
            let encrypted = hex::encode(key.mac(token.as_bytes()));
            Ok(Some(json(serde_json::json!({
                "plainToken": token,
                "encryptedToken": encrypted,
            }))))
        }
        // https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request :
        // message type `webhook_callback_verification`, answered 200 with the raw `challenge`
        // of the body as text/plain.
        HandshakeKind::Twitch => {
            let message_type = req.headers().get(TWITCH_MESSAGE_TYPE);
            if !message_type.is_some_and(|v| v == "webhook_callback_verification") {
                return Ok(None);
            }
            let map = object(body).ok_or(bad("the body is not a JSON object"))?;
            let challenge = string_field(&map, "challenge").ok_or(bad("no challenge"))?;
            text(challenge).map(Some)
        }
        // https://discord.com/developers/docs/interactions/receiving-and-responding#receiving-an-interaction :
        // a PING (`"type": 1`) is acknowledged with a PONG (`{"type": 1}`).
        HandshakeKind::Discord => {
            let is_ping = object(body).is_some_and(|m| m.get("type") == Some(&Value::from(1)));
            Ok(is_ping.then(|| json(serde_json::json!({ "type": 1 }))))
        }
        HandshakeKind::Meta | HandshakeKind::Dropbox | HandshakeKind::None => Ok(None),
    }
}

/// The one value of query parameter `name`; `Err` when it is given twice or is not UTF-8.
fn param(pairs: &[(Vec<u8>, Vec<u8>)], name: &str) -> Result<Option<String>, Rejection> {
    let mut found = pairs.iter().filter(|(k, _)| k == name.as_bytes());
    let Some((_, value)) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(bad("a handshake parameter is repeated"));
    }
    String::from_utf8(value.clone())
        .map(Some)
        .map_err(|_| bad("a handshake parameter is not UTF-8"))
}

/// A `GET` to a source with a `GET` handshake: its answer, or why it is refused.
pub(super) fn get(
    kind: HandshakeKind,
    verify_tokens: Option<&TokenSet>,
    query: Option<&str>,
) -> Result<Response, Rejection> {
    let query = query.unwrap_or_default();
    if query.len() > 4 * MAX_CHALLENGE {
        return Err(bad("the query string is too long"));
    }
    let pairs = form_pairs(query.as_bytes());
    match kind {
        // https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests :
        // `hub.mode=subscribe`, `hub.verify_token` (the token set in the app dashboard) and
        // `hub.challenge`; answered with the challenge when the token matches.
        HandshakeKind::Meta => {
            if param(&pairs, "hub.mode")?.as_deref() != Some("subscribe") {
                return Err(bad("hub.mode is not subscribe"));
            }
            let token = param(&pairs, "hub.verify_token")?.unwrap_or_default();
            let tokens = verify_tokens.ok_or(Rejection::BadVerifyToken)?;
            if !tokens.matches(token.as_bytes()) {
                return Err(Rejection::BadVerifyToken);
            }
            let challenge = param(&pairs, "hub.challenge")?.ok_or(bad("no hub.challenge"))?;
            text(&challenge)
        }
        // https://www.dropbox.com/developers/reference/webhooks : `GET ?challenge=…`, echoed
        // back with `Content-Type: text/plain` and `X-Content-Type-Options: nosniff`.
        HandshakeKind::Dropbox => {
            let challenge = param(&pairs, "challenge")?.ok_or(bad("no challenge"))?;
            text(&challenge)
        }
        _ => Err(Rejection::MethodNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_challenges_are_reflected() {
        assert!(safe("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P").is_ok());
        assert!(safe("pogchamp-kappa-360noscope-vohiyo").is_ok());
        assert!(safe("qgg8vlvZRS6UYooatFL8Aw==").is_ok());
        for bad in ["", "<script>", "a b", "a\r\nb", "é", &"a".repeat(257)] {
            assert!(safe(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repeated_or_missing_parameters_are_refused() {
        let pairs = form_pairs(b"challenge=a&challenge=b");
        assert!(param(&pairs, "challenge").is_err());
        let pairs = form_pairs(b"hub.mode=subscribe");
        assert_eq!(param(&pairs, "hub.challenge").unwrap(), None);
        assert!(get(HandshakeKind::Dropbox, None, Some("x=1")).is_err());
    }
}
