//! The parsing targets: `timestamp` (strict parsing in every format, in range), `json_fields`
//! (the streaming lookup agrees with `serde_json::Value`) and `config` (any text is a clear
//! error or a valid configuration).

use super::*;

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

/// Looks fixed paths up in the input as a JSON body, compared with `serde_json::Value` and with
/// the serde_json-based walk the current one replaced; parses
/// the input as a value source, and when its first line is a `body:` source, looks that path
/// up in the rest.
pub fn json_fields(data: &[u8]) {
    let tree = serde_json::from_slice::<Value>(data).ok();
    for (text, path) in json_paths() {
        check_json_field(data, text, path, tree.as_ref());
    }
    // hookgate's walk answers as the serde_json-based walk it replaced, path set and all.
    let paths: Vec<&JsonPath> = json_paths().iter().map(|(_, path)| path).collect();
    assert_eq!(
        crate::extract::json_fields(data, &paths),
        crate::extract::reference_json_fields(data, &paths),
        "the walk and the reference walk differ"
    );
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
