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
pub mod presets;
pub mod signed;

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use serde::Deserialize;
use subtle::{Choice, ConstantTimeEq};

use crate::extract::{header_value, HeaderLookup, ValueSource};
use crate::secret::Secret;

/// The largest MAC we produce (SHA-512).
const MAX_MAC: usize = 64;
/// At most this many signatures in one header are considered; the rest are ignored.
const MAX_CANDIDATES: usize = 16;

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "hmac-sha1",
            Algorithm::Sha256 => "hmac-sha256",
            Algorithm::Sha512 => "hmac-sha512",
        }
    }
}

/// How the MAC bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Lower-case hex when signing; either case accepted when verifying.
    Hex,
    /// Standard base64 with padding.
    Base64,
    /// URL-safe base64 with padding when signing; padding optional when verifying.
    Base64url,
    /// URL-safe base64 without padding when signing; padding optional when verifying.
    Base64urlNopad,
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const BASE64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

impl Encoding {
    pub fn encode(self, mac: &[u8]) -> String {
        use base64::engine::general_purpose as gp;
        match self {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => gp::STANDARD.encode(mac),
            Encoding::Base64url => gp::URL_SAFE.encode(mac),
            Encoding::Base64urlNopad => gp::URL_SAFE_NO_PAD.encode(mac),
        }
    }

    /// Decodes `text` into `out`, returning the decoded length, or `None` when it is not a
    /// valid encoding or does not fit.
    fn decode_into(self, text: &str, out: &mut [u8; MAX_MAC]) -> Option<usize> {
        match self {
            Encoding::Hex => {
                let len = text.len() / 2;
                if text.len() % 2 != 0 || len > MAX_MAC {
                    return None;
                }
                hex::decode_to_slice(text, &mut out[..len]).ok()?;
                Some(len)
            }
            Encoding::Base64 => BASE64_LENIENT.decode_slice(text, out).ok(),
            Encoding::Base64url | Encoding::Base64urlNopad => {
                BASE64URL_LENIENT.decode_slice(text, out).ok()
            }
        }
    }

    /// Decodes `text` of any length (hex in either case; base64 padded or not), or `None`
    /// when it is not valid. For signatures longer than an HMAC (RSA, ECDSA).
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Hex => hex::decode(text).ok(),
            Encoding::Base64 => BASE64_LENIENT.decode(text).ok(),
            Encoding::Base64url | Encoding::Base64urlNopad => BASE64URL_LENIENT.decode(text).ok(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
            Encoding::Base64url => "base64url",
            Encoding::Base64urlNopad => "base64url-nopad",
        }
    }
}

/// One piece of the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Body,
    Timestamp,
    Id,
    Literal(Box<[u8]>),
}

/// The signed bytes, written like `{timestamp}.{body}` or `v0:{timestamp}:{body}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    text: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("unclosed placeholder in `{text}`"))?;
                    parts.push(match &rest[1..end] {
                        "body" => Part::Body,
                        "timestamp" => Part::Timestamp,
                        "id" => Part::Id,
                        other => {
                            return Err(format!(
                                "unknown placeholder {{{other}}} in `{text}` (use {{body}}, {{timestamp}} or {{id}})"
                            ))
                        }
                    });
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Literal(rest.as_bytes()[..i].into()));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Literal(rest.as_bytes().into()));
                    rest = "";
                }
            }
        }
        if !parts.contains(&Part::Body) {
            return Err(format!("signed template `{text}` must include {{body}}"));
        }
        Ok(Template {
            parts,
            text: text.to_string(),
        })
    }

    pub fn uses(&self, part: &Part) -> bool {
        self.parts.contains(part)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signed bytes for `input`: the same concatenation the HMAC is computed over, for
    /// verifiers that need the message itself (asymmetric signatures).
    pub fn render(&self, input: &SignInput<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.body.len() + 64);
        for part in &self.parts {
            match part {
                Part::Body => out.extend_from_slice(input.body),
                Part::Timestamp => out.extend_from_slice(input.timestamp.unwrap_or("").as_bytes()),
                Part::Id => out.extend_from_slice(input.id.unwrap_or("").as_bytes()),
                Part::Literal(bytes) => out.extend_from_slice(bytes),
            }
        }
        out
    }
}

