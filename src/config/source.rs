//! One `[[source]]`: its preset merged under the user's fields, its secrets and tokens loaded,
//! its address list parsed, its upstream URL checked, and each stage built from its spec
//! ([`Scheme::from_spec`], [`Freshness::from_spec`], [`DedupPolicy::from_spec`]). Refused at
//! start: no way to authenticate, a dedup memory shorter than window + future skew, a bad
//! path or URL.

use std::path::Path;
use std::time::Duration;

use http::uri::{Authority, Scheme as UriScheme};
use http::{HeaderName, HeaderValue, Uri};

use super::schema::SourceSpec;
use super::{defaults, err, ConfigError};
use crate::access::{parse_net, AddressAllowlist, HeaderToken, TokenSet};
use crate::presets;
use crate::redact;
use crate::scheme::keys::PublicKey;
use crate::scheme::{Part, Scheme, SignatureMethod, SigningKey};
use crate::secret::{Env, Secret, SecretEncoding, SecretRef};
use crate::sender::retry::RetryPolicy;
use crate::source::method::Method;
use crate::source::{
    check_replay_cover, DedupPolicy, DedupSpec, DeliveryMode, Destination, Freshness,
    FreshnessSpec, SignatureCheck, Source, Upstream,
};

/// What `[server]` sets for every source that does not set its own.
pub(super) struct SourceDefaults {
    pub(super) max_body: usize,
    pub(super) body_timeout: Duration,
    pub(super) upstream_timeout: Duration,
}

impl Source {
    /// Builds and validates one source: its preset under the user's fields, its secrets
    /// loaded, each stage built from its spec. `at` names it in errors (`source[name]`).
    pub(super) fn from_spec(
        spec: SourceSpec,
        at: &str,
        base_dir: &Path,
        env: &dyn Env,
        defaults: &SourceDefaults,
        warnings: &mut Vec<String>,
    ) -> Result<Source, ConfigError> {
        if spec.name.is_empty()
            || !spec
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return err(
                at,
                "name must be non-empty letters, digits, '-', '_' or '.'",
            );
        }
        validate_path(&spec.path).or_else(|m| err(&format!("{at}.path"), m))?;

        let preset = match &spec.preset {
            Some(name) => Some(presets::find(name).ok_or_else(|| {
                ConfigError(format!(
                    "{at}.preset: unknown preset `{name}` (known: {})",
                    presets::NAMES.join(", ")
                ))
            })?),
            None => None,
        };

        let mut load_secret = |r: &SecretRef, key: &str| -> Result<String, ConfigError> {
            if matches!(r, SecretRef::Value(_)) {
                warnings.push(format!(
                "{at}.{key}: literal secret in the configuration file; use env or file outside local demos"
            ));
            }
            r.load(env, base_dir)
                .or_else(|m| err(&format!("{at}.{key}"), m))
        };

