//! The pieces a [`super::Scheme`] is made of: the HMAC [`Algorithm`] and its prepared
//! [`SigningKey`], the [`Encoding`] of the MAC, the signed-bytes [`Template`] and the [`Shape`]
//! the signature header takes.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};

use crate::extract::{json_field, JsonPath};
use crate::secret::Secret;

/// The largest MAC we produce (SHA-512).
pub(super) const MAX_MAC: usize = 64;
/// At most this many signatures in one header are considered; the rest are ignored.
pub(super) const MAX_CANDIDATES: usize = 16;

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA1 (20-byte MACs; e.g. Vercel).
    Sha1,
    /// HMAC-SHA256 (32-byte MACs).
    Sha256,
    /// HMAC-SHA512 (64-byte MACs).
    Sha512,
}

impl Algorithm {
    /// Length of the MAC in bytes: 20, 32 or 64.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// The algorithm's display name: `hmac-sha1`, `hmac-sha256` or `hmac-sha512`.
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

/// True for a `0x`/`0X` prefix, which the hex decoder would skip: no provider writes one, so
/// a signature that has it is not in the provider's format and is refused.
fn has_0x(text: &str) -> bool {
    text.as_bytes()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"))
}

impl Encoding {
    /// Writes `mac` in this encoding, as a sender puts it in the header.
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
    pub(super) fn decode_into(self, text: &str, out: &mut [u8; MAX_MAC]) -> Option<usize> {
        match self {
            Encoding::Hex => {
                let len = text.len() / 2;
                if text.len() % 2 != 0 || len > MAX_MAC || has_0x(text) {
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
            Encoding::Hex if has_0x(text) => None,
            Encoding::Hex => hex::decode(text).ok(),
            Encoding::Base64 => BASE64_LENIENT.decode(text).ok(),
            Encoding::Base64url | Encoding::Base64urlNopad => BASE64URL_LENIENT.decode(text).ok(),
        }
    }

    /// The encoding's display name: `hex`, `base64`, `base64url` or `base64url-nopad`.
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
    /// `{body}`: the body bytes exactly as received.
    Body,
    /// `{timestamp}`: the timestamp value as sent.
    Timestamp,
    /// `{id}`: the delivery id as sent.
    Id,
    /// The public URL the provider called (`public_url` + path and query as received).
    Url,
    /// The request method, upper case.
    Method,
    /// Twilio's form parameters: `key1value1key2value2…`, sorted by key (then value).
    FormSorted,
    /// The value of one header (present exactly once).
    Header(http::HeaderName),
    /// `{json:a.b}`: the text of one field of the JSON body (a string's decoded value, an
    /// integer in decimal); empty when the field is absent, repeated, a float or not a
    /// scalar, which then fails verification like any other difference.
    Json(JsonPath),
    /// Text of the template between placeholders, signed as is.
    Literal(Box<[u8]>),
}

/// The signed bytes, written like `{timestamp}.{body}` or `v0:{timestamp}:{body}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    text: String,
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Template {
    /// Parses a template such as `{timestamp}.{body}`; an unknown or unclosed placeholder is an
    /// error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let template = Self::parse_any(text)?;
        if !template.uses(&Part::Body) && !template.uses(&Part::FormSorted) {
            return Err(format!(
                "signed template `{text}` must include {{body}} or {{form:sorted}}"
            ));
        }
        Ok(template)
    }

    /// [`Template::parse`] without requiring the body: for signatures that cover only some
    /// of the body's fields (Mailgun's `{timestamp}{id}`), never for configuration.
    pub(super) fn parse_any(text: &str) -> Result<Self, String> {
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
                        "url" => Part::Url,
                        "method" => Part::Method,
                        "form:sorted" => Part::FormSorted,
                        other => match (other.strip_prefix("header:"), other.strip_prefix("json:")) {
                            (Some(name), _) => Part::Header(
                                http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                                    format!("`{name}` in `{text}` is not a valid header name")
                                })?,
                            ),
                            (_, Some(path)) => Part::Json(JsonPath::parse(path).map_err(|e| {
                                format!("{{json:{path}}} in `{text}`: {e}")
                            })?),
                            _ => return Err(format!(
                                "unknown placeholder {{{other}}} in `{text}` (use {{body}}, {{timestamp}}, {{id}}, {{url}}, {{method}}, {{form:sorted}}, {{header:Name}} or {{json:path}})"
                            )),
                        },
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
        Ok(Template {
            parts,
            text: text.to_string(),
        })
    }

    /// Whether the template contains `part` (e.g. whether `{url}` needs a `public_url`).
    pub fn uses(&self, part: &Part) -> bool {
        self.parts.contains(part)
    }

    /// The headers `{header:Name}` placeholders read.
    pub fn headers(&self) -> impl Iterator<Item = &http::HeaderName> {
        self.parts.iter().filter_map(|p| match p {
            Part::Header(name) => Some(name),
            _ => None,
        })
    }

