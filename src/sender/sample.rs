//! Example events for each preset, shaped like the provider's documented payloads and carrying
//! the given event id and time where the provider puts them. `hookgate send`/`sign` use them
//! when no body is given, and `hookgate demo` sends them through the gateway.

use bytes::Bytes;
use serde_json::Value;

use super::format::{Alert, AlertField, Color};
use super::{iso8601, OutboundEvent};
use crate::extract::ValueSource;
use crate::timestamp::TimeFormat;

/// A fresh event id, unique enough for demos and simulations.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", fastrand::u64(..))
}

/// The default event type of a preset's sample.
pub fn default_event_type(preset: &str) -> &'static str {
    match preset {
        "cloudkeep" => "secret.created",
        "policycortex" => "policy.violation.created",
        "corgea" => "scan.completed",
        "vaas" => "CertificateExpiration",
        "certifyclouds" => "secret_expiring",
        "github" => "ping",
        "stripe" => "charge.succeeded",
        "slack" => "event_callback",
        "shopify" => "orders/create",
        _ => "test.event",
    }
}

/// A sample event for `preset` with event id `id`, stamped at `unix_secs`.
pub fn event(preset: &str, id: &str, unix_secs: i64, event_type: Option<&str>) -> OutboundEvent {
    let kind = event_type.unwrap_or_else(|| default_event_type(preset));
    let at = iso8601(unix_secs);
    let body = match preset {
        "cloudkeep" => serde_json::json!({
            "id": id, "event": kind, "timestamp": at,
            "data": {"vaultId": "vlt_8xK2mN", "vaultName": "Production", "secretKey": "NEW_API_KEY", "type": "api_key"}
        })
        .to_string(),
        "policycortex" => serde_json::json!({
            "id": id, "type": kind, "created": at,
            "data": {"violation": {"policy_name": "require-s3-encryption", "severity": "HIGH", "score": 92.3}}
        })
        .to_string(),
        "corgea" => serde_json::json!({
            "event_id": id, "event_type": kind, "timestamp": at,
            "data": {"scan_id": "scan-uuid-7890", "issues_found": 8}
        })
        .to_string(),
        "vaas" => serde_json::json!({
            "events": [{
                "eventType": kind, "eventName": "Certificate Expiration",
                "message": format!("Certificate api.example.com expires soon ({id})"),
                "criticality": 1, "createdAt": at
            }]
        })
        .to_string(),
        // CertifyClouds renders one alert for its three destinations; the event type picks
        // which: `slack`, `teams`, or anything else for the generic JSON.
        "certifyclouds" => {
            let alert = Alert {
            title: "Secrets Expiring Soon".into(),
            text: format!("Found 1 secret expiring within 30 days ({id})"),
            color: Color::Orange,
            ts: unix_secs,
            fields: vec![AlertField {
                title: "kv-production".into(),
                value: "api-key (expires soon)".into(),
                short: true,
            }],
            };
            match kind {
                "slack" => alert.slack(),
                "teams" => alert.teams(),
                _ => alert.generic(),
            }
        }
        "stripe" => serde_json::json!({
            "id": id, "object": "event", "type": kind, "created": unix_secs,
            "data": {"object": {"amount": 2000, "currency": "usd"}}
        })
        .to_string(),
        "slack" => serde_json::json!({
            "type": kind, "event_id": id, "event_time": unix_secs,
            "event": {"type": "app_mention", "text": "hello"}
        })
        .to_string(),
        "github" => serde_json::json!({
            "zen": "Keep it logically awesome.", "hook_id": 1, "delivery": id
        })
        .to_string(),
        "shopify" => serde_json::json!({
            "id": 820982911946154508u64, "note": id, "created_at": at, "currency": "USD"
        })
        .to_string(),
        // https://www.twilio.com/docs/messaging/guides/webhook-request : a form body.
        "twilio" => format!(
            "AccountSid=AC00000000000000000000000000000000&Body=Hello+from+hookgate&From=%2B15005550006&MessageSid=SM{}&To=%2B15005550010",
            id.trim_start_matches("evt_")
        ),
        _ => generic(preset, kind, id, unix_secs),
    };
    OutboundEvent {
        body: Bytes::from(body),
        id: id.to_string(),
        event_type: Some(kind.to_string()),
    }
}

/// A JSON event for any other preset, with the event id and time also where the preset's
/// freshness and dedup read them (`body:data.id`, `body:webhookTimestamp`, …) in its format.
fn generic(preset: &str, kind: &str, id: &str, unix_secs: i64) -> String {
    let mut body = serde_json::json!({"type": kind, "id": id, "timestamp": unix_secs});
    let Some(preset) = crate::presets::find(preset) else {
        return body.to_string();
    };
    let format = preset.freshness.format.unwrap_or(TimeFormat::Unix);
    let time = match format {
        TimeFormat::Iso8601 => Value::from(iso8601(unix_secs)),
        TimeFormat::UnixMs => Value::from(unix_secs * 1000),
        TimeFormat::Unix | TimeFormat::Auto => Value::from(unix_secs),
    };
    for source in preset.freshness.from.iter().flatten() {
        if let ValueSource::Body(path) = source {
            set_path(&mut body, &path.to_string(), time.clone());
        }
    }
    if let Some(ValueSource::Body(path)) = &preset.dedup.id {
        set_path(&mut body, &path.to_string(), Value::from(id));
    }
    body.to_string()
}

/// Sets the value at a dotted path, creating the objects on the way.
fn set_path(body: &mut Value, path: &str, value: Value) {
    let mut at = body;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Value::Object(map) = at else {
            return;
        };
        if segments.peek().is_none() {
            map.insert(segment.to_string(), value);
            return;
        }
        at = map
            .entry(segment.to_string())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
}
