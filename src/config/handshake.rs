//! A source's handshake: the preset's unless the source chooses another (or `none`), checked
//! against what it needs — a signature for the signed ones, an HMAC secret for Zoom's, a
//! verify token for Meta's.

use super::{err, ConfigError};
use crate::access::TokenSet;
use crate::presets::Preset;
use crate::secret::Secret;
use crate::source::{Handshake, HandshakeKind, SignatureCheck};

/// Resolves the handshake of the source `at`. `verify_token` is the loaded `verify_token`.
pub(super) fn resolve(
    chosen: Option<HandshakeKind>,
    preset: Option<&Preset>,
    verify_token: Option<String>,
    signature: Option<&SignatureCheck>,
    at: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Handshake>, ConfigError> {
    let from_preset = chosen.is_none();
    let kind = match chosen.or_else(|| preset.and_then(Preset::handshake)) {
        None | Some(HandshakeKind::None) => None,
        Some(kind) => Some(kind),
    };
    let Some(kind) = kind else {
        if verify_token.is_some() {
            return err(
                &format!("{at}.verify_token"),
                "is only used by the `meta` handshake",
            );
        }
        return Ok(None);
    };
    if kind.needs_signature() && signature.is_none() {
        return err(
            &format!("{at}.handshake"),
            format!(
                "the `{}` handshake is signed: the source needs the provider's signature scheme",
                kind.name()
            ),
        );
    }
    if kind == HandshakeKind::Zoom && signature.is_some_and(|s| s.keys.is_empty()) {
        return err(
            &format!("{at}.handshake"),
            "the `zoom` handshake answers with an HMAC under the source's secret: it needs an HMAC signature",
        );
    }
    let verify_tokens = match (kind, verify_token) {
        (HandshakeKind::Meta, Some(token)) if token.is_empty() => {
            return err(&format!("{at}.verify_token"), "must not be empty")
        }
        (HandshakeKind::Meta, Some(token)) => Some(TokenSet::new(&[Secret::new(token)])),
        (HandshakeKind::Meta, None) if from_preset => {
            warnings.push(format!(
                "{at}: no verify_token, so Meta's GET verification request is refused (405); set verify_token to answer it"
            ));
            return Ok(None);
        }
        (HandshakeKind::Meta, None) => {
            return err(
                &format!("{at}.verify_token"),
                "the `meta` handshake needs the verify token chosen in the app dashboard",
            )
        }
        (_, Some(_)) => {
            return err(
                &format!("{at}.verify_token"),
                "is only used by the `meta` handshake",
            )
        }
        (_, None) => None,
    };
    Ok(Some(Handshake {
        kind,
        verify_tokens,
    }))
}