        // Signature.
        let preset_sig = preset.as_ref().and_then(|p| p.signature.clone());
        let signature_spec = match (spec.signature, preset_sig) {
            (Some(user), Some(base)) => Some(user.over(base)),
            (Some(_), None) if preset.is_some() => {
                return err(
                    &format!("{at}.signature"),
                    format!(
                        "preset `{}` has no signature scheme to adjust",
                        spec.preset.unwrap_or_default()
                    ),
                )
            }
            (user, base) => user.or(base),
        };
        let mut secret_origins = Vec::new();
        let signature = match signature_spec {
            Some(sig) => {
                let mut scheme =
                    Scheme::from_spec(&sig).or_else(|m| err(&format!("{at}.signature"), m))?;
                if scheme.template.uses(&Part::Url) {
                    let url = spec.public_url.clone().ok_or_else(|| {
                        ConfigError(format!(
                            "{at}.public_url: the signed bytes include {{url}}; set the public URL the provider calls"
                        ))
                    })?;
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return err(
                            &format!("{at}.public_url"),
                            "must start with https:// or http://",
                        );
                    }
                    scheme.public_url = Some(url);
                }
                let mut keys = Vec::new();
                let mut public_keys = Vec::new();
                let mut method = Method::Header;
                if sig.method.unwrap_or_default() != SignatureMethod::Header {
                    // Mailgun's signing key is a secret like any other: warn about literals.
                    for (i, r) in spec.secrets.iter().enumerate() {
                        if matches!(r, SecretRef::Value(_)) {
                            load_secret(r, &format!("secrets[{i}]"))?;
                        }
                    }
                    let built = super::method::build(&sig, &spec.secrets, at, base_dir, env)?;
                    (keys, public_keys, method) = (built.keys, built.public_keys, built.method);
                    secret_origins = built.origins;
                } else {
                    super::method::refuse_for_header(&sig, at)?;
                    match scheme.verifier {
                        Some(kind) => {
                            if !spec.secrets.is_empty() {
                                return err(
                                    &format!("{at}.secrets"),
                                    "an asymmetric signature is verified with signature.public_keys, not secrets",
                                );
                            }
                            let refs = sig.public_keys.clone().unwrap_or_default();
                            if refs.is_empty() {
                                return err(
                                    &format!("{at}.signature.public_keys"),
                                    "an asymmetric signature needs at least one public key",
                                );
                            }
                            for (i, r) in refs.iter().enumerate() {
                                let key_at = format!("{at}.signature.public_keys[{i}]");
                                // Public keys are not secret: a literal value draws no warning.
                                let text = r.load(env, base_dir).or_else(|m| err(&key_at, m))?;
                                let key = PublicKey::parse(kind, &text)
                                    .or_else(|e| err(&key_at, e.to_string()))?;
                                public_keys.push(key);
                                secret_origins.push(r.describe());
                            }
                        }
                        None => {
                            if sig.public_keys.is_some() {
                                return err(
                                    &format!("{at}.signature.public_keys"),
                                    "public keys need an asymmetric signature.kind",
                                );
                            }
                            if spec.secrets.is_empty() {
                                return err(
                                    &format!("{at}.secrets"),
                                    "a signed source needs at least one secret",
                                );
                            }
                            let encoding = sig.secret_encoding.unwrap_or(SecretEncoding::Raw);
                            for (i, r) in spec.secrets.iter().enumerate() {
                                let text = load_secret(r, &format!("secrets[{i}]"))?;
                                let secret = encoding
                                    .decode(&text)
                                    .or_else(|m| err(&format!("{at}.secrets[{i}]"), m))?;
                                keys.push(SigningKey::new(scheme.algorithm, &secret));
                                secret_origins.push(r.describe());
                            }
                        }
                    }
                }
                Some(SignatureCheck {
                    scheme,
                    keys,
                    public_keys,
                    method,
                })
            }
            None => {
                if !spec.secrets.is_empty() {
                    return err(
                        &format!("{at}.secrets"),
                        "secrets are set but the source has no signature scheme",
                    );
                }
                None
            }
        };

        let token = match &spec.token {
            Some(t) => {
                if t.secrets.is_empty() {
                    return err(
                        &format!("{at}.token.secrets"),
                        "at least one token is needed",
                    );
                }
                let header = HeaderName::from_bytes(t.header.as_bytes())
                    .or_else(|_| err(&format!("{at}.token.header"), "not a valid header name"))?;
                let mut tokens = Vec::new();
                for (i, r) in t.secrets.iter().enumerate() {
                    tokens.push(Secret::new(load_secret(r, &format!("token.secrets[{i}]"))?));
                }
                Some(HeaderToken {
                    header,
                    prefix: t.prefix.clone(),
                    tokens: TokenSet::new(&tokens),
                })
            }
            None => None,
        };
        let path_token = match &spec.path_token {
            Some(r) => {
                let value = load_secret(r, "path_token")?;
                if value.contains('/') || value.len() < defaults::MIN_PATH_TOKEN {
                    return err(
                        &format!("{at}.path_token"),
                        "must be at least 16 characters and contain no '/'",
                    );
                }
                Some(TokenSet::new(&[Secret::new(value)]))
            }
            None => None,
        };
        let verify_token = spec
            .verify_token
            .as_ref()
            .map(|r| load_secret(r, "verify_token"))
            .transpose()?;
        let parse_nets =
            |list: &Option<Vec<String>>, key: &str| -> Result<Vec<ipnet::IpNet>, ConfigError> {
                list.iter()
                    .flatten()
                    .map(|s| parse_net(s).or_else(|m| err(&format!("{at}.{key}"), m)))
                    .collect()
            };
        let allow = parse_nets(&spec.allow_ips, "allow_ips")?;
        let trusted_proxies = parse_nets(&spec.trusted_proxies, "trusted_proxies")?;
        let addresses = match spec.allow_ips.is_some() {
            true if allow.is_empty() => {
                return err(
                    &format!("{at}.allow_ips"),
                    "is empty: nothing could deliver",
                )
            }
            true => Some(AddressAllowlist {
                allow,
                trusted_proxies: trusted_proxies.clone(),
            }),
            false => None,
        };
        if signature.is_none() && token.is_none() && path_token.is_none() && addresses.is_none() {
            return err(
            at,
            "no way to authenticate deliveries: configure a signature preset/scheme, token, path_token or allow_ips",
        );
        }

        // The source's own value, else its preset's (under the sender's timeout), else [server]'s.
        let upstream_timeout = spec.upstream_timeout.unwrap_or_else(|| {
            preset
                .as_ref()
                .map_or(defaults.upstream_timeout, |p| p.upstream_timeout())
        });
        let timeout_reason = match (&spec.upstream_timeout, &preset) {
            (None, Some(p)) => Some(p.timeout_reason),
            _ => None,
        };
        let handshake = super::handshake::resolve(
            spec.handshake,
            preset.as_ref(),
            verify_token,
            signature.as_ref(),
            at,
            warnings,
        )?;
        let enforce = spec.enforce.unwrap_or(true);
        if !enforce {
            warnings.push(format!(
                "{at}: enforce = false (shadow mode): deliveries that fail verification, freshness or dedup are forwarded anyway, marked X-Hookgate-Verification: failed"
            ));
        }
        let upstream = parse_upstream(&spec.upstream, &spec.name, upstream_timeout)
            .or_else(|m| err(&format!("{at}.upstream"), m))?;

        let (preset_fresh, preset_dedup, window_reason, preset_name) = match &preset {
            Some(p) => (
                p.freshness.clone(),
                DedupSpec {
                    inflight_wait: Some(p.inflight_wait()),
                    ..p.dedup.clone()
                },
                Some(p.window_reason),
                Some(p.name),
            ),
            None => (FreshnessSpec::default(), DedupSpec::default(), None, None),
        };
        let fresh_spec = spec.freshness.unwrap_or_default().over(preset_fresh);
        let dedup_spec = spec.dedup.unwrap_or_default().over(preset_dedup);

        let mut source = Source {
            name: spec.name.as_str().into(),
            metric_handles: Default::default(),
            path: spec.path.clone(),
            preset: preset_name,
            signature,
            token,
            path_token,
            addresses,
            trusted_proxies,
            forward_query: spec.forward_query.unwrap_or(false),
            freshness: None,
            dedup: None,
            body_paths: Vec::new(),
            upstream,
            max_body: spec.max_body_bytes.unwrap_or(defaults.max_body),
            body_timeout: defaults.body_timeout,
            window_reason,
            timeout_reason,
            secret_origins,
            handshake,
            enforce,
            delivery: delivery_mode(spec.delivery.as_deref(), spec.retry, at)?,
        };
        if source.delivery != DeliveryMode::Sync && source.forward_query {
            return err(
                &format!("{at}.forward_query"),
                "a queued source delivers to a fixed URL; forward_query needs delivery = \"sync\"",
            );
        }
        if source.max_body == 0 {
            return err(&format!("{at}.max_body_bytes"), "must be at least 1");
        }
        source.freshness = Freshness::from_spec(&fresh_spec, &source)
            .or_else(|m| err(&format!("{at}.freshness"), m))?;
        source.dedup = DedupPolicy::from_spec(&dedup_spec, &source)
            .or_else(|m| err(&format!("{at}.dedup"), m))?;
        source.collect_body_paths();
        check_replay_cover(source.freshness.as_ref(), source.dedup.as_ref())
            .or_else(|m| err(&format!("{at}.dedup.ttl"), m))?;
        if source.freshness.is_none() && source.dedup.is_none() {
            warnings.push(format!(
                "{at}: neither freshness nor dedup is on: replays are not stopped"
            ));
        }
        Ok(source)
    }
}

