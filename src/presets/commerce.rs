//! Payments, shops, accounting, storage, sites and CRM: WooCommerce, Razorpay, Xero, Paddle,
//! Coinbase, Square, Box, Webflow, Dropbox, HubSpot.

use super::*;
use crate::scheme::{Algorithm, Encoding, SignatureFormat, SignatureSpec};
use crate::timestamp::TimeFormat;

pub(super) fn find(name: &str) -> Option<Preset> {
    use Encoding::*;
    let preset = match name {
        // https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks :
        // `X-WC-Webhook-Signature` base64 HMAC-SHA256 of the body. The docs are silent on
        // timing; WooCommerce's `WC_Webhook::deliver()` (plugins/woocommerce/includes/class-wc-webhook.php)
        // waits `MINUTE_IN_SECONDS` (60 s), makes a new `X-WC-Webhook-Delivery-ID` per delivery
        // and does not retry: it counts failures and disables the hook after 5 in a row.
        "woocommerce" => basic(
            "woocommerce",
            "https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks",
            Some(hmac("X-WC-Webhook-Signature", Base64, SignatureFormat::Plain, "", "{body}")),
            no_freshness(),
            dedup(Some("header:X-WC-Webhook-Delivery-ID"), 24 * HOUR),
            "no signed timestamp and no retries; delivery ids (and body digests) kept a day",
            60,
            "WooCommerce's deliver() waits 60 s (MINUTE_IN_SECONDS; not in the REST docs)",
        ),
        // https://razorpay.com/docs/webhooks/validate-test/ : `X-Razorpay-Signature` hex
        // HMAC-SHA256 of the body; `x-razorpay-event-id` is the same on every retry
        // (https://razorpay.com/docs/payments/payment-gateway/s2s-integration/test-s2s/best-practices/retries-and-idempotency.md).
        // https://razorpay.com/docs/webhooks/best-practices : failures are retried with
        // exponential back-off for 24 h after the event was created. The request timeout is
        // not documented there (nor in the FAQs); 5 s is assumed.
        "razorpay" => basic(
            "razorpay",
            "https://razorpay.com/docs/webhooks/validate-test/",
            Some(hmac("X-Razorpay-Signature", Hex, SignatureFormat::Plain, "", "{body}")),
            no_freshness(),
            dedup(Some("header:x-razorpay-event-id"), 25 * HOUR),
            "no signed timestamp; retried over 24 h, event ids kept that long",
            5,
            "not documented in Razorpay's webhook pages; 5 s assumed",
        ),
        // https://developer.xero.com/documentation/guides/webhooks/overview/ :
        // `x-xero-signature` base64 HMAC-SHA256 of the body.
        // https://developer.xero.com/documentation/webhooks/configuring-your-server : answer
        // 200 within 5 s (401 for a bad signature, which the intent-to-receive check expects);
        // failures are retried with decreasing frequency for up to 24 h.
        "xero" => basic(
            "xero",
            "https://developer.xero.com/documentation/guides/webhooks/overview/",
            Some(hmac("x-xero-signature", Base64, SignatureFormat::Plain, "", "{body}")),
            no_freshness(),
            dedup(None, 25 * HOUR),
            "no signed timestamp; retried for up to 24 h, bodies remembered 25 h",
            5,
            "Xero expects an answer within 5 s (configuring-your-server)",
        ),
        // https://developer.paddle.com/webhooks/about/signature-verification :
        // `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "ts:body">`; the SDKs allow 5 s
        // of timestamp difference, so every attempt is stamped when sent.
        // https://developer.paddle.com/webhooks/about/respond-to-webhooks : answer within 5 s;
        // live accounts retry up to 60 times over 3 days (sandbox 3 times within 15 min).
        "paddle" => basic(
            "paddle",
            "https://developer.paddle.com/webhooks/about/signature-verification",
            Some(SignatureSpec {
                version: Some("h1".into()),
                timestamp_key: Some("ts".into()),
                separator: Some(';'),
                timestamp: Some(at("signature:ts")),
                ..hmac("Paddle-Signature", Hex, SignatureFormat::KeyValue, "", "{timestamp}:{body}")
            }),
            freshness(&["signature:ts"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup(Some("body:event_id"), 72 * HOUR),
            "each attempt carries its own signed ts (Paddle's SDKs allow 5 s; 5 min here for clock \
             skew); event ids kept for the 3-day retries",
            5,
            "Paddle requires an answer within 5 s",
        ),
        // https://docs.cdp.coinbase.com/commerce/docs/webhooks-security and
        // https://docs.cdp.coinbase.com/commerce/api-arcitecture/webhooks-overview :
        // `X-CC-Webhook-Signature` hex HMAC-SHA256 of the raw body with the shared secret;
        // unacknowledged events are retried with exponential back-off (at most 1 h apart)
        // for up to three days. The request timeout is not documented (10 s assumed).
        "coinbase" => basic(
            "coinbase",
            "https://docs.cdp.coinbase.com/commerce/docs/webhooks-security",
            Some(hmac("X-CC-Webhook-Signature", Hex, SignatureFormat::Plain, "", "{body}")),
            no_freshness(),
            dedup(Some("body:event.id"), 72 * HOUR),
            "no signed timestamp; event ids kept for 3 days of retries",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://developer.squareup.com/docs/webhooks/step3validate :
        // `x-square-hmacsha256-signature` base64 HMAC-SHA256 of notification URL + body.
        // https://developer.squareup.com/docs/webhooks/troubleshooting : acknowledge within
        // 10 s; failed deliveries are retried for up to 24 h (one version of the page says
        // 72 h), so event ids are kept for the longer of the two.
        "square" => basic(
            "square",
            "https://developer.squareup.com/docs/webhooks/step3validate",
            Some(hmac("x-square-hmacsha256-signature", Base64, SignatureFormat::Plain, "", "{url}{body}")),
            no_freshness(),
            dedup(Some("body:event_id"), 73 * HOUR),
            "no signed timestamp; retried for up to 24 h (72 h in one version of Square's docs), \
             event ids kept 73 h",
            10,
            "Square requires an acknowledgement within 10 s",
        ),
        // https://developer.box.com/guides/webhooks/v2/ : `BOX-DELIVERY-ID` changes on every
        // retry while the body's `id` stays the same, so dedup keys on the body's `id`;
        // `BOX-DELIVERY-TIMESTAMP` (RFC 3339) is when the payload was sent. Box waits 30 s for
        // a 2xx (its docs as quoted by Box staff:
        // https://support.box.com/hc/en-us/community/posts/360049180293); the retry horizon is
        // not documented in the pages checked, so ids are kept a day.
        // https://developer.box.com/guides/webhooks/v2/signatures-v2/ : base64 HMAC-SHA256 of
        // body + `box-delivery-timestamp`, once per key: `box-signature-primary` with the
        // primary key, `box-signature-secondary` with the secondary. Modelled as one scheme
        // with a secondary header: configure both keys; a signature in either header matching
        // either key passes (both keys are Box's), so rotating one key never drops deliveries.
        "box" => basic(
            "box",
            "https://developer.box.com/guides/webhooks/v2/signatures-v2/",
            Some(SignatureSpec {
                secondary_header: Some(http::HeaderName::from_static("box-signature-secondary")),
                ..hmac_ts(
                    "box-signature-primary",
                    Algorithm::Sha256,
                    Base64,
                    "",
                    "{body}{timestamp}",
                    "header:box-delivery-timestamp",
                )
            }),
            freshness(&["header:box-delivery-timestamp"], TimeFormat::Iso8601, true, 10 * MINUTE),
            dedup(Some("body:id"), 24 * HOUR),
            "the delivery timestamp is signed and new per attempt (Box says refuse deliveries older \
             than 10 min); event ids kept a day, as the retry horizon is not documented",
            30,
            "Box waits 30 s for an answer (docs quoted by Box staff)",
        ),
        // https://developers.webflow.com/data/docs/working-with-webhooks : `x-webflow-signature`
        // hex HMAC-SHA256 of "timestamp:body", `x-webflow-timestamp` in milliseconds.
        // https://developers.webflow.com/data/v1.0.0/docs/limits-and-retries : a failed
        // delivery is retried 3 times, 10 min apart, so bodies are remembered 35 min. The
        // request timeout is not documented (10 s assumed).
        "webflow" => basic(
            "webflow",
            "https://developers.webflow.com/data/docs/working-with-webhooks#validating-request-signatures",
            Some(hmac_ts(
                "x-webflow-signature",
                Algorithm::Sha256,
                Hex,
                "",
                "{timestamp}:{body}",
                "header:x-webflow-timestamp",
            )),
            freshness(&["header:x-webflow-timestamp"], TimeFormat::UnixMs, true, 5 * MINUTE),
            dedup(None, 35 * MINUTE),
            "the timestamp is signed (Webflow says refuse requests older than 5 min); 3 retries \
             10 min apart, bodies remembered 35 min",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://www.dropbox.com/developers/reference/webhooks : `X-Dropbox-Signature` hex
        // HMAC-SHA256 of the body with the app secret; a notification only lists the accounts
        // that changed (no id, no timestamp), so identical bodies are distinct notifications;
        // answer within 10 s; `GET ?challenge=` verifies the endpoint.
        "dropbox" => basic(
            "dropbox",
            "https://www.dropbox.com/developers/reference/webhooks",
            Some(hmac("X-Dropbox-Signature", Hex, SignatureFormat::Plain, "", "{body}")),
            no_freshness(),
            crate::source::DedupSpec {
                enabled: Some(false),
                ..crate::source::DedupSpec::default()
            },
            "nothing but the body is signed and identical bodies are distinct notifications (which \
             accounts changed), so neither freshness nor dedup applies; a replay only prompts a re-sync",
            10,
            "Dropbox expects an answer within 10 s",
        ),
        // https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
        // v3: base64 HMAC-SHA256 of method + URI + body + timestamp (ms), refuse > 5 min
        // (also https://developers.hubspot.com/changelog/introducing-version-3-of-webhook-signatures).
        // https://developers.hubspot.com/docs/methods/webhooks/webhooks-overview (as quoted on
        // https://integrate.hubspot.com/t/what-does-will-retry-mean-when/3953): a response
        // slower than 1 s counts as a timeout; failures are retried up to 10 times, 2, 4, 8 …
        // min apart. Each attempt carries its own signed timestamp; the body's `attemptNumber`
        // changes per attempt, so the body digest does not catch retries (dedup by the
        // events' `eventId` upstream). The current page was not in the index.
        "hubspot" => basic(
            "hubspot",
            "https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation",
            Some(hmac_ts(
                "X-HubSpot-Signature-v3",
                Algorithm::Sha256,
                Base64,
                "",
                "{method}{url}{body}{timestamp}",
                "header:X-HubSpot-Request-Timestamp",
            )),
            freshness(&["header:X-HubSpot-Request-Timestamp"], TimeFormat::UnixMs, true, 5 * MINUTE),
            dedup(None, 5 * MINUTE + SKEW),
            "the timestamp is signed; HubSpot says refuse requests older than 5 min",
            1,
            "HubSpot counts a response slower than 1 s as a timeout (webhooks overview)",
        ),
        _ => return None,
    };
    Some(preset)
}
