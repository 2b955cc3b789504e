//! What each asymmetric provider signs and where its signature travels: one [`Profile`] per
//! provider (headers, encoding, [`VerifierKind`], signed-bytes [`Template`]) plus the AWS SNS
//! string-to-sign, which is built from the JSON body rather than from headers.
//!
//! [`Profile::signed_bytes`] and [`Profile::signatures`] read a delivery's headers the way the
//! gateway will (each header present exactly once, visible ASCII), so the test vectors replay
//! exactly the bytes a gateway builds.

use http::{HeaderMap, HeaderName};
use serde::Deserialize;

use super::asymmetric::{decode_signature, VerifierKind, VerifyError};
use super::{Encoding, SignInput, Template};
use crate::extract::{header_value, HeaderLookup};

/// How one provider signs with a private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The provider's name (a future preset name).
    pub name: &'static str,
    /// The signature algorithm.
    pub kind: VerifierKind,
    /// The header carrying the signature.
    pub signature_header: &'static str,
    /// How the signature bytes are written.
    pub encoding: Encoding,
    /// `Some("v1a")` for a Standard-Webhooks-style list of `<version>,<signature>` entries
    /// separated by spaces; `None` for one bare signature.
    pub version: Option<&'static str>,
    /// The header filling `{timestamp}`, if the template uses it.
    pub timestamp_header: Option<&'static str>,
    /// The header filling `{id}`, if the template uses it.
    pub id_header: Option<&'static str>,
    /// The signed bytes, in [`Template`] syntax.
    pub signed: &'static str,
    /// The provider's documentation of this scheme.
    pub docs: &'static str,
}

/// Discord interactions: Ed25519 over `timestamp + body`, hex signature, hex public key.
/// <https://discord.com/developers/docs/interactions/receiving-and-responding#security-and-authorization>
pub const DISCORD: Profile = Profile {
    name: "discord",
    kind: VerifierKind::Ed25519,
    signature_header: "x-signature-ed25519",
    encoding: Encoding::Hex,
    version: None,
    timestamp_header: Some("x-signature-timestamp"),
    id_header: None,
    signed: "{timestamp}{body}",
    docs: "https://discord.com/developers/docs/interactions/receiving-and-responding#security-and-authorization",
};

/// Standard Webhooks asymmetric signatures: `v1a,<base64 Ed25519>` over `id.timestamp.body`,
/// `whpk_` public keys.
/// <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>
pub const STANDARD_WEBHOOKS_V1A: Profile = Profile {
    name: "standard-webhooks-v1a",
    kind: VerifierKind::Ed25519,
    signature_header: "webhook-signature",
    encoding: Encoding::Base64,
    version: Some("v1a"),
    timestamp_header: Some("webhook-timestamp"),
    id_header: Some("webhook-id"),
    signed: "{id}.{timestamp}.{body}",
    docs:
        "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
};

/// Telnyx API v2: Ed25519 over `timestamp|body`, base64 signature, base64 public key.
/// <https://developers.telnyx.com/docs/development/api-fundamentals/webhooks>
pub const TELNYX: Profile = Profile {
    name: "telnyx",
    kind: VerifierKind::Ed25519,
    signature_header: "telnyx-signature-ed25519",
    encoding: Encoding::Base64,
    version: None,
    timestamp_header: Some("telnyx-timestamp"),
    id_header: None,
    signed: "{timestamp}|{body}",
    docs: "https://developers.telnyx.com/docs/development/api-fundamentals/webhooks",
};

/// Twilio SendGrid signed Event Webhook: ECDSA P-256/SHA-256 over `timestamp + body`,
/// base64 DER signature, base64 DER SPKI public key.
/// <https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>
pub const SENDGRID: Profile = Profile {
    name: "sendgrid",
    kind: VerifierKind::EcdsaP256Sha256Der,
    signature_header: "x-twilio-email-event-webhook-signature",
    encoding: Encoding::Base64,
    version: None,
    timestamp_header: Some("x-twilio-email-event-webhook-timestamp"),
    id_header: None,
    signed: "{timestamp}{body}",
    docs: "https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features",
};

/// Every header-signed profile above.
pub const PROFILES: [Profile; 4] = [DISCORD, STANDARD_WEBHOOKS_V1A, TELNYX, SENDGRID];

