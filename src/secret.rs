//! Secrets: where they come from (environment variable, file, or a literal for demos), how they
//! are decoded (raw, base64, Standard Webhooks `whsec_`), and a type that never prints its value.
//! The environment is read through [`Env`] so tests pass a map instead of mutating the process.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

/// Read access to environment variables.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Secret bytes. `Debug` prints `[redacted]`; there is no `Display` and no `PartialEq` (a
/// comparison that could end early would leak; compare digests in constant time instead, as
/// `access::TokenSet` does).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret is read from, as written in the configuration. Deserialised by
/// [`crate::redact`], whose errors never echo the value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// The value of an environment variable.
    Env(String),
    /// The content of a file, without its trailing newline.
    File(PathBuf),
    /// A literal value in the configuration file: for local demos only (a warning is logged).
    Value(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SecretRef {
    /// Where the secret comes from, for display (never the value itself).
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env:{name}"),
            SecretRef::File(path) => format!("file:{}", path.display()),
            SecretRef::Value(_) => "literal (demo only)".to_string(),
        }
    }

    /// Reads the secret's text. Relative file paths are taken from `base_dir`.
    pub fn load(&self, env: &dyn Env, base_dir: &Path) -> Result<String, String> {
        let text = match self {
            SecretRef::Env(name) => env
                .var(name)
                .ok_or_else(|| format!("environment variable {name} is not set"))?,
            SecretRef::File(path) => {
                let full = base_dir.join(path);
                let raw = std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read secret file {}: {e}", full.display()))?;
                raw.trim_end_matches(['\r', '\n']).to_string()
            }
            SecretRef::Value(value) => value.clone(),
        };
        if text.is_empty() {
            return Err(format!("secret from {} is empty", self.describe()));
        }
        Ok(text)
    }
}

/// Standard base64 with or without `=` padding (for `whsec_` secrets).
const WHSEC_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// How the secret's text becomes HMAC key bytes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SecretEncoding {
    /// The UTF-8 bytes of the text, as most providers use.
    Raw,
    /// Standard base64.
    Base64,
    /// Standard Webhooks: `whsec_` followed by base64 (the prefix is optional).
    Whsec,
}

impl SecretEncoding {
    pub fn decode(self, text: &str) -> Result<Secret, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            SecretEncoding::Raw => Ok(Secret::new(text.as_bytes())),
            SecretEncoding::Base64 => b64
                .decode(text.trim())
                .map(Secret::new)
                .map_err(|_| "secret is not valid base64".to_string()),
            SecretEncoding::Whsec => {
                let body = text.trim();
                let body = body.strip_prefix("whsec_").unwrap_or(body);
                // Padding optional, as the standardwebhooks and svix libraries accept it.
                WHSEC_BASE64
                    .decode(body)
                    .map(Secret::new)
                    .map_err(|_| "secret is not a valid whsec_<base64> value".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn loads_from_env_map_and_file() {
        let env: HashMap<String, String> = [("K".to_string(), "from-env".to_string())].into();
        assert_eq!(
            SecretRef::Env("K".into())
                .load(&env, Path::new("."))
                .unwrap(),
            "from-env"
        );
        let err = SecretRef::Env("MISSING".into())
            .load(&env, Path::new("."))
            .unwrap_err();
        assert!(err.contains("MISSING"));

        let dir = std::env::temp_dir().join(format!("hookgate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s"), "from-file\n").unwrap();
        assert_eq!(
            SecretRef::File("s".into()).load(&env, &dir).unwrap(),
            "from-file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn whsec_decodes_with_or_without_prefix() {
        let with = SecretEncoding::Whsec
            .decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let without = SecretEncoding::Whsec
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        assert_eq!(with.expose(), without.expose());
        assert_eq!(with.expose().len(), 24);
        assert!(SecretEncoding::Whsec.decode("whsec_***").is_err());
    }

    #[test]
    fn whsec_padding_is_optional() {
        // 25 key bytes: their base64 ends in `==`.
        let padded = SecretEncoding::Whsec
            .decode("whsec_a2V5LWJ5dGVzLXdpdGgtcGFkZGluZy0wMQ==")
            .unwrap();
        let unpadded = SecretEncoding::Whsec
            .decode("whsec_a2V5LWJ5dGVzLXdpdGgtcGFkZGluZy0wMQ")
            .unwrap();
        assert_eq!(padded.expose(), unpadded.expose());
        assert_eq!(padded.expose(), b"key-bytes-with-padding-01");
        assert!(SecretEncoding::Whsec.decode("whsec_a2V5L").is_err());
    }
}
