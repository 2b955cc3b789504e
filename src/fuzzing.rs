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

struct SchemeUnderTest {
    label: String,
    scheme: Scheme,
    key: SigningKey,
}

/// Every preset's scheme, plus two generic ones covering the algorithms and encodings, the
/// key-value shape with a custom timestamp key, and `{id}` that no preset combines so.
fn schemes() -> &'static [SchemeUnderTest] {
    static SCHEMES: OnceLock<Vec<SchemeUnderTest>> = OnceLock::new();
    SCHEMES.get_or_init(|| {
        let mut specs: Vec<(String, SignatureSpec)> = presets::NAMES
            .iter()
            .filter_map(|name| {
                let preset = presets::find(name).expect("every listed preset resolves");
                preset.signature.map(|sig| (name.to_string(), sig))
            })
            .collect();
        specs.push((
            "generic-sha512-base64url-nopad".into(),
            SignatureSpec {
                header: Some(http::HeaderName::from_static("x-fuzz-signature")),
                algorithm: Some(Algorithm::Sha512),
                encoding: Some(Encoding::Base64urlNopad),
                format: Some(SignatureFormat::Plain),
                prefix: Some("sig=".into()),
                signed: Some(Template::parse("{timestamp}.{id}.{body}").expect("valid")),
                timestamp: Some(ValueSource::parse("header:X-Fuzz-Timestamp").expect("valid")),
                id: Some(ValueSource::parse("header:X-Fuzz-Id").expect("valid")),
                ..SignatureSpec::default()
            },
        ));
        specs.push((
            "generic-sha1-hex-key-value".into(),
            SignatureSpec {
                header: Some(http::HeaderName::from_static("x-fuzz-kv")),
                algorithm: Some(Algorithm::Sha1),
                encoding: Some(Encoding::Hex),
                format: Some(SignatureFormat::KeyValue),
                version: Some("s1".into()),
                timestamp_key: Some("ts".into()),
                signed: Some(Template::parse("{timestamp}:{id}:{body}").expect("valid")),
                timestamp: Some(ValueSource::parse("signature:ts").expect("valid")),
                id: Some(ValueSource::parse("header:X-Fuzz-Id").expect("valid")),
                ..SignatureSpec::default()
            },
        ));
        specs
            .into_iter()
            .map(|(label, spec)| {
                let scheme = Scheme::from_spec(&spec)
                    .unwrap_or_else(|e| panic!("scheme {label} does not build: {e}"));
                let key = SigningKey::new(scheme.algorithm, &Secret::new(SECRET));
                SchemeUnderTest { label, scheme, key }
            })
            .collect()
    })
}

/// The header a `{timestamp}` or `{id}` is read from, when it is a header.
fn source_header(source: &Option<ValueSource>) -> Option<&HeaderName> {
    match source {
        Some(ValueSource::Header(name)) => Some(name),
        _ => None,
    }
}

/// Text that travels unchanged through every signature shape (no separators, no whitespace).
fn shape_safe(bytes: &[u8]) -> Option<&str> {
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/".contains(b))
        .then(|| std::str::from_utf8(bytes).expect("ASCII"))
}

/// Verifies hostile signature headers against every scheme; and signs the input's own body,
/// timestamp and id with each scheme and checks that the result verifies (sign ∘ verify).
pub fn signature_header(data: &[u8]) {
    let (signature, rest) = line(data);
    let (timestamp, rest) = line(rest);
    let (id, body) = line(rest);
    for s in schemes() {
        let scheme = &s.scheme;
        let keys = std::slice::from_ref(&s.key);

        let mut headers = HeaderMap::new();
        if let Some(value) = signature.and_then(header_value) {
            headers.insert(scheme.header.clone(), value);
        }
        if let (Some(name), Some(value)) = (
            source_header(&scheme.timestamp),
            timestamp.and_then(header_value),
        ) {
            headers.append(name.clone(), value);
        }
        if let (Some(name), Some(value)) = (source_header(&scheme.id), id.and_then(header_value)) {
            headers.append(name.clone(), value);
        }
        let _ = scheme.verify(keys, &headers, body);
        let _ = scheme.verify(&[], &headers, body);
        let _ = scheme.param(&headers, "t");
        if let Some(key) = timestamp {
            let _ = scheme.param(&headers, &String::from_utf8_lossy(key));
        }

        // Round trip: whatever the sender signs, the verifier accepts.
        let ts = timestamp.map_or(Some(None), |t| shape_safe(t).map(Some));
        let event_id = id.map_or(Some(None), |i| shape_safe(i).map(Some));
        let (Some(ts), Some(event_id)) = (ts, event_id) else {
            continue;
        };
        let needs = |part: Part, value: Option<&str>, from: &Option<ValueSource>| {
            !scheme.template.uses(&part)
                || value.is_some()
                || matches!(from, Some(ValueSource::SignatureParam(_)))
        };
        if !needs(Part::Timestamp, ts, &scheme.timestamp) || !needs(Part::Id, event_id, &scheme.id)
        {
            continue;
        }
        let input = SignInput {
            body,
            timestamp: ts,
            id: event_id,
        };
        let signed = scheme.sign(&s.key, &input);
        let mut headers = HeaderMap::new();
        headers.insert(
            scheme.header.clone(),
            HeaderValue::from_str(&signed).expect("a signature is a valid header value"),
        );
        for (from, value) in [(&scheme.timestamp, ts), (&scheme.id, event_id)] {
            if let (Some(name), Some(value)) = (source_header(from), value) {
                headers.insert(name.clone(), HeaderValue::from_str(value).expect("ASCII"));
            }
        }
        assert_eq!(
            scheme.verify(keys, &headers, body),
            Ok(()),
            "{}: the verifier refuses what the signer produced: {signed:?}",
            s.label
        );
    }
}

