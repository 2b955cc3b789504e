//! The signature methods that are not one header ([`SignatureMethod`]): their keys loaded or
//! their key fetcher built, their pinned hosts and claims checked at start.

use std::path::Path;
use std::sync::Arc;

use super::{err, ConfigError};
use crate::keyfetch::pinned::{self, HostPattern};
use crate::keyfetch::{KeyFetcher, KeyFormat};
use crate::scheme::jwt::JwtRules;
use crate::scheme::keys::{KeyKind, PublicKey};
use crate::scheme::{Algorithm, SignatureMethod, SignatureSpec, SigningKey};
use crate::secret::{Env, SecretEncoding, SecretRef};
use crate::source::method::{JwtCheck, Method, PaypalCheck, SnsCheck};

/// The hosts AWS serves SNS signing certificates from: `sns.<region>.amazonaws.com` (and
/// `.amazonaws.com.cn` in China), as the AWS SDKs' validators pin them
/// (<https://github.com/aws/aws-js-sns-message-validator>: `^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$`).
/// AWS: "Ensure the SigningCertURL is from a trusted AWS domain … Reject any URLs outside
/// AWS domains" (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message-verify-message-signature.html>).
pub(super) const SNS_CERT_HOSTS: [&str; 2] = ["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"];

/// The hosts PayPal's `PAYPAL-CERT-URL` names: its REST API hosts, live and sandbox
/// (<https://developer.paypal.com/api/rest/webhooks/rest/>; the certificate URLs in PayPal's
/// own samples are `https://api.paypal.com/v1/notifications/certs/CERT-…` and
/// `https://api.sandbox.paypal.com/v1/notifications/certs/CERT-…`, e.g.
/// <https://github.com/paypal/PayPal-PHP-SDK/blob/master/sample/notifications/ValidateWebhookEvent.php>;
/// the API hosts are those of <https://github.com/paypal/PayPal-Python-SDK/blob/master/paypalrestsdk/config.py>).
pub(super) const PAYPAL_CERT_HOSTS: [&str; 2] = ["api.paypal.com", "api.sandbox.paypal.com"];

/// Google's OAuth 2.0 / OIDC signing keys as a JWKS.
/// <https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions>
pub(super) const GOOGLE_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Refuses the method-only fields on a header signature, where they would do nothing.
pub(super) fn refuse_for_header(sig: &SignatureSpec, at: &str) -> Result<(), ConfigError> {
    let set = [
        ("audience", sig.audience.is_some()),
        ("email", sig.email.is_some()),
        ("topics", sig.topics.is_some()),
        ("webhook_id", sig.webhook_id.is_some()),
        ("key_url", sig.key_url.is_some()),
        ("key_host_pattern", sig.key_host_pattern.is_some()),
        ("key_server_ca", sig.key_server_ca.is_some()),
        ("key_cache_ttl", sig.key_cache_ttl.is_some()),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((name, _)) => err(
            &format!("{at}.signature.{name}"),
            "applies only to the aws-sns, google-oidc, plaid-jwt, mailgun and paypal methods",
        ),
        None => Ok(()),
    }
}

/// What a non-header method verifies with.
pub(super) struct Built {
    pub(super) method: Method,
    pub(super) keys: Vec<SigningKey>,
    pub(super) public_keys: Vec<PublicKey>,
    pub(super) origins: Vec<String>,
}

