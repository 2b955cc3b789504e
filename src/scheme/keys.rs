//! Public keys for asymmetric verification, parsed from configuration text.
//!
//! Accepted forms, for every [`KeyKind`] unless noted:
//! - PEM: `PUBLIC KEY` (SPKI), `CERTIFICATE` (X.509: the SPKI is taken out of it; the
//!   certificate itself is not checked), `RSA PUBLIC KEY` (PKCS#1, RSA only);
//! - `whpk_<base64>`: a Standard Webhooks Ed25519 public key (Ed25519 only);
//! - a JSON Web Key (`{"kty": ...}`), or a set of them with [`PublicKey::parse_jwks`];
//! - hex or base64 (standard or URL-safe, padded or not) of: the raw key (Ed25519's 32 bytes,
//!   P-256's 65-byte uncompressed point), a DER SPKI, a DER certificate, or (RSA) PKCS#1.
//!
//! The key's algorithm must match the kind asked for: an RSA certificate is not an Ed25519 key.
//! Errors say what is wrong with the text, never echo it.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use serde::Deserialize;
use serde_json::Value;

use super::der::{self, Reader};

const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
pub(crate) const BASE64_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
pub(crate) const BASE64URL_ANY_PAD: GeneralPurpose =
    GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// The smallest RSA modulus accepted, in bits (ring's lower bound too).
const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
const RSA_MAX_BITS: usize = 8192;

/// Which family of public key a verifier needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// RSA, 2048 to 8192 bits.
    Rsa,
}

impl KeyKind {
    /// The name used in configuration and messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::Rsa => "rsa",
        }
    }
}

/// Why a key's text was not accepted. Never contains the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing but whitespace.
    #[error("public key is empty")]
    Empty,
    /// Not PEM, hex, base64 or JSON that can be read.
    #[error("public key is not readable: {0}")]
    Encoding(&'static str),
    /// A well-formed key of another algorithm.
    #[error("public key is {found}, but this verifier needs {expected}")]
    WrongKind {
        /// The key type the verifier needs (e.g. `Ed25519`).
        expected: &'static str,
        /// The key type the key turned out to be.
        found: &'static str,
    },
    /// The key's structure or size is not acceptable.
    #[error("public key is invalid: {0}")]
    Invalid(&'static str),
}

/// A parsed public key, ready for verification. `Debug` shows its kind and key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) material: Material,
    kid: Option<String>,
}

/// The bytes ring verifies with (public values; `Debug` is for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Material {
    Ed25519([u8; 32]),
    /// Uncompressed SEC1 point: `04 || x || y`.
    EcdsaP256(Box<[u8]>),
    /// Big-endian modulus and exponent without leading zeros.
    Rsa {
        n: Box<[u8]>,
        e: Box<[u8]>,
    },
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind().name())
            .field("kid", &self.kid)
            .finish()
    }
}

