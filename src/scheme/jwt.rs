//! JWT (JWS compact) verification for RS256 and ES256 on top of `ring`: Google Cloud Pub/Sub
//! push OIDC tokens and Plaid's `Plaid-Verification` token.
//!
//! The JOSE subset is small enough to own rather than pull in a JWT crate: three base64url
//! segments, a header whose `alg` must be on the allow-list ([`ALLOWED_ALGS`]: never `none`,
//! never `HS*`, so a public key can never be used as an HMAC secret) and must match the key's
//! family, a `crit` header refused, then the claims checked against [`JwtRules`]. Keys whose
//! `kid` equals the token's are tried first; keys without a `kid` are always candidates.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::asymmetric::{verify, VerifierKind, VerifyError};
use super::keys::{KeyKind, PublicKey, BASE64URL_ANY_PAD};
use base64::Engine;

/// The only `alg` values accepted.
pub const ALLOWED_ALGS: [&str; 2] = ["RS256", "ES256"];

/// The longest token accepted (Google's are about 1 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a token's claims must satisfy. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRules {
    /// Accepted `iss` values; empty: `iss` is not checked.
    pub issuers: Vec<String>,
    /// The required `aud` (one of the token's audiences); `None`: not checked.
    pub audience: Option<String>,
    /// Whether `exp` must be present.
    pub require_exp: bool,
    /// When set, `iat` must be present and at most this many seconds old.
    pub max_age: Option<u64>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
}

impl JwtRules {
    /// Google-signed OIDC tokens (Pub/Sub push): `iss` is `https://accounts.google.com` or
    /// `accounts.google.com`, `aud` is the configured audience, `exp` required.
    /// <https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions>
    pub fn google_oidc(audience: impl Into<String>) -> Self {
        JwtRules {
            issuers: vec![
                "https://accounts.google.com".into(),
                "accounts.google.com".into(),
            ],
            audience: Some(audience.into()),
            require_exp: true,
            max_age: None,
            leeway: 60,
        }
    }

    /// Plaid's webhook token: no `iss`, `aud` or `exp`; `iat` at most 5 minutes old. Check
    /// the body with [`Claims::check_body_sha256`] afterwards.
    /// <https://plaid.com/docs/api/webhooks/webhook-verification/>
    pub fn plaid() -> Self {
        JwtRules {
            issuers: Vec::new(),
            audience: None,
            require_exp: false,
            max_age: Some(5 * 60),
            leeway: 5,
        }
    }
}

/// Why a token was refused. Never contains the token, a claim value or a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts separated by dots.
    #[error("token is not a compact JWS (header.payload.signature in base64url)")]
    Malformed,
    /// The header or the claims do not decode as the expected JSON.
    #[error("token header or claims are not the expected JSON")]
    Json,
    /// The header's `alg` is not RS256 or ES256.
    #[error("token algorithm is not allowed (only RS256 and ES256)")]
    AlgorithmNotAllowed,
    /// The header has a `crit` parameter.
    #[error("token has critical header parameters, which are not supported")]
    CriticalHeader,
    /// The signature is malformed or verifies under none of the public keys.
    #[error("token signature: {0}")]
    Signature(VerifyError),
    /// `iss` is not among the accepted issuers.
    #[error("token issuer is not accepted")]
    Issuer,
    /// `aud` does not name the expected audience.
    #[error("token audience does not match")]
    Audience,
    /// `exp` is in the past (beyond the allowed leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// A claim the check needs is absent; holds the claim's name.
    #[error("token has no {0} claim")]
    MissingClaim(&'static str),
    /// `iat` is older than the rules' `max_age`.
    #[error("token was issued too long ago")]
    TooOld,
    /// The SHA-256 of the body differs from the `request_body_sha256` claim.
    #[error("request body does not match the token's request_body_sha256")]
    BodyMismatch,
}

/// `aud`: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// A list of audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// A verified token's claims. Registered claims are typed; the rest are in `extra`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Claims {
    /// `iss`: who issued the token.
    pub iss: Option<String>,
    /// `sub`: whom the token is about.
    pub sub: Option<String>,
    /// `aud`: whom the token is meant for.
    pub aud: Option<Audience>,
    /// `exp`: expiry, in seconds since the Unix epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    /// `nbf`: not valid before this time, in seconds since the Unix epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<i64>,
    /// `iat`: when the token was issued, in seconds since the Unix epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<i64>,
    /// Google: the service account the push subscription authenticates as.
    pub email: Option<String>,
    /// Google: whether `email` is verified.
    pub email_verified: Option<bool>,
    /// Plaid: lower-case hex SHA-256 of the request body.
    pub request_body_sha256: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// Plaid: the body's SHA-256 must equal `request_body_sha256` (compared in constant time).
    pub fn check_body_sha256(&self, body: &[u8]) -> Result<(), JwtError> {
        let claimed = self
            .request_body_sha256
            .as_deref()
            .ok_or(JwtError::MissingClaim("request_body_sha256"))?;
        let actual = hex::encode(Sha256::digest(body));
        let claimed = claimed.to_ascii_lowercase();
        if claimed.len() == actual.len() && bool::from(claimed.as_bytes().ct_eq(actual.as_bytes()))
        {
            Ok(())
        } else {
            Err(JwtError::BodyMismatch)
        }
    }
}

