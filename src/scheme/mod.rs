//! The shared signing core. A [`Scheme`] describes *which bytes are signed* (a [`Template`] of
//! body, timestamp, id and literals), *with which hash* ([`Algorithm`]), *how the MAC is
//! encoded* ([`Encoding`]) and *where and in which shape it travels* ([`Shape`] in one header).
//! Signing ([`Scheme::sign`]) and verifying ([`Scheme::verify`]) are two uses of the same
//! description, so what the sender signs the gateway verifies.
//!
//! Verification decodes each presented signature into a fixed-size buffer and compares it with
//! every expected MAC (one per configured secret) using `subtle`, accumulating the result without
//! early exit — also not on a length mismatch or a decoding failure.
//!
//! Asymmetric verification (Ed25519, ECDSA P-256, RSA PKCS#1 v1.5, JWT RS256/ES256) lives in
//! [`asymmetric`], [`keys`] and [`jwt`]; what each such provider signs is in [`signed`]. They
//! reuse [`Template`] for the signed bytes and [`Encoding`] for the signature's text form.

pub mod asymmetric;
mod der;
pub mod jwt;
pub mod keys;
mod parts;
pub mod signed;
mod spec;
#[cfg(test)]
mod tests;

pub use parts::{
    Algorithm, Encoding, Part, Shape, SignInput, SignatureError, SigningKey, Template,
};
use parts::{MAX_CANDIDATES, MAX_MAC};
pub use spec::{SignatureFormat, SignatureSpec};

use http::{HeaderMap, HeaderName};
use subtle::{Choice, ConstantTimeEq};

use crate::extract::{header_value, HeaderLookup, ValueSource};

/// A complete description of one signature scheme.
#[derive(Debug, Clone)]
pub struct Scheme {
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub header: HeaderName,
    pub shape: Shape,
    pub template: Template,
    /// Where `{timestamp}` comes from (a header, or a parameter of the signature header).
    pub timestamp: Option<ValueSource>,
    /// Where `{id}` comes from (a header).
    pub id: Option<ValueSource>,
}

impl Scheme {
    /// Checks that the template's placeholders have somewhere to come from.
    pub fn validate(&self) -> Result<(), String> {
        let check = |part: Part, source: &Option<ValueSource>, name: &str| match source {
            _ if !self.template.uses(&part) => Ok(()),
            None => Err(format!(
                "template `{}` uses {{{name}}} but signature.{name} is not set",
                self.template.as_str()
            )),
            Some(ValueSource::Body(_)) => Err(format!(
                "signature.{name} must come from a header or the signature header, not the body"
            )),
            Some(ValueSource::SignatureParam(_))
                if !matches!(self.shape, Shape::KeyValue { .. }) =>
            {
                Err(format!(
                    "signature.{name} = signature:<param> needs the key-value signature format"
                ))
            }
            Some(_) => Ok(()),
        };
        check(Part::Timestamp, &self.timestamp, "timestamp")?;
        check(Part::Id, &self.id, "id")
    }

    /// The MAC of `input` under `key`, encoded (without any prefix or list shape).
    pub fn signature(&self, key: &SigningKey, input: &SignInput<'_>) -> String {
        let mut mac = [0u8; MAX_MAC];
        key.compute(&self.template, input, &mut mac);
        self.encoding.encode(&mac[..self.algorithm.mac_len()])
    }

    /// The full signature header value for `input`, as the provider would send it.
    pub fn sign(&self, key: &SigningKey, input: &SignInput<'_>) -> String {
        let signature = self.signature(key, input);
        match &self.shape {
            Shape::Plain { prefix } => format!("{prefix}{signature}"),
            Shape::KeyValue {
                timestamp_key,
                signature_key,
            } => format!(
                "{timestamp_key}={},{signature_key}={signature}",
                input.timestamp.unwrap_or("")
            ),
            Shape::Versioned { version } => format!("{version},{signature}"),
        }
    }

