//! Communications, identity and the asymmetric signers: Zoom, Clerk, Resend, Meta/WhatsApp,
//! Twilio, Discord, Telnyx, SendGrid, Twitch, Standard Webhooks v1a.

use super::*;
use crate::scheme::signed;
use crate::scheme::{Algorithm, Encoding, SignatureFormat};
use crate::timestamp::TimeFormat;

pub(super) fn find(name: &str) -> Option<Preset> {
    use Encoding::*;
    let preset = match name {
        // https://developers.zoom.us/docs/api/webhooks/ : `x-zm-signature: v0=<hex
        // HMAC-SHA256 of "v0:timestamp:body">`, timestamp in `x-zm-request-timestamp`.
        // https://developers.zoom.us/blog/webhook-delays/ : answer (200 or 204) within 3 s;
        // three retries, 5 min after the first attempt, 20 min after the first retry and
        // 60 min after the second (85 min in all). Whether a retry is re-stamped is not
        // documented, so the window covers the whole schedule.
        "zoom" => basic(
            "zoom",
            "https://developers.zoom.us/docs/api/webhooks/",
            Some(hmac_ts(
                "x-zm-signature",
                Algorithm::Sha256,
                Hex,
                "v0=",
                "v0:{timestamp}:{body}",
                "header:x-zm-request-timestamp",
            )),
            freshness(&["header:x-zm-request-timestamp"], TimeFormat::Unix, true, 90 * MINUTE),
            dedup(None, 90 * MINUTE + SKEW),
            "timestamp signed; retries come 5, 20 and 60 min apart (85 min in all) and re-stamping \
             is not documented, so the window covers the schedule",
            3,
            "Zoom expects a 200 or 204 within 3 s (developers.zoom.us/blog/webhook-delays)",
        ),
        // https://clerk.com/docs/webhooks/sync-data : delivered by Svix (`svix-id`,
        // `svix-timestamp`, `svix-signature`), Standard Webhooks signing, `whsec_` secret.
        "clerk" => svix_alias("clerk", "https://clerk.com/docs/webhooks/sync-data"),
        // https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests : Svix headers.
        "resend" => svix_alias(
            "resend",
            "https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests",
        ),
        // https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads
        // `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with the app secret;
        // WhatsApp retries failed notifications for up to 7 days. Meta's pages were not in the
        // index to re-check these; the request timeout is not documented there (10 s assumed).
        "meta" | "whatsapp" => basic(
            "meta",
            "https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads",
            Some(hmac("X-Hub-Signature-256", Hex, SignatureFormat::Plain, "sha256=", "{body}")),
            no_freshness(),
            dedup(None, 7 * 24 * HOUR),
            "no signed timestamp header; retried up to 7 days, bodies remembered that long",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://www.twilio.com/docs/usage/webhooks/webhooks-security : base64 HMAC-SHA1
        // (auth token) of the full URL + the POST parameters sorted by name, `namevalue`.
        // https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides : read
        // timeout and total time default to 15 000 ms, one connection retry by default.
        "twilio" => basic(
            "twilio",
            "https://www.twilio.com/docs/usage/webhooks/webhooks-security",
            Some(crate::scheme::SignatureSpec {
                algorithm: Some(Algorithm::Sha1),
                ..hmac("X-Twilio-Signature", Base64, SignatureFormat::Plain, "", "{url}{form:sorted}")
            }),
            no_freshness(),
            dedup(Some("header:I-Twilio-Idempotency-Token"), 24 * HOUR),
            "Twilio signs no timestamp; idempotency tokens kept a day",
            15,
            "Twilio's default read timeout and total time are 15 000 ms (connection overrides `rt`, `tt`)",
        ),
        // https://discord.com/developers/docs/interactions/receiving-and-responding#security-and-authorization
        // Ed25519 over timestamp + body; interactions are answered within 3 s, not retried
        // (https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction:
        // the initial response must come within 3 s or the interaction token is invalidated).
        "discord" => basic(
            "discord",
            signed::DISCORD.docs,
            Some(asymmetric(&signed::DISCORD)),
            freshness(&["header:x-signature-timestamp"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup(Some("body:id"), 5 * MINUTE + SKEW),
            "the timestamp is signed; interactions are not retried",
            3,
            "Discord expects an interaction response within 3 s",
        ),
        // https://developers.telnyx.com/docs/development/api-fundamentals/webhooks
        // Ed25519 over "timestamp|body"; the SDKs refuse timestamps older than 5 min.
        // https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks : answer
        // with a 2xx within 2 s, else Telnyx retries (up to 3 attempts per URL), then the
        // failover URL. (Voice connections can set `webhook_timeout_seconds`.)
        "telnyx" => basic(
            "telnyx",
            signed::TELNYX.docs,
            Some(asymmetric(&signed::TELNYX)),
            freshness(&["header:telnyx-timestamp"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup(Some("body:data.id"), 24 * HOUR),
            "each attempt is signed with its own timestamp (SDK tolerance 5 min)",
            2,
            "Telnyx expects a 2xx within 2 s (messaging webhooks; voice connections may set more)",
        ),
        // https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
        // ECDSA P-256 over timestamp + body; retried for up to 24 h. The request timeout is not
        // documented in the pages checked (10 s assumed).
        "sendgrid" => basic(
            "sendgrid",
            signed::SENDGRID.docs,
            Some(asymmetric(&signed::SENDGRID)),
            freshness(
                &["header:x-twilio-email-event-webhook-timestamp"],
                TimeFormat::Unix,
                true,
                25 * HOUR,
            ),
            dedup(None, 25 * HOUR + SKEW),
            "retried up to 24 h; re-signing per attempt is not documented, so the window covers it",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message :
        // `Twitch-Eventsub-Message-Signature: sha256=<hex HMAC-SHA256 of message id + timestamp
        // + body>`, the RFC 3339 timestamp in `Twitch-Eventsub-Message-Timestamp`, the id in
        // `Twitch-Eventsub-Message-Id` (kept on a resend, #handling-duplicate-events); refuse
        // messages older than 10 minutes (#guarding-against-replay-attacks); answer "within a
        // few seconds" (#getting-events-using-webhook-callbacks).
        "twitch" => basic(
            "twitch",
            "https://dev.twitch.tv/docs/eventsub/handling-webhook-events/",
            Some(crate::scheme::SignatureSpec {
                id: Some(at("header:Twitch-Eventsub-Message-Id")),
                ..hmac_ts(
                    "Twitch-Eventsub-Message-Signature",
                    Algorithm::Sha256,
                    Hex,
                    "sha256=",
                    "{id}{timestamp}{body}",
                    "header:Twitch-Eventsub-Message-Timestamp",
                )
            }),
            freshness(
                &["header:Twitch-Eventsub-Message-Timestamp"],
                TimeFormat::Iso8601,
                true,
                10 * MINUTE,
            ),
            dedup(Some("header:Twitch-Eventsub-Message-Id"), 10 * MINUTE + SKEW),
            "id and timestamp are signed; Twitch says to refuse messages older than 10 minutes",
            3,
            "Twitch expects an answer \"within a few seconds\"; 3 s assumed",
        ),
        // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
        // `v1a,<base64 Ed25519>` over id.timestamp.body, `whpk_` public keys.
        "standard-webhooks-v1a" => basic(
            "standard-webhooks-v1a",
            signed::STANDARD_WEBHOOKS_V1A.docs,
            Some(asymmetric(&signed::STANDARD_WEBHOOKS_V1A)),
            freshness(&["header:webhook-timestamp"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup(Some("header:webhook-id"), 30 * HOUR),
            "each attempt is re-signed (spec tolerance 5 min); ids kept for the ~28 h schedule",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        _ => return None,
    };
    Some(preset)
}

/// A provider that delivers through Svix: Standard Webhooks signing under `svix-*` headers,
/// each attempt re-signed, ids kept for Svix's ~28 h retry schedule, 15 s per attempt
/// (https://docs.svix.com/retries: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h;
/// a 2xx is expected within 15 s).
fn svix_alias(name: &'static str, docs: &'static str) -> Preset {
    basic(
        name,
        docs,
        Some(standard_webhooks("svix")),
        freshness(
            &["header:svix-timestamp"],
            TimeFormat::Unix,
            true,
            5 * MINUTE,
        ),
        dedup(Some("header:svix-id"), 30 * HOUR),
        "each Svix attempt is re-signed; ids kept for the ~28 h retry schedule",
        15,
        "Svix times an attempt out after 15 s",
    )
}
