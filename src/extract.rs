//! Where a value (timestamp, event id) lives in a delivery, and reading it out.
//!
//! A [`ValueSource`] is written in configuration as `header:<Name>`, `body:<dotted.path>` or
//! `signature:<param>` (a parameter of a Stripe-style signature header, e.g. `t`). JSON bodies
//! are never parsed into a tree: [`json_field`] walks the document once, skipping every value
//! that is not on the path, and refuses a document where the wanted key appears twice (a parser
//! differential between hookgate and the receiver would otherwise be possible).

use std::cell::Cell;
use std::fmt;

use http::{HeaderMap, HeaderName};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
            Ok(text) => HeaderLookup::Value(text.trim()),
            Err(_) => HeaderLookup::Invalid,
        },
    }
}

/// A dotted path into a JSON document: object keys, or array indexes for arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let segments: Vec<String> = text.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("`{text}` is not a valid dotted JSON path"));
        }
        Ok(JsonPath(segments))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A scalar JSON value found at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
}

impl Scalar {
    /// The value as id bytes: strings as-is, integers in decimal. Floats are not ids.
    pub fn as_id(&self) -> Option<String> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s.clone()),
            Scalar::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

/// Why a JSON lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("body is not valid JSON")]
    Invalid,
    #[error("key `{0}` appears more than once")]
    DuplicateKey(String),
}

/// Reads the scalar at `path` in `body`, validating the whole document on the way.
/// `Ok(None)` means the path is absent or leads to a non-scalar (object, array, bool, null).
pub fn json_field(body: &[u8], path: &JsonPath) -> Result<Option<Scalar>, JsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let seek = Seek {
        path: &path.0,
        duplicate: &duplicate,
    };
    let found = seek
        .deserialize(&mut de)
        .map_err(|_| match duplicate.get() {
            true => JsonError::DuplicateKey(path.to_string()),
            false => JsonError::Invalid,
        })?;
    de.end().map_err(|_| JsonError::Invalid)?;
    Ok(found)
}

struct Seek<'p> {
    path: &'p [String],
    /// Set when the wanted key appears twice in one object.
    duplicate: &'p Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<Scalar>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<Scalar>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.path.is_empty().then(|| Scalar::Str(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.path.is_empty().then_some(Scalar::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let scalar = match i64::try_from(v) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::Float(v as f64),
        };
        Ok(self.path.is_empty().then_some(scalar))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.path.is_empty().then_some(Scalar::Float(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some((wanted, rest)) = self.path.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let mut found = None;
        let mut seen = false;
        while let Some(is_wanted) = map.next_key_seed(KeyIs(wanted))? {
            if is_wanted {
                if seen {
                    self.duplicate.set(true);
                    return Err(de::Error::custom("duplicate key"));
                }
                seen = true;
                found = map.next_value_seed(Seek {
                    path: rest,
                    duplicate: self.duplicate,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let wanted = self
            .path
            .split_first()
            .and_then(|(first, rest)| first.parse::<usize>().ok().map(|i| (i, rest)));
        let mut found = None;
        let mut index = 0usize;
        loop {
            match wanted {
                Some((i, rest)) if i == index => {
                    let seek = Seek {
                        path: rest,
                        duplicate: self.duplicate,
                    };
                    match seq.next_element_seed(seek)? {
                        Some(value) => found = value,
                        None => break,
                    }
                }
                _ => {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            index += 1;
        }
        Ok(found)
    }
}

/// Compares an object key with the wanted one without allocating.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> JsonPath {
        JsonPath::parse(text).unwrap()
    }

    #[test]
    fn finds_top_level_and_nested_fields() {
        let body = br#"{"a":1,"id":"evt_1","data":{"x":[1,{"ts":17}]},"z":null}"#;
        assert_eq!(
            json_field(body, &path("id")).unwrap(),
            Some(Scalar::Str("evt_1".into()))
        );
        assert_eq!(
            json_field(body, &path("data.x.1.ts")).unwrap(),
            Some(Scalar::Int(17))
        );
        assert_eq!(json_field(body, &path("data")).unwrap(), None);
        assert_eq!(json_field(body, &path("missing")).unwrap(), None);
        assert_eq!(json_field(body, &path("z")).unwrap(), None);
    }

    #[test]
    fn escaped_keys_match() {
        let body = br#"{"\u0069d":"evt_2"}"#;
        assert_eq!(
            json_field(body, &path("id")).unwrap(),
            Some(Scalar::Str("evt_2".into()))
        );
    }

    #[test]
    fn refuses_invalid_json_trailing_garbage_and_duplicate_keys() {
        assert_eq!(
            json_field(b"{\"id\":", &path("id")),
            Err(JsonError::Invalid)
        );
        assert_eq!(
            json_field(b"{\"id\":\"a\"} x", &path("id")),
            Err(JsonError::Invalid)
        );
        assert_eq!(
            json_field(br#"{"id":"a","id":"b"}"#, &path("id")),
            Err(JsonError::DuplicateKey("id".into()))
        );
    }

    #[test]
    fn deep_nesting_off_the_path_is_skipped_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(json_field(deep.as_bytes(), &path("id")), Ok(None));
        let nested_value = format!("{{\"id\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(json_field(nested_value.as_bytes(), &path("id")), Ok(None));
        let unbalanced = "[".repeat(100_000);
        assert_eq!(
            json_field(unbalanced.as_bytes(), &path("id")),
            Err(JsonError::Invalid)
        );
    }

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
}