/// How the signature travels in its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// One value, optionally prefixed: `sha256=<mac>`, `v0=<mac>`, `<mac>`.
    Plain { prefix: String },
    /// Stripe-style comma-separated `key=value` list: `t=<ts>,v1=<mac>,v1=<mac>`.
    KeyValue {
        timestamp_key: String,
        signature_key: String,
    },
    /// Standard Webhooks: space-separated `<version>,<mac>` entries.
    Versioned { version: String },
}

/// Values that fill a template's placeholders.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignInput<'a> {
    pub body: &'a [u8],
    pub timestamp: Option<&'a str>,
    pub id: Option<&'a str>,
}

/// Why a presented signature was not accepted. The text never includes expected values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    Missing,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("signature does not match")]
    Mismatch,
}

/// An HMAC key prepared once at configuration time (the key schedule is not recomputed per
/// request). `Debug` does not print key material.
#[derive(Clone)]
pub struct SigningKey {
    mac: KeyedMac,
}

#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl SigningKey {
    pub fn new(algorithm: Algorithm, secret: &Secret) -> Self {
        let key = secret.expose();
        // HMAC accepts keys of any length, so these cannot fail.
        let mac = match algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(Hmac::new_from_slice(key).expect("any key length")),
            Algorithm::Sha256 => {
                KeyedMac::Sha256(Hmac::new_from_slice(key).expect("any key length"))
            }
            Algorithm::Sha512 => {
                KeyedMac::Sha512(Hmac::new_from_slice(key).expect("any key length"))
            }
        };
        SigningKey { mac }
    }

    fn compute(&self, template: &Template, input: &SignInput<'_>, out: &mut [u8; MAX_MAC]) {
        fn run<M: Mac + Clone>(
            mac: &M,
            template: &Template,
            input: &SignInput<'_>,
            out: &mut [u8; MAX_MAC],
        ) {
            let mut mac = mac.clone();
            for part in &template.parts {
                match part {
                    Part::Body => mac.update(input.body),
                    Part::Timestamp => mac.update(input.timestamp.unwrap_or("").as_bytes()),
                    Part::Id => mac.update(input.id.unwrap_or("").as_bytes()),
                    Part::Literal(bytes) => mac.update(bytes),
                }
            }
            let tag = mac.finalize().into_bytes();
            out[..tag.len()].copy_from_slice(&tag);
        }
        match &self.mac {
            KeyedMac::Sha1(m) => run(m, template, input, out),
            KeyedMac::Sha256(m) => run(m, template, input, out),
            KeyedMac::Sha512(m) => run(m, template, input, out),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn scheme(shape: Shape, template: &str, encoding: Encoding) -> Scheme {
        Scheme {
            algorithm: Algorithm::Sha256,
            encoding,
            header: HeaderName::from_static("x-sig"),
            shape,
            template: Template::parse(template).unwrap(),
            timestamp: None,
            id: None,
        }
    }

    fn plain(prefix: &str) -> Scheme {
        scheme(
            Shape::Plain {
                prefix: prefix.into(),
            },
            "{body}",
            Encoding::Hex,
        )
    }

    fn key(secret: &str) -> SigningKey {
        SigningKey::new(Algorithm::Sha256, &Secret::new(secret))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn rfc4231_test_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = plain("");
        let sig = s.signature(
            &key("Jefe"),
            &SignInput {
                body: b"what do ya want for nothing?",
                ..Default::default()
            },
        );
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn plain_roundtrip_accepts_any_key_and_upper_case_hex() {
        let s = plain("sha256=");
        let input = SignInput {
            body: b"{}",
            ..Default::default()
        };
        let value = s.sign(&key("new"), &input);
        let keys = [key("old"), key("new")];
        assert_eq!(
            s.verify(&keys, &headers(&[("x-sig", &value)]), b"{}"),
            Ok(())
        );
        let upper = format!("sha256={}", value[7..].to_uppercase());
        assert_eq!(
            s.verify(&keys, &headers(&[("x-sig", &upper)]), b"{}"),
            Ok(())
        );
        assert_eq!(
            s.verify(&keys, &headers(&[("x-sig", &value)]), b"{ }"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify(&[key("other")], &headers(&[("x-sig", &value)]), b"{}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_signatures_are_mismatches_not_panics() {
        let s = plain("sha256=");
        let keys = [key("k")];
        for bad in [
            "sha256=",
            "sha256=zz",
            "sha256=abc",
            "sha256=00",
            &format!("sha256={}", "0".repeat(200)),
        ] {
            assert_eq!(
                s.verify(&keys, &headers(&[("x-sig", bad)]), b"{}"),
                Err(SignatureError::Mismatch),
                "{bad}"
            );
        }
        assert!(matches!(
            s.verify(&keys, &headers(&[("x-sig", "abcdef")]), b"{}"),
            Err(SignatureError::Invalid(_))
        ));
        assert_eq!(
            s.verify(&keys, &HeaderMap::new(), b"{}"),
            Err(SignatureError::Missing)
        );
        let value = s.sign(
            &keys[0],
            &SignInput {
                body: b"{}",
                ..Default::default()
            },
        );
        assert!(matches!(
            s.verify(
                &keys,
                &headers(&[("x-sig", &value), ("x-sig", &value)]),
                b"{}"
            ),
            Err(SignatureError::Invalid(_))
        ));
    }

    #[test]
    fn key_value_list_reads_timestamp_and_any_v1() {
        let mut s = scheme(
            Shape::KeyValue {
                timestamp_key: "t".into(),
                signature_key: "v1".into(),
            },
            "{timestamp}.{body}",
            Encoding::Hex,
        );
        s.timestamp = Some(ValueSource::SignatureParam("t".into()));
        s.validate().unwrap();
        let k = key("whsec");
        let good = s.sign(
            &k,
            &SignInput {
                body: b"x",
                timestamp: Some("100"),
                id: None,
            },
        );
        assert!(good.starts_with("t=100,v1="));
        let both = format!("t=100,v1={},{}", "ab".repeat(32), &good[6..]);
        assert_eq!(
            s.verify(
                std::slice::from_ref(&k),
                &headers(&[("x-sig", &both)]),
                b"x"
            ),
            Ok(())
        );
        let moved = good.replace("t=100", "t=101");
        assert_eq!(
            s.verify(
                std::slice::from_ref(&k),
                &headers(&[("x-sig", &moved)]),
                b"x"
            ),
            Err(SignatureError::Mismatch)
        );
        let twice = format!("t=1,{good}");
        assert!(matches!(
            s.verify(&[k], &headers(&[("x-sig", &twice)]), b"x"),
            Err(SignatureError::Invalid(_))
        ));
    }

    #[test]
    fn render_is_what_the_hmac_covers() {
        let s = scheme(
            Shape::Plain { prefix: "".into() },
            "v0:{timestamp}:{id}.{body}",
            Encoding::Hex,
        );
        let input = SignInput {
            body: b"{}",
            timestamp: Some("12"),
            id: Some("e1"),
        };
        let rendered = s.template.render(&input);
        assert_eq!(rendered, b"v0:12:e1.{}");
        let direct = SignInput {
            body: &rendered,
            ..Default::default()
        };
        assert_eq!(
            s.signature(&key("k"), &input),
            plain("").signature(&key("k"), &direct)
        );
    }

    #[test]
    fn template_parsing() {
        assert!(Template::parse("{timestamp}.{body}").is_ok());
        assert!(Template::parse("v0:{timestamp}:{body}").is_ok());
        assert!(Template::parse("{timestamp}").is_err());
        assert!(Template::parse("{body}{nope}").is_err());
        assert!(Template::parse("{body").is_err());
    }

    #[test]
    fn validate_requires_sources_for_placeholders() {
        let s = scheme(
            Shape::Plain { prefix: "".into() },
            "{id}.{body}",
            Encoding::Base64,
        );
        assert!(s.validate().unwrap_err().contains("signature.id"));
    }

    #[test]
    fn base64url_accepts_padding_either_way() {
        let s = scheme(
            Shape::Plain { prefix: "".into() },
            "{body}",
            Encoding::Base64urlNopad,
        );
        let k = key("k");
        let input = SignInput {
            body: b"payload",
            ..Default::default()
        };
        let bare = s.sign(&k, &input);
        assert!(!bare.ends_with('='));
        let padded = format!("{bare}=");
        for v in [&bare, &padded] {
            assert_eq!(
                s.verify(
                    std::slice::from_ref(&k),
                    &headers(&[("x-sig", v)]),
                    b"payload"
                ),
                Ok(())
            );
        }
    }
}
