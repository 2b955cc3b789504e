//! The walk's answers on chosen documents, and beside the reference walk on generated ones.

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

/// Bodies read by this walk and the serde_json-based one before it: the same answer, or both
/// refusing, on every document.
fn assert_same_as_reference(body: &[u8], paths: &[JsonPath]) {
    let ours = json_fields(body, paths);
    let before = super::reference::json_fields(body, paths);
    assert_eq!(ours, before, "on {:?}", String::from_utf8_lossy(body));
}

fn reference_paths() -> Vec<JsonPath> {
    [
        "id",
        "ts",
        "data.id",
        "data.list.0.ts",
        "list.1",
        "a.b.c",
        "0",
        "é",
    ]
    .iter()
    .map(|p| path(p))
    .collect()
}

#[test]
fn chosen_edge_cases_read_as_before() {
    let paths = reference_paths();
    for body in [
        "",
        " ",
        "{",
        "}",
        "[]",
        "{}",
        "[",
        "]",
        "null",
        "nul",
        "true ",
        " false",
        "tru",
        "0",
        "-0",
        "-",
        "01",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1E-2",
        "-0.0",
        "1.5e3",
        "1e400",
        "-1e400",
        "1e-400",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "\"\"",
        "\"a",
        "\"\\\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800x\"",
        "\"tab\there\"",
        "\"del\u{7f}\"",
        "{\"id\":1,}",
        "{\"id\" 1}",
        "{\"id\":}",
        "{,}",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"id\":1}x",
        "{\"id\":1} ",
        "{\"id\":\"\\u0000\"}",
        "{\"\\u0069d\":2,\"id\":3}",
        "{\"data\":{\"list\":[{\"ts\":-0}]}}",
        "{\"list\":[0,\"x\",2]}",
        "[[[[]]],{\"0\":1}]",
        "{\"id\":[1],\"id\":2}",
        "{\"é\":1.25}",
        "{\"\\u00e9\":\"\\u00e9\"}",
        "{\"ts\":1e999}",
        "{\"other\":1e999,\"id\":\"x\"}",
        "{\"a\":{\"b\":{\"c\":true}}}",
        "{\"id\":\"\\ud800\"}",
        "{\"x\":\"\\ud800\"}",
        "\t{\r\n\"id\" : \"a\" }\n",
        "{\"x\":{]}",
        "{\"x\":[}",
        "[{]}",
        "{\"x\":{\"y\":1]}",
        "{\"x\":[1}]",
        "{\"x\":{\"y\"}}",
        "{\"x\":{1:2}}",
    ] {
        assert_same_as_reference(body.as_bytes(), &paths);
    }
    // Bytes that are not UTF-8: refused where the value or key is read, not where skipped.
    for body in [
        &b"{\"id\":\"\xff\"}"[..],
        b"{\"x\":\"\xff\"}",
        b"{\"\xff\":1}",
        b"{\"x\":{\"\xff\":1}}",
        b"\xef\xbb\xbf{}",
        b"{\"id\":\"a\x01\"}",
        b"{\"x\":\"a\x1f\"}",
    ] {
        assert_same_as_reference(body, &paths);
    }
}

/// A random JSON value; `valid` documents are mutated below as well.
fn generate(rng: &mut fastrand::Rng, depth: usize, out: &mut String) {
    const KEYS: &[&str] = &[
        "id", "ts", "data", "list", "a", "b", "c", "0", "é", "\\u0069d", "x y", "\\\"",
    ];
    const STRINGS: &[&str] = &[
        "",
        "evt_1",
        "2025-01-01T00:00:00Z",
        "tab\\tnew\\nline",
        "quote\\\"back\\\\",
        "\\u00e9t\\u00e9",
        "\\ud83d\\ude00",
        "\\ud800",
        "é😀",
        "slash\\/",
        "\\b\\f\\r",
        "\u{7f}",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "7",
        "-42",
        "1.5",
        "-2.25e3",
        "1E2",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "18446744073709551615",
        "1e400",
        "0.1",
        "123456.789e-2",
    ];
    let ws = |rng: &mut fastrand::Rng, out: &mut String| {
        if rng.u8(..4) == 0 {
            out.push_str([" ", "\n", "\t", "\r\n "][rng.usize(..4)]);
        }
    };
    ws(rng, out);
    match if depth > 5 { rng.u8(2..6) } else { rng.u8(..6) } {
        0 => {
            out.push('{');
            for i in 0..rng.usize(..5) {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                out.push('"');
                out.push_str(KEYS[rng.usize(..KEYS.len())]);
                out.push('"');
                ws(rng, out);
                out.push(':');
                generate(rng, depth + 1, out);
            }
            ws(rng, out);
            out.push('}');
        }
        1 => {
            out.push('[');
            for i in 0..rng.usize(..4) {
                if i > 0 {
                    out.push(',');
                }
                generate(rng, depth + 1, out);
            }
            out.push(']');
        }
        2 | 3 => {
            out.push('"');
            out.push_str(STRINGS[rng.usize(..STRINGS.len())]);
            out.push('"');
        }
        4 => out.push_str(NUMBERS[rng.usize(..NUMBERS.len())]),
        _ => out.push_str(["true", "false", "null"][rng.usize(..3)]),
    }
    ws(rng, out);
}

