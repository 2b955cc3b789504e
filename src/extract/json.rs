//! JSON bodies without a tree: [`json_fields`] walks the document once for every path a
//! source reads (timestamp candidates, event id), skipping every value that is on none of
//! them, and refuses a document where a wanted key appears twice in one object (a parser
//! differential between hookgate and the receiver would otherwise be possible).

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

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

/// So that [`json_fields`] takes the paths as they are kept (`&[JsonPath]`) or picked out
/// (`&[&JsonPath]`).
impl AsRef<JsonPath> for JsonPath {
    fn as_ref(&self) -> &JsonPath {
        self
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
    json_fields(body, &[path]).map(|mut found| found.pop().flatten())
}

/// Reads the scalars at every one of `paths` in one walk of `body`, validating the whole
/// document on the way; one answer per path, in order. A wanted key that appears twice in one
/// object refuses the whole document (`DuplicateKey` naming that path). At most 64 paths.
pub fn json_fields<P: AsRef<JsonPath>>(
    body: &[u8],
    paths: &[P],
) -> Result<Vec<Option<Scalar>>, JsonError> {
    assert!(paths.len() <= 64, "at most 64 paths per walk");
    let out = RefCell::new(vec![None; paths.len()]);
    let duplicate = Cell::new(None);
    let walk = Walk {
        paths,
        out: &out,
        duplicate: &duplicate,
    };
    let all = if paths.len() == 64 {
        u64::MAX
    } else {
        (1u64 << paths.len()) - 1
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let seek = Seek {
        walk: &walk,
        wanted: all,
        depth: 0,
    };
    seek.deserialize(&mut de)
        .map_err(|_| match duplicate.get() {
            Some(i) => JsonError::DuplicateKey(paths[i].as_ref().to_string()),
            None => JsonError::Invalid,
        })?;
    de.end().map_err(|_| JsonError::Invalid)?;
    Ok(out.into_inner())
}

/// The indexes in the bit set `bits`, lowest first.
fn indexes(mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            i
        })
    })
}

/// What every level of one walk shares: the paths (by index), the answers, and the path whose
/// key appeared twice in one object.
struct Walk<'w, P> {
    paths: &'w [P],
    out: &'w RefCell<Vec<Option<Scalar>>>,
    duplicate: &'w Cell<Option<usize>>,
}

impl<P: AsRef<JsonPath>> Walk<'_, P> {
    /// The path `i`'s segment at `depth`, if it goes that deep.
    fn segment(&self, i: usize, depth: usize) -> Option<&String> {
        self.paths[i].as_ref().0.get(depth)
    }
}

/// The paths still wanted at the current value, as a bit set over the walk's paths, and how
/// deep the value is: the walk allocates nothing but its answers.
struct Seek<'w, P> {
    walk: &'w Walk<'w, P>,
    wanted: u64,
    depth: usize,
}

impl<P: AsRef<JsonPath>> Seek<'_, P> {
    /// The same walk one level down, for the paths in `wanted`.
    fn below(&self, wanted: u64) -> Self {
        Seek {
            walk: self.walk,
            wanted,
            depth: self.depth + 1,
        }
    }

    /// Records `scalar` for every path that ends here (moved into the last, copied for the
    /// others: the same path asked twice).
    fn found(&self, scalar: Scalar) {
        let mut out = self.walk.out.borrow_mut();
        let mut ends = indexes(self.wanted)
            .filter(|&i| self.walk.segment(i, self.depth).is_none())
            .peekable();
        let mut scalar = Some(scalar);
        while let Some(i) = ends.next() {
            out[i] = if ends.peek().is_some() {
                scalar.clone()
            } else {
                scalar.take()
            };
        }
    }
}

