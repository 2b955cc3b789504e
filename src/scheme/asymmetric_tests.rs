//! Unit tests for [`super`]: RFC 8032 vectors, ECDSA in both signature forms, key rotation
//! and the malformed-signature refusals.

use ring::rand::SystemRandom;
use ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::*;

fn ed(hex_key: &str) -> PublicKey {
    PublicKey::parse(KeyKind::Ed25519, hex_key).unwrap()
}

// RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
const T1_PK: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const T1_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
const T2_PK: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const T2_SIG: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

#[test]
fn rfc8032_vectors_and_rotation() {
    let t1 = hex::decode(T1_SIG).unwrap();
    let t2 = hex::decode(T2_SIG).unwrap();
    assert_eq!(
        verify(VerifierKind::Ed25519, &[ed(T1_PK)], b"", &t1),
        Ok(())
    );
    assert_eq!(
        verify(VerifierKind::Ed25519, &[ed(T2_PK)], &[0x72], &t2),
        Ok(())
    );
    // Rotation: the matching key may be anywhere in the list.
    let both = [ed(T1_PK), ed(T2_PK)];
    assert_eq!(verify(VerifierKind::Ed25519, &both, &[0x72], &t2), Ok(()));
    assert_eq!(
        verify(VerifierKind::Ed25519, &both, &[0x73], &t2),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify(VerifierKind::Ed25519, &both, &[0x72], &t2[..63]),
        Err(VerifyError::Malformed("an Ed25519 signature is 64 bytes"))
    );
    assert_eq!(
        verify(VerifierKind::Ed25519, &[], b"", &t1),
        Err(VerifyError::NoKeys)
    );
    assert_eq!(
        verify(VerifierKind::RsaPkcs1Sha256, &both, b"", &t1),
        Err(VerifyError::NoKeys)
    );
}

fn p256(alg: &'static signature::EcdsaSigningAlgorithm) -> (EcdsaKeyPair, PublicKey) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let public = PublicKey::parse(KeyKind::EcdsaP256, &hex::encode(pair.public_key())).unwrap();
    (pair, public)
}

#[test]
fn ecdsa_der_and_fixed_forms_are_distinct_kinds() {
    let rng = SystemRandom::new();
    let (der_pair, key) = p256(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let der_sig = der_pair.sign(&rng, b"msg").unwrap();
    let kind = VerifierKind::EcdsaP256Sha256Der;
    assert_eq!(
        verify(kind, std::slice::from_ref(&key), b"msg", der_sig.as_ref()),
        Ok(())
    );
    assert_eq!(
        verify(kind, std::slice::from_ref(&key), b"msh", der_sig.as_ref()),
        Err(VerifyError::Mismatch)
    );
    assert!(matches!(
        verify(
            kind,
            std::slice::from_ref(&key),
            b"msg",
            &[0x30, 0x02, 0x02, 0x00]
        ),
        Err(VerifyError::Malformed(_))
    ));

    let (fixed_pair, fixed_key) = p256(&ECDSA_P256_SHA256_FIXED_SIGNING);
    let fixed_sig = fixed_pair.sign(&rng, b"msg").unwrap();
    let fixed = VerifierKind::EcdsaP256Sha256Fixed;
    assert_eq!(
        verify(
            fixed,
            &[key.clone(), fixed_key.clone()],
            b"msg",
            fixed_sig.as_ref()
        ),
        Ok(())
    );
    // A fixed signature is not DER and a DER signature is not 64 bytes (or not valid).
    assert!(matches!(
        verify(
            kind,
            std::slice::from_ref(&fixed_key),
            b"msg",
            fixed_sig.as_ref()
        ),
        Err(VerifyError::Malformed(_))
    ));
    assert!(verify(fixed, &[key], b"msg", der_sig.as_ref()).is_err());
}

#[test]
fn several_signatures_pass_if_one_does_and_errors_stay_specific() {
    let t2 = hex::decode(T2_SIG).unwrap();
    let keys = [ed(T2_PK)];
    let junk = [1u8; 64];
    assert_eq!(
        verify_any(VerifierKind::Ed25519, &keys, &[0x72], &[&junk, &t2]),
        Ok(())
    );
    assert_eq!(
        verify_any(VerifierKind::Ed25519, &keys, &[0x72], &[&[1, 2], &junk]),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify_any(VerifierKind::Ed25519, &keys, &[0x72], &[]),
        Err(VerifyError::Malformed("no signature"))
    );
    let long = vec![0u8; MAX_SIGNATURE_LEN + 1];
    assert_eq!(
        verify(VerifierKind::Ed25519, &keys, b"", &long),
        Err(VerifyError::Malformed("signature is too long"))
    );
}

#[test]
fn decoding_and_names() {
    assert_eq!(decode_signature(Encoding::Hex, "0aFF"), Ok(vec![10, 255]));
    assert_eq!(decode_signature(Encoding::Base64, "AQI"), Ok(vec![1, 2]));
    assert!(decode_signature(Encoding::Hex, "xyz").is_err());
    assert!(decode_signature(Encoding::Base64, "").is_err());
    let err = decode_signature(Encoding::Base64, "!!secret-looking!!").unwrap_err();
    assert!(!err.to_string().contains("secret"));
    for kind in VerifierKind::ALL {
        assert_eq!(VerifierKind::parse(kind.name()), Some(kind));
        let json = format!("\"{}\"", kind.name());
        assert_eq!(serde_json::from_str::<VerifierKind>(&json).unwrap(), kind);
    }
}
