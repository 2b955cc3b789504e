//! JSON bodies without a tree: [`json_fields`] walks the document once for every path a
//! source reads (timestamp candidates, event id), skipping every value that is on none of
//! them, and refuses a document where a wanted key appears twice in one object (a parser
//! differential between hookgate and the receiver would otherwise be possible).
//!
//! The walk (`walk.rs`) is hookgate's own: it validates the whole document as serde_json's
//! streaming parser does and decodes only the values asked for, but finds the end of a
//! string's plain bytes 32 at a time with compares the compiler vectorises, where serde_json
//! looks at 8 bytes per step. The strings of a delivery are most of its bytes: at
//! 64 KiB the walk was 150,000 instructions of serde_json's string scan
//! (`docs/performance.md`). The walk accepts and refuses what the serde_json-based walk it
//! replaced did; a test compares the two on generated documents, and the `json_fields` fuzz
//! target on whatever it finds (`reference.rs`).

mod walk;

#[cfg(any(test, feature = "fuzzing"))]
mod reference;
#[cfg(test)]
mod tests;

/// The serde_json-based walk this one replaced, for the fuzz target that compares the two.
#[cfg(any(test, feature = "fuzzing"))]
pub use reference::json_fields as reference_json_fields;

use std::fmt;

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

    /// The segment at `depth`, if the path goes that deep.
    fn segment(&self, depth: usize) -> Option<&str> {
        self.0.get(depth).map(String::as_str)
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
    walk::Walk::new(body, paths)
        .run()
        .map_err(|failure| match failure {
            walk::Failure::Invalid => JsonError::Invalid,
            walk::Failure::Duplicate(i) => JsonError::DuplicateKey(paths[i].as_ref().to_string()),
        })
}