// ---------------------------------------------------------------------------------------------
// timestamp

fn check_range(result: Result<i64, TimestampError>, what: &str) {
    if let Ok(ms) = result {
        assert!(
            (0..=MAX_MILLIS).contains(&ms),
            "{what}: {ms} ms is out of range"
        );
    }
}

/// Parses the input in every format, and scalars made from its bytes; checks ranges and the
/// agreement between formats and between strings and JSON scalars.
pub fn timestamp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let results = FORMATS.map(|f| parse_str(&text, f));
    for (format, result) in FORMATS.iter().zip(results) {
        check_range(result, format.name());
        // A string scalar is parsed exactly like the string.
        assert_eq!(
            parse_scalar(&Scalar::Str(text.to_string()), *format),
            result,
            "string scalar vs string in {}",
            format.name()
        );
    }
    let [unix, unix_ms, iso, auto] = results;
    if let Ok(ms) = unix {
        assert_eq!(ms % 1000, 0, "unix seconds scaled to {ms} ms");
        assert_eq!(unix_ms, Ok(ms / 1000), "unix_ms disagrees with unix");
    }
    let trimmed = text.trim();
    let digits = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
    assert_eq!(
        auto,
        if digits { unix } else { iso },
        "auto picked the wrong format"
    );

    let mut word = [0u8; 8];
    let n = data.len().min(8);
    word[..n].copy_from_slice(&data[..n]);
    let int = i64::from_le_bytes(word);
    let float = f64::from_bits(u64::from_le_bytes(word));
    for format in FORMATS {
        let from_int = parse_scalar(&Scalar::Int(int), format);
        check_range(from_int, "integer scalar");
        if format != TimeFormat::Iso8601 {
            // A JSON integer means what its decimal digits mean.
            let expected = if int < 0 {
                Err(TimestampError::NotInteger)
            } else {
                parse_str(&int.to_string(), format)
            };
            assert_eq!(from_int, expected, "integer {int} in {}", format.name());
        }
        assert!(
            parse_scalar(&Scalar::Float(float), format).is_err(),
            "a float is never a timestamp"
        );
    }

    // Any instant in range, written as RFC 3339, parses back to itself.
    let ms = int.rem_euclid(MAX_MILLIS + 1);
    let instant =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("in range");
    let written = instant.format(&Rfc3339).expect("formattable");
    assert_eq!(
        parse_str(&written, TimeFormat::Iso8601),
        Ok(ms),
        "{written}"
    );
}

// ---------------------------------------------------------------------------------------------
// json_fields

fn json_paths() -> &'static [(&'static str, JsonPath)] {
    static PATHS: OnceLock<Vec<(&'static str, JsonPath)>> = OnceLock::new();
    PATHS.get_or_init(|| {
        JSON_PATHS
            .iter()
            .map(|p| (*p, JsonPath::parse(p).expect("valid path")))
            .collect()
    })
}

/// What `json_field` must answer for `path`, read from a parsed tree.
fn tree_lookup(document: &Value, path: &str) -> Option<Scalar> {
    let mut value = document;
    for segment in path.split('.') {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match value {
        Value::String(s) => Some(Scalar::Str(s.clone())),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Scalar::Int(i),
            (None, Some(u)) => Scalar::Float(u as f64),
            (None, None) => Scalar::Float(n.as_f64().expect("a JSON number")),
        }),
        _ => None,
    }
}

