//! Replays the provider vectors in `tests/vectors/*.json` (made by
//! `scripts/vectors/generate.py` with each provider's SDK) through the public API, building the
//! signed bytes from headers and body exactly as the gateway will. Each vector is checked four
//! ways: accepted; one body byte changed: refused; a wrong key: refused; a truncated or garbage
//! signature: refused as malformed.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use hookgate::scheme::asymmetric::{verify, verify_any, VerifierKind, VerifyError};
use hookgate::scheme::jwt::{verify_jwt, verify_jwt_with, JwtError, JwtRules};
use hookgate::scheme::keys::{KeyKind, PublicKey};
use hookgate::scheme::signed::{
    sns_string_to_sign, Profile, SnsType, DISCORD, SENDGRID, STANDARD_WEBHOOKS_V1A, TELNYX,
};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("vector JSON")
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector lacks {key}"))
}

fn headers(v: &Value) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, val) in v["headers"].as_object().expect("headers") {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
        );
    }
    map
}

/// The body with its byte at `at` changed (to a different ASCII letter).
fn tampered(body: &[u8], at: usize) -> Vec<u8> {
    let mut b = body.to_vec();
    b[at] = if b[at] == b'x' { b'y' } else { b'x' };
    b
}

fn key(kind: impl Into<KeyKind>, text: &str) -> PublicKey {
    PublicKey::parse(kind, text).unwrap_or_else(|e| panic!("key: {e}"))
}

/// The four checks for a header-signed provider.
fn replay(profile: Profile, file: &str) {
    let v = load(file);
    assert_eq!(text(&v, "kind"), profile.kind.name(), "{file}");
    let h = headers(&v);
    let body = text(&v, "body").as_bytes();
    let keys = [key(profile.kind, text(&v, "public_key"))];
    let wrong = [key(profile.kind, text(&v, "wrong_public_key"))];
    let signed = profile.signed_bytes(&h, body).unwrap();
    let sigs = profile.signatures(&h).unwrap();
    let sigs: Vec<&[u8]> = sigs.iter().map(Vec::as_slice).collect();

    assert_eq!(
        verify_any(profile.kind, &keys, &signed, &sigs),
        Ok(()),
        "{file}: accepted"
    );
    // Rotation: the old (wrong) key first, the current one second.
    let rotated = [wrong[0].clone(), keys[0].clone()];
    assert_eq!(verify_any(profile.kind, &rotated, &signed, &sigs), Ok(()));

    for at in [0, body.len() / 2, body.len() - 1] {
        let changed = profile.signed_bytes(&h, &tampered(body, at)).unwrap();
        assert_eq!(
            verify_any(profile.kind, &keys, &changed, &sigs),
            Err(VerifyError::Mismatch),
            "{file}: body byte {at} changed"
        );
    }
    assert_eq!(
        verify_any(profile.kind, &wrong, &signed, &sigs),
        Err(VerifyError::Mismatch),
        "{file}: wrong key"
    );
    let sig = sigs[0];
    for bad in [&sig[..sig.len() - 1], &sig[..8], &[0u8][..]] {
        let err = verify(profile.kind, &keys, &signed, bad).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(_)), "{file}: {err}");
        assert!(!err.to_string().contains(&hex::encode(bad)));
    }
    // Garbage in the header itself.
    let mut garbage = h.clone();
    garbage.insert(
        HeaderName::from_static(profile.signature_header),
        HeaderValue::from_static("%%%not-a-signature%%%"),
    );
    assert!(matches!(
        profile.signatures(&garbage),
        Err(VerifyError::Malformed(_))
    ));
    // The timestamp is signed: moving it breaks the signature.
    if let Some(ts) = profile.timestamp_header {
        let mut moved = h.clone();
        moved.insert(ts, HeaderValue::from_static("1767225601"));
        let signed = profile.signed_bytes(&moved, body).unwrap();
        assert_eq!(
            verify_any(profile.kind, &keys, &signed, &sigs),
            Err(VerifyError::Mismatch)
        );
    }
}

#[test]
fn discord_ed25519_pynacl() {
    replay(DISCORD, "discord.json");
}

