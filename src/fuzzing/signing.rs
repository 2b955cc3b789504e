//! The `signature_header` target: every preset's scheme and two generic ones sign, and the
//! gateway's verifier must accept exactly what was signed.

use super::*;

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
                preset
                    .signature
                    .filter(|sig| sig.kind.is_none())
                    // Mailgun's HMAC is in the body (`scheme::mailgun`), not a header scheme.
                    .filter(|sig| {
                        matches!(
                            sig.method,
                            None | Some(crate::scheme::SignatureMethod::Header)
                        )
                    })
                    .map(|sig| (name.to_string(), sig))
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
            ..SignInput::default()
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
