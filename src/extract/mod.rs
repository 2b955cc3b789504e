//! Where a value (timestamp, event id) lives in a delivery, and reading it out.
//!
//! A [`ValueSource`] is written in configuration as `header:<Name>`, `body:<dotted.path>` or
//! `signature:<param>` (a parameter of a Stripe-style signature header, e.g. `t`). JSON bodies
//! are never parsed into a tree: [`json_field`] walks the document once, skipping every value
//! that is not on the path, and refuses a document where the wanted key appears twice (a parser
//! differential between hookgate and the receiver would otherwise be possible).

mod json;

#[cfg(any(test, feature = "fuzzing"))]
pub use json::reference_json_fields;
pub use json::{json_field, json_fields, JsonError, JsonPath, Scalar};

use std::fmt;

use http::{HeaderMap, HeaderName};

/// Where to read a value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    Header(HeaderName),
    Body(JsonPath),
    SignatureParam(String),
}

impl<'de> serde::Deserialize<'de> for ValueSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ValueSource::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl ValueSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            format!("`{text}` must be header:<Name>, body:<path> or signature:<param>")
        })?;
        if rest.is_empty() {
            return Err(format!("`{text}` names no field"));
        }
        match kind {
            "header" => HeaderName::from_bytes(rest.as_bytes())
                .map(ValueSource::Header)
                .map_err(|_| format!("`{rest}` is not a valid header name")),
            "body" => JsonPath::parse(rest).map(ValueSource::Body),
            "signature" => Ok(ValueSource::SignatureParam(rest.to_string())),
            other => Err(format!(
                "unknown value source `{other}` (expected header, body or signature)"
            )),
        }
    }

    /// The header's value, when this source is a header present exactly once.
    pub fn header<'a>(&self, headers: &'a HeaderMap) -> HeaderLookup<'a> {
        match self {
            ValueSource::Header(name) => header_value(headers, name),
            _ => HeaderLookup::Missing,
        }
    }
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Header(name) => write!(f, "header:{name}"),
            ValueSource::Body(path) => write!(f, "body:{path}"),
            ValueSource::SignatureParam(param) => write!(f, "signature:{param}"),
        }
    }
}

/// Result of looking up a header that must appear at most once.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderLookup<'a> {
    Missing,
    /// Present more than once: ambiguous, so refused rather than guessed.
    Repeated,
    /// Present once but not visible ASCII.
    Invalid,
    Value(&'a str),
}

/// Looks up a header that must appear at most once and be visible ASCII.
pub fn header_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> HeaderLookup<'a> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => HeaderLookup::Missing,
        (Some(_), Some(_)) => HeaderLookup::Repeated,
        (Some(value), None) => match value.to_str() {
            // `to_str` passes visible ASCII, space and tab only: the ASCII trim is the same
            // cut as `trim`, without its Unicode tables.
            Ok(text) => HeaderLookup::Value(text.trim_ascii()),
            Err(_) => HeaderLookup::Invalid,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn value_sources_parse_and_reject_nonsense() {
        assert!(matches!(
            ValueSource::parse("header:X-Id"),
            Ok(ValueSource::Header(_))
        ));
        assert!(matches!(
            ValueSource::parse("body:data.id"),
            Ok(ValueSource::Body(_))
        ));
        assert!(matches!(
            ValueSource::parse("signature:t"),
            Ok(ValueSource::SignatureParam(_))
        ));
        assert!(ValueSource::parse("cookie:x").is_err());
        assert!(ValueSource::parse("body:a..b").is_err());
        assert!(ValueSource::parse("header:bad name").is_err());
        assert!(ValueSource::parse("id").is_err());
    }

    #[test]
    fn repeated_headers_are_reported() {
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_static("x-id");
        assert_eq!(header_value(&headers, &name), HeaderLookup::Missing);
        headers.append(&name, "a".parse().unwrap());
        assert_eq!(header_value(&headers, &name), HeaderLookup::Value("a"));
        headers.append(&name, "b".parse().unwrap());
        assert_eq!(header_value(&headers, &name), HeaderLookup::Repeated);
    }

    #[test]
    fn header_values_are_trimmed_and_non_ascii_is_invalid() {
        let name = HeaderName::from_static("x-id");
        let mut headers = HeaderMap::new();
        headers.insert(&name, HeaderValue::from_static(" \t evt_1 \t"));
        assert_eq!(header_value(&headers, &name), HeaderLookup::Value("evt_1"));
        headers.insert(&name, HeaderValue::from_bytes(b"evt\xa0").unwrap());
        assert_eq!(header_value(&headers, &name), HeaderLookup::Invalid);
    }
}
