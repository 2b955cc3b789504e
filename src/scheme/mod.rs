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
//! Mailgun's HMAC, which travels in the JSON body, is in [`mailgun`].

pub mod asymmetric;
mod der;
pub mod jwt;
pub mod keys;
pub mod mailgun;
mod parts;
pub mod paypal;
pub mod signed;
mod spec;
#[cfg(test)]
mod tests;

pub use parts::{
    form_pairs, sorted_form, Algorithm, Encoding, Part, Shape, SignInput, SignatureError,
    SigningKey, Template,
};
use parts::{MAX_CANDIDATES, MAX_MAC};
pub use spec::{SignatureFormat, SignatureMethod, SignatureSpec};

use http::{HeaderMap, HeaderName};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::extract::{header_value, HeaderLookup, ValueSource};
use asymmetric::{VerifierKind, VerifyError};
use keys::PublicKey;

/// The parts of a request a signature can cover.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `POST`, `GET`, …
    pub method: &'a str,
    /// The path and query as received (`/hooks/twilio?x=1`), appended to the public URL.
    pub path_and_query: &'a str,
    /// The request's headers (the signature, timestamp and any signed headers are read here).
    pub headers: &'a HeaderMap,
    /// The body exactly as received.
    pub body: &'a [u8],
}

/// A complete description of one signature scheme.
#[derive(Debug, Clone)]
pub struct Scheme {
    /// The HMAC hash (unused when `verifier` is set).
    pub algorithm: Algorithm,
    /// An asymmetric algorithm verified with public keys; `None` for HMAC.
    pub verifier: Option<VerifierKind>,
    /// A second header with signatures in the same shape (Box's secondary key).
    pub secondary_header: Option<HeaderName>,
    /// What `{url}` starts with: the public scheme, host and any path prefix the provider
    /// calls, in front of the path and query the gateway receives.
    pub public_url: Option<String>,
    /// How the signature bytes are written in the header (hex, base64, …).
    pub encoding: Encoding,
    /// The header carrying the signature.
    pub header: HeaderName,
    /// How that header is laid out: the bare signature, or `key=value` parameters around it.
    pub shape: Shape,
    /// The bytes that are signed: the template's parts (`{body}`, `{timestamp}`, `{url}`, …).
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
        check(Part::Id, &self.id, "id")?;
        if self.verifier.is_some() && self.secondary_header.is_some() {
            return Err("secondary_header is for HMAC signatures only".into());
        }
        Ok(())
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
                separator,
            } => format!(
                "{timestamp_key}={}{separator}{signature_key}={signature}",
                input.timestamp.unwrap_or("")
            ),
            Shape::Versioned { version } => format!("{version},{signature}"),
        }
    }

    /// Verifies a delivery: passes if any presented signature matches the MAC under any key.
    /// For a `POST` without `{url}` in the template; see [`Scheme::verify_request`].
    pub fn verify(
        &self,
        keys: &[SigningKey],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let request = Request {
            method: "POST",
            path_and_query: "",
            headers,
            body,
        };
        self.verify_request(keys, &[], &request).map(|_| ())
    }

    /// Verifies a request with HMAC `keys` (in constant time, without early exit) or, for an
    /// asymmetric scheme, with `public_keys`. `Ok` holds the position of the key that matched.
    pub fn verify_request(
        &self,
        keys: &[SigningKey],
        public_keys: &[PublicKey],
        request: &Request<'_>,
    ) -> Result<usize, SignatureError> {
        let headers = request.headers;
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
        let mut candidates = Candidates::default();
        let param_timestamp = self.candidates(value, &mut candidates)?;
        if let Some(name) = &self.secondary_header {
            if let HeaderLookup::Value(second) = header_value(headers, name) {
                self.candidates(second, &mut candidates)?;
            }
        }
        if candidates.count == 0 {
            return Err(SignatureError::Invalid(
                "no signature of the expected version",
            ));
        }
        let timestamp = self.template_value(&self.timestamp, headers, param_timestamp)?;
        let id = self.template_value(&self.id, headers, None)?;
        for name in self.template.headers() {
            if !matches!(header_value(headers, name), HeaderLookup::Value(_)) {
                return Err(SignatureError::Invalid(
                    "signed header missing, repeated or not ASCII",
                ));
            }
        }
        let url = match (&self.public_url, self.template.uses(&Part::Url)) {
            (Some(base), true) => Some(format!(
                "{}{}",
                base.trim_end_matches('/'),
                request.path_and_query
            )),
            _ => None,
        };
        let form = self
            .template
            .uses(&Part::FormSorted)
            .then(|| sorted_form(request.body));
        let input = SignInput {
            body: request.body,
            timestamp,
            id,
            url: url.as_deref(),
            method: Some(request.method),
            headers: Some(headers),
            form: form.as_deref(),
        };
        let candidates = &candidates.items[..candidates.count];
        match self.verifier {
            Some(kind) => self.verify_public(kind, public_keys, &input, candidates),
            None => self.verify_mac(keys, &input, candidates),
        }
    }

    /// Collects the signatures of one header value; returns the key-value shape's timestamp.
    fn candidates<'a>(
        &self,
        value: &'a str,
        out: &mut Candidates<'a>,
    ) -> Result<Option<&'a str>, SignatureError> {
        let mut param_timestamp = None;
        match &self.shape {
            Shape::Plain { prefix } => match value.strip_prefix(prefix.as_str()) {
                Some(signature) => out.push(signature),
                None => return Err(SignatureError::Invalid("signature prefix missing")),
            },
            Shape::KeyValue {
                timestamp_key,
                signature_key,
                separator,
            } => {
                for (k, v) in key_value_pairs(value, *separator) {
                    if k == timestamp_key {
                        if param_timestamp.is_some() {
                            return Err(SignatureError::Invalid("signature timestamp repeated"));
                        }
                        param_timestamp = Some(v);
                    } else if k == signature_key {
                        out.push(v);
                    }
                }
            }
            Shape::Versioned { version } => {
                for item in value.split(' ').filter(|s| !s.is_empty()) {
                    if let Some((v, signature)) = item.split_once(',') {
                        if v == version {
                            out.push(signature);
                        }
                    }
                }
            }
        }
        Ok(param_timestamp)
    }

    /// HMAC: every candidate against every key, in constant time and without early exit.
    fn verify_mac(
        &self,
        keys: &[SigningKey],
        input: &SignInput<'_>,
        candidates: &[&str],
    ) -> Result<usize, SignatureError> {
        let mac_len = self.algorithm.mac_len();
        let mut matched = Choice::from(0u8);
        let mut position = 0u32;
        let mut expected = [0u8; MAX_MAC];
        let mut presented = [0u8; MAX_MAC];
        for (i, key) in keys.iter().enumerate() {
            key.compute(&self.template, input, &mut expected);
            let mut this_key = Choice::from(0u8);
            for candidate in candidates {
                // A candidate that does not decode to the MAC's length still costs a full
                // comparison (against whatever the buffer holds), so nothing exits early.
                let len = self.encoding.decode_into(candidate, &mut presented);
                let right_length = Choice::from(u8::from(len == Some(mac_len)));
                this_key |= right_length & presented[..mac_len].ct_eq(&expected[..mac_len]);
            }
            // The first key that matched: recorded without branching on the comparison.
            position.conditional_assign(&(i as u32), this_key & !matched);
            matched |= this_key;
        }
        if bool::from(matched) {
            Ok(position as usize)
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Asymmetric: the signed bytes rendered once, each candidate against each public key.
    /// Public values only, so not constant-time; every failure reads the same to the client.
    fn verify_public(
        &self,
        kind: VerifierKind,
        public_keys: &[PublicKey],
        input: &SignInput<'_>,
        candidates: &[&str],
    ) -> Result<usize, SignatureError> {
        let message = self.template.render(input);
        let decoded: Vec<Vec<u8>> = candidates
            .iter()
            .filter_map(|c| asymmetric::decode_signature(self.encoding, c).ok())
            .collect();
        if decoded.is_empty() {
            return Err(SignatureError::Invalid("malformed signature"));
        }
        let signatures: Vec<&[u8]> = decoded.iter().map(Vec::as_slice).collect();
        let mut error = VerifyError::NoKeys;
        for (i, key) in public_keys.iter().enumerate() {
            match asymmetric::verify_any(kind, std::slice::from_ref(key), &message, &signatures) {
                Ok(()) => return Ok(i),
                Err(VerifyError::NoKeys) => {}
                Err(e) => error = e,
            }
        }
        Err(match error {
            VerifyError::NoKeys => SignatureError::Invalid("no public key of this kind"),
            VerifyError::Malformed(_) => SignatureError::Invalid("malformed signature"),
            VerifyError::Mismatch => SignatureError::Mismatch,
        })
    }

    /// The value of parameter `key` in a key-value signature header (Stripe's `t`).
    pub fn param<'a>(&self, headers: &'a HeaderMap, key: &str) -> Option<&'a str> {
        if !matches!(self.shape, Shape::KeyValue { .. }) {
            return None;
        }
        let HeaderLookup::Value(value) = header_value(headers, &self.header) else {
            return None;
        };
        let Shape::KeyValue { separator, .. } = &self.shape else {
            return None;
        };
        key_value_pairs(value, *separator)
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
fn key_value_pairs(value: &str, separator: char) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(separator)
        .filter_map(|item| item.trim().split_once('='))
}

/// The signatures presented in a request, at most [`MAX_CANDIDATES`]; the rest are ignored.
#[derive(Default)]
struct Candidates<'a> {
    items: [&'a str; MAX_CANDIDATES],
    count: usize,
}

impl<'a> Candidates<'a> {
    fn push(&mut self, text: &'a str) {
        if self.count < MAX_CANDIDATES {
            self.items[self.count] = text;
            self.count += 1;
        }
    }
}