/// NumericDate (RFC 7519 §2): integer or fractional seconds; fractions are truncated.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<f64>::deserialize(d)?;
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && v.abs() < 1e15 => Ok(Some(v.trunc() as i64)),
        Some(_) => Err(serde::de::Error::custom("NumericDate out of range")),
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Verifies `token` with `keys` and checks `iss` (if `expected_iss` is set), `aud` (if
/// `expected_aud` is set) and `exp` (required), with 60 s of leeway, at `now` (Unix seconds).
pub fn verify_jwt(
    token: &str,
    keys: &[PublicKey],
    expected_iss: Option<&str>,
    expected_aud: Option<&str>,
    now: i64,
) -> Result<Claims, JwtError> {
    let rules = JwtRules {
        issuers: expected_iss.into_iter().map(str::to_string).collect(),
        audience: expected_aud.map(str::to_string),
        require_exp: true,
        max_age: None,
        leeway: 60,
    };
    verify_jwt_with(token, keys, &rules, now)
}

/// Verifies `token` with `keys` and checks its claims against `rules` at `now` (Unix seconds).
pub fn verify_jwt_with(
    token: &str,
    keys: &[PublicKey],
    rules: &JwtRules,
    now: i64,
) -> Result<Claims, JwtError> {
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token);
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(head), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |segment: &str| {
        if segment.contains('=') {
            return Err(JwtError::Malformed); // JWS base64url carries no padding
        }
        BASE64URL_ANY_PAD
            .decode(segment)
            .map_err(|_| JwtError::Malformed)
    };
    let header: Header = serde_json::from_slice(&decode(head)?).map_err(|_| JwtError::Json)?;
    let kind = match header.alg.as_str() {
        "RS256" => VerifierKind::RsaPkcs1Sha256,
        "ES256" => VerifierKind::EcdsaP256Sha256Fixed,
        _ => return Err(JwtError::AlgorithmNotAllowed),
    };
    if header.crit.is_some() {
        return Err(JwtError::CriticalHeader);
    }
    let signature = decode(sig)?;
    if signature.is_empty() {
        return Err(JwtError::Signature(VerifyError::Malformed(
            "empty signature",
        )));
    }
    let signed = &token.as_bytes()[..head.len() + 1 + payload.len()];
    let candidates = select_keys(keys, kind.key_kind(), header.kid.as_deref());
    verify(kind, &candidates, signed, &signature).map_err(JwtError::Signature)?;

    let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| JwtError::Json)?;
    check_claims(&claims, rules, now)?;
    Ok(claims)
}

/// Keys of the right family: those whose `kid` matches the token's, then those without a
/// `kid`. A key with a different `kid` is never tried.
fn select_keys(keys: &[PublicKey], kind: KeyKind, kid: Option<&str>) -> Vec<PublicKey> {
    let family = keys.iter().filter(|k| k.kind() == kind);
    let matching = family.clone().filter(|k| kid.is_some() && k.kid() == kid);
    let unnamed = family.filter(|k| k.kid().is_none());
    matching.chain(unnamed).cloned().collect()
}

fn check_claims(claims: &Claims, rules: &JwtRules, now: i64) -> Result<(), JwtError> {
    let leeway = i64::try_from(rules.leeway).unwrap_or(i64::MAX);
    if !rules.issuers.is_empty() {
        let iss = claims.iss.as_deref().ok_or(JwtError::MissingClaim("iss"))?;
        if !rules.issuers.iter().any(|i| i == iss) {
            return Err(JwtError::Issuer);
        }
    }
    if let Some(audience) = &rules.audience {
        let aud = claims.aud.as_ref().ok_or(JwtError::MissingClaim("aud"))?;
        if !aud.contains(audience) {
            return Err(JwtError::Audience);
        }
    }
    match claims.exp {
        Some(exp) if now.saturating_sub(leeway) >= exp => return Err(JwtError::Expired),
        None if rules.require_exp => return Err(JwtError::MissingClaim("exp")),
        _ => {}
    }
    if claims
        .nbf
        .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
    {
        return Err(JwtError::NotYetValid);
    }
    if claims
        .iat
        .is_some_and(|iat| now.saturating_add(leeway) < iat)
    {
        return Err(JwtError::NotYetValid);
    }
    if let Some(max_age) = rules.max_age {
        let iat = claims.iat.ok_or(JwtError::MissingClaim("iat"))?;
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
        if now.saturating_sub(iat) > max_age.saturating_add(leeway) {
            return Err(JwtError::TooOld);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
