//! The signature scheme as configuration writes it ([`SignatureSpec`]: every field optional,
//! so a preset can fill what the user leaves out) and the one place it becomes a runtime
//! [`Scheme`] ([`Scheme::from_spec`]). Fields are typed: a header name, a template or a value
//! source is parsed when the file is read, and presets write the same typed values.

use http::HeaderName;
use serde::{Deserialize, Deserializer};

use super::asymmetric::VerifierKind;
use super::{Algorithm, Encoding, Scheme, Shape, Template};
use crate::extract::ValueSource;
use crate::secret::{SecretEncoding, SecretRef};

/// How the signature header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    /// `<prefix><mac>`.
    Plain,
    /// Stripe's `t=…,v1=…` list.
    KeyValue,
    /// Standard Webhooks' space-separated `v1,<mac>` list.
    Versioned,
}

/// Where a delivery's signature travels and what verifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMethod {
    /// A signature header described by the scheme's fields (HMAC or `kind`).
    #[default]
    Header,
    /// AWS SNS: RSA signature and certificate URL inside the JSON message.
    AwsSns,
    /// Google-signed OIDC token in `Authorization: Bearer` (Pub/Sub push), Google's JWKS.
    GoogleOidc,
    /// Plaid's ES256 token in `Plaid-Verification` with the body's SHA-256.
    PlaidJwt,
    /// Mailgun: HMAC of `timestamp + token`, all inside the JSON body.
    Mailgun,
    /// PayPal: RSA signature over the transmission headers, the webhook id and the body's
    /// CRC32; certificate from `PAYPAL-CERT-URL` on a pinned PayPal host.
    Paypal,
}

impl SignatureMethod {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            SignatureMethod::Header => "header",
            SignatureMethod::AwsSns => "aws-sns",
            SignatureMethod::GoogleOidc => "google-oidc",
            SignatureMethod::PlaidJwt => "plaid-jwt",
            SignatureMethod::Mailgun => "mailgun",
            SignatureMethod::Paypal => "paypal",
        }
    }
}

/// A signature scheme; every field optional so a preset can fill the rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSpec {
    /// The header the signature travels in.
    #[serde(default, deserialize_with = "header_name")]
    pub header: Option<HeaderName>,
    /// The HMAC hash.
    pub algorithm: Option<Algorithm>,
    /// How the MAC is encoded.
    pub encoding: Option<Encoding>,
    /// The header's shape.
    pub format: Option<SignatureFormat>,
    /// `plain` format: text before the MAC, e.g. `sha256=`.
    pub prefix: Option<String>,
    /// `versioned` and `key-value` formats: the signature's version tag (`v1`).
    pub version: Option<String>,
    /// `key-value` format: the key of the timestamp entry (`t`).
    pub timestamp_key: Option<String>,
    /// The signed bytes, e.g. `{timestamp}.{body}`.
    pub signed: Option<Template>,
    /// Where `{timestamp}` comes from.
    pub timestamp: Option<ValueSource>,
    /// Where `{id}` comes from.
    pub id: Option<ValueSource>,
    /// How the secret's text becomes key bytes.
    pub secret_encoding: Option<SecretEncoding>,
    /// `key-value` format: the character between entries (`,` by default; Paddle: `;`).
    pub separator: Option<char>,
    /// A second header carrying a signature in the same shape (Box sends one per key); a
    /// delivery passes when a signature in either header matches any configured key.
    #[serde(default, deserialize_with = "header_name")]
    pub secondary_header: Option<HeaderName>,
    /// An asymmetric algorithm (`ed25519`, `ecdsa-p256-sha256-der`, …): verified with
    /// `public_keys` instead of HMAC secrets. Unset: HMAC with `algorithm`.
    pub kind: Option<VerifierKind>,
    /// The provider's public keys (hex, base64, PEM or `whpk_`), for `kind`.
    pub public_keys: Option<Vec<SecretRef>>,
    /// Where the signature travels (`header`, the default; `aws-sns`, `google-oidc`,
    /// `plaid-jwt`, `mailgun`, `paypal`).
    pub method: Option<SignatureMethod>,
    /// `google-oidc`: the token's required `aud` (the push subscription's audience).
    pub audience: Option<String>,
    /// `google-oidc`: the required `email` claim (the push subscription's service account).
    pub email: Option<String>,
    /// `aws-sns`: the accepted `TopicArn`s; unset: any topic.
    pub topics: Option<Vec<String>>,
    /// `paypal`: the webhook's id in PayPal's developer dashboard (PayPal signs it).
    pub webhook_id: Option<String>,
    /// Fetched keys: where they are served (`google-oidc`: Google's JWKS by default). Must
    /// match the pinned host pattern.
    pub key_url: Option<String>,
    /// Fetched keys: the pinned host (`host[:port]`, `*` for one label) instead of the
    /// provider's. For tests and private deployments only.
    pub key_host_pattern: Option<String>,
    /// Fetched keys: a PEM CA file trusted besides the system roots. For tests and private
    /// deployments only.
    pub key_server_ca: Option<std::path::PathBuf>,
    /// Fetched keys: how long they are kept, instead of the server's `Cache-Control`.
    #[serde(default, with = "humantime_serde")]
    pub key_cache_ttl: Option<std::time::Duration>,
}