#[test]
fn standard_webhooks_v1a_whpk() {
    replay(STANDARD_WEBHOOKS_V1A, "standard_webhooks.json");
    // The header also carries a v1 (HMAC) signature; it is not an Ed25519 signature, and a
    // header with only v1 entries offers nothing to this verifier.
    let v = load("standard_webhooks.json");
    let mut h = headers(&v);
    let sig_header = v["headers"]["webhook-signature"].as_str().unwrap();
    let v1 = sig_header
        .split(' ')
        .find(|s| s.starts_with("v1,"))
        .unwrap();
    h.insert("webhook-signature", HeaderValue::from_str(v1).unwrap());
    assert!(STANDARD_WEBHOOKS_V1A.signatures(&h).is_err());
}

#[test]
fn telnyx_ed25519_sdk_checked() {
    replay(TELNYX, "telnyx.json");
}

#[test]
fn sendgrid_ecdsa_p256_der_sdk_checked() {
    replay(SENDGRID, "sendgrid.json");
}

#[test]
fn aws_sns_rsa_sha1_and_sha256_with_certificate() {
    let v = load("sns.json");
    let keys = [key(KeyKind::Rsa, text(&v, "public_key"))];
    let wrong = [key(KeyKind::Rsa, text(&v, "wrong_public_key"))];
    let cases = v["cases"].as_array().unwrap();
    let mut kinds = Vec::new();
    for case in cases {
        let body = text(case, "body");
        let m = sns_string_to_sign(body.as_bytes()).unwrap();
        assert_eq!(m.string_to_sign, text(case, "string_to_sign").as_bytes());
        assert_eq!(m.kind.name(), text(case, "kind"));
        assert!(m.signing_cert_url.starts_with("https://sns."));
        kinds.push((m.kind, m.message_type));
        assert_eq!(
            verify(m.kind, &keys, &m.string_to_sign, &m.signature),
            Ok(())
        );
        assert_eq!(
            verify(m.kind, &wrong, &m.string_to_sign, &m.signature),
            Err(VerifyError::Mismatch)
        );
        // SHA-1 and SHA-256 are not interchangeable.
        let other = match m.kind {
            VerifierKind::RsaPkcs1Sha1 => VerifierKind::RsaPkcs1Sha256,
            _ => VerifierKind::RsaPkcs1Sha1,
        };
        assert_eq!(
            verify(other, &keys, &m.string_to_sign, &m.signature),
            Err(VerifyError::Mismatch)
        );
        // One byte of a signed field changed (the body is JSON: change inside "Message").
        let at = body.find("\"Message\": \"").unwrap() + 12;
        let changed = sns_string_to_sign(&tampered(body.as_bytes(), at)).unwrap();
        assert_eq!(
            verify(m.kind, &keys, &changed.string_to_sign, &changed.signature),
            Err(VerifyError::Mismatch)
        );
        for bad in [&m.signature[..255], &m.signature[..16]] {
            assert_eq!(
                verify(m.kind, &keys, &m.string_to_sign, bad),
                Err(VerifyError::Malformed(
                    "RSA signature length does not match any key"
                ))
            );
        }
    }
    assert!(kinds.contains(&(VerifierKind::RsaPkcs1Sha1, SnsType::Notification)));
    assert!(kinds.contains(&(VerifierKind::RsaPkcs1Sha256, SnsType::Notification)));
    assert!(kinds.contains(&(
        VerifierKind::RsaPkcs1Sha256,
        SnsType::SubscriptionConfirmation
    )));
}

fn bearer(v: &Value, header: &str) -> String {
    text(&v["headers"], header).to_string()
}