    /// Feeds the signed bytes for `input` to `sink`, piece by piece.
    fn feed(&self, input: &SignInput<'_>, mut sink: impl FnMut(&[u8])) {
        for part in &self.parts {
            match part {
                Part::Body => sink(input.body),
                Part::Timestamp => sink(input.timestamp.unwrap_or("").as_bytes()),
                Part::Id => sink(input.id.unwrap_or("").as_bytes()),
                Part::Url => sink(input.url.unwrap_or("").as_bytes()),
                Part::Method => sink(input.method.unwrap_or("POST").as_bytes()),
                Part::FormSorted => match input.form {
                    Some(form) => sink(form),
                    None => sink(&sorted_form(input.body)),
                },
                Part::Header(name) => {
                    let value = input
                        .headers
                        .and_then(|h| h.get(name))
                        .map_or(&b""[..], |v| v.as_bytes());
                    sink(value)
                }
                Part::Json(path) => {
                    let value = json_field(input.body, path)
                        .ok()
                        .flatten()
                        .and_then(|scalar| scalar.as_id());
                    sink(value.as_deref().unwrap_or("").as_bytes())
                }
                Part::Literal(bytes) => sink(bytes),
            }
        }
    }

    /// The template as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signed bytes for `input`: the same concatenation the HMAC is computed over, for
    /// verifiers that need the message itself (asymmetric signatures).
    pub fn render(&self, input: &SignInput<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.body.len() + 64);
        self.feed(input, |bytes| out.extend_from_slice(bytes));
        out
    }
}

/// Twilio's concatenation of an `application/x-www-form-urlencoded` body: every parameter
/// decoded, sorted by name (then value), written `namevalue` one after the other.
pub fn sorted_form(body: &[u8]) -> Vec<u8> {
    let mut pairs = form_pairs(body);
    pairs.sort();
    let mut out = Vec::with_capacity(body.len());
    for (key, value) in pairs {
        out.extend_from_slice(&key);
        out.extend_from_slice(&value);
    }
    out
}

/// The `name=value` pairs of a form body or query string, each decoded (`+` a space, `%XY` a
/// byte), in their order.
pub fn form_pairs(text: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    text.split(|b| *b == b'&')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let mut kv = item.splitn(2, |b| *b == b'=');
            let key = kv.next().unwrap_or_default();
            let value = kv.next().unwrap_or_default();
            (form_decode(key), form_decode(value))
        })
        .collect()
}

/// Decodes one form component: `+` is a space, `%XY` a byte; a malformed escape stays as is.
fn form_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < text.len()
                && text[i + 1].is_ascii_hexdigit()
                && text[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&text[i + 1..i + 3]).expect("hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

/// How the signature travels in its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// One value, optionally prefixed: `sha256=<mac>`, `v0=<mac>`, `<mac>`.
    Plain {
        /// Text before the signature (`sha256=`, `v0=`); may be empty.
        prefix: String,
    },
    /// Stripe-style comma-separated `key=value` list: `t=<ts>,v1=<mac>,v1=<mac>`.
    KeyValue {
        /// Key of the timestamp entry (`t` for Stripe).
        timestamp_key: String,
        /// Key of each signature entry (`v1` for Stripe); it may repeat.
        signature_key: String,
        /// Between entries: `,` (Stripe) or `;` (Paddle).
        separator: char,
    },
    /// Standard Webhooks: space-separated `<version>,<mac>` entries.
    Versioned {
        /// The entry version whose signature is checked (`v1`).
        version: String,
    },
}

/// Values that fill a template's placeholders.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignInput<'a> {
    /// `{body}`: the body bytes.
    pub body: &'a [u8],
    /// `{timestamp}`: the timestamp value, when the template signs one.
    pub timestamp: Option<&'a str>,
    /// `{id}`: the delivery id, when the template signs one.
    pub id: Option<&'a str>,
    /// `{url}`: the public URL the provider called.
    pub url: Option<&'a str>,
    /// `{method}`: the request method (`POST` when not given).
    pub method: Option<&'a str>,
    /// `{header:Name}`: the request's headers.
    pub headers: Option<&'a http::HeaderMap>,
    /// `{form:sorted}` computed once (else computed from the body when needed).
    pub form: Option<&'a [u8]>,
}

/// Why a presented signature was not accepted. The text never includes expected values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header is absent.
    #[error("signature header missing")]
    Missing,
    /// The signature header is present but unusable (repeated, not ASCII, badly shaped); holds why.
    #[error("{0}")]
    Invalid(&'static str),
    /// No presented signature matches any key.
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
    /// An HMAC key for `algorithm` from the secret's bytes.
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

    /// The raw HMAC of `message` under this key (Zoom's handshake answer signs its plain
    /// token this way).
    pub fn mac(&self, message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + Clone>(mac: &M, message: &[u8]) -> Vec<u8> {
            let mut mac = mac.clone();
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match &self.mac {
            KeyedMac::Sha1(m) => run(m, message),
            KeyedMac::Sha256(m) => run(m, message),
            KeyedMac::Sha512(m) => run(m, message),
        }
    }

    pub(super) fn compute(
        &self,
        template: &Template,
        input: &SignInput<'_>,
        out: &mut [u8; MAX_MAC],
    ) {
        fn run<M: Mac + Clone>(
            mac: &M,
            template: &Template,
            input: &SignInput<'_>,
            out: &mut [u8; MAX_MAC],
        ) {
            let mut mac = mac.clone();
            template.feed(input, |bytes| mac.update(bytes));
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
