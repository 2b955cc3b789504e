//! Unit tests of signing and verifying with every shape, encoding and template.

use super::*;
use crate::secret::Secret;
use http::HeaderValue;

fn scheme(shape: Shape, template: &str, encoding: Encoding) -> Scheme {
    Scheme {
        algorithm: Algorithm::Sha256,
        encoding,
        header: HeaderName::from_static("x-sig"),
        shape,
        template: Template::parse(template).unwrap(),
        timestamp: None,
        id: None,
        verifier: None,
        secondary_header: None,
        public_url: None,
    }
}

fn plain(prefix: &str) -> Scheme {
    scheme(
        Shape::Plain {
            prefix: prefix.into(),
        },
        "{body}",
        Encoding::Hex,
    )
}

fn key(secret: &str) -> SigningKey {
    SigningKey::new(Algorithm::Sha256, &Secret::new(secret))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[test]
fn rfc4231_test_case_2() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let s = plain("");
    let sig = s.signature(
        &key("Jefe"),
        &SignInput {
            body: b"what do ya want for nothing?",
            ..Default::default()
        },
    );
    assert_eq!(
        sig,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn plain_roundtrip_accepts_any_key_and_upper_case_hex() {
    let s = plain("sha256=");
    let input = SignInput {
        body: b"{}",
        ..Default::default()
    };
    let value = s.sign(&key("new"), &input);
    let keys = [key("old"), key("new")];
    assert_eq!(
        s.verify(&keys, &headers(&[("x-sig", &value)]), b"{}"),
        Ok(())
    );
    let upper = format!("sha256={}", value[7..].to_uppercase());
    assert_eq!(
        s.verify(&keys, &headers(&[("x-sig", &upper)]), b"{}"),
        Ok(())
    );
    // A `0x` prefix is not the provider's format, however valid the digits after it.
    for prefix in ["0x", "0X"] {
        let prefixed = format!("sha256={prefix}{}", &value[7..]);
        assert_eq!(
            s.verify(&keys, &headers(&[("x-sig", &prefixed)]), b"{}"),
            Err(SignatureError::Mismatch),
            "{prefixed}"
        );
    }
    assert_eq!(Encoding::Hex.decode("0x00"), None);
    assert_eq!(Encoding::Hex.decode("00"), Some(vec![0]));
    assert_eq!(
        s.verify(&keys, &headers(&[("x-sig", &value)]), b"{ }"),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        s.verify(&[key("other")], &headers(&[("x-sig", &value)]), b"{}"),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn malformed_signatures_are_mismatches_not_panics() {
    let s = plain("sha256=");
    let keys = [key("k")];
    for bad in [
        "sha256=",
        "sha256=zz",
        "sha256=abc",
        "sha256=00",
        &format!("sha256={}", "0".repeat(200)),
    ] {
        assert_eq!(
            s.verify(&keys, &headers(&[("x-sig", bad)]), b"{}"),
            Err(SignatureError::Mismatch),
            "{bad}"
        );
    }
    assert!(matches!(
        s.verify(&keys, &headers(&[("x-sig", "abcdef")]), b"{}"),
        Err(SignatureError::Invalid(_))
    ));
    assert_eq!(
        s.verify(&keys, &HeaderMap::new(), b"{}"),
        Err(SignatureError::Missing)
    );
    let value = s.sign(
        &keys[0],
        &SignInput {
            body: b"{}",
            ..Default::default()
        },
    );
    assert!(matches!(
        s.verify(
            &keys,
            &headers(&[("x-sig", &value), ("x-sig", &value)]),
            b"{}"
        ),
        Err(SignatureError::Invalid(_))
    ));
}

#[test]
fn key_value_list_reads_timestamp_and_any_v1() {
    let mut s = scheme(
        Shape::KeyValue {
            timestamp_key: "t".into(),
            signature_key: "v1".into(),
            separator: ',',
        },
        "{timestamp}.{body}",
        Encoding::Hex,
    );
    s.timestamp = Some(ValueSource::SignatureParam("t".into()));
    s.validate().unwrap();
    let k = key("whsec");
    let good = s.sign(
        &k,
        &SignInput {
            body: b"x",
            timestamp: Some("100"),
            id: None,
            ..SignInput::default()
        },
    );
    assert!(good.starts_with("t=100,v1="));
    let both = format!("t=100,v1={},{}", "ab".repeat(32), &good[6..]);
    assert_eq!(
        s.verify(
            std::slice::from_ref(&k),
            &headers(&[("x-sig", &both)]),
            b"x"
        ),
        Ok(())
    );
    let moved = good.replace("t=100", "t=101");
    assert_eq!(
        s.verify(
            std::slice::from_ref(&k),
            &headers(&[("x-sig", &moved)]),
            b"x"
        ),
        Err(SignatureError::Mismatch)
    );
    let twice = format!("t=1,{good}");
    assert!(matches!(
        s.verify(&[k], &headers(&[("x-sig", &twice)]), b"x"),
        Err(SignatureError::Invalid(_))
    ));
}

#[test]
fn render_is_what_the_hmac_covers() {
    let s = scheme(
        Shape::Plain { prefix: "".into() },
        "v0:{timestamp}:{id}.{body}",
        Encoding::Hex,
    );
    let input = SignInput {
        body: b"{}",
        timestamp: Some("12"),
        id: Some("e1"),
        ..SignInput::default()
    };
    let rendered = s.template.render(&input);
    assert_eq!(rendered, b"v0:12:e1.{}");
    let direct = SignInput {
        body: &rendered,
        ..Default::default()
    };
    assert_eq!(
        s.signature(&key("k"), &input),
        plain("").signature(&key("k"), &direct)
    );
}

#[test]
fn template_parsing() {
    assert!(Template::parse("{timestamp}.{body}").is_ok());
    assert!(Template::parse("v0:{timestamp}:{body}").is_ok());
    assert!(Template::parse("{timestamp}").is_err());
    assert!(Template::parse("{body}{nope}").is_err());
    assert!(Template::parse("{body").is_err());
}

#[test]
fn validate_requires_sources_for_placeholders() {
    let s = scheme(
        Shape::Plain { prefix: "".into() },
        "{id}.{body}",
        Encoding::Base64,
    );
    assert!(s.validate().unwrap_err().contains("signature.id"));
}

#[test]
fn base64url_accepts_padding_either_way() {
    let s = scheme(
        Shape::Plain { prefix: "".into() },
        "{body}",
        Encoding::Base64urlNopad,
    );
    let k = key("k");
    let input = SignInput {
        body: b"payload",
        ..Default::default()
    };
    let bare = s.sign(&k, &input);
    assert!(!bare.ends_with('='));
    let padded = format!("{bare}=");
    for v in [&bare, &padded] {
        assert_eq!(
            s.verify(
                std::slice::from_ref(&k),
                &headers(&[("x-sig", v)]),
                b"payload"
            ),
            Ok(())
        );
    }
}

#[test]
fn json_placeholders_render_the_body_fields() {
    let template = Template::parse("{json:a.b}|{json:n}|{json:missing}|{json:f}|{body}").unwrap();
    let body = br#"{"a":{"b":"x\u00e9"},"n":-12,"f":1.5}"#;
    let input = SignInput {
        body,
        ..SignInput::default()
    };
    let mut want = "x\u{e9}|-12|||".as_bytes().to_vec();
    want.extend_from_slice(body);
    assert_eq!(template.render(&input), want);
    let err = Template::parse("{json:}.{body}").unwrap_err();
    assert!(err.contains("{json:}"), "{err}");
    assert!(
        Template::parse("{json:a}").is_err(),
        "the body must be signed too"
    );
}
