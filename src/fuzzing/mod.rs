//! Entry points shared by the fuzz targets and the corpus replay test: one function per target
//! under `fuzz/fuzz_targets/`, each taking arbitrary bytes. None of them may panic on any input;
//! a panic is a bug (in the code under test, or in an oracle's expectation of it).
//!
//! Besides "does not crash", each target checks properties that must hold for every input:
//! what the sender signs the gateway verifies, parsed timestamps stay in range and agree across
//! formats, the streaming JSON lookup agrees with `serde_json::Value`, and a delivery the
//! decision accepts passes signature verification and its dedup keys behave in the store (a
//! released claim can be claimed again, a completed key is reported delivered).
//!
//! Input framing (the seeds in `fuzz/corpus/<target>/` are written in it):
//! - `signature_header`: `<signature header value>\n<timestamp header>\n<id header>\n<body>`;
//!   lines that are missing are absent headers.
//! - `timestamp`: the whole input as text; its first 8 bytes also as an integer and a float.
//! - `json_fields`: the whole input as a JSON body; its first line also as a value source.
//! - `config`: the whole input as a TOML configuration file.
//! - `decision`: `<source selector line>\n<Name: value lines>\n\n<body>`, like an HTTP/1 head.
//!   The selector's first byte picks the source (`'0'..='9'` are sources 0 to 9).
#![doc(hidden)]

use std::collections::HashMap;
use std::path::{Component, Path};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::{self, FileConfig};
use crate::dedup::{ClaimOutcome, DedupStore, MemoryStore};
use crate::extract::{json_field, JsonError, JsonPath, Scalar, ValueSource};
use crate::gateway::{decide, PeerAddr};
use crate::presets;
use crate::scheme::{
    Algorithm, Encoding, Part, Scheme, SignInput, SignatureFormat, SignatureSpec, SigningKey,
    Template,
};
use crate::secret::{Secret, SecretRef};
use crate::source::Source;
use crate::timestamp::{parse_scalar, parse_str, TimeFormat, TimestampError};

/// The HMAC secret of every scheme in the `signature_header` target.
const SECRET: &str = "fuzz-secret";
/// The clock of the `decision` target (2025-06-15T15:06:40Z, milliseconds).
pub const NOW_MS: i64 = 1_750_000_000_000;
/// Largest timestamp `crate::timestamp` accepts (year 9999), in milliseconds.
const MAX_MILLIS: i64 = 253_402_300_799_999;
/// Headers read from one `decision` input at most.
const MAX_HEADERS: usize = 32;

const FORMATS: [TimeFormat; 4] = [
    TimeFormat::Unix,
    TimeFormat::UnixMs,
    TimeFormat::Iso8601,
    TimeFormat::Auto,
];

/// Paths looked up by the `json_fields` target (the ones the presets use, and deeper ones).
const JSON_PATHS: [&str; 7] = [
    "id",
    "timestamp",
    "data.id",
    "events.0.createdAt",
    "attachments.0.ts",
    "event_id",
    "0.0.0",
];

/// Splits off the first line (without its `\n`); `None` when `data` is empty.
fn line(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    if data.is_empty() {
        return (None, data);
    }
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (Some(data), &[]),
    }
}

fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}

// ---------------------------------------------------------------------------------------------
// signature_header

mod decision;
mod parsing;
#[cfg(test)]
mod replay;
mod signing;

pub use decision::decision;
pub use parsing::{config, json_fields, timestamp};
pub use signing::signature_header;
