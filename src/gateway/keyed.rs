//! Verifying the signatures that do not travel in one header ([`Method`]): AWS SNS messages
//! (certificate fetched from a pinned AWS host), JWTs (Google's fetched JWKS, Plaid's
//! configured keys), Mailgun's body signature and PayPal's transmission signature
//! (certificate fetched from a pinned PayPal host).
//!
//! A key that cannot be fetched is never a reason to let a delivery through, nor to refuse it
//! for good: it is answered `503` with `Retry-After` ([`Rejection::KeyFetchFailed`]), so the
//! provider retries. A certificate URL off the pinned hosts is refused (401) without being
//! fetched.

use base64::Engine as _;
use bytes::Bytes;

use super::rejection::Rejection;
use super::RequestId;
use crate::clock::SharedClock;
use crate::extract::{header_value, HeaderLookup};
use crate::keyfetch::{pinned, FetchError, REFETCH_UNKNOWN_KID_AFTER, RETRY_AFTER};
use crate::scheme::asymmetric::{verify, VerifyError};
use crate::scheme::jwt::{verify_jwt_with, JwtError};
use crate::scheme::keys::PublicKey;
use crate::scheme::paypal::{self, PaypalError};
use crate::scheme::signed::{sns_string_to_sign, SnsError};
use crate::scheme::{mailgun, SignatureError};
use crate::source::method::{JwtCheck, Method, PaypalCheck, SnsCheck};
use crate::source::SignatureCheck;

fn bad(reason: &'static str) -> Rejection {
    Rejection::BadSignature { reason }
}

/// Whether verifying needs keys from the network (so the check is asynchronous).
pub(super) fn fetches(check: &SignatureCheck) -> bool {
    match &check.method {
        Method::Sns(_) | Method::Paypal(_) => true,
        Method::Jwt(jwt) => jwt.jwks.is_some(),
        Method::Header | Method::Mailgun => false,
    }
}

/// Verifies the methods that need no network, at `now_ms`. A method that fetches keys is
/// answered as if the fetch failed (used where nothing may be fetched: [`super::decide`]).
pub(super) fn verify_local(
    check: &SignatureCheck,
    req: &http::Request<Bytes>,
    now_ms: i64,
) -> Result<Option<usize>, Rejection> {
    match &check.method {
        Method::Mailgun => {
            mailgun::verify(&check.keys, req.body())
                .map(Some)
                .map_err(|e| match e {
                    SignatureError::Missing => bad("the body carries no Mailgun signature object"),
                    SignatureError::Invalid(reason) => bad(reason),
                    SignatureError::Mismatch => bad("no configured secret produces this signature"),
                })
        }
        Method::Jwt(jwt) if jwt.jwks.is_none() => {
            verify_token(jwt, &check.public_keys, req, now_ms)
                .map(|()| None)
                .map_err(Refused::into_inner)
        }
        Method::Sns(_) | Method::Jwt(_) | Method::Paypal(_) => Err(Rejection::KeyFetchFailed {
            retry_after: RETRY_AFTER,
        }),
        // Verified by the scheme in the verify layer, never here; refused all the same.
        Method::Header => Err(bad("header signatures are verified by the scheme")),
    }
}

/// Verifies any non-header method, fetching keys when it needs them.
pub(super) async fn verify_fetched(
    check: &SignatureCheck,
    req: &http::Request<Bytes>,
    clock: &SharedClock,
) -> Result<Option<usize>, Rejection> {
    match &check.method {
        Method::Sns(_) | Method::Jwt(_) | Method::Paypal(_) => {
            // Fetched keys have no configured position to report.
            verify_remote(check, req, clock).await.map(|()| None)
        }
        Method::Header | Method::Mailgun => verify_local(check, req, clock.wall_ms()),
    }
}

async fn verify_remote(
    check: &SignatureCheck,
    req: &http::Request<Bytes>,
    clock: &SharedClock,
) -> Result<(), Rejection> {
    match &check.method {
        Method::Sns(sns) => verify_sns(sns, req, clock).await,
        Method::Paypal(paypal) => verify_paypal(paypal, req, clock).await,
        Method::Jwt(jwt) => match &jwt.jwks {
            Some((fetcher, url)) => {
                let keys = fetcher
                    .keys(url, clock)
                    .await
                    .map_err(fetch_failed(RequestId::of(req)))?;
                match verify_token(jwt, &keys, req, clock.wall_ms()) {
                    // The token names a key the cached set lacks: the provider may have
                    // rotated. Refetch, at most once per REFETCH_UNKNOWN_KID_AFTER.
                    Err(Refused::UnknownKey(rejection)) => {
                        if !fetcher.forget_if_older(url, clock, REFETCH_UNKNOWN_KID_AFTER) {
                            return Err(rejection);
                        }
                        let keys = fetcher
                            .keys(url, clock)
                            .await
                            .map_err(fetch_failed(RequestId::of(req)))?;
                        verify_token(jwt, &keys, req, clock.wall_ms()).map_err(Refused::into_inner)
                    }
                    other => other.map_err(Refused::into_inner),
                }
            }
            None => verify_token(jwt, &check.public_keys, req, clock.wall_ms())
                .map_err(Refused::into_inner),
        },
        Method::Header | Method::Mailgun => verify_local(check, req, clock.wall_ms()).map(|_| ()),
    }
}

/// The answer when keys cannot be fetched, logged with the request's id.
fn fetch_failed(request_id: &str) -> impl FnOnce(FetchError) -> Rejection + '_ {
    move |error| {
        tracing::warn!(request_id, %error, "provider keys could not be fetched; answering 503");
        Rejection::KeyFetchFailed {
            retry_after: RETRY_AFTER,
        }
    }
}

