//! Cloud and platform senders whose signature is not one header: AWS SNS (RSA, certificate
//! fetched from the URL in the message), Google Pub/Sub push (Google-signed OIDC token,
//! Google's JWKS), Plaid (ES256 token over the body's digest), Mailgun (HMAC inside the JSON
//! body) and PayPal (RSA over its transmission headers and the body's CRC32, certificate
//! fetched from the URL in a header). Each states where its signature, timestamp and id are,
//! with the provider's documentation beside it.

use super::*;
use crate::scheme::asymmetric::VerifierKind;
use crate::scheme::{Algorithm, Encoding, SignatureMethod};
use crate::timestamp::TimeFormat;

pub(super) fn find(name: &str) -> Option<Preset> {
    let preset = match name {
        // https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
        // The signature is in the JSON message: `Signature` (base64 RSA PKCS#1 v1.5, SHA1withRSA
        // for `SignatureVersion` 1, SHA256withRSA for 2) over the canonical string of Message,
        // MessageId, Subject (if present), Timestamp, TopicArn, Type (confirmations: Message,
        // MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type); the certificate comes from
        // `SigningCertURL`, fetched only from https://sns.<region>.amazonaws.com(.cn)/….pem.
        // `Timestamp` (ISO 8601, signed) is the publish time, kept across retries; `MessageId`
        // (signed) is the dedup id. `x-amz-sns-message-type` is on every POST
        // (https://docs.aws.amazon.com/sns/latest/dg/http-header.html), so it is required
        // before the body is read. SubscriptionConfirmation messages are verified the same
        // way and only then forwarded (the upstream visits SubscribeURL).
        // https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html : the
        // total retry time of an HTTP/S delivery policy cannot exceed 3,600 s (hard limit);
        // the default is 3 retries 20 s apart.
        "sns" => basic(
            "sns",
            "https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html",
            Some(network(
                SignatureMethod::AwsSns,
                "x-amz-sns-message-type",
                VerifierKind::RsaPkcs1Sha256,
            )),
            freshness(
                &["body:Timestamp"],
                TimeFormat::Iso8601,
                true,
                HOUR + 5 * MINUTE,
            ),
            dedup(Some("body:MessageId"), HOUR + 5 * MINUTE + SKEW),
            "Timestamp is signed and kept across retries; SNS stops retrying an HTTP/S delivery \
             within 3,600 s (hard limit), so 65 min covers every retry",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
        // `Authorization: Bearer <JWT>`: RS256, signed by Google (keys at
        // https://www.googleapis.com/oauth2/v3/certs), `iss` accounts.google.com or
        // https://accounts.google.com, `aud` the subscription's audience, `email` its service
        // account. The token authenticates the sender, not the body: the body's
        // `message.messageId` is an unsigned id (dedup also claims the body digest) and
        // `message.publishTime` an unsigned time, so freshness is the token's own `exp` (1 h).
        // https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions :
        // for push, `ackDeadlineSeconds` (default 10 s) is the request timeout; unacked
        // messages are retried until the retention period (default 7 days) ends.
        "google-pubsub" => basic(
            "google-pubsub",
            "https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions",
            Some(network(
                SignatureMethod::GoogleOidc,
                "authorization",
                VerifierKind::RsaPkcs1Sha256,
            )),
            no_freshness(),
            dedup(Some("body:message.messageId"), 7 * 24 * HOUR),
            "the token expires within 1 h; the body (publishTime) is not signed, so ids are \
             remembered for the default 7-day retention instead",
            10,
            "Pub/Sub push times a request out at the ack deadline, 10 s by default",
        ),
        // https://plaid.com/docs/api/webhooks/webhook-verification/ : `Plaid-Verification` is
        // an ES256 JWT whose `request_body_sha256` claim is the body's SHA-256; `iat` must be
        // at most 5 minutes old. The key (a JWK, by the token's `kid`) comes from
        // /webhook_verification_key/get, which needs the account's client_id and secret, so
        // the gateway does not fetch it: configure it in `signature.public_keys`.
        // https://plaid.com/docs/api/webhooks/#webhook-retries : no answer within 10 s is a
        // failure; retried for up to 24 h (backoff from 30 s, ×4), each attempt a new token.
        // Bodies carry no event id and identical bodies recur for distinct events, so the
        // digest is remembered only as long as a token can be replayed.
        "plaid" => basic(
            "plaid",
            "https://plaid.com/docs/api/webhooks/webhook-verification/",
            Some(network(
                SignatureMethod::PlaidJwt,
                "plaid-verification",
                VerifierKind::EcdsaP256Sha256Fixed,
            )),
            no_freshness(),
            dedup(None, 10 * MINUTE),
            "the token's iat may be at most 5 min old and covers the body's SHA-256; a replay \
             of a captured request is stopped by the body digest for 10 min",
            10,
            "Plaid counts no answer within 10 s as a failed attempt",
        ),
        // https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
        // The JSON body carries `signature.{timestamp, token, signature}`: hex HMAC-SHA256 of
        // timestamp + token (no separator) under the webhook signing key. Only those two are
        // signed, not the event data. Mailgun suggests caching the token (dedup id) and
        // checking the timestamp. https://help.mailgun.com/hc/en-us/articles/202236504-Webhooks :
        // any answer but 200 (or 406) is retried after 10 min, 10 min, 15 min, 30 min, 1 h, 2 h
        // and 4 h (8 h 5 min in all); whether a retry is re-signed is not documented. There is
        // no signature header: the head check only requires the Content-Type of the JSON. The
        // HMAC is computed by `scheme::mailgun`; the scheme fields here say SHA-256 and hex.
        "mailgun" => basic(
            "mailgun",
            "https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks",
            Some(SignatureSpec {
                method: Some(SignatureMethod::Mailgun),
                algorithm: Some(Algorithm::Sha256),
                ..hmac(
                    "content-type",
                    Encoding::Hex,
                    SignatureFormat::Plain,
                    "",
                    "{body}",
                )
            }),
            freshness(
                &["body:signature.timestamp"],
                TimeFormat::Unix,
                true,
                8 * HOUR + 15 * MINUTE,
            ),
            dedup(Some("body:signature.token"), 8 * HOUR + 15 * MINUTE + SKEW),
            "retries span 8 h 5 min and re-signing is not documented, so the window covers the \
             schedule; the signed token is remembered as long",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        // https://developer.paypal.com/api/rest/webhooks/rest/ : each delivery carries
        // PAYPAL-TRANSMISSION-ID, PAYPAL-TRANSMISSION-TIME (RFC 3339, "the date and time of the
        // HTTP transmission"), PAYPAL-TRANSMISSION-SIG (base64), PAYPAL-CERT-URL and
        // PAYPAL-AUTH-ALGO (SHA256withRSA)
        // (https://developer.paypal.com/api/webhooks/v1/definitions/verify_webhook_signature).
        // Signed: `<transmission id>|<transmission time>|<webhook id>|<CRC32 of the body,
        // decimal>` (PayPal's SDK: `WebhookEvent._get_expected_sig`,
        // https://github.com/paypal/PayPal-Python-SDK/blob/master/paypalrestsdk/notifications.py),
        // the webhook id being the receiver's, from PayPal's dashboard
        // (`signature.webhook_id`); the certificate is fetched from PAYPAL-CERT-URL, only from
        // https://api.paypal.com or https://api.sandbox.paypal.com. The body's `id`
        // (WH-…) is the event's id; the transmission id is per HTTP transmission, so the
        // event id is the dedup key. Retries: "up to 25 times over 3 days" (same page);
        // whether a retry is re-signed with a new transmission time is not documented, so
        // the window covers the whole schedule. The sender timeout is not documented.
        "paypal" => basic(
            "paypal",
            "https://developer.paypal.com/api/rest/webhooks/rest/",
            Some(network(
                SignatureMethod::Paypal,
                "paypal-transmission-sig",
                VerifierKind::RsaPkcs1Sha256,
            )),
            freshness(
                &["header:paypal-transmission-time"],
                TimeFormat::Iso8601,
                true,
                3 * 24 * HOUR + 5 * MINUTE,
            ),
            dedup(Some("body:id"), 3 * 24 * HOUR + 5 * MINUTE + SKEW),
            "PAYPAL-TRANSMISSION-TIME is signed; PayPal retries up to 25 times over 3 days and \
             does not document re-signing retries, so the window covers 3 days",
            10,
            UNDOCUMENTED_TIMEOUT,
        ),
        _ => return None,
    };
    Some(preset)
}

/// A scheme whose keys are public: fetched (SNS, Google) or configured (Plaid). `header` is
/// the one required before the body is read; `kind` the usual algorithm (SNS also accepts
/// SignatureVersion 1, RSA-SHA1, per message).
fn network(method: SignatureMethod, header: &str, kind: VerifierKind) -> SignatureSpec {
    SignatureSpec {
        header: Some(HeaderName::from_bytes(header.as_bytes()).expect("preset headers are valid")),
        encoding: Some(Encoding::Base64),
        kind: Some(kind),
        method: Some(method),
        ..SignatureSpec::default()
    }
}

/// What a non-header method signs, for `hookgate presets`.
pub(super) fn signed_text(method: SignatureMethod) -> Option<&'static str> {
    Some(match method {
        SignatureMethod::Header => return None,
        SignatureMethod::AwsSns => {
            "SNS canonical string (Message, MessageId, Subject, Timestamp, TopicArn, Type)"
        }
        SignatureMethod::GoogleOidc => "token only (iss, aud, exp, email); the body is not signed",
        SignatureMethod::PlaidJwt => "token with the body's SHA-256 (request_body_sha256, iat)",
        SignatureMethod::Mailgun => "{timestamp}{token} from the body's signature object",
        SignatureMethod::Paypal => {
            "{transmission-id}|{transmission-time}|{webhook_id}|{CRC32 of the body, decimal}"
        }
    })
}

/// How a non-header method authenticates, for `hookgate presets`.
pub(super) fn scheme_text(method: SignatureMethod) -> Option<&'static str> {
    Some(match method {
        SignatureMethod::Header => return None,
        SignatureMethod::AwsSns => "rsa-pkcs1-sha1/sha256 in the body, certificate fetched",
        SignatureMethod::GoogleOidc => "RS256 JWT in Authorization, Google JWKS fetched",
        SignatureMethod::PlaidJwt => "ES256 JWT in Plaid-Verification, configured JWK",
        SignatureMethod::Mailgun => "sha256 hex in the JSON body",
        SignatureMethod::Paypal => "SHA256withRSA in PAYPAL-TRANSMISSION-SIG, certificate fetched",
    })
}