fn check_json_field(body: &[u8], text_path: &str, path: &JsonPath, tree: Option<&Value>) {
    let found = json_field(body, path);
    let Some(tree) = tree else {
        return;
    };
    // serde_json accepted the document: the streaming lookup must agree with the tree.
    match found {
        Ok(found) => assert_eq!(found, tree_lookup(tree, text_path), "path {text_path}"),
        Err(JsonError::DuplicateKey(_)) => {}
        Err(JsonError::Invalid) => {
            panic!("json_field calls valid JSON invalid (path {text_path})")
        }
    }
}

/// Looks fixed paths up in the input as a JSON body, compared with `serde_json::Value`; parses
/// the input as a value source, and when its first line is a `body:` source, looks that path
/// up in the rest.
pub fn json_fields(data: &[u8]) {
    let tree = serde_json::from_slice::<Value>(data).ok();
    for (text, path) in json_paths() {
        check_json_field(data, text, path, tree.as_ref());
    }
    let _ = ValueSource::parse(&String::from_utf8_lossy(data));

    let (first, rest) = line(data);
    if let Some(first) = first {
        let text = String::from_utf8_lossy(first);
        if let Ok(ValueSource::Body(path)) = ValueSource::parse(&text) {
            let text_path = &text["body:".len()..];
            let tree = serde_json::from_slice::<Value>(rest).ok();
            check_json_field(rest, text_path, &path, tree.as_ref());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config

/// Whether every file the configuration names is a plain relative path (under the fuzzer's
/// working directory). Absolute or `..` paths could name `/dev/zero` or a FIFO: the fuzzer
/// must not read the machine's files, and reading those never ends.
fn files_are_local(file: &FileConfig) -> bool {
    let local = |path: &Path| {
        path.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    };
    let secret_ok = |r: &SecretRef| match r {
        SecretRef::File(path) => local(path),
        _ => true,
    };
    let sources_ok = file.sources.iter().all(|s| {
        s.secrets.iter().all(secret_ok)
            && s.path_token.as_ref().map_or(true, secret_ok)
            && s.token
                .as_ref()
                .map_or(true, |t| t.secrets.iter().all(secret_ok))
    });
    let tls_ok = file
        .server
        .tls
        .as_ref()
        .map_or(true, |t| local(&t.cert) && local(&t.key));
    let ca_ok = file
        .upstream_tls
        .as_ref()
        .and_then(|t| t.ca.as_deref())
        .map_or(true, local);
    let outbound_ok = file.outbound.as_ref().map_or(true, |o| {
        o.targets
            .iter()
            .all(|t| t.secret.as_ref().map_or(true, secret_ok))
    });
    sources_ok && tls_ok && ca_ok && outbound_ok
}

/// Parses and validates the input as a configuration file (empty environment, base `.`).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = toml::from_str::<FileConfig>(text) {
        if !files_are_local(&file) {
            return;
        }
    }
    let _ = config::parse(text, Path::new("."), &HashMap::<String, String>::new());
}

// ---------------------------------------------------------------------------------------------
// decision

/// One source per preset (`'0'` … `'9'` in this order), literal secrets, an unreachable upstream.
pub const DECISION_CONFIG: &str = r#"
[dedup]
capacity = 4096

[[source]]
name = "cloudkeep"
path = "/fuzz/cloudkeep"
preset = "cloudkeep"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "policycortex"
path = "/fuzz/policycortex"
preset = "policycortex"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "corgea"
path = "/fuzz/corgea"
preset = "corgea"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "vaas"
path = "/fuzz/vaas"
preset = "vaas"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "certifyclouds"
path = "/fuzz/certifyclouds"
preset = "certifyclouds"
upstream = "http://127.0.0.1:9/x"
token = { prefix = "Bearer ", secrets = [{ value = "fuzz-token-0123456789" }] }
allow_ips = ["127.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]
trusted_proxies = ["127.0.0.1/32"]

[[source]]
name = "standard-webhooks"
path = "/fuzz/standard-webhooks"
preset = "standard-webhooks"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }]

[[source]]
name = "github"
path = "/fuzz/github"
preset = "github"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "stripe"
path = "/fuzz/stripe"
preset = "stripe"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "slack"
path = "/fuzz/slack"
preset = "slack"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "shopify"
path = "/fuzz/shopify"
preset = "shopify"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]
"#;