#[test]
fn generated_and_mutated_documents_read_as_before() {
    let paths = reference_paths();
    let mut rng = fastrand::Rng::with_seed(0x6a73_6f6e);
    const BYTES: &[u8] = b"{}[],:\"\\ 0-.eu\x00\x1f\x7f\x80\xc3\xa9\xff";
    for _ in 0..20_000 {
        let mut text = String::new();
        generate(&mut rng, 0, &mut text);
        assert_same_as_reference(text.as_bytes(), &paths);
        for _ in 0..4 {
            let mut body = text.clone().into_bytes();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..=body.len());
                let byte = BYTES[rng.usize(..BYTES.len())];
                match rng.u8(..4) {
                    0 if at < body.len() => {
                        body.remove(at);
                    }
                    1 if at < body.len() => body[at] = byte,
                    2 => body.insert(at, byte),
                    _ => body.truncate(at),
                }
            }
            assert_same_as_reference(&body, &paths);
        }
    }
}

#[test]
fn a_long_string_is_scanned_to_its_end_and_a_control_byte_anywhere_refuses_it() {
    let id = path("id");
    for len in [0, 1, 31, 32, 33, 64, 1000, 65_536] {
        let pad = "x".repeat(len);
        let body = format!("{{\"pad\":\"{pad}\",\"id\":\"e\"}}");
        assert_eq!(
            json_field(body.as_bytes(), &id),
            Ok(Some(Scalar::Str("e".into())))
        );
        for at in [0, len / 2, len.saturating_sub(1)]
            .into_iter()
            .filter(|&a| a < len)
        {
            let mut bad = body.clone().into_bytes();
            bad[8 + at] = 0x1f;
            assert_eq!(
                json_field(&bad, &id),
                Err(JsonError::Invalid),
                "len {len} at {at}"
            );
            assert_same_as_reference(&bad, std::slice::from_ref(&id));
        }
    }
}

#[test]
fn the_string_stop_test_is_exactly_quote_backslash_and_control_bytes() {
    for b in 0..=255u8 {
        let expected = b < 0x20 || b == b'"' || b == b'\\';
        assert_eq!(walk::stops_string(b), expected, "byte {b:#04x}");
        // Found at every offset of a longer run (the vector path and the tail).
        for at in [0, 5, 31, 32, 40, 63, 64, 70] {
            let mut bytes = vec![b'x'; 71];
            bytes[at] = b;
            let want = if expected { Some(at) } else { None };
            assert_eq!(walk::string_stop(&bytes), want, "byte {b:#04x} at {at}");
        }
    }
    // Random runs, rich in the bytes next to the stops' values: the first stop, as a plain
    // search finds it.
    let mut rng = fastrand::Rng::with_seed(7);
    const NEAR: &[u8] = b"\x00\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x7f\x80\xa2\xc3\xa9\xdc\xffx";
    for _ in 0..20_000 {
        let len = rng.usize(..80);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.u8(..8) == 0 {
                    NEAR[rng.usize(..NEAR.len())]
                } else {
                    b'a' + rng.u8(..26)
                }
            })
            .collect();
        let plain = bytes
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\');
        assert_eq!(walk::string_stop(&bytes), plain, "{bytes:?}");
    }
}