/// AWS SNS: the string to sign from the message, the topic, the certificate URL on a pinned
/// host, then RSA with SHA-1 (SignatureVersion 1) or SHA-256 (2).
/// <https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>
async fn verify_sns(
    sns: &SnsCheck,
    req: &http::Request<Bytes>,
    clock: &SharedClock,
) -> Result<(), Rejection> {
    let message = sns_string_to_sign(req.body()).map_err(|e| match e {
        SnsError::NotJson => bad("the body is not an SNS message"),
        SnsError::Missing(_) => bad("a field SNS signs is missing"),
        SnsError::UnknownType => bad("the SNS message Type is not one that is signed"),
        SnsError::UnknownVersion => bad("SignatureVersion must be 1 or 2"),
        SnsError::Signature => bad("the SNS Signature is not base64"),
    })?;
    // AWS: "Reject any message with an unexpected TopicArn".
    if !sns.topics.is_empty() && !sns.topics.contains(&message.topic_arn) {
        return Err(bad("the SNS topic is not one this source accepts"));
    }
    let url = pinned::check(&message.signing_cert_url, &sns.hosts, Some(".pem"))
        .map_err(|_| bad("SigningCertURL is not an https:// certificate URL on an SNS host"))?;
    let keys = sns
        .certs
        .keys(&url, clock)
        .await
        .map_err(fetch_failed(RequestId::of(req)))?;
    verify(
        message.kind,
        &keys,
        &message.string_to_sign,
        &message.signature,
    )
    .map_err(|_| bad("the SNS signature does not verify with the signing certificate"))
}

/// PayPal: the signed string from the transmission headers, the configured webhook id and
/// the body's CRC32; `PAYPAL-CERT-URL` on a pinned PayPal host; SHA256withRSA.
/// <https://developer.paypal.com/api/rest/webhooks/rest/>
async fn verify_paypal(
    paypal: &PaypalCheck,
    req: &http::Request<Bytes>,
    clock: &SharedClock,
) -> Result<(), Rejection> {
    let signed =
        paypal::signed(req.headers(), &paypal.webhook_id, req.body()).map_err(|e| match e {
            PaypalError::Header(reason) => bad(reason),
            PaypalError::Algorithm => bad("PAYPAL-AUTH-ALGO is not SHA256withRSA"),
        })?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&signed.signature)
        .map_err(|_| bad("PAYPAL-TRANSMISSION-SIG is not base64"))?;
    let url = pinned::check(&signed.cert_url, &paypal.hosts, None)
        .map_err(|_| bad("PAYPAL-CERT-URL is not an https:// URL on a PayPal API host"))?;
    let keys = paypal
        .certs
        .keys(&url, clock)
        .await
        .map_err(fetch_failed(RequestId::of(req)))?;
    verify(
        signed.kind,
        &keys,
        signed.string_to_sign.as_bytes(),
        &signature,
    )
    .map_err(|_| bad("the PayPal signature does not verify with the signing certificate"))
}

/// Why a token was refused: for a key id that none of the keys has, or anything else.
enum Refused {
    UnknownKey(Rejection),
    Other(Rejection),
}

impl Refused {
    fn into_inner(self) -> Rejection {
        match self {
            Refused::UnknownKey(r) | Refused::Other(r) => r,
        }
    }
}

impl From<Rejection> for Refused {
    fn from(rejection: Rejection) -> Self {
        Refused::Other(rejection)
    }
}

/// A JWT in its header: signature and claims, then the service account (Google) or the
/// body's digest (Plaid).
fn verify_token(
    jwt: &JwtCheck,
    keys: &[PublicKey],
    req: &http::Request<Bytes>,
    now_ms: i64,
) -> Result<(), Refused> {
    let token = match header_value(req.headers(), &jwt.header) {
        HeaderLookup::Value(token) => token,
        HeaderLookup::Missing => {
            return Err(Rejection::MissingSignature {
                header: jwt.header.clone(),
            }
            .into())
        }
        _ => return Err(bad("token header repeated or not ASCII").into()),
    };
    let claims =
        verify_jwt_with(token, keys, &jwt.rules, now_ms.div_euclid(1000)).map_err(|e| match e {
            JwtError::Signature(VerifyError::NoKeys) => Refused::UnknownKey(bad(jwt_reason(e))),
            e => Refused::Other(bad(jwt_reason(e))),
        })?;
    if let Some(email) = &jwt.email {
        // Google: the push subscription's service account, with a verified address.
        // <https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions>
        if claims.email.as_deref() != Some(email.as_str()) || claims.email_verified != Some(true) {
            return Err(bad("token email is not the configured service account").into());
        }
    }
    if jwt.body_sha256 {
        claims
            .check_body_sha256(req.body())
            .map_err(|e| bad(jwt_reason(e)))?;
    }
    Ok(())
}

fn jwt_reason(error: JwtError) -> &'static str {
    match error {
        JwtError::Malformed => "token is not a compact JWS",
        JwtError::Json => "token header or claims are not the expected JSON",
        JwtError::AlgorithmNotAllowed => "token algorithm is not allowed",
        JwtError::CriticalHeader => "token has critical header parameters",
        JwtError::Signature(_) => "token signature does not verify with the provider's keys",
        JwtError::Issuer => "token issuer is not accepted",
        JwtError::Audience => "token audience does not match",
        JwtError::Expired => "token has expired",
        JwtError::NotYetValid => "token is not valid yet",
        JwtError::MissingClaim(_) => "token lacks a required claim",
        JwtError::TooOld => "token was issued too long ago",
        JwtError::BodyMismatch => "request body does not match the token's request_body_sha256",
    }
}
