//! Mailgun's signature, which travels inside the JSON body rather than in a header:
//! `{"signature": {"timestamp": "…", "token": "…", "signature": "<hex>"}, "event-data": …}`,
//! the hex HMAC-SHA256 of `timestamp + token` under the webhook signing key.
//! <https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks>
//!
//! The event data itself is not covered by the signature: Mailgun signs only the timestamp
//! and the random token, so the token is the replay guard (dedup id) and the timestamp the
//! freshness check. Comparison is constant-time over every key, without early exit.

use serde::Deserialize;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::parts::MAX_MAC;
use super::{Encoding, SignInput, SignatureError, SigningKey, Template};

/// The signed bytes: timestamp then token, no separator.
pub const SIGNED: &str = "{timestamp}{id}";

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    signature: Option<Fields<'a>>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    timestamp: Option<Text<'a>>,
    #[serde(borrow)]
    token: Option<Text<'a>>,
    #[serde(borrow)]
    signature: Option<Text<'a>>,
}

/// A string field (borrowed when it has no escapes), or a number (Mailgun's docs show the
/// timestamp both ways).
#[derive(Deserialize)]
#[serde(untagged)]
enum Text<'a> {
    Borrowed(&'a str),
    Owned(String),
    Number(serde_json::Number),
}

impl Text<'_> {
    fn text(&self) -> String {
        match self {
            Text::Borrowed(s) => (*s).to_string(),
            Text::Owned(s) => s.clone(),
            Text::Number(n) => n.to_string(),
        }
    }
}

/// Verifies a Mailgun webhook body with every key (HMAC-SHA256 keys); `Ok` holds the position
/// of the key that matched.
pub fn verify(keys: &[SigningKey], body: &[u8]) -> Result<usize, SignatureError> {
    let parsed: Body<'_> = serde_json::from_slice(body)
        .map_err(|_| SignatureError::Invalid("body is not a Mailgun JSON webhook"))?;
    let fields = parsed.signature.ok_or(SignatureError::Missing)?;
    let (Some(timestamp), Some(token), Some(signature)) =
        (fields.timestamp, fields.token, fields.signature)
    else {
        return Err(SignatureError::Invalid(
            "signature.timestamp, token or signature missing",
        ));
    };
    let (timestamp, token, signature) = (timestamp.text(), token.text(), signature.text());
    let template = Template::parse_any(SIGNED).expect("the Mailgun template parses");
    let input = SignInput {
        timestamp: Some(&timestamp),
        id: Some(&token),
        ..SignInput::default()
    };
    let mut presented = [0u8; MAX_MAC];
    let len = Encoding::Hex.decode_into(&signature, &mut presented);
    let right_length = Choice::from(u8::from(len == Some(32)));
    let mut expected = [0u8; MAX_MAC];
    let mut matched = Choice::from(0u8);
    let mut position = 0u32;
    for (i, key) in keys.iter().enumerate() {
        key.compute(&template, &input, &mut expected);
        let this = right_length & presented[..32].ct_eq(&expected[..32]);
        position.conditional_assign(&(i as u32), this & !matched);
        matched |= this;
    }
    if bool::from(matched) {
        Ok(position as usize)
    } else if len.is_none() {
        Err(SignatureError::Invalid("signature.signature is not hex"))
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The body Mailgun sends for `event_data`, signed with `key` at `timestamp` (unix seconds)
/// with `token` as the random token: `{"signature": {...}, "event-data": <event_data>}`.
/// `event_data` goes in as it is when it is JSON, else as a JSON string.
pub fn signed_body(key: &SigningKey, event_data: &[u8], timestamp: i64, token: &str) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let signature = hex::encode(key.mac(format!("{timestamp}{token}").as_bytes()));
    let data = match serde_json::from_slice::<serde::de::IgnoredAny>(event_data) {
        Ok(_) => String::from_utf8_lossy(event_data).into_owned(),
        Err(_) => serde_json::Value::from(String::from_utf8_lossy(event_data)).to_string(),
    };
    let fields = serde_json::json!({
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    });
    format!("{{\"signature\":{fields},\"event-data\":{data}}}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Algorithm;
    use crate::secret::Secret;

    fn key(k: &str) -> SigningKey {
        SigningKey::new(Algorithm::Sha256, &Secret::new(k.to_string()))
    }

    fn body(ts: &str, token: &str, sig: &str) -> Vec<u8> {
        format!(
            r#"{{"signature":{{"timestamp":{ts},"token":"{token}","signature":"{sig}"}},"event-data":{{"event":"delivered"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn hmac_of_timestamp_and_token() {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"key-2").unwrap();
        mac.update(b"1529006854abc");
        let sig = hex::encode(mac.finalize().into_bytes());
        let keys = [key("key-1"), key("key-2")];
        assert_eq!(verify(&keys, &body("\"1529006854\"", "abc", &sig)), Ok(1));
        // A numeric timestamp is the same text.
        assert_eq!(verify(&keys, &body("1529006854", "abc", &sig)), Ok(1));
        assert_eq!(
            verify(&keys, &body("\"1529006855\"", "abc", &sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&keys, &body("\"1529006854\"", "abc", &sig[..62])),
            Err(SignatureError::Mismatch)
        );
        assert!(verify(&keys, &body("\"1\"", "abc", "zz")).is_err());
        assert_eq!(verify(&keys, b"{}"), Err(SignatureError::Missing));
        assert!(verify(&keys, b"not json").is_err());
        assert!(verify(&keys, br#"{"signature":{"token":"a"}}"#).is_err());
    }
}