    /// Verifies a delivery: passes if any presented signature matches the MAC under any key.
    pub fn verify(
        &self,
        keys: &[SigningKey],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let value = match header_value(headers, &self.header) {
            HeaderLookup::Value(value) => value,
            HeaderLookup::Missing => return Err(SignatureError::Missing),
            HeaderLookup::Repeated => {
                return Err(SignatureError::Invalid("signature header repeated"))
            }
            HeaderLookup::Invalid => {
                return Err(SignatureError::Invalid("signature header is not ASCII"))
            }
        };
        let mut candidates: [&str; MAX_CANDIDATES] = [""; MAX_CANDIDATES];
        let mut count = 0;
        let mut param_timestamp = None;
        {
            macro_rules! push {
                ($text:expr) => {
                    if count < MAX_CANDIDATES {
                        candidates[count] = $text;
                        count += 1;
                    }
                };
            }
            match &self.shape {
                Shape::Plain { prefix } => match value.strip_prefix(prefix.as_str()) {
                    Some(signature) => push!(signature),
                    None => return Err(SignatureError::Invalid("signature prefix missing")),
                },
                Shape::KeyValue {
                    timestamp_key,
                    signature_key,
                } => {
                    for (k, v) in key_value_pairs(value) {
                        if k == timestamp_key {
                            if param_timestamp.is_some() {
                                return Err(SignatureError::Invalid(
                                    "signature timestamp repeated",
                                ));
                            }
                            param_timestamp = Some(v);
                        } else if k == signature_key {
                            push!(v);
                        }
                    }
                }
                Shape::Versioned { version } => {
                    for item in value.split(' ').filter(|s| !s.is_empty()) {
                        if let Some((v, signature)) = item.split_once(',') {
                            if v == version {
                                push!(signature);
                            }
                        }
                    }
                }
            }
        }
        if count == 0 {
            return Err(SignatureError::Invalid(
                "no signature of the expected version",
            ));
        }
        let timestamp = self.template_value(&self.timestamp, headers, param_timestamp)?;
        let id = self.template_value(&self.id, headers, None)?;
        let input = SignInput {
            body,
            timestamp,
            id,
        };

        let mac_len = self.algorithm.mac_len();
        let mut matched = Choice::from(0u8);
        let mut expected = [0u8; MAX_MAC];
        let mut presented = [0u8; MAX_MAC];
        for key in keys {
            key.compute(&self.template, &input, &mut expected);
            for candidate in &candidates[..count] {
                // A candidate that does not decode to the MAC's length still costs a full
                // comparison (against whatever the buffer holds), so nothing exits early.
                let len = self.encoding.decode_into(candidate, &mut presented);
                let right_length = Choice::from(u8::from(len == Some(mac_len)));
                matched |= right_length & presented[..mac_len].ct_eq(&expected[..mac_len]);
            }
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// The value of parameter `key` in a key-value signature header (Stripe's `t`).
    pub fn param<'a>(&self, headers: &'a HeaderMap, key: &str) -> Option<&'a str> {
        if !matches!(self.shape, Shape::KeyValue { .. }) {
            return None;
        }
        let HeaderLookup::Value(value) = header_value(headers, &self.header) else {
            return None;
        };
        key_value_pairs(value)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The value for `{timestamp}` or `{id}`, when the template uses it.
    fn template_value<'a>(
        &self,
        source: &Option<ValueSource>,
        headers: &'a HeaderMap,
        param: Option<&'a str>,
    ) -> Result<Option<&'a str>, SignatureError> {
        match source {
            None => Ok(None),
            Some(ValueSource::SignatureParam(_)) => match param {
                Some(value) => Ok(Some(value)),
                None => Err(SignatureError::Invalid("signature timestamp missing")),
            },
            Some(source @ ValueSource::Header(_)) => match source.header(headers) {
                HeaderLookup::Value(value) => Ok(Some(value)),
                HeaderLookup::Missing => Err(SignatureError::Invalid("signed header missing")),
                _ => Err(SignatureError::Invalid(
                    "signed header repeated or not ASCII",
                )),
            },
            Some(ValueSource::Body(_)) => Ok(None),
        }
    }
}

/// The `key=value` entries of a Stripe-style header; entries without `=` are skipped.
fn key_value_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
}