/// `delivery` and `retry`: the mode, with the queued mode's policy checked now.
fn delivery_mode(
    mode: Option<&str>,
    retry: Option<String>,
    at: &str,
) -> Result<DeliveryMode, ConfigError> {
    match mode.unwrap_or("sync") {
        "sync" => match retry {
            Some(_) => err(
                &format!("{at}.retry"),
                "applies to queued sources only (delivery = \"queue\")",
            ),
            None => Ok(DeliveryMode::Sync),
        },
        "queue" => {
            let retry = retry.unwrap_or_else(|| defaults::QUEUE_RETRY.to_string());
            RetryPolicy::parse(&retry).or_else(|m| err(&format!("{at}.retry"), m))?;
            Ok(DeliveryMode::Queue { retry })
        }
        other => err(
            &format!("{at}.delivery"),
            format!("`{other}` is not a delivery mode (sync or queue)"),
        ),
    }
}

fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` must start with '/'"));
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(format!("`{path}` must not end with '/'"));
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b);
    if !path.bytes().all(ok)
        || path.split('/').any(|seg| seg == "." || seg == "..")
        || path.contains("//")
    {
        return Err(format!(
            "`{path}` may only contain letters, digits and - _ . ~ between single slashes"
        ));
    }
    Ok(())
}

fn parse_upstream(text: &str, source: &str, timeout: Duration) -> Result<Upstream, String> {
    // Shown without any password it may carry.
    let shown = redact::url(text);
    let uri: Uri = text
        .parse()
        .map_err(|_| format!("`{shown}` is not a URL"))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| format!("`{shown}` has no scheme"))?;
    if scheme != UriScheme::HTTP && scheme != UriScheme::HTTPS {
        return Err(format!(
            "`{shown}`: only http:// and https:// upstreams are supported"
        ));
    }
    let authority: Authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("`{shown}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{shown}`: credentials in the URL are not supported"
        ));
    }
    let path_and_query = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    if timeout.is_zero() {
        return Err("upstream_timeout must be more than 0".into());
    }
    // Built once here: a URL that could not be requested is refused at start, and a delivery
    // without a forwarded query is sent to a clone of this one.
    let uri = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path_and_query.as_str())
        .build()
        .map_err(|e| format!("`{shown}`: {e}"))?;
    let destination = Destination::new(uri).ok_or_else(|| format!("`{shown}` has no host"))?;
    Ok(Upstream {
        destination,
        host_header: HeaderValue::from_str(authority.as_str())
            .map_err(|_| "bad host".to_string())?,
        source_header: HeaderValue::from_str(source).map_err(|_| "bad source name".to_string())?,
        scheme,
        authority,
        path_and_query,
        timeout,
    })
}