/// A header the profile needs is absent, repeated or not ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("header {0} is missing, repeated or not ASCII")]
pub struct HeaderError(pub &'static str);

fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, HeaderError> {
    match header_value(headers, &HeaderName::from_static(name)) {
        HeaderLookup::Value(value) => Ok(value),
        _ => Err(HeaderError(name)),
    }
}

impl Profile {
    /// The parsed signed-bytes template.
    pub fn template(&self) -> Template {
        Template::parse(self.signed).expect("profile templates are valid")
    }

    /// The bytes the provider signed for this delivery.
    pub fn signed_bytes(&self, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let timestamp = self
            .timestamp_header
            .map(|h| single(headers, h))
            .transpose()?;
        let id = self.id_header.map(|h| single(headers, h)).transpose()?;
        Ok(self.template().render(&SignInput {
            body,
            timestamp,
            id,
            ..SignInput::default()
        }))
    }

    /// The decoded signatures in the signature header (only entries of this profile's version
    /// when it has one; at most 16). An entry that does not decode is reported as malformed
    /// only when no entry decodes.
    pub fn signatures(&self, headers: &HeaderMap) -> Result<Vec<Vec<u8>>, VerifyError> {
        let value = single(headers, self.signature_header)
            .map_err(|_| VerifyError::Malformed("signature header missing or repeated"))?;
        let texts: Vec<&str> = match self.version {
            None => vec![value],
            Some(version) => value
                .split(' ')
                .filter_map(|item| item.split_once(','))
                .filter(|(v, _)| *v == version)
                .map(|(_, sig)| sig)
                .take(16)
                .collect(),
        };
        let mut first_error = VerifyError::Malformed("no signature of the expected version");
        let mut out = Vec::new();
        for (i, text) in texts.into_iter().enumerate() {
            match decode_signature(self.encoding, text) {
                Ok(bytes) => out.push(bytes),
                Err(e) if i == 0 => first_error = e,
                Err(_) => {}
            }
        }
        if out.is_empty() {
            Err(first_error)
        } else {
            Ok(out)
        }
    }
}

/// The parts of an AWS SNS HTTP(S) message that verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// The bytes SNS signed.
    pub string_to_sign: Vec<u8>,
    /// The decoded `Signature`.
    pub signature: Vec<u8>,
    /// `rsa-pkcs1-sha1` for SignatureVersion 1, `rsa-pkcs1-sha256` for 2.
    pub kind: VerifierKind,
    /// Where the signing certificate is served. Fetch it only from a pinned
    /// `https://sns.<region>.amazonaws.com/` host; never trust it blindly.
    pub signing_cert_url: String,
    /// The message's `Type`.
    pub message_type: SnsType,
    /// The `TopicArn`, to check against the expected topic.
    pub topic_arn: String,
}

/// The SNS message types that are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsType {
    /// A published message (`Type: Notification`).
    Notification,
    /// The confirmation SNS sends when a subscription is created; it carries a `SubscribeURL`.
    SubscriptionConfirmation,
    /// The confirmation SNS sends when a subscription is deleted.
    UnsubscribeConfirmation,
}

/// Why an SNS body could not be made into a string to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    /// The body is not a JSON object whose fields are strings.
    #[error("SNS message is not a JSON object with the expected string fields")]
    NotJson,
    /// A field the string to sign needs is absent; holds its name.
    #[error("SNS message field {0} is missing")]
    Missing(&'static str),
    /// `Type` is not one of the signed message types.
    #[error("SNS message Type is not one that is signed")]
    UnknownType,
    /// `SignatureVersion` is neither `1` (SHA1withRSA) nor `2` (SHA256withRSA).
    #[error("SNS SignatureVersion must be 1 or 2")]
    UnknownVersion,
    /// `Signature` does not decode as base64.
    #[error("SNS Signature is not base64")]
    Signature,
}

// Field names are SNS's; a duplicated known field is refused by serde.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawSns {
    #[serde(rename = "Type")]
    kind: Option<String>,
    message: Option<String>,
    message_id: Option<String>,
    subject: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    timestamp: Option<String>,
    token: Option<String>,
    topic_arn: Option<String>,
    signature_version: Option<String>,
    signature: Option<String>,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: Option<String>,
}

