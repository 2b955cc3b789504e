//! PayPal's webhook signature: the string PayPal signs from a delivery's transmission headers,
//! the receiver's webhook id and the body's CRC32, and the algorithm named in
//! `PAYPAL-AUTH-ALGO`. The certificate is fetched by the gateway (`gateway::keyed`).
//!
//! <https://developer.paypal.com/api/rest/webhooks/rest/> ("Verify the signature"); the
//! formula is PayPal's own SDK's `WebhookEvent._get_expected_sig`
//! (<https://github.com/paypal/PayPal-Python-SDK/blob/master/paypalrestsdk/notifications.py>):
//! `transmission_id + "|" + timestamp + "|" + webhook_id + "|" + str(crc32(body) & 0xffffffff)`.
//!
//! The body is bound to the signature by CRC32 only, which PayPal chose and which is not a
//! cryptographic hash: the signature authenticates the transmission id, time and webhook id,
//! and the body only as far as a CRC32 does.

use http::{HeaderMap, HeaderName};

use super::asymmetric::VerifierKind;
use crate::extract::{header_value, HeaderLookup};

/// `PAYPAL-TRANSMISSION-ID`: the id of this HTTP transmission.
pub const TRANSMISSION_ID: HeaderName = HeaderName::from_static("paypal-transmission-id");
/// `PAYPAL-TRANSMISSION-TIME`: when it was sent (RFC 3339).
pub const TRANSMISSION_TIME: HeaderName = HeaderName::from_static("paypal-transmission-time");
/// `PAYPAL-TRANSMISSION-SIG`: the base64 signature.
pub const TRANSMISSION_SIG: HeaderName = HeaderName::from_static("paypal-transmission-sig");
/// `PAYPAL-CERT-URL`: where the signing certificate is served.
pub const CERT_URL: HeaderName = HeaderName::from_static("paypal-cert-url");
/// `PAYPAL-AUTH-ALGO`: the signature algorithm (`SHA256withRSA`).
pub const AUTH_ALGO: HeaderName = HeaderName::from_static("paypal-auth-algo");

/// A PayPal delivery's signature inputs, read from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaypalSigned {
    /// The bytes PayPal signed.
    pub string_to_sign: String,
    /// The base64 text of `PAYPAL-TRANSMISSION-SIG`.
    pub signature: String,
    /// `PAYPAL-CERT-URL`, not yet checked against the pinned hosts.
    pub cert_url: String,
    /// The verifier `PAYPAL-AUTH-ALGO` names.
    pub kind: VerifierKind,
}

/// Why a delivery's PayPal headers cannot be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaypalError {
    /// A header PayPal sends is missing, repeated or not visible ASCII.
    Header(&'static str),
    /// `PAYPAL-AUTH-ALGO` is not `SHA256withRSA`.
    Algorithm,
}

/// The verifier for a `PAYPAL-AUTH-ALGO` value. PayPal sends `SHA256withRSA`; its SDK also
/// maps `SHA1withRSA`, which is refused here (SHA-1 signatures are forgeable by collision).
pub fn algorithm(value: &str) -> Result<VerifierKind, PaypalError> {
    match value {
        "SHA256withRSA" => Ok(VerifierKind::RsaPkcs1Sha256),
        _ => Err(PaypalError::Algorithm),
    }
}

/// The string PayPal signs: `<transmission id>|<transmission time>|<webhook id>|<crc32>`.
pub fn string_to_sign(transmission_id: &str, time: &str, webhook_id: &str, body: &[u8]) -> String {
    format!(
        "{transmission_id}|{time}|{webhook_id}|{}",
        crc32fast::hash(body)
    )
}

/// Reads a delivery's PayPal headers and builds what it must verify against.
pub fn signed(
    headers: &HeaderMap,
    webhook_id: &str,
    body: &[u8],
) -> Result<PaypalSigned, PaypalError> {
    let one = |name: &HeaderName, what: &'static str| match header_value(headers, name) {
        HeaderLookup::Value(v) if !v.is_empty() && !v.contains('|') => Ok(v.to_string()),
        _ => Err(PaypalError::Header(what)),
    };
    let kind = algorithm(&one(&AUTH_ALGO, "PAYPAL-AUTH-ALGO missing or malformed")?)?;
    let id = one(
        &TRANSMISSION_ID,
        "PAYPAL-TRANSMISSION-ID missing or malformed",
    )?;
    let time = one(
        &TRANSMISSION_TIME,
        "PAYPAL-TRANSMISSION-TIME missing or malformed",
    )?;
    Ok(PaypalSigned {
        string_to_sign: string_to_sign(&id, &time, webhook_id, body),
        signature: one(
            &TRANSMISSION_SIG,
            "PAYPAL-TRANSMISSION-SIG missing or malformed",
        )?,
        cert_url: one(&CERT_URL, "PAYPAL-CERT-URL missing or malformed")?,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_decimal_of_the_unsigned_ieee_crc() {
        // zlib's crc32(b"123456789") is 0xCBF43926, PayPal prints it unsigned, in decimal.
        assert_eq!(
            string_to_sign("t1", "2026-01-01T00:00:00Z", "WH1", b"123456789"),
            "t1|2026-01-01T00:00:00Z|WH1|3421780262"
        );
        assert_eq!(string_to_sign("a", "b", "c", b""), "a|b|c|0");
    }

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(k.clone(), v.parse().unwrap());
        }
        map
    }

    #[test]
    fn headers_are_required_once_and_the_algorithm_is_sha256_with_rsa() {
        let all = [
            (TRANSMISSION_ID, "id-1"),
            (TRANSMISSION_TIME, "2026-01-01T00:00:00Z"),
            (TRANSMISSION_SIG, "c2ln"),
            (
                CERT_URL,
                "https://api.paypal.com/v1/notifications/certs/CERT-1",
            ),
            (AUTH_ALGO, "SHA256withRSA"),
        ];
        let ok = signed(&headers(&all), "WH1", b"{}").unwrap();
        assert_eq!(ok.kind, VerifierKind::RsaPkcs1Sha256);
        assert!(ok
            .string_to_sign
            .starts_with("id-1|2026-01-01T00:00:00Z|WH1|"));
        for skip in 0..all.len() {
            let some: Vec<_> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| p.clone())
                .collect();
            assert!(signed(&headers(&some), "WH1", b"{}").is_err(), "{skip}");
        }
        let mut twice = all.to_vec();
        twice.push((TRANSMISSION_ID, "id-2"));
        assert!(signed(&headers(&twice), "WH1", b"{}").is_err());
        // A `|` in a signed field would let one field's text pass as another's.
        let mut piped = all.to_vec();
        piped[0] = (TRANSMISSION_ID, "id|2026");
        assert!(signed(&headers(&piped), "WH1", b"{}").is_err());
        for algo in ["SHA1withRSA", "sha256withrsa", "SHA256withECDSA", "none"] {
            let mut other = all.to_vec();
            other[4] = (AUTH_ALGO, algo);
            assert_eq!(
                signed(&headers(&other), "WH1", b"{}").err(),
                Some(PaypalError::Algorithm),
                "{algo}"
            );
        }
    }
}