impl<'de, P: AsRef<JsonPath>> DeserializeSeed<'de> for Seek<'_, P> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.wanted == 0 {
            IgnoredAny::deserialize(d)?;
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de, P: AsRef<JsonPath>> Visitor<'de> for Seek<'_, P> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.found(Scalar::Str(v.to_string()));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.found(Scalar::Int(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.found(match i64::try_from(v) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::Float(v as f64),
        });
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.found(Scalar::Float(v));
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u64;
        let keys = KeyMatches {
            walk: self.walk,
            wanted: self.wanted,
            depth: self.depth,
        };
        while let Some(matches) = map.next_key_seed(keys.copy())? {
            if matches == 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if let Some(i) = indexes(seen & matches).next() {
                self.walk.duplicate.set(Some(i));
                return Err(de::Error::custom("duplicate key"));
            }
            seen |= matches;
            map.next_value_seed(self.below(matches))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let wanted = indexes(self.wanted)
                .filter(|&i| {
                    self.walk
                        .segment(i, self.depth)
                        .and_then(|s| s.parse::<usize>().ok())
                        == Some(index)
                })
                .fold(0u64, |bits, i| bits | 1 << i);
            if seq.next_element_seed(self.below(wanted))?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(())
    }
}

/// Which wanted paths continue through an object key, as a bit set over the walk's paths.
struct KeyMatches<'w, P> {
    walk: &'w Walk<'w, P>,
    wanted: u64,
    depth: usize,
}

impl<P> KeyMatches<'_, P> {
    fn copy(&self) -> Self {
        KeyMatches {
            walk: self.walk,
            wanted: self.wanted,
            depth: self.depth,
        }
    }
}

impl<'de, P: AsRef<JsonPath>> DeserializeSeed<'de> for KeyMatches<'_, P> {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, P: AsRef<JsonPath>> Visitor<'de> for KeyMatches<'_, P> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        Ok(indexes(self.wanted)
            .filter(|&i| self.walk.segment(i, self.depth).is_some_and(|k| k == v))
            .fold(0u64, |bits, i| bits | 1 << i))
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
    fn several_paths_are_read_in_one_walk() {
        let body = br#"{"id":"evt_9","created":"2025-01-01T00:00:00Z","data":{"list":[{"ts":5}]}}"#;
        let (id, created, ts, none) = (
            path("id"),
            path("created"),
            path("data.list.0.ts"),
            path("x"),
        );
        let found = json_fields(body, &[&id, &created, &ts, &none]).unwrap();
        assert_eq!(
            found,
            [
                Some(Scalar::Str("evt_9".into())),
                Some(Scalar::Str("2025-01-01T00:00:00Z".into())),
                Some(Scalar::Int(5)),
                None
            ]
        );
        // The same path twice answers twice.
        let found = json_fields(body, &[&id, &id]).unwrap();
        assert_eq!(found[0], found[1]);
        // A duplicate of any wanted key refuses the document, naming that path.
        let twice = br#"{"id":"a","created":"x","created":"y"}"#;
        assert_eq!(
            json_fields(twice, &[&id, &created]),
            Err(JsonError::DuplicateKey("created".into()))
        );
        // A duplicate of a key nobody reads is not refused (the receiver reads nothing there).
        let other = br#"{"id":"a","note":1,"note":2}"#;
        assert!(json_fields(other, &[&id]).is_ok());
    }

    #[test]
    fn sixty_four_paths_and_a_nested_duplicate() {
        let keys: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
        let body = format!(
            "{{\"o\":{{{}}}}}",
            keys.iter()
                .enumerate()
                .map(|(i, k)| format!("\"{k}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let paths: Vec<JsonPath> = keys.iter().map(|k| path(&format!("o.{k}"))).collect();
        let found = json_fields(body.as_bytes(), &paths).unwrap();
        assert_eq!(found.len(), 64);
        assert_eq!(found[63], Some(Scalar::Int(63)));
        assert!(found
            .iter()
            .enumerate()
            .all(|(i, v)| *v == Some(Scalar::Int(i as i64))));
        let twice = br#"{"o":{"k1":1,"k63":2,"k63":3}}"#;
        assert_eq!(
            json_fields(twice, &paths),
            Err(JsonError::DuplicateKey("o.k63".into()))
        );
    }
}