/// Builds `sig`'s method (not [`SignatureMethod::Header`]) for the source at `at`.
pub(super) fn build(
    sig: &SignatureSpec,
    secrets: &[SecretRef],
    at: &str,
    base_dir: &Path,
    env: &dyn Env,
) -> Result<Built, ConfigError> {
    let method = sig.method.unwrap_or_default();
    let key_at = format!("{at}.signature");
    let fetched_only = |name: &str, set: bool| -> Result<(), ConfigError> {
        if set {
            return err(
                &format!("{key_at}.{name}"),
                format!("does not apply to method `{}`", method.name()),
            );
        }
        Ok(())
    };
    let fetches = matches!(
        method,
        SignatureMethod::AwsSns | SignatureMethod::GoogleOidc | SignatureMethod::Paypal
    );
    fetched_only("key_url", !fetches && sig.key_url.is_some())?;
    fetched_only(
        "key_host_pattern",
        !fetches && sig.key_host_pattern.is_some(),
    )?;
    fetched_only("key_server_ca", !fetches && sig.key_server_ca.is_some())?;
    fetched_only("key_cache_ttl", !fetches && sig.key_cache_ttl.is_some())?;
    fetched_only(
        "audience",
        method != SignatureMethod::GoogleOidc && sig.audience.is_some(),
    )?;
    fetched_only(
        "email",
        method != SignatureMethod::GoogleOidc && sig.email.is_some(),
    )?;
    fetched_only(
        "topics",
        method != SignatureMethod::AwsSns && sig.topics.is_some(),
    )?;
    fetched_only(
        "webhook_id",
        method != SignatureMethod::Paypal && sig.webhook_id.is_some(),
    )?;
    fetched_only(
        "public_keys",
        method != SignatureMethod::PlaidJwt && sig.public_keys.is_some(),
    )?;
    if method != SignatureMethod::Mailgun && !secrets.is_empty() {
        return err(
            &format!("{at}.secrets"),
            format!(
                "method `{}` is verified with public keys, not secrets",
                method.name()
            ),
        );
    }
    let mut built = Built {
        method: Method::Header,
        keys: Vec::new(),
        public_keys: Vec::new(),
        origins: Vec::new(),
    };
    let fetcher = |format: KeyFormat| -> Result<(Arc<KeyFetcher>, Vec<HostPattern>), ConfigError> {
        let ca = sig.key_server_ca.as_ref().map(|p| base_dir.join(p));
        if let Some(ca) = &ca {
            crate::tls::client_config(Some(ca), "signature.key_server_ca")
                .or_else(|e| err(&key_at, e.0))?;
        }
        let hosts =
            match (&sig.key_host_pattern, method) {
                (Some(p), _) => vec![HostPattern::parse(p)
                    .or_else(|m| err(&format!("{key_at}.key_host_pattern"), m))?],
                (None, SignatureMethod::AwsSns) => SNS_CERT_HOSTS
                    .iter()
                    .map(|p| HostPattern::parse(p).expect("the pinned hosts parse"))
                    .collect(),
                (None, SignatureMethod::Paypal) => PAYPAL_CERT_HOSTS
                    .iter()
                    .map(|p| HostPattern::parse(p).expect("the pinned hosts parse"))
                    .collect(),
                (None, _) => vec![HostPattern::parse("www.googleapis.com").expect("parses")],
            };
        Ok((KeyFetcher::new(format, ca, sig.key_cache_ttl), hosts))
    };
    match method {
        SignatureMethod::Header => unreachable!("header signatures are built by the scheme"),
        SignatureMethod::AwsSns => {
            let (certs, hosts) = fetcher(KeyFormat::Pem(KeyKind::Rsa))?;
            built.method = Method::Sns(SnsCheck {
                certs,
                hosts,
                topics: sig.topics.clone().unwrap_or_default(),
            });
            built
                .origins
                .push("certificates from SigningCertURL".into());
        }
        SignatureMethod::Paypal => {
            // PayPal's verify-webhook-signature request: `webhook_id` matches
            // `^[a-zA-Z0-9]+$`, at most 50 characters
            // (<https://developer.paypal.com/api/webhooks/v1/definitions/verify_webhook_signature>).
            let webhook_id = match sig.webhook_id.as_deref() {
                Some(id)
                    if !id.is_empty()
                        && id.len() <= 50
                        && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                {
                    id.to_string()
                }
                Some(_) => {
                    return err(
                        &format!("{key_at}.webhook_id"),
                        "must be PayPal's webhook ID: 1 to 50 letters and digits",
                    )
                }
                None => {
                    return err(
                        &format!("{key_at}.webhook_id"),
                        "set the webhook's ID from PayPal's dashboard; PayPal signs it",
                    )
                }
            };
            let (certs, hosts) = fetcher(KeyFormat::Pem(KeyKind::Rsa))?;
            built.method = Method::Paypal(PaypalCheck {
                certs,
                hosts,
                webhook_id,
            });
            built
                .origins
                .push("certificates from PAYPAL-CERT-URL".into());
        }
        SignatureMethod::GoogleOidc => {
            let audience = sig.audience.clone().ok_or_else(|| {
                ConfigError(format!(
                    "{key_at}.audience: set the push subscription's audience (by default its endpoint URL)"
                ))
            })?;
            let (fetcher, hosts) = fetcher(KeyFormat::Jwks)?;
            let url = sig.key_url.as_deref().unwrap_or(GOOGLE_JWKS);
            let uri = pinned::check(url, &hosts, None)
                .or_else(|e| err(&format!("{key_at}.key_url"), e))?;
            built.origins.push(format!("JWKS {url}"));
            built.method = Method::Jwt(JwtCheck {
                header: sig.header.clone().unwrap_or(http::header::AUTHORIZATION),
                rules: JwtRules::google_oidc(audience),
                email: sig.email.clone(),
                body_sha256: false,
                jwks: Some((fetcher, uri)),
            });
        }
        SignatureMethod::PlaidJwt => {
            let refs = sig.public_keys.clone().unwrap_or_default();
            if refs.is_empty() {
                return err(
                    &format!("{key_at}.public_keys"),
                    "Plaid's key endpoint needs API credentials: configure the JWK(s) from /webhook_verification_key/get",
                );
            }
            for (i, r) in refs.iter().enumerate() {
                let at = format!("{key_at}.public_keys[{i}]");
                let text = r.load(env, base_dir).or_else(|m| err(&at, m))?;
                let key = PublicKey::parse(KeyKind::EcdsaP256, &text)
                    .or_else(|e| err(&at, e.to_string()))?;
                built.public_keys.push(key);
                built.origins.push(r.describe());
            }
            built.method = Method::Jwt(JwtCheck {
                header: sig
                    .header
                    .clone()
                    .unwrap_or(http::HeaderName::from_static("plaid-verification")),
                rules: JwtRules::plaid(),
                email: None,
                body_sha256: true,
                jwks: None,
            });
        }
        SignatureMethod::Mailgun => {
            if secrets.is_empty() {
                return err(
                    &format!("{at}.secrets"),
                    "Mailgun needs the webhook signing key",
                );
            }
            for (i, r) in secrets.iter().enumerate() {
                let text = r
                    .load(env, base_dir)
                    .or_else(|m| err(&format!("{at}.secrets[{i}]"), m))?;
                let secret = SecretEncoding::Raw
                    .decode(&text)
                    .or_else(|m| err(&format!("{at}.secrets[{i}]"), m))?;
                built.keys.push(SigningKey::new(Algorithm::Sha256, &secret));
                built.origins.push(r.describe());
            }
            built.method = Method::Mailgun;
        }
    }
    Ok(built)
}
