//! Signatures that do not travel in one header, and where their keys come from: AWS SNS
//! (signature and certificate URL in the JSON message, certificate fetched from a pinned AWS
//! host), Google OIDC tokens (Google's JWKS, fetched), Plaid's token (keys from
//! configuration), Mailgun (HMAC in the JSON body) and PayPal (RSA over its transmission
//! headers, certificate fetched from a pinned PayPal host). The gateway's verify layer runs them.

use std::sync::Arc;

use http::{HeaderName, Uri};

use crate::keyfetch::pinned::HostPattern;
use crate::keyfetch::KeyFetcher;
use crate::scheme::jwt::JwtRules;

/// How a source's signature is verified.
#[derive(Debug)]
pub enum Method {
    /// The scheme's header signature (HMAC, or asymmetric with configured keys).
    Header,
    /// AWS SNS messages.
    Sns(SnsCheck),
    /// A JWT in a header (Google OIDC, Plaid).
    Jwt(JwtCheck),
    /// Mailgun's body signature, with the source's HMAC keys.
    Mailgun,
    /// PayPal: the transmission headers' RSA signature, certificate fetched.
    Paypal(PaypalCheck),
}

/// PayPal: where certificates may come from and the webhook id PayPal signs.
#[derive(Debug)]
pub struct PaypalCheck {
    /// Fetches and caches the signing certificates.
    pub certs: Arc<KeyFetcher>,
    /// The hosts `PAYPAL-CERT-URL` may name.
    pub hosts: Vec<HostPattern>,
    /// The webhook's id in PayPal's dashboard, part of what PayPal signs.
    pub webhook_id: String,
}

/// AWS SNS: where certificates may come from and which topics are accepted.
#[derive(Debug)]
pub struct SnsCheck {
    /// Fetches and caches the signing certificates.
    pub certs: Arc<KeyFetcher>,
    /// The hosts `SigningCertURL` may name.
    pub hosts: Vec<HostPattern>,
    /// Accepted `TopicArn`s; empty: any.
    pub topics: Vec<String>,
}

/// A JWT in a header, its claims' rules and where its keys come from.
#[derive(Debug)]
pub struct JwtCheck {
    /// The header carrying the token (`Authorization: Bearer …`, `Plaid-Verification`).
    pub header: HeaderName,
    /// `iss`, `aud`, `exp`, `iat` rules.
    pub rules: JwtRules,
    /// The `email` claim required (Google: the push subscription's service account).
    pub email: Option<String>,
    /// Whether the token carries the body's SHA-256 (`request_body_sha256`, Plaid).
    pub body_sha256: bool,
    /// A JWKS fetched from this URL; `None`: the source's configured public keys.
    pub jwks: Option<(Arc<KeyFetcher>, Uri)>,
}

impl Method {
    /// Whether the signature covers the whole body (so values read from it are signed).
    /// Google's token authenticates the sender only; Mailgun signs only its
    /// `signature.timestamp` and `signature.token`, the fields its preset reads.
    pub fn covers_body(&self) -> bool {
        match self {
            Method::Jwt(jwt) => jwt.body_sha256,
            _ => true,
        }
    }

    /// Whether the admit layer should require the scheme's header before the body is read
    /// (Mailgun's signature is only in the body).
    pub fn has_header(&self) -> bool {
        !matches!(self, Method::Mailgun)
    }
}