struct DecisionRig {
    sources: Vec<Arc<Source>>,
    store: MemoryStore,
}

fn rig() -> &'static DecisionRig {
    static RIG: OnceLock<DecisionRig> = OnceLock::new();
    RIG.get_or_init(|| {
        let config = config::parse(
            DECISION_CONFIG,
            Path::new("."),
            &HashMap::<String, String>::new(),
        )
        .expect("the decision configuration is valid");
        DecisionRig {
            store: MemoryStore::new(
                config
                    .dedup_backend
                    .capacity()
                    .unwrap_or(crate::config::defaults::DEDUP_CAPACITY),
            ),
            sources: config.sources,
        }
    })
}

/// Builds the request an input describes (see the module docs for the framing).
fn request(data: &[u8], source: &Arc<Source>) -> http::Request<Bytes> {
    let (_, mut rest) = line(data);
    let mut headers = Vec::new();
    while let (Some(raw), after) = line(rest) {
        rest = after;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            break;
        }
        if headers.len() < MAX_HEADERS {
            headers.push(raw);
        }
    }
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(source.path.as_str())
        .body(Bytes::copy_from_slice(rest))
        .expect("a valid request");
    for raw in headers {
        let (name, value) = match raw.iter().position(|&b| b == b':') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &b""[..]),
        };
        let value = value.trim_ascii_start();
        if let (Ok(name), Some(value)) = (HeaderName::from_bytes(name), header_value(value)) {
            req.headers_mut().append(name, value);
        }
    }
    req.extensions_mut().insert(source.clone());
    req.extensions_mut()
        .insert(PeerAddr("127.0.0.1:1".parse().expect("an address")));
    req
}

/// Runs the gateway's decision (authenticate → freshness → dedup keys) on a delivery built
/// from the input; an accepted delivery must re-verify and claim its keys in the store.
pub fn decision(data: &[u8]) {
    let rig = rig();
    let selector = data.first().copied().unwrap_or(b'0');
    let index = usize::from(selector.wrapping_sub(b'0')) % rig.sources.len();
    let source = &rig.sources[index];
    let req = request(data, source);

    let decided = decide(source, &req, NOW_MS);
    assert_eq!(
        decide(source, &req, NOW_MS),
        decided,
        "the decision is not deterministic"
    );
    let keys = match decided {
        Ok(keys) => keys,
        Err(rejection) => {
            let response = rejection.clone().into_response();
            assert_eq!(response.status(), rejection.status());
            return;
        }
    };

    // Accepted: every configured check holds on its own.
    if let Some(check) = &source.signature {
        assert_eq!(
            check.scheme.verify(&check.keys, req.headers(), req.body()),
            Ok(()),
            "{}: decide accepted a delivery whose signature does not verify",
            source.name
        );
    }
    if let Some(token) = &source.token {
        assert!(token.check(req.headers()), "{}: token", source.name);
    }
    let Some(policy) = &source.dedup else {
        assert!(keys.is_empty(), "keys without a dedup policy");
        return;
    };
    assert!(
        (1..=2).contains(&keys.len()),
        "{}: {} dedup keys",
        source.name,
        keys.len()
    );

    // The keys go through the store's whole life cycle; the in-memory store never suspends.
    let store = &rig.store;
    let ttl = Duration::from_secs(60);
    for key in keys {
        let outcome = store
            .claim(key, ttl)
            .now_or_never()
            .expect("the memory store never suspends")
            .expect("the memory store never fails");
        let ClaimOutcome::Claimed(token) = outcome else {
            continue; // delivered or in flight from an earlier input
        };
        store
            .release(key, token)
            .now_or_never()
            .expect("release completes")
            .expect("release succeeds");
        // A released claim lets the retry through.
        let retry = store
            .claim(key, ttl)
            .now_or_never()
            .expect("claim completes")
            .expect("claim succeeds");
        let ClaimOutcome::Claimed(token) = retry else {
            panic!("a released key is claimed again: {retry:?}");
        };
        store
            .complete(key, token, policy.ttl)
            .now_or_never()
            .expect("complete completes")
            .expect("complete succeeds");
        // A delivered key stays delivered: the replay is caught.
        let replay = store
            .claim(key, ttl)
            .now_or_never()
            .expect("claim completes")
            .expect("claim succeeds");
        assert_eq!(replay, ClaimOutcome::Delivered, "a completed key");
    }
}
