//! Asymmetric signature verification: Ed25519, ECDSA P-256/SHA-256 (DER and fixed `r || s`)
//! and RSA PKCS#1 v1.5 (SHA-1 for AWS SNS SignatureVersion 1, SHA-256), all with `ring`.
//!
//! [`verify`] tries every configured key (so keys can be rotated by configuring old and new
//! side by side) and passes if one verifies. Verification uses only public values, so it need
//! not be constant-time; it still does not stop at a malformed signature before every key of
//! the right size has been considered. Errors name what was wrong, never the signature.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use super::der::{self, Reader};
use super::keys::{KeyKind, Material, PublicKey};
use super::Encoding;

/// The largest signature accepted (RSA-8192).
pub const MAX_SIGNATURE_LEN: usize = 1024;

/// A signature algorithm, as a preset or configuration names it (`kind = "ed25519"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum VerifierKind {
    /// Ed25519 (Discord, Telnyx, Standard Webhooks `v1a`).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA P-256 with SHA-256, signature as ASN.1 DER (SendGrid).
    #[serde(rename = "ecdsa-p256-sha256-der")]
    EcdsaP256Sha256Der,
    /// ECDSA P-256 with SHA-256, signature as fixed-width `r || s`, 64 bytes (JWS ES256).
    #[serde(rename = "ecdsa-p256-sha256-fixed")]
    EcdsaP256Sha256Fixed,
    /// RSA PKCS#1 v1.5 with SHA-1 (AWS SNS SignatureVersion 1; legacy only).
    #[serde(rename = "rsa-pkcs1-sha1")]
    RsaPkcs1Sha1,
    /// RSA PKCS#1 v1.5 with SHA-256 (AWS SNS SignatureVersion 2, JWS RS256).
    #[serde(rename = "rsa-pkcs1-sha256")]
    RsaPkcs1Sha256,
}

impl VerifierKind {
    /// Every kind, for listings and `check-config`.
    pub const ALL: [VerifierKind; 5] = [
        VerifierKind::Ed25519,
        VerifierKind::EcdsaP256Sha256Der,
        VerifierKind::EcdsaP256Sha256Fixed,
        VerifierKind::RsaPkcs1Sha1,
        VerifierKind::RsaPkcs1Sha256,
    ];

    /// The configuration name (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            VerifierKind::Ed25519 => "ed25519",
            VerifierKind::EcdsaP256Sha256Der => "ecdsa-p256-sha256-der",
            VerifierKind::EcdsaP256Sha256Fixed => "ecdsa-p256-sha256-fixed",
            VerifierKind::RsaPkcs1Sha1 => "rsa-pkcs1-sha1",
            VerifierKind::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
        }
    }

    /// Parses a configuration name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The family of key this algorithm verifies with.
    pub fn key_kind(self) -> KeyKind {
        match self {
            VerifierKind::Ed25519 => KeyKind::Ed25519,
            VerifierKind::EcdsaP256Sha256Der | VerifierKind::EcdsaP256Sha256Fixed => {
                KeyKind::EcdsaP256
            }
            VerifierKind::RsaPkcs1Sha1 | VerifierKind::RsaPkcs1Sha256 => KeyKind::Rsa,
        }
    }
}

impl From<VerifierKind> for KeyKind {
    fn from(kind: VerifierKind) -> Self {
        kind.key_kind()
    }
}

/// Why a signature was not accepted. The text never includes the signature or a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No key of the verifier's family is configured (a configuration error).
    #[error("no public key of the verifier's kind is configured")]
    NoKeys,
    /// The signature cannot be one of this algorithm's (wrong length, not DER, not decodable).
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    /// Well-formed, but no configured key verifies it over these bytes.
    #[error("signature does not match")]
    Mismatch,
}

/// Decodes a signature as it travels in a header, refusing anything longer than
/// [`MAX_SIGNATURE_LEN`] bytes.
pub fn decode_signature(encoding: Encoding, text: &str) -> Result<Vec<u8>, VerifyError> {
    if text.len() > MAX_SIGNATURE_LEN * 2 {
        return Err(VerifyError::Malformed("signature is too long"));
    }
    encoding
        .decode(text.trim())
        .filter(|bytes| !bytes.is_empty())
        .ok_or(VerifyError::Malformed(match encoding {
            Encoding::Hex => "signature is not hex",
            _ => "signature is not base64",
        }))
}

