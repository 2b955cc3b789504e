//! Source hosting, issue trackers, monitoring and product tools: Bitbucket, GitLab, Linear,
//! Sentry, Vercel, PagerDuty, Segment, Intercom, Notion, Typeform, Calendly, Zendesk.

use super::*;
use crate::scheme::{Algorithm, Encoding, SignatureFormat, SignatureSpec};
use crate::timestamp::TimeFormat;

pub(super) fn find(name: &str) -> Option<Preset> {
    use Encoding::*;
    let preset = match name {
        // https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/ (secure
        // webhooks: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`).
        // https://support.atlassian.com/bitbucket-cloud/docs/troubleshoot-webhooks/ : a request
        // times out after 10 s; a 5xx answer is resent up to two more times (`X-Attempt-Number`
        // counts them). Whether `X-Request-UUID` stays the same on a resend is not documented,
        // so dedup also falls back on the body digest.
        "bitbucket" => basic(
            "bitbucket",
            "https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/",
            Some(hmac("X-Hub-Signature", Hex, SignatureFormat::Plain, "sha256=", "{body}")),
            no_freshness(),
            dedup(Some("header:X-Request-UUID"), 24 * HOUR),
            "Bitbucket sends no timestamp; request ids kept a day (it resends at once, at most twice)",
            10,
            "Bitbucket times a request out after 10 s (troubleshoot-webhooks)",
        ),
        // https://docs.gitlab.com/user/project/integrations/webhooks/ : the secret token is
        // sent as is in `X-Gitlab-Token` (not a signature: it does not cover the body).
        // https://docs.gitlab.com/user/gitlab_com/#webhooks : GitLab.com times a webhook out
        // after 10 s (self-managed: `webhook_timeout`, default 10 s); failing hooks are
        // disabled for a while rather than retried on a schedule.
        "gitlab" => Preset {
            token_header: Some("X-Gitlab-Token"),
            ..basic(
                "gitlab",
                "https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook",
                None,
                no_freshness(),
                dedup(Some("header:Idempotency-Key"), 72 * HOUR),
                "GitLab sends no signed timestamp; the idempotency key is stable across retries",
                10,
                "GitLab's default webhook timeout is 10 s (self-managed `webhook_timeout`)",
            )
        },
        // GitLab's signing token follows Standard Webhooks (`webhook-id`, equal to the
        // `Idempotency-Key`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over
        // `id.timestamp.body`, `whsec_` token), behind the `webhook_signing_token` flag:
        // https://gitlab.com/gitlab-org/gitlab/-/merge_requests/230944
        // https://docs.gitlab.com/user/project/integrations/webhooks/#signing-token
        "gitlab-signed" => basic(
            "gitlab-signed",
            "https://docs.gitlab.com/user/project/integrations/webhooks/#signing-token",
            Some(standard_webhooks("webhook")),
            freshness(&["header:webhook-timestamp"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup(Some("header:webhook-id"), 72 * HOUR),
            "each attempt is signed with its own timestamp (Standard Webhooks: 5 min)",
            10,
            "GitLab's default webhook timeout is 10 s (self-managed `webhook_timeout`)",
        ),
        // https://linear.app/developers/webhooks : `Linear-Signature` hex HMAC-SHA256 of the
        // body; `webhookTimestamp` (ms) in the signed body; `Linear-Delivery` per delivery.
        // https://developers.linear.app/docs/graphql/webhooks : a delivery fails when it takes
        // longer than 5 s; retried at most 3 times, after 1 min, 1 h and 6 h (7 h 1 min).
        "linear" => basic(
            "linear",
            "https://linear.app/developers/webhooks",
            Some(hmac("Linear-Signature", Hex, SignatureFormat::Plain, "", "{body}")),
            freshness(&["body:webhookTimestamp"], TimeFormat::UnixMs, true, 7 * HOUR + 5 * MINUTE),
            dedup(Some("header:Linear-Delivery"), 7 * HOUR + 5 * MINUTE + SKEW),
            "timestamp in the signed body; retried after 1 min, 1 h and 6 h (7 h 1 min in all)",
            5,
            "Linear fails a delivery that takes longer than 5 s",
        ),
        // https://docs.sentry.io/integrations/integration-platform/webhooks/ :
        // `Sentry-Hook-Signature` hex HMAC-SHA256 of the body; `Sentry-Hook-Timestamp` is
        // not signed; `Request-ID` per request. The endpoint must answer within 1 s
        // (https://sentry.io/changelog/2023-10-3-change-to-integration-platform-webhook-handling).
        "sentry" => basic(
            "sentry",
            "https://docs.sentry.io/integrations/integration-platform/webhooks/",
            Some(hmac("Sentry-Hook-Signature", Hex, SignatureFormat::Plain, "", "{body}")),
            freshness(&["header:Sentry-Hook-Timestamp"], TimeFormat::Unix, false, HOUR),
            dedup(Some("header:Request-ID"), HOUR + SKEW),
            "the timestamp header is unsigned (a replay can restamp it): dedup covers the window; \
             Sentry documents no retry schedule, 1 h assumed",
            1,
            "Sentry counts an answer slower than 1 s as a timeout",
        ),
        // https://vercel.com/docs/webhooks/webhooks-api#securing-webhooks :
        // `x-vercel-signature` hex HMAC-SHA1 of the body. Timeout and retry schedule: not
        // documented in the pages checked (10 s and a day of dedup assumed).
        "vercel" => basic(
            "vercel",
            "https://vercel.com/docs/webhooks/webhooks-api#securing-webhooks",
            Some(hmac_with(Algorithm::Sha1, "x-vercel-signature", Hex, "")),
            no_freshness(),
            dedup(Some("body:id"), 24 * HOUR),
            "no signed timestamp; event ids kept a day",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://developer.pagerduty.com/docs/verifying-webhook-signatures (v3):
        // `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]`, HMAC-SHA256 of the body.
        "pagerduty" => basic(
            "pagerduty",
            "https://developer.pagerduty.com/docs/verifying-webhook-signatures",
            Some(SignatureSpec {
                version: Some("v1".into()),
                ..hmac("X-PagerDuty-Signature", Hex, SignatureFormat::KeyValue, "", "{body}")
            }),
            no_freshness(),
            dedup(Some("header:X-Webhook-Id"), 24 * HOUR),
            "no signed timestamp; webhook ids kept a day",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://segment.com/docs/connections/destinations/catalog/webhooks/ and
        // https://www.twilio.com/docs/segment/connections/destinations/catalog/actions-webhook :
        // `X-Signature` hex HMAC-SHA1 of the body with the shared secret. Segment waits about
        // 10 s for an answer (https://support.twilio.com/hc/en-us/articles/50029736119451).
        // The retry horizon is not documented on these pages; message ids are kept a day.
        "segment" => basic(
            "segment",
            "https://segment.com/docs/connections/destinations/catalog/webhooks/",
            Some(hmac_with(Algorithm::Sha1, "X-Signature", Hex, "")),
            no_freshness(),
            dedup(Some("body:messageId"), 24 * HOUR),
            "no signed timestamp; message ids kept a day",
            10,
            "Segment waits about 10 s for a webhook answer (Twilio support article 50029736119451)",
        ),
        // https://developers.intercom.com/docs/references/webhooks/webhook-models :
        // `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>` with the app's client secret.
        // https://developers.intercom.com/docs/webhooks/webhook-notifications : a topic is
        // paused for 15 min after 1000 consecutive errors and a private app's subscription
        // suspended after seven days of errors; the request timeout and the retry schedule
        // are not stated there (10 s and a day of dedup assumed).
        "intercom" => basic(
            "intercom",
            "https://developers.intercom.com/docs/references/webhooks/webhook-models#signed-notifications",
            Some(hmac_with(Algorithm::Sha1, "X-Hub-Signature", Hex, "sha1=")),
            no_freshness(),
            dedup(Some("body:id"), 24 * HOUR),
            "no signed timestamp header; notification ids kept a day",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://developers.notion.com/reference/webhooks : `X-Notion-Signature:
        // sha256=<hex HMAC-SHA256 of the body>` keyed with the verification token (also the
        // official SDK's `verifyWebhookSignature`; its README says the first, handshake POST
        // that carries the token is signed with it too). Timeout and retry schedule: not
        // documented in the pages checked (10 s and ~a day assumed).
        "notion" => basic(
            "notion",
            "https://developers.notion.com/reference/webhooks#step-3-validating-event-payloads-recommended",
            Some(hmac("X-Notion-Signature", Hex, SignatureFormat::Plain, "sha256=", "{body}")),
            no_freshness(),
            dedup(Some("body:id"), 25 * HOUR),
            "no signed timestamp header; event ids kept over a day of retries",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://www.typeform.com/developers/webhooks/secure-your-webhooks/ :
        // `Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>`. Typeform's delivery
        // page is not in the index; Hookdeck's summary of it
        // (https://hookdeck.com/webhooks/platforms/guide-to-typeform-webhooks-features-and-best-practices)
        // gives a 30 s timeout and retries every 2–3 min for up to 10 h (on 408/423/429/503).
        "typeform" => basic(
            "typeform",
            "https://www.typeform.com/developers/webhooks/secure-your-webhooks/",
            Some(hmac("Typeform-Signature", Base64, SignatureFormat::Plain, "sha256=", "{body}")),
            no_freshness(),
            dedup(Some("body:event_id"), 24 * HOUR),
            "no signed timestamp; retried for up to 10 h, event ids kept a day",
            30,
            "Typeform waits 30 s (per Hookdeck's summary; Typeform's own page not checked)",
        ),
        // https://developer.calendly.com/api-docs/4c305798a61d3-webhook-signatures and
        // https://developer.calendly.com/docs/webhooks/overview :
        // `Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`.
        // https://developer.calendly.com/api-docs/overview/webhooks/webhook-timeouts : 10 s to
        // connect, 15 s to read. https://developer.calendly.com/api-docs/overview/webhooks/webhook-errors :
        // failures are retried with exponential back-off for 24 h.
        "calendly" => basic(
            "calendly",
            "https://developer.calendly.com/api-docs/4c305798a61d3-webhook-signatures",
            Some(SignatureSpec {
                version: Some("v1".into()),
                timestamp_key: Some("t".into()),
                timestamp: Some(at("signature:t")),
                ..hmac(
                    "Calendly-Webhook-Signature",
                    Hex,
                    SignatureFormat::KeyValue,
                    "",
                    "{timestamp}.{body}",
                )
            }),
            freshness(&["signature:t"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup(None, 25 * HOUR),
            "the timestamp is signed (Calendly suggests a few minutes of tolerance); retries span \
             24 h, bodies remembered 25 h",
            15,
            "Calendly's read timeout is 15 s (10 s to connect)",
        ),
        // https://developer.zendesk.com/documentation/webhooks/verifying/ : base64
        // HMAC-SHA256 of `timestamp + body` (`X-Zendesk-Webhook-Signature`), timestamp in
        // `X-Zendesk-Webhook-Signature-Timestamp`. The request timeout is not stated in the
        // pages checked (a Zendesk partner guide says 10 s).
        "zendesk" => basic(
            "zendesk",
            "https://developer.zendesk.com/documentation/webhooks/verifying/",
            Some(hmac_ts(
                "X-Zendesk-Webhook-Signature",
                Algorithm::Sha256,
                Base64,
                "",
                "{timestamp}{body}",
                "header:X-Zendesk-Webhook-Signature-Timestamp",
            )),
            freshness(
                &["header:X-Zendesk-Webhook-Signature-Timestamp"],
                TimeFormat::Iso8601,
                true,
                HOUR,
            ),
            dedup(Some("header:X-Zendesk-Webhook-Invocation-Id"), HOUR + SKEW),
            "the timestamp is signed; retries come within minutes",
            10,
            "not stated in Zendesk's developer docs checked; 10 s assumed (a Zendesk partner \
             guide says 10 s)",
        ),
        _ => return None,
    };
    Some(preset)
}
