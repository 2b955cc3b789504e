//! Unit tests for [`super`]: every accepted text form, and the refusals.

use super::*;

const RFC8032_PK: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

fn vector(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn raw_ed25519(key: &PublicKey) -> [u8; 32] {
    match key.material {
        Material::Ed25519(raw) => raw,
        _ => panic!("not ed25519"),
    }
}

#[test]
fn ed25519_from_hex_base64_whpk_spki_and_jwk() {
    let raw = hex::decode(RFC8032_PK).unwrap();
    let b64 = BASE64_ANY_PAD.encode(&raw);
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&raw);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        BASE64_ANY_PAD.encode(&spki)
    );
    let jwk = format!(
        r#"{{"kty":"OKP","crv":"Ed25519","x":"{}","kid":"k1"}}"#,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw)
    );
    for text in [
        RFC8032_PK.to_string(),
        RFC8032_PK.to_uppercase(),
        b64.clone(),
        b64.trim_end_matches('=').to_string(),
        format!("whpk_{b64}"),
        BASE64_ANY_PAD.encode(&spki),
        pem,
        jwk.clone(),
    ] {
        let key = PublicKey::parse(KeyKind::Ed25519, &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(raw_ed25519(&key), raw[..]);
    }
    assert_eq!(
        PublicKey::parse(KeyKind::Ed25519, &jwk).unwrap().kid(),
        Some("k1")
    );
}

#[test]
fn wrong_kind_is_named_and_text_is_never_echoed() {
    let sns = vector("sns.json");
    let cert = sns["public_key"].as_str().unwrap();
    let err = PublicKey::parse(KeyKind::Ed25519, cert).unwrap_err();
    assert_eq!(
        err,
        KeyError::WrongKind {
            expected: "ed25519",
            found: "rsa"
        }
    );
    let whpk = format!("whpk_{}", BASE64_ANY_PAD.encode([7u8; 32]));
    assert!(matches!(
        PublicKey::parse(KeyKind::Rsa, &whpk),
        Err(KeyError::WrongKind { .. })
    ));
    for text in [
        "",
        "   ",
        "not a key !!",
        "abcd",
        &"41".repeat(33),
        "{\"kty\":",
    ] {
        let err = PublicKey::parse(KeyKind::Ed25519, text)
            .unwrap_err()
            .to_string();
        if text.len() > 3 {
            assert!(!err.contains(text.trim()), "{err}");
        }
    }
}

#[test]
fn rsa_from_certificate_spki_pkcs1_and_jwks() {
    let sns = vector("sns.json");
    let from_cert = PublicKey::parse(KeyKind::Rsa, sns["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(from_cert.rsa_len(), Some(256));
    let google = vector("jwt_google.json");
    let pem = google["public_key_pem"].as_str().unwrap();
    let from_spki = PublicKey::parse(KeyKind::Rsa, pem).unwrap();
    let from_google_cert =
        PublicKey::parse(KeyKind::Rsa, google["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(from_spki, from_google_cert);
    let jwks = PublicKey::parse_jwks(google["jwks"].as_str().unwrap()).unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks[0].material, from_spki.material);
    assert!(jwks[0].kid().is_some());
    // The same key as PKCS#1 `RSA PUBLIC KEY`: the BIT STRING inside the SPKI.
    let der = BASE64_ANY_PAD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let mut outer = Reader::new(Reader::only(&der, der::SEQUENCE).unwrap());
    outer.expect(der::SEQUENCE).unwrap();
    let pkcs1 = der::bit_string_bytes(outer.expect(der::BIT_STRING).unwrap()).unwrap();
    let pkcs1_pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----",
        BASE64_ANY_PAD.encode(pkcs1)
    );
    assert_eq!(
        PublicKey::parse(KeyKind::Rsa, &pkcs1_pem).unwrap(),
        from_spki
    );
    assert_eq!(
        PublicKey::parse(KeyKind::Rsa, &hex::encode(pkcs1)).unwrap(),
        from_spki
    );
}

#[test]
fn ecdsa_from_sendgrid_spki_plaid_jwk_and_raw_point() {
    let sendgrid = vector("sendgrid.json");
    let key =
        PublicKey::parse(KeyKind::EcdsaP256, sendgrid["public_key"].as_str().unwrap()).unwrap();
    let Material::EcdsaP256(point) = &key.material else {
        panic!("not EC")
    };
    assert_eq!(
        PublicKey::parse(KeyKind::EcdsaP256, &hex::encode(point)).unwrap(),
        key
    );
    let plaid = vector("jwt_plaid.json");
    let from_jwk = PublicKey::parse(KeyKind::EcdsaP256, plaid["key"].as_str().unwrap()).unwrap();
    let from_pem = PublicKey::parse(
        KeyKind::EcdsaP256,
        plaid["public_key_pem"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(from_jwk.material, from_pem.material);
    let wrapped = format!(
        r#"{{"key":{},"request_id":"r"}}"#,
        plaid["key"].as_str().unwrap()
    );
    assert_eq!(PublicKey::parse_jwks(&wrapped).unwrap(), vec![from_jwk]);
}

#[test]
fn refusals() {
    let ed = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
        BASE64_ANY_PAD.encode([0x30u8, 0x03, 0x02, 0x01, 0x00])
    );
    assert!(matches!(
        PublicKey::parse(KeyKind::Ed25519, &ed),
        Err(KeyError::Invalid(_))
    ));
    let pem = vector("jwt_google.json")["public_key_pem"]
        .as_str()
        .unwrap()
        .to_string();
    let twice = format!("{pem}{pem}");
    assert!(matches!(
        PublicKey::parse(KeyKind::Rsa, &twice),
        Err(KeyError::Encoding(_))
    ));
    let truncated = pem.replace("-----END PUBLIC KEY-----", "");
    assert!(PublicKey::parse(KeyKind::Rsa, &truncated).is_err());
    let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
    assert!(PublicKey::parse(KeyKind::Rsa, private).is_err());
    // RSA-1024 is refused.
    let mut small = vec![0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00];
    small.extend([0xc1; 128]);
    small.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
    assert_eq!(
        PublicKey::parse(KeyKind::Rsa, &hex::encode(&small)),
        Err(KeyError::Invalid("RSA modulus must be 2048 to 8192 bits"))
    );
    let enc_only = r#"{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}"#;
    assert!(PublicKey::parse_jwks(enc_only).is_err());
    let mismatched_alg = r#"{"kty":"EC","crv":"P-256","alg":"HS256","x":"AA","y":"AA"}"#;
    assert!(PublicKey::parse(KeyKind::EcdsaP256, mismatched_alg).is_err());
    let debug = format!(
        "{:?}",
        PublicKey::parse(KeyKind::Ed25519, RFC8032_PK).unwrap()
    );
    assert!(
        !debug.contains("d75a") && debug.contains("ed25519"),
        "{debug}"
    );
}