impl PublicKey {
    /// Parses one key of `kind` from configuration text (see the module docs for the forms).
    pub fn parse(kind: impl Into<KeyKind>, text: &str) -> Result<Self, KeyError> {
        let kind = kind.into();
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        if text.starts_with("-----BEGIN ") {
            return from_pem(kind, text);
        }
        if let Some(rest) = text.strip_prefix("whpk_") {
            if kind != KeyKind::Ed25519 {
                return Err(wrong(kind, KeyKind::Ed25519));
            }
            let raw = BASE64_ANY_PAD
                .decode(rest)
                .map_err(|_| KeyError::Encoding("whpk_ key is not base64"))?;
            return ed25519_raw(&raw);
        }
        if text.starts_with('{') {
            let value: Value = serde_json::from_str(text)
                .map_err(|_| KeyError::Encoding("JSON Web Key is not valid JSON"))?;
            return from_jwk(kind, &value);
        }
        let mut first_error = None;
        if text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            match from_der_or_raw(kind, &hex::decode(text).expect("checked hex")) {
                Ok(key) => return Ok(key),
                Err(e) => first_error = Some(e),
            }
        }
        let bytes = BASE64_ANY_PAD
            .decode(text)
            .or_else(|_| BASE64URL_ANY_PAD.decode(text));
        match bytes {
            Ok(bytes) => from_der_or_raw(kind, &bytes).map_err(|e| first_error.unwrap_or(e)),
            Err(_) => Err(first_error.unwrap_or(KeyError::Encoding(
                "expected PEM, hex, base64, whpk_ or a JSON Web Key",
            ))),
        }
    }

    /// Parses a JSON Web Key Set (`{"keys": [...]}`, as Google's JWKS endpoint serves), a
    /// single JWK, or a single JWK wrapped as `{"key": {...}}` (Plaid's key endpoint). Keys of
    /// other families, or marked for encryption, are skipped; at least one must remain.
    pub fn parse_jwks(text: &str) -> Result<Vec<PublicKey>, KeyError> {
        let value: Value = serde_json::from_str(text.trim())
            .map_err(|_| KeyError::Encoding("JSON Web Key Set is not valid JSON"))?;
        let entries: Vec<&Value> = match (value.get("keys"), value.get("key")) {
            (Some(Value::Array(keys)), _) => keys.iter().collect(),
            (Some(_), _) => return Err(KeyError::Invalid("`keys` is not an array")),
            (None, Some(key)) => vec![key],
            (None, None) => vec![&value],
        };
        let keys: Vec<PublicKey> = entries
            .into_iter()
            .filter(|jwk| !matches!(jwk.get("use"), Some(u) if u != "sig"))
            .filter_map(|jwk| {
                let kind = match jwk.get("kty")?.as_str()? {
                    "OKP" => KeyKind::Ed25519,
                    "EC" => KeyKind::EcdsaP256,
                    "RSA" => KeyKind::Rsa,
                    _ => return None,
                };
                Some(from_jwk(kind, jwk))
            })
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Invalid("no usable signing key in the key set"));
        }
        Ok(keys)
    }

    /// The key's family.
    pub fn kind(&self) -> KeyKind {
        match self.material {
            Material::Ed25519(_) => KeyKind::Ed25519,
            Material::EcdsaP256(_) => KeyKind::EcdsaP256,
            Material::Rsa { .. } => KeyKind::Rsa,
        }
    }

    /// The JWK key id, when the key came from a JWK or was given one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The same key, named `kid` (JWT verification prefers keys whose id matches the token's).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// For RSA keys, the modulus length in bytes (which is every valid signature's length).
    pub(crate) fn rsa_len(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa { n, .. } => Some(n.len()),
            _ => None,
        }
    }

    fn new(material: Material) -> Self {
        PublicKey {
            material,
            kid: None,
        }
    }
}

fn wrong(expected: KeyKind, found: KeyKind) -> KeyError {
    KeyError::WrongKind {
        expected: expected.name(),
        found: found.name(),
    }
}

fn from_pem(kind: KeyKind, text: &str) -> Result<PublicKey, KeyError> {
    let first = text.lines().next().unwrap_or("");
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(KeyError::Encoding("malformed PEM header"))?;
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in text.lines().skip(1) {
        let line = line.trim();
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            return Err(KeyError::Encoding(
                "encrypted or annotated PEM is not supported",
            ));
        }
        body.push_str(line);
    }
    let rest_after_end = text.split_once(end.as_str()).map(|(_, r)| r.trim());
    if !ended {
        return Err(KeyError::Encoding("PEM has no matching END line"));
    }
    if rest_after_end.is_some_and(|r| !r.is_empty()) {
        return Err(KeyError::Encoding(
            "text after the PEM block (configure each key separately)",
        ));
    }
    let der = BASE64_ANY_PAD
        .decode(&body)
        .map_err(|_| KeyError::Encoding("PEM body is not base64"))?;
    match label {
        "PUBLIC KEY" => from_spki(kind, &der),
        "CERTIFICATE" => from_spki(kind, spki_of_certificate(&der)?),
        "RSA PUBLIC KEY" if kind == KeyKind::Rsa => rsa_pkcs1(&der),
        "RSA PUBLIC KEY" => Err(wrong(kind, KeyKind::Rsa)),
        _ => Err(KeyError::Encoding(
            "PEM must be PUBLIC KEY, CERTIFICATE or RSA PUBLIC KEY",
        )),
    }
}