#[test]
fn google_pubsub_oidc_rs256() {
    let v = load("jwt_google.json");
    let now = v["now"].as_i64().unwrap();
    let (iss, aud) = (text(&v, "issuer"), text(&v, "audience"));
    let token = bearer(&v, "Authorization");
    let jwks = PublicKey::parse_jwks(text(&v, "jwks")).unwrap();
    let cert = [key(KeyKind::Rsa, text(&v, "certificate"))];
    let rules = JwtRules::google_oidc(aud);
    for keys in [&jwks[..], &cert[..]] {
        let claims = verify_jwt(&token, keys, Some(iss), Some(aud), now).unwrap();
        assert_eq!(
            claims.email.as_deref(),
            Some("push@my-project.iam.gserviceaccount.com")
        );
        assert_eq!(claims.email_verified, Some(true));
        assert!(verify_jwt_with(&token, keys, &rules, now).is_ok());
    }
    let wrong = PublicKey::parse_jwks(text(&v, "wrong_jwks")).unwrap();
    let sig_err = Err(JwtError::Signature(VerifyError::Mismatch));
    assert_eq!(
        verify_jwt_with(&token, &wrong, &rules, now).map(|_| ()),
        sig_err
    );
    let other = text(&v, "token_signed_by_other_key");
    assert_eq!(
        verify_jwt_with(other, &jwks, &rules, now).map(|_| ()),
        sig_err
    );
    // One byte of the payload changed.
    let (head, _) = token.split_once('.').unwrap();
    let at = head.len() + 10;
    let changed = String::from_utf8(tampered(token.as_bytes(), at)).unwrap();
    assert!(verify_jwt_with(&changed, &jwks, &rules, now).is_err());
    // Truncated signature, and garbage.
    let truncated = &token[..token.len() - 10];
    assert_eq!(
        verify_jwt_with(truncated, &jwks, &rules, now).map(|_| ()),
        Err(JwtError::Signature(VerifyError::Malformed(
            "RSA signature length does not match any key"
        )))
    );
    assert_eq!(
        verify_jwt_with("Bearer garbage", &jwks, &rules, now).map(|_| ()),
        Err(JwtError::Malformed)
    );
    // Algorithm confusion and `none` are refused before any key is used.
    for forged in ["token_hs256_with_public_key", "token_alg_none"] {
        assert_eq!(
            verify_jwt_with(text(&v, forged), &jwks, &rules, now).map(|_| ()),
            Err(JwtError::AlgorithmNotAllowed),
            "{forged}"
        );
    }
    // Claims.
    let exp = verify_jwt(&token, &jwks, None, None, now)
        .unwrap()
        .exp
        .unwrap();
    assert_eq!(
        verify_jwt_with(&token, &jwks, &rules, exp + 61).map(|_| ()),
        Err(JwtError::Expired)
    );
    let elsewhere = JwtRules::google_oidc("https://other.example.com/");
    assert_eq!(
        verify_jwt_with(&token, &jwks, &elsewhere, now).map(|_| ()),
        Err(JwtError::Audience)
    );
    assert_eq!(
        verify_jwt(&token, &jwks, Some("https://evil.example"), Some(aud), now).map(|_| ()),
        Err(JwtError::Issuer)
    );
}

#[test]
fn plaid_es256_request_body_sha256() {
    let v = load("jwt_plaid.json");
    let now = v["now"].as_i64().unwrap();
    let token = bearer(&v, "Plaid-Verification");
    let body = text(&v, "body").as_bytes();
    let keys = PublicKey::parse_jwks(text(&v, "key")).unwrap();
    let pem = [key(KeyKind::EcdsaP256, text(&v, "public_key_pem"))];
    let rules = JwtRules::plaid();
    for keys in [&keys[..], &pem[..]] {
        let claims = verify_jwt_with(&token, keys, &rules, now).unwrap();
        assert_eq!(claims.check_body_sha256(body), Ok(()));
        assert_eq!(
            claims.check_body_sha256(&tampered(body, body.len() / 2)),
            Err(JwtError::BodyMismatch)
        );
    }
    let wrong = PublicKey::parse_jwks(text(&v, "wrong_key")).unwrap();
    assert_eq!(
        verify_jwt_with(&token, &wrong, &rules, now).map(|_| ()),
        Err(JwtError::Signature(VerifyError::Mismatch))
    );
    let (signed, sig) = token.rsplit_once('.').unwrap();
    // 80 base64url characters: exactly 60 bytes, four short of r || s.
    let truncated = format!("{signed}.{}", &sig[..80]);
    assert!(matches!(
        verify_jwt_with(&truncated, &keys, &rules, now),
        Err(JwtError::Signature(VerifyError::Malformed(_)))
    ));
    assert_eq!(
        verify_jwt_with(&token, &keys, &rules, now + 5 * 60 + 10).map(|_| ()),
        Err(JwtError::TooOld)
    );
}
