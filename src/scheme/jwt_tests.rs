//! Unit tests for [`super`]: tokens built here with ring (ES256), and every refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::*;

struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Signer { pair, rng }
    }

    fn key(&self) -> PublicKey {
        PublicKey::parse(KeyKind::EcdsaP256, &hex::encode(self.pair.public_key())).unwrap()
    }

    fn token(&self, header: &str, claims: &str) -> String {
        let signed = format!("{}.{}", B64URL.encode(header), B64URL.encode(claims));
        let sig = self.pair.sign(&self.rng, signed.as_bytes()).unwrap();
        format!("{signed}.{}", B64URL.encode(sig.as_ref()))
    }
}

const HEAD: &str = r#"{"alg":"ES256","typ":"JWT"}"#;
const CLAIMS: &str = r#"{"iss":"https://issuer","aud":["a","b"],"exp":1000,"iat":900,"x":1}"#;

#[test]
fn accepts_and_returns_claims() {
    let s = Signer::new();
    let token = s.token(HEAD, CLAIMS);
    let claims = verify_jwt(&token, &[s.key()], Some("https://issuer"), Some("b"), 950).unwrap();
    assert_eq!(claims.exp, Some(1000));
    assert_eq!(claims.extra.get("x"), Some(&Value::from(1)));
    let bearer = format!("Bearer {token}");
    assert!(verify_jwt(&bearer, &[s.key()], None, None, 950).is_ok());
}

#[test]
fn claim_checks() {
    let s = Signer::new();
    let keys = [s.key()];
    let token = s.token(HEAD, CLAIMS);
    let at = |iss, aud, now| verify_jwt(&token, &keys, iss, aud, now).map(|_| ());
    assert_eq!(at(Some("https://other"), None, 950), Err(JwtError::Issuer));
    assert_eq!(at(None, Some("c"), 950), Err(JwtError::Audience));
    assert_eq!(at(None, None, 1060), Err(JwtError::Expired));
    assert_eq!(at(None, None, 1059), Ok(()));
    assert_eq!(at(None, None, 800), Err(JwtError::NotYetValid));
    let no_exp = s.token(HEAD, r#"{"iat":900.7}"#);
    assert_eq!(
        verify_jwt(&no_exp, &keys, None, None, 950).map(|_| ()),
        Err(JwtError::MissingClaim("exp"))
    );
    let plaid = JwtRules::plaid();
    assert!(verify_jwt_with(&no_exp, &keys, &plaid, 1200).is_ok());
    assert_eq!(
        verify_jwt_with(&no_exp, &keys, &plaid, 1206).map(|_| ()),
        Err(JwtError::TooOld)
    );
    let nbf = s.token(HEAD, r#"{"exp":2000,"nbf":1500}"#);
    assert_eq!(
        verify_jwt(&nbf, &keys, None, None, 1000).map(|_| ()),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn algorithm_allow_list() {
    let s = Signer::new();
    let keys = [s.key()];
    let payload = B64URL.encode(CLAIMS);
    for alg in [
        "none", "HS256", "HS512", "RS256x", "PS256", "EdDSA", "ES384",
    ] {
        let head = B64URL.encode(format!(r#"{{"alg":"{alg}"}}"#));
        let token = format!("{head}.{payload}.{}", B64URL.encode([1u8; 64]));
        assert_eq!(
            verify_jwt(&token, &keys, None, None, 950).map(|_| ()),
            Err(JwtError::AlgorithmNotAllowed),
            "{alg}"
        );
        let unsigned = format!("{head}.{payload}.");
        assert!(verify_jwt(&unsigned, &keys, None, None, 950).is_err());
    }
    // RS256 header with only an EC key: the key's family does not fit, so nothing verifies.
    let rs = s.token(r#"{"alg":"RS256"}"#, CLAIMS);
    assert_eq!(
        verify_jwt(&rs, &keys, None, None, 950).map(|_| ()),
        Err(JwtError::Signature(VerifyError::NoKeys))
    );
    let crit = s.token(r#"{"alg":"ES256","crit":["b64"],"b64":false}"#, CLAIMS);
    assert_eq!(
        verify_jwt(&crit, &keys, None, None, 950).map(|_| ()),
        Err(JwtError::CriticalHeader)
    );
}

#[test]
fn structure_and_signature_refusals() {
    let s = Signer::new();
    let keys = [s.key()];
    let token = s.token(HEAD, CLAIMS);
    let check = |t: &str| verify_jwt(t, &keys, None, None, 950).map(|_| ());
    assert_eq!(check("a.b"), Err(JwtError::Malformed));
    assert_eq!(check(&format!("{token}.x")), Err(JwtError::Malformed));
    assert_eq!(check(&format!("{token}=")), Err(JwtError::Malformed));
    let (signed, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(
        check(&format!("{signed}.{}", &sig[..40])),
        Err(JwtError::Signature(VerifyError::Malformed(
            "a fixed-width P-256 signature is 64 bytes (r || s)"
        )))
    );
    let other = Signer::new();
    assert_eq!(
        verify_jwt(&token, &[other.key()], None, None, 950).map(|_| ()),
        Err(JwtError::Signature(VerifyError::Mismatch))
    );
    // Swapping the payload breaks the signature.
    let (head, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged = format!("{head}.{}.{sig}", B64URL.encode(r#"{"exp":99999}"#));
    assert_eq!(
        check(&forged),
        Err(JwtError::Signature(VerifyError::Mismatch))
    );
    let msg = JwtError::Signature(VerifyError::Mismatch).to_string();
    assert!(!msg.contains(sig));
}

#[test]
fn kid_selects_keys() {
    let s = Signer::new();
    let other = Signer::new();
    let token = s.token(r#"{"alg":"ES256","kid":"new"}"#, CLAIMS);
    let named = [other.key().with_kid("old"), s.key().with_kid("new")];
    assert!(verify_jwt(&token, &named, None, None, 950).is_ok());
    // A key named differently is never tried, even if it would verify.
    let misnamed = [s.key().with_kid("old")];
    assert_eq!(
        verify_jwt(&token, &misnamed, None, None, 950).map(|_| ()),
        Err(JwtError::Signature(VerifyError::NoKeys))
    );
    // Keys without a kid are always candidates.
    assert!(verify_jwt(&token, &[s.key()], None, None, 950).is_ok());
}

#[test]
fn body_sha256_check() {
    let body = b"{\"a\":1}";
    let digest = hex::encode(Sha256::digest(body));
    let claims: Claims =
        serde_json::from_str(&format!(r#"{{"request_body_sha256":"{digest}"}}"#)).unwrap();
    assert_eq!(claims.check_body_sha256(body), Ok(()));
    assert_eq!(
        claims.check_body_sha256(b"{\"a\":2}"),
        Err(JwtError::BodyMismatch)
    );
    let none: Claims = serde_json::from_str("{}").unwrap();
    assert_eq!(
        none.check_body_sha256(body),
        Err(JwtError::MissingClaim("request_body_sha256"))
    );
}