/// Verifies `signature` over `signed_bytes` with any of `keys` (keys of another family are
/// ignored). `Ok` if one key verifies it.
pub fn verify(
    kind: VerifierKind,
    keys: &[PublicKey],
    signed_bytes: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    verify_any(kind, keys, signed_bytes, &[signature])
}

/// Like [`verify`], for a header that may carry several signatures (Standard Webhooks):
/// `Ok` if any signature verifies under any key. The error is the most specific one seen:
/// `Mismatch` if any signature was well-formed, else the first `Malformed`.
pub fn verify_any(
    kind: VerifierKind,
    keys: &[PublicKey],
    signed_bytes: &[u8],
    signatures: &[&[u8]],
) -> Result<(), VerifyError> {
    let usable = || keys.iter().filter(|k| k.kind() == kind.key_kind());
    if usable().next().is_none() {
        return Err(VerifyError::NoKeys);
    }
    if signatures.is_empty() {
        return Err(VerifyError::Malformed("no signature"));
    }
    let mut error = None;
    let mut matched = false;
    for signature in signatures {
        if let Err(e) = check_shape(kind, signature) {
            error.get_or_insert(e);
            continue;
        }
        let mut sized = false;
        for key in usable() {
            if key.rsa_len().is_some_and(|len| len != signature.len()) {
                continue;
            }
            sized = true;
            matched |= verify_one(kind, key, signed_bytes, signature);
        }
        if !sized {
            error.get_or_insert(VerifyError::Malformed(
                "RSA signature length does not match any key",
            ));
        } else {
            error = Some(VerifyError::Mismatch);
        }
    }
    if matched {
        Ok(())
    } else {
        Err(error.unwrap_or(VerifyError::Mismatch))
    }
}

/// Refuses signatures that cannot be valid for `kind` by their shape alone.
fn check_shape(kind: VerifierKind, signature: &[u8]) -> Result<(), VerifyError> {
    match kind {
        _ if signature.is_empty() => Err(VerifyError::Malformed("empty signature")),
        _ if signature.len() > MAX_SIGNATURE_LEN => {
            Err(VerifyError::Malformed("signature is too long"))
        }
        VerifierKind::Ed25519 if signature.len() != 64 => {
            Err(VerifyError::Malformed("an Ed25519 signature is 64 bytes"))
        }
        VerifierKind::EcdsaP256Sha256Fixed if signature.len() != 64 => Err(VerifyError::Malformed(
            "a fixed-width P-256 signature is 64 bytes (r || s)",
        )),
        VerifierKind::EcdsaP256Sha256Der if !is_der_ecdsa(signature) => Err(
            VerifyError::Malformed("not a DER ECDSA signature (SEQUENCE of two INTEGERs)"),
        ),
        _ => Ok(()),
    }
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`, each at most 33 bytes for P-256.
fn is_der_ecdsa(signature: &[u8]) -> bool {
    let Some(body) = Reader::only(signature, der::SEQUENCE) else {
        return false;
    };
    let mut r = Reader::new(body);
    let ok = |int: Option<&[u8]>| {
        int.is_some_and(|i| i.len() <= 33 && der::unsigned_integer(i).is_some())
    };
    ok(r.expect(der::INTEGER)) && ok(r.expect(der::INTEGER)) && r.is_empty()
}

fn verify_one(kind: VerifierKind, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    match (&key.material, kind) {
        (Material::Ed25519(raw), VerifierKind::Ed25519) => {
            UnparsedPublicKey::new(&signature::ED25519, raw)
                .verify(message, signature)
                .is_ok()
        }
        (Material::EcdsaP256(point), VerifierKind::EcdsaP256Sha256Der) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                .verify(message, signature)
                .is_ok()
        }
        (Material::EcdsaP256(point), VerifierKind::EcdsaP256Sha256Fixed) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        (Material::Rsa { n, e }, VerifierKind::RsaPkcs1Sha1) => RsaPublicKeyComponents { n, e }
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                message,
                signature,
            )
            .is_ok(),
        (Material::Rsa { n, e }, VerifierKind::RsaPkcs1Sha256) => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
        _ => false,
    }
}

#[cfg(test)]
#[path = "asymmetric_tests.rs"]
mod tests;
