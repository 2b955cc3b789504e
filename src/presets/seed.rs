//! The seed providers (CloudKeep, PolicyCortex, Corgea, VaaS, CertifyClouds) and the first
//! catalogue presets (Standard Webhooks, GitHub, Stripe, Slack, Shopify).

use std::time::Duration;

use super::*;
use crate::scheme::{Encoding, SignatureFormat, SignatureSpec};
use crate::secret::SecretEncoding;
use crate::timestamp::TimeFormat;

/// The seed providers and the first catalogue (Standard Webhooks, GitHub, Stripe, Slack,
/// Shopify).
pub(super) fn find(name: &str) -> Option<Preset> {
    use Encoding::*;
    use SignatureFormat::*;
    let preset = match name {
        // Retries at 1 m, 5 m, 30 m, 2 h, 12 h (≈14.6 h) keep the event's own time in the
        // signed body, so the window must cover the whole schedule plus slack.
        "cloudkeep" => Preset {
            name: "cloudkeep",
            docs: "seed 001 (CloudKeep webhook documentation)",
            token_header: None,
            signature: Some(hmac("X-CloudKeep-Signature-256", Hex, Plain, "sha256=", "{body}")),
            freshness: freshness(&["body:timestamp"], TimeFormat::Iso8601, true, 18 * HOUR),
            dedup: dedup(Some("body:id"), 18 * HOUR + SKEW),
            window_reason: "event time in the signed body; retries span ~14.6 h (1m,5m,30m,2h,12h)",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "CloudKeep waits 10 s for an answer, then retries (seed 001)",
            sender: profile("hookgate-sender (cloudkeep)", "cloudkeep"),
        },
        "policycortex" => Preset {
            name: "policycortex",
            docs: "seed 003 (PolicyCortex webhook documentation)",
            token_header: None,
            signature: Some(hmac("X-PolicyCortex-Signature", Hex, Plain, "sha256=", "{body}")),
            freshness: freshness(&["body:created"], TimeFormat::Iso8601, true, 25 * HOUR),
            dedup: dedup(Some("body:id"), 25 * HOUR + SKEW),
            window_reason: "event time in the signed body; at-least-once with a 24 h retry window",
            sender_timeout: Duration::from_secs(30),
            timeout_reason: "PolicyCortex times out after 30 s (timeout_seconds, seed 003)",
            sender: profile("hookgate-sender (policycortex)", "policycortex"),
        },
        // The X-Corgea-Timestamp header is not signed; the body's `timestamp` is. Custom body
        // templates may leave it out, so it is optional and dedup on `event_id` carries the load.
        "corgea" => Preset {
            name: "corgea",
            docs: "seed 004 (Corgea webhook documentation)",
            token_header: None,
            signature: Some(hmac("X-Corgea-Signature", Hex, Plain, "", "{body}")),
            freshness: freshness(&["body:timestamp"], TimeFormat::Iso8601, false, HOUR),
            dedup: dedup(Some("body:event_id"), HOUR + SKEW),
            window_reason: "event time in the signed body; 3 attempts within ~40 s, manual retries later",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "Corgea waits 10 s per request (seed 004)",
            sender: SenderProfile {
                event_type_header: Some("X-Corgea-Event"),
                attempt_id_header: Some("X-Corgea-Delivery"),
                timestamp_header: Some(("X-Corgea-Timestamp", TimeFormat::Unix)),
                ..profile("Corgea-Webhooks/1.0", "corgea")
            },
        },
        // The public docs do not say which bytes are signed nor which hash: raw body with
        // HMAC-SHA256 is assumed (override signature.signed / signature.algorithm). The
        // VaaS-Timestamp header is therefore unsigned by default.
        "vaas" => Preset {
            name: "vaas",
            docs: "seed 002 (VaaS webhook documentation)",
            token_header: None,
            signature: Some(hmac("VaaS-Signature", Base64url, Plain, "", "{body}")),
            freshness: freshness(&["header:VaaS-Timestamp"], TimeFormat::Unix, true, 25 * HOUR),
            dedup: dedup(None, 25 * HOUR + SKEW),
            window_reason: "retried for up to 24 h; timestamp header is unsigned, so dedup covers the window",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: UNDOCUMENTED_TIMEOUT,
            sender: SenderProfile {
                timestamp_header: Some(("VaaS-Timestamp", TimeFormat::Unix)),
                ..profile("hookgate-sender (vaas)", "vaas")
            },
        },
        // No signature: authenticate with a path token, a static header token and/or an
        // address allowlist (the source must configure at least one).
        "certifyclouds" => Preset {
            name: "certifyclouds",
            docs: "seed 000 (CertifyClouds webhook documentation)",
            token_header: None,
            signature: None,
            freshness: freshness(
                &["body:timestamp", "body:attachments.0.ts"],
                TimeFormat::Auto,
                false,
                15 * MINUTE,
            ),
            dedup: dedup(None, 15 * MINUTE + SKEW),
            window_reason: "retries immediately, 2 s, 5 s, 10 s (10 s timeout each); Teams cards carry no time",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "CertifyClouds waits 10 s per request, then retries (seed 000)",
            sender: profile("hookgate-sender (certifyclouds)", "certifyclouds"),
        },
        "standard-webhooks" | "svix" => Preset {
            name: "standard-webhooks",
            docs: "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
            token_header: None,
            signature: Some(SignatureSpec {
                version: Some("v1".into()),
                timestamp: Some(at("header:webhook-timestamp")),
                id: Some(at("header:webhook-id")),
                secret_encoding: Some(SecretEncoding::Whsec),
                ..hmac(
                    "webhook-signature",
                    Base64,
                    Versioned,
                    "",
                    "{id}.{timestamp}.{body}",
                )
            }),
            freshness: freshness(&["header:webhook-timestamp"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup: dedup(Some("header:webhook-id"), 30 * HOUR),
            window_reason: "each attempt is re-signed with a fresh timestamp (spec tolerance 5 min); ids kept for the ~28 h retry schedule",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: UNDOCUMENTED_TIMEOUT,
            sender: profile("hookgate-sender (standard-webhooks)", "standard-webhooks"),
        },
        // https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks
        // ("Respond within 10 seconds": otherwise GitHub terminates the connection and counts
        // the delivery as failed).
        "github" => Preset {
            name: "github",
            docs: "https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries",
            token_header: None,
            signature: Some(hmac("X-Hub-Signature-256", Hex, Plain, "sha256=", "{body}")),
            freshness: no_freshness(),
            dedup: dedup(Some("header:X-GitHub-Delivery"), 72 * HOUR),
            window_reason: "GitHub sends no timestamp; manual redelivery is possible for 3 days",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "GitHub expects a 2xx within 10 s, then fails the delivery",
            sender: SenderProfile {
                event_type_header: Some("X-GitHub-Event"),
                ..profile("GitHub-Hookshot/hookgate", "none")
            },
        },
        "stripe" => Preset {
            name: "stripe",
            docs: "https://docs.stripe.com/webhooks#verify-manually",
            token_header: None,
            signature: Some(SignatureSpec {
                version: Some("v1".into()),
                timestamp_key: Some("t".into()),
                timestamp: Some(at("signature:t")),
                ..hmac("Stripe-Signature", Hex, KeyValue, "", "{timestamp}.{body}")
            }),
            freshness: freshness(&["signature:t"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup: dedup(Some("body:id"), 72 * HOUR),
            window_reason: "each attempt is re-signed (Stripe's tolerance is 5 min); event ids kept for its 3-day retries",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: UNDOCUMENTED_TIMEOUT,
            sender: profile("Stripe/1.0 (+https://stripe.com/docs/webhooks)", "stripe"),
        },
        // https://api.slack.com/apis/events-api#responding and
        // https://docs.slack.dev/tools/bolt-python/concepts/acknowledge: answer within 3 s, or
        // Slack counts a timeout and retries (immediately, then after 1 m and 5 m).
        "slack" => Preset {
            name: "slack",
            docs: "https://api.slack.com/authentication/verifying-requests-from-slack",
            token_header: None,
            signature: Some(SignatureSpec {
                timestamp: Some(at("header:X-Slack-Request-Timestamp")),
                ..hmac("X-Slack-Signature", Hex, Plain, "v0=", "v0:{timestamp}:{body}")
            }),
            freshness: freshness(
                &["header:X-Slack-Request-Timestamp"],
                TimeFormat::Unix,
                true,
                5 * MINUTE,
            ),
            dedup: dedup(Some("body:event_id"), HOUR),
            window_reason: "timestamp is signed per request (Slack's own guidance: 5 min)",
            sender_timeout: Duration::from_secs(3),
            timeout_reason: "Slack expects an answer within 3 s, then retries at once",
            sender: profile("Slackbot 1.0 (+https://api.slack.com/robots)", "slack"),
        },
        // Shopify gives the endpoint 5 s to answer (1 s to connect) before the attempt fails and
        // is retried: https://community.shopify.com/c/Shopify-APIs-SDKs/Webhook-on-create-orders-called-twice/m-p/543046
        // (Shopify staff), summarised from shopify.dev in
        // https://dev.to/shannonllc/shopify-webhooks-hmac-verification-5-second-timeout-retries-jkj
        "shopify" => Preset {
            name: "shopify",
            docs: "https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook-to-ensure-its-coming-from-shopify",
            token_header: None,
            signature: Some(hmac("X-Shopify-Hmac-Sha256", Base64, Plain, "", "{body}")),
            freshness: freshness(
                &["header:X-Shopify-Triggered-At"],
                TimeFormat::Iso8601,
                false,
                5 * HOUR,
            ),
            dedup: dedup(Some("header:X-Shopify-Webhook-Id"), 5 * HOUR + SKEW),
            window_reason: "retried 8 times over 4 h; the triggered-at header is unsigned",
            sender_timeout: Duration::from_secs(5),
            timeout_reason: "Shopify waits 5 s for an answer, then retries",
            sender: SenderProfile {
                event_type_header: Some("X-Shopify-Topic"),
                timestamp_header: Some(("X-Shopify-Triggered-At", TimeFormat::Iso8601)),
                ..profile("Shopify-Captain-Hook", "shopify")
            },
        },
        _ => return None,
    };
    Some(preset)
}
