//! Keeping secret values out of every message hookgate writes: configuration errors, the
//! `check-config` report, reload answers and logs. Secret-bearing configuration values
//! ([`SecretRef`]) are read by a deserialiser whose errors name what was expected, never what
//! was found; URLs are shown with their password replaced.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::secret::SecretRef;

/// What a secret reference must look like, for error messages.
const EXPECTED: &str =
    "a table { env = \"NAME\" }, { file = \"PATH\" } or { value = \"…\" } (the value given is not shown)";

struct SecretRefVisitor;

/// The text of one `env`, `file` or `value` entry; any other type is refused without echo.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
                Err(E::custom("a secret reference's entry must be a string"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
                Err(E::custom("a secret reference's entry must be a string"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text, E> {
                Err(E::custom("a secret reference's entry must be a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
                Err(E::custom("a secret reference's entry must be a string"))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

fn not_shown<E: de::Error>() -> E {
    E::custom(format!("expected {EXPECTED}"))
}

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
        Err(not_shown())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
        Err(not_shown())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
        Err(not_shown())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
        Err(not_shown())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
        Err(not_shown())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
        Err(not_shown())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let Text(text) = map.next_value()?;
            let entry = match key.as_str() {
                "env" => SecretRef::Env(text),
                "file" => SecretRef::File(text.into()),
                "value" => SecretRef::Value(text),
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{key}` in a secret reference: expected {EXPECTED}"
                    )))
                }
            };
            if found.replace(entry).is_some() {
                return Err(de::Error::custom(
                    "a secret reference takes exactly one of env, file or value",
                ));
            }
        }
        found.ok_or_else(not_shown)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretRefVisitor)
    }
}

/// `url` with the password of its user information replaced by `***` (and a bare user name,
/// which some services use as the secret, too). Text that is not a URL is returned as
/// `[redacted]` when it contains an `@`, since it may still carry credentials.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') {
            "[redacted]".to_string()
        } else {
            url.to_string()
        };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Holder {
        secret: SecretRef,
    }

    /// The error message as the configuration reports it (without toml's source excerpt).
    fn parse_error(text: &str) -> String {
        toml::from_str::<Holder>(text)
            .unwrap_err()
            .message()
            .to_string()
    }

    #[test]
    fn secret_references_parse_as_before() {
        let h: Holder = toml::from_str(r#"secret = { env = "NAME" }"#).unwrap();
        assert_eq!(h.secret, SecretRef::Env("NAME".into()));
        let h: Holder = toml::from_str(r#"secret = { file = "a/b" }"#).unwrap();
        assert_eq!(h.secret, SecretRef::File("a/b".into()));
        let h: Holder = toml::from_str(r#"secret = { value = "v" }"#).unwrap();
        assert_eq!(h.secret, SecretRef::Value("v".into()));
    }

    #[test]
    fn malformed_secret_references_never_echo_the_value() {
        for text in [
            r#"secret = "hunter2-plain-string""#,
            r#"secret = { valeu = "hunter2-typo-key" }"#,
            r#"secret = { env = "A", value = "hunter2-two-keys" }"#,
            r#"secret = ["hunter2-in-a-list"]"#,
            r#"secret = { value = 12345678901 }"#,
        ] {
            let message = parse_error(text);
            assert!(!message.contains("hunter2"), "{text}: {message}");
            assert!(!message.contains("12345678901"), "{text}: {message}");
        }
    }

    #[test]
    fn url_passwords_are_replaced() {
        assert_eq!(
            url("redis://user:s3cret@redis.internal:6379/0"),
            "redis://user:***@redis.internal:6379/0"
        );
        assert_eq!(url("rediss://:s3cret@h:6380"), "rediss://:***@h:6380");
        assert_eq!(url("https://tok3n@h/p?q=1"), "https://***@h/p?q=1");
        assert_eq!(url("http://h:80/p@x"), "http://h:80/p@x");
        assert_eq!(url("not a url with s3cret@host"), "[redacted]");
        assert_eq!(url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