/// Builds the string to sign from an SNS message body, as AWS documents it: for
/// `Notification`, `Message`, `MessageId`, `Subject` (only if present), `Timestamp`,
/// `TopicArn`, `Type`; for the two confirmations, `Message`, `MessageId`, `SubscribeURL`,
/// `Timestamp`, `Token`, `TopicArn`, `Type`; each as `name\nvalue\n`, values unescaped.
/// <https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message-verify-message-signature.html>
pub fn sns_string_to_sign(message_json: &[u8]) -> Result<SnsMessage, SnsError> {
    let raw: RawSns = serde_json::from_slice(message_json).map_err(|_| SnsError::NotJson)?;
    let message_type = match raw.kind.as_deref() {
        Some("Notification") => SnsType::Notification,
        Some("SubscriptionConfirmation") => SnsType::SubscriptionConfirmation,
        Some("UnsubscribeConfirmation") => SnsType::UnsubscribeConfirmation,
        Some(_) => return Err(SnsError::UnknownType),
        None => return Err(SnsError::Missing("Type")),
    };
    let kind = match raw.signature_version.as_deref() {
        Some("1") => VerifierKind::RsaPkcs1Sha1,
        Some("2") => VerifierKind::RsaPkcs1Sha256,
        Some(_) => return Err(SnsError::UnknownVersion),
        None => return Err(SnsError::Missing("SignatureVersion")),
    };
    let need = |v: &Option<String>, name: &'static str| -> Result<String, SnsError> {
        v.clone().ok_or(SnsError::Missing(name))
    };
    let topic_arn = need(&raw.topic_arn, "TopicArn")?;
    let type_text = need(&raw.kind, "Type")?;
    let mut fields: Vec<(&str, String)> = vec![
        ("Message", need(&raw.message, "Message")?),
        ("MessageId", need(&raw.message_id, "MessageId")?),
    ];
    if message_type == SnsType::Notification {
        if let Some(subject) = &raw.subject {
            fields.push(("Subject", subject.clone()));
        }
        fields.push(("Timestamp", need(&raw.timestamp, "Timestamp")?));
    } else {
        fields.push(("SubscribeURL", need(&raw.subscribe_url, "SubscribeURL")?));
        fields.push(("Timestamp", need(&raw.timestamp, "Timestamp")?));
        fields.push(("Token", need(&raw.token, "Token")?));
    }
    fields.push(("TopicArn", topic_arn.clone()));
    fields.push(("Type", type_text));
    let mut string_to_sign = Vec::new();
    for (name, value) in fields {
        for part in [name.as_bytes(), b"\n", value.as_bytes(), b"\n"] {
            string_to_sign.extend_from_slice(part);
        }
    }
    let signature = decode_signature(
        Encoding::Base64,
        raw.signature
            .as_deref()
            .ok_or(SnsError::Missing("Signature"))?,
    )
    .map_err(|_| SnsError::Signature)?;
    Ok(SnsMessage {
        string_to_sign,
        signature,
        kind,
        signing_cert_url: need(&raw.signing_cert_url, "SigningCertURL")?,
        message_type,
        topic_arn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn profile_templates_parse_and_name_their_headers() {
        for p in PROFILES {
            let t = p.template();
            assert_eq!(
                t.uses(&super::super::Part::Timestamp),
                p.timestamp_header.is_some()
            );
            assert_eq!(t.uses(&super::super::Part::Id), p.id_header.is_some());
            assert!(p.docs.starts_with("https://"));
        }
    }

    #[test]
    fn signed_bytes_per_provider() {
        let h = headers(&[
            ("x-signature-timestamp", "17"),
            ("telnyx-timestamp", "18"),
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "19"),
        ]);
        assert_eq!(DISCORD.signed_bytes(&h, b"{}").unwrap(), b"17{}");
        assert_eq!(TELNYX.signed_bytes(&h, b"{}").unwrap(), b"18|{}");
        assert_eq!(
            STANDARD_WEBHOOKS_V1A.signed_bytes(&h, b"{}").unwrap(),
            b"msg_1.19.{}"
        );
        assert_eq!(
            SENDGRID.signed_bytes(&h, b"{}"),
            Err(HeaderError("x-twilio-email-event-webhook-timestamp"))
        );
    }

    #[test]
    fn versioned_signatures_keep_only_their_version() {
        let h = headers(&[("webhook-signature", "v1,AAAA v1a,AQID v1a,!!! v2,BBBB")]);
        let sigs = STANDARD_WEBHOOKS_V1A.signatures(&h).unwrap();
        assert_eq!(sigs, vec![vec![1u8, 2, 3]]);
        let h = headers(&[("webhook-signature", "v1,AAAA")]);
        assert!(STANDARD_WEBHOOKS_V1A.signatures(&h).is_err());
    }

    #[test]
    fn sns_string_to_sign_follows_the_documented_order() {
        let body = br#"{"Type":"Notification","MessageId":"m","TopicArn":"arn","Subject":"s",
            "Message":"a\nb","Timestamp":"t","SignatureVersion":"2","Signature":"AQID",
            "SigningCertURL":"https://sns.us-east-1.amazonaws.com/x.pem"}"#;
        let m = sns_string_to_sign(body).unwrap();
        assert_eq!(
            m.string_to_sign,
            b"Message\na\nb\nMessageId\nm\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
        );
        assert_eq!(m.kind, VerifierKind::RsaPkcs1Sha256);
        assert_eq!(m.signature, vec![1, 2, 3]);
        let dup = br#"{"Type":"Notification","Message":"a","Message":"b"}"#;
        assert_eq!(sns_string_to_sign(dup), Err(SnsError::NotJson));
        let v3 = br#"{"Type":"Notification","SignatureVersion":"3"}"#;
        assert_eq!(sns_string_to_sign(v3), Err(SnsError::UnknownVersion));
    }
}