/// Raw key, SPKI, certificate or (RSA) PKCS#1, decided by structure.
fn from_der_or_raw(kind: KeyKind, bytes: &[u8]) -> Result<PublicKey, KeyError> {
    match kind {
        KeyKind::Ed25519 if bytes.len() == 32 => return ed25519_raw(bytes),
        KeyKind::EcdsaP256 if bytes.len() == 65 && bytes[0] == 4 => {
            return Ok(PublicKey::new(Material::EcdsaP256(bytes.into())))
        }
        _ => {}
    }
    let outer = Reader::only(bytes, der::SEQUENCE).ok_or(KeyError::Invalid(
        "neither a raw key of the right size nor DER",
    ))?;
    match Reader::new(outer).peek_tag() {
        // SPKI starts with the AlgorithmIdentifier SEQUENCE, a certificate with the TBS
        // SEQUENCE (whose first element is not an OID), PKCS#1 with the modulus INTEGER.
        Some(der::SEQUENCE) => {
            let mut r = Reader::new(outer);
            let first = r.expect(der::SEQUENCE).unwrap_or_default();
            if Reader::new(first).peek_tag() == Some(der::OID) {
                from_spki(kind, bytes)
            } else {
                from_spki(kind, spki_of_certificate(bytes)?)
            }
        }
        Some(der::INTEGER) if kind == KeyKind::Rsa => rsa_pkcs1(bytes),
        _ => Err(KeyError::Invalid("DER is not an SPKI, certificate or key")),
    }
}