fn header_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HeaderName>, D::Error> {
    let text = String::deserialize(d)?;
    HeaderName::from_bytes(text.as_bytes())
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a valid header name")))
}

impl SignatureSpec {
    /// This spec's fields, with `base`'s wherever this one leaves a field unset.
    pub fn over(self, base: SignatureSpec) -> SignatureSpec {
        SignatureSpec {
            header: self.header.or(base.header),
            algorithm: self.algorithm.or(base.algorithm),
            encoding: self.encoding.or(base.encoding),
            format: self.format.or(base.format),
            prefix: self.prefix.or(base.prefix),
            version: self.version.or(base.version),
            timestamp_key: self.timestamp_key.or(base.timestamp_key),
            signed: self.signed.or(base.signed),
            timestamp: self.timestamp.or(base.timestamp),
            id: self.id.or(base.id),
            secret_encoding: self.secret_encoding.or(base.secret_encoding),
            separator: self.separator.or(base.separator),
            secondary_header: self.secondary_header.or(base.secondary_header),
            kind: self.kind.or(base.kind),
            public_keys: self.public_keys.or(base.public_keys),
            method: self.method.or(base.method),
            audience: self.audience.or(base.audience),
            email: self.email.or(base.email),
            topics: self.topics.or(base.topics),
            webhook_id: self.webhook_id.or(base.webhook_id),
            key_url: self.key_url.or(base.key_url),
            key_host_pattern: self.key_host_pattern.or(base.key_host_pattern),
            key_server_ca: self.key_server_ca.or(base.key_server_ca),
            key_cache_ttl: self.key_cache_ttl.or(base.key_cache_ttl),
        }
    }
}

impl Scheme {
    /// The runtime scheme of a complete spec; the error names the missing or inconsistent key.
    pub fn from_spec(sig: &SignatureSpec) -> Result<Scheme, String> {
        let header = sig.header.clone().ok_or("header is not set")?;
        let shape = match sig.format.unwrap_or(SignatureFormat::Plain) {
            SignatureFormat::Plain => Shape::Plain {
                prefix: sig.prefix.clone().unwrap_or_default(),
            },
            SignatureFormat::KeyValue => Shape::KeyValue {
                timestamp_key: sig.timestamp_key.clone().unwrap_or_else(|| "t".into()),
                signature_key: sig.version.clone().unwrap_or_else(|| "v1".into()),
                separator: sig.separator.unwrap_or(','),
            },
            SignatureFormat::Versioned => Shape::Versioned {
                version: sig.version.clone().unwrap_or_else(|| "v1".into()),
            },
        };
        let template = match &sig.signed {
            Some(template) => template.clone(),
            None => Template::parse("{body}").expect("the default template parses"),
        };
        let algorithm = match (sig.kind, sig.algorithm) {
            (Some(kind), Some(_)) => {
                return Err(format!(
                "kind = \"{}\" is an asymmetric signature: algorithm (an HMAC hash) does not apply",
                kind.name()
            ))
            }
            // Not used by asymmetric verification.
            (Some(_), None) => Algorithm::Sha256,
            (None, algorithm) => algorithm.ok_or("algorithm is not set")?,
        };
        let scheme = Scheme {
            algorithm,
            verifier: sig.kind,
            secondary_header: sig.secondary_header.clone(),
            public_url: None,
            encoding: sig.encoding.ok_or("encoding is not set")?,
            header,
            shape,
            template,
            timestamp: sig.timestamp.clone(),
            id: sig.id.clone(),
        };
        // The other methods read their timestamp and id from the body themselves.
        if sig.method.unwrap_or_default() == SignatureMethod::Header {
            scheme.validate()?;
        }
        Ok(scheme)
    }
}