fn ed25519_raw(bytes: &[u8]) -> Result<PublicKey, KeyError> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| KeyError::Invalid("an Ed25519 public key is 32 bytes"))?;
    Ok(PublicKey::new(Material::Ed25519(raw)))
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }`
fn from_spki(kind: KeyKind, spki: &[u8]) -> Result<PublicKey, KeyError> {
    const BAD: KeyError = KeyError::Invalid("malformed SubjectPublicKeyInfo");
    let mut outer = Reader::new(Reader::only(spki, der::SEQUENCE).ok_or(BAD)?);
    let mut algorithm = Reader::new(outer.expect(der::SEQUENCE).ok_or(BAD)?);
    let key = der::bit_string_bytes(outer.expect(der::BIT_STRING).ok_or(BAD)?).ok_or(BAD)?;
    if !outer.is_empty() {
        return Err(BAD);
    }
    let oid = algorithm.expect(der::OID).ok_or(BAD)?;
    let found = match oid {
        OID_ED25519 => KeyKind::Ed25519,
        OID_EC_PUBLIC_KEY => KeyKind::EcdsaP256,
        OID_RSA => KeyKind::Rsa,
        _ => return Err(KeyError::Invalid("unsupported key algorithm")),
    };
    if found != kind {
        return Err(wrong(kind, found));
    }
    match kind {
        KeyKind::Ed25519 => ed25519_raw(key),
        KeyKind::EcdsaP256 => {
            if algorithm.expect(der::OID) != Some(OID_P256) {
                return Err(KeyError::Invalid("EC key is not on curve P-256"));
            }
            if key.len() != 65 || key[0] != 4 {
                return Err(KeyError::Invalid(
                    "EC key is not an uncompressed P-256 point",
                ));
            }
            Ok(PublicKey::new(Material::EcdsaP256(key.into())))
        }
        KeyKind::Rsa => rsa_pkcs1(key),
    }
}

/// Walks `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }`
/// and returns the SPKI element (tag and length included).
fn spki_of_certificate(cert: &[u8]) -> Result<&[u8], KeyError> {
    const BAD: KeyError = KeyError::Invalid("malformed X.509 certificate");
    let mut outer = Reader::new(Reader::only(cert, der::SEQUENCE).ok_or(BAD)?);
    let mut tbs = Reader::new(outer.expect(der::SEQUENCE).ok_or(BAD)?);
    if tbs.peek_tag() == Some(der::CONTEXT_0) {
        tbs.next().ok_or(BAD)?;
    }
    tbs.expect(der::INTEGER).ok_or(BAD)?; // serialNumber
    for _ in 0..4 {
        tbs.expect(der::SEQUENCE).ok_or(BAD)?; // signature, issuer, validity, subject
    }
    let before = tbs.remaining();
    tbs.expect(der::SEQUENCE).ok_or(BAD)?; // subjectPublicKeyInfo
                                           // The SPKI with its own tag and length, which `from_spki` expects.
    Ok(&before[..before.len() - tbs.remaining().len()])
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
fn rsa_pkcs1(der_bytes: &[u8]) -> Result<PublicKey, KeyError> {
    const BAD: KeyError = KeyError::Invalid("malformed RSA public key");
    let mut seq = Reader::new(Reader::only(der_bytes, der::SEQUENCE).ok_or(BAD)?);
    let n = der::unsigned_integer(seq.expect(der::INTEGER).ok_or(BAD)?).ok_or(BAD)?;
    let e = der::unsigned_integer(seq.expect(der::INTEGER).ok_or(BAD)?).ok_or(BAD)?;
    if !seq.is_empty() {
        return Err(BAD);
    }
    rsa_components(n, e)
}

fn rsa_components(n: &[u8], e: &[u8]) -> Result<PublicKey, KeyError> {
    let n_start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    let e_start = e.iter().position(|b| *b != 0).unwrap_or(e.len());
    let (n, e) = (&n[n_start..], &e[e_start..]);
    let bits = match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(KeyError::Invalid("RSA modulus must be 2048 to 8192 bits"));
    }
    if e.is_empty() || e.len() > 4 || e[e.len() - 1] & 1 == 0 {
        return Err(KeyError::Invalid("RSA exponent is not acceptable"));
    }
    Ok(PublicKey::new(Material::Rsa {
        n: n.into(),
        e: e.into(),
    }))
}

/// One JWK (RFC 7517/7518/8037) of `kind`.
fn from_jwk(kind: KeyKind, jwk: &Value) -> Result<PublicKey, KeyError> {
    let field = |name: &'static str| -> Result<Vec<u8>, KeyError> {
        let text = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or(KeyError::Invalid("JWK lacks a required member"))?;
        BASE64URL_ANY_PAD
            .decode(text)
            .map_err(|_| KeyError::Encoding("JWK member is not base64url"))
    };
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let (found, alg) = match text("kty") {
        Some("OKP") => (KeyKind::Ed25519, "EdDSA"),
        Some("EC") => (KeyKind::EcdsaP256, "ES256"),
        Some("RSA") => (KeyKind::Rsa, "RS256"),
        _ => return Err(KeyError::Invalid("JWK kty must be OKP, EC or RSA")),
    };
    if found != kind {
        return Err(wrong(kind, found));
    }
    if text("alg").is_some_and(|a| a != alg) {
        return Err(KeyError::Invalid("JWK alg does not match its key type"));
    }
    let key = match kind {
        KeyKind::Ed25519 => {
            if text("crv") != Some("Ed25519") {
                return Err(KeyError::Invalid("OKP JWK must be on Ed25519"));
            }
            ed25519_raw(&field("x")?)?
        }
        KeyKind::EcdsaP256 => {
            if text("crv") != Some("P-256") {
                return Err(KeyError::Invalid("EC JWK must be on P-256"));
            }
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(KeyError::Invalid("P-256 JWK coordinates are 32 bytes"));
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::new(Material::EcdsaP256(point.into()))
        }
        KeyKind::Rsa => rsa_components(&field("n")?, &field("e")?)?,
    };
    Ok(match text("kid") {
        Some(kid) => key.with_kid(kid),
        None => key,
    })
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
