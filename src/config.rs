//! Configuration: the TOML model (unknown keys refused), presets merged under the user's
//! fields, secrets resolved from the environment or files, and validation into runtime
//! [`Source`]s. Every error names the source and key it is about. Nothing here fails open: an
//! unknown preset, a source with no way to authenticate, or a dedup memory shorter than the
//! freshness window is a start-up error.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme as UriScheme};
use http::{HeaderName, HeaderValue, Uri};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use crate::access::{parse_net, AddressAllowlist, AdminAuth, HeaderToken, TokenSet};
use crate::dedup::{RedisSettings, RedisStore, UnavailablePolicy};
use crate::extract::ValueSource;
use crate::redact;
use crate::scheme::{presets, Algorithm, Encoding, Scheme, Shape, SigningKey, Template};
use crate::secret::{Env, Secret, SecretEncoding, SecretRef};
use crate::sender::format::{render_template, TemplateValues};
use crate::sender::outbound::{OutboundConfig, Target};
use crate::sender::retry::RetryPolicy;
use crate::sender::Signer;
use crate::server::Limits;
pub use crate::source::MissingId;
use crate::source::{
    check_replay_cover, DedupPolicy, Freshness, SignatureCheck, Source, Upstream,
    DEFAULT_INFLIGHT_WAIT, MAX_INFLIGHT_WAIT,
};
use crate::timestamp::TimeFormat;
use crate::tls::{upstream_client_config, TlsFiles, TlsReloader};

/// The default configuration, compiled in: `hookgate serve` uses it when no file is given and
/// `config/hookgate.toml` does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/hookgate.toml");

/// The longest window or dedup memory accepted.
const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// A duration written like `90s`, `5m`, `18h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration: {e}")))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSpec,
    #[serde(default)]
    pub dedup: DedupStoreSpec,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceSpec>,
    /// The outbound sidecar listener; off when absent.
    pub outbound: Option<OutboundSpec>,
    /// The admin listener (metrics, health, reload); off when absent.
    pub admin: Option<AdminSpec>,
    /// Trust for `https://` upstreams.
    pub upstream_tls: Option<UpstreamTlsSpec>,
    /// Connection and request limits of the public listener.
    #[serde(default)]
    pub limits: LimitsSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Time from accept to a complete first request head (TLS and protocol detection included).
    pub first_request_timeout: Option<Dur>,
    /// Time to receive a request head once it has begun.
    pub header_read_timeout: Option<Dur>,
    /// A connection with no request in progress this long is closed.
    pub idle_timeout: Option<Dur>,
    /// Open connections at most; more are closed at accept.
    pub max_connections: Option<usize>,
    /// Bytes of unverified request bodies being received, all requests together.
    pub max_pending_body_bytes: Option<usize>,
    /// HTTP/2 streams reset by the client before being accepted, per connection.
    pub h2_max_pending_accept_reset_streams: Option<usize>,
    /// HTTP/2 streams reset by the server for protocol errors, per connection.
    pub h2_max_local_error_reset_streams: Option<usize>,
    /// Largest request head (request line + headers), in bytes.
    pub max_header_bytes: Option<usize>,
    /// Most headers in one request.
    pub max_headers: Option<usize>,
    /// Requests handled at once; more are shed with 503 + Retry-After.
    pub max_concurrent_requests: Option<usize>,
    /// HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: Option<u32>,
    /// Time open requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    /// Default `127.0.0.1:9090`.
    pub listen: Option<SocketAddr>,
    /// Bearer token required by the endpoints that change state; required when `listen` is
    /// not a loopback address. Without it those endpoints are off.
    pub token: Option<SecretRef>,
    /// Bearer token required by `/metrics`, `/healthz` and `/readyz` too, when set.
    pub metrics_token: Option<SecretRef>,
}

/// The admin listener, resolved.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub auth: AdminAuth,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSpec {
    /// A PEM file of CA certificates trusted in addition to the system's roots.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM certificate chain (relative paths: from the configuration file's folder).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSpec {
    /// Default `127.0.0.1:8081` (loopback: it takes unauthenticated events from local apps).
    pub listen: Option<SocketAddr>,
    /// Queued deliveries per target. Default 1000.
    pub queue: Option<usize>,
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub name: String,
    pub url: String,
    pub preset: String,
    /// Signing secret (or bearer token for presets that do not sign).
    pub secret: Option<SecretRef>,
    /// Retry policy; default: the preset's.
    pub retry: Option<String>,
    /// Randomise delays by up to ± this fraction.
    pub jitter: Option<f64>,
    /// Consecutive failed deliveries before pausing. Default 10.
    pub pause_after: Option<u32>,
    /// Deliveries in progress at once. Default 4.
    pub concurrency: Option<usize>,
    /// Corgea-style body template.
    pub template: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Address of the public listener. Default `127.0.0.1:8080`.
    pub listen: Option<SocketAddr>,
    /// Default body limit for sources that set none. Default 1 MiB.
    pub max_body_bytes: Option<usize>,
    /// How long a client may take to send its body. Default 30 s.
    pub body_timeout: Option<Dur>,
    /// Default upstream timeout for sources that set none. Default 30 s.
    pub upstream_timeout: Option<Dur>,
    /// Terminate TLS on the public listener.
    pub tls: Option<TlsSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupStoreSpec {
    /// `memory` (default) or `redis`.
    pub backend: Option<String>,
    /// Maximum number of keys kept in memory. Default 1,000,000.
    pub capacity: Option<u64>,
    /// Settings of the `redis` backend.
    pub redis: Option<RedisSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// `redis://[user:password@]host:port/db` (or `rediss://`). A password belongs in
    /// `url_env` instead.
    pub url: Option<String>,
    /// Environment variable holding the URL (when it carries a password).
    pub url_env: Option<String>,
    /// Timeout of every Redis call. Default 250 ms.
    pub timeout: Option<Dur>,
    /// Prefix of every key. Default `hookgate:`.
    pub key_prefix: Option<String>,
    /// `fail_closed` (default: 503 + Retry-After) or `fail_open` (forward without dedup).
    pub on_unavailable: Option<UnavailablePolicy>,
}

/// Which dedup store to use.
#[derive(Debug, Clone)]
pub enum DedupBackend {
    Memory { capacity: u64 },
    Redis(RedisSettings),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    pub path: String,
    pub preset: Option<String>,
    pub upstream: String,
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    pub signature: Option<SignatureSpec>,
    pub freshness: Option<FreshnessSpec>,
    pub dedup: Option<DedupSpec>,
    pub token: Option<TokenSpec>,
    pub path_token: Option<SecretRef>,
    pub allow_ips: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    /// Pass the query string to the upstream (no signature covers it). Default false.
    pub forward_query: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub upstream_timeout: Option<Dur>,
}

/// How the signature header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    Plain,
    KeyValue,
    Versioned,
}

/// A signature scheme; every field optional so a preset can fill the rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSpec {
    pub header: Option<String>,
    pub algorithm: Option<Algorithm>,
    pub encoding: Option<Encoding>,
    pub format: Option<SignatureFormat>,
    /// `plain` format: text before the MAC, e.g. `sha256=`.
    pub prefix: Option<String>,
    /// `versioned` and `key-value` formats: the signature's version tag (`v1`).
    pub version: Option<String>,
    /// `key-value` format: the key of the timestamp entry (`t`).
    pub timestamp_key: Option<String>,
    /// The signed bytes, e.g. `{timestamp}.{body}`.
    pub signed: Option<String>,
    /// Where `{timestamp}` comes from.
    pub timestamp: Option<String>,
    /// Where `{id}` comes from.
    pub id: Option<String>,
    pub secret_encoding: Option<SecretEncoding>,
}

impl SignatureSpec {
    fn over(self, base: SignatureSpec) -> SignatureSpec {
        SignatureSpec {
            header: self.header.or(base.header),
            algorithm: self.algorithm.or(base.algorithm),
            encoding: self.encoding.or(base.encoding),
            format: self.format.or(base.format),
            prefix: self.prefix.or(base.prefix),
            version: self.version.or(base.version),
            timestamp_key: self.timestamp_key.or(base.timestamp_key),
            signed: self.signed.or(base.signed),
            timestamp: self.timestamp.or(base.timestamp),
            id: self.id.or(base.id),
            secret_encoding: self.secret_encoding.or(base.secret_encoding),
        }
    }
}

/// Where the delivery time is and how old it may be.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessSpec {
    pub enabled: Option<bool>,
    /// One value source or a list of candidates (first present wins).
    #[serde(default, deserialize_with = "one_or_many")]
    pub from: Option<Vec<String>>,
    pub format: Option<TimeFormat>,
    pub required: Option<bool>,
    pub window: Option<Dur>,
    pub future_skew: Option<Dur>,
}

impl FreshnessSpec {
    fn over(self, base: FreshnessSpec) -> FreshnessSpec {
        FreshnessSpec {
            enabled: self.enabled.or(base.enabled),
            from: self.from.or(base.from),
            format: self.format.or(base.format),
            required: self.required.or(base.required),
            window: self.window.or(base.window),
            future_skew: self.future_skew.or(base.future_skew),
        }
    }
}

/// How deliveries are recognised as the same event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSpec {
    pub enabled: Option<bool>,
    /// Where the event id is; absent means a digest of the body.
    pub id: Option<String>,
    pub on_missing: Option<MissingId>,
    pub ttl: Option<Dur>,
    /// How long a duplicate waits for an in-flight copy's outcome (then 503).
    pub inflight_wait: Option<Dur>,
}

impl DedupSpec {
    fn over(self, base: DedupSpec) -> DedupSpec {
        DedupSpec {
            enabled: self.enabled.or(base.enabled),
            id: self.id.or(base.id),
            on_missing: self.on_missing.or(base.on_missing),
            ttl: self.ttl.or(base.ttl),
            inflight_wait: self.inflight_wait.or(base.inflight_wait),
        }
    }
}

/// A static token in a header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    #[serde(default = "default_token_header")]
    pub header: String,
    /// Text before the token, e.g. `Bearer `. Default: none.
    #[serde(default)]
    pub prefix: String,
    pub secrets: Vec<SecretRef>,
}

fn default_token_header() -> String {
    "Authorization".to_string()
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub dedup_capacity: u64,
    pub dedup_backend: DedupBackend,
    pub sources: Vec<Arc<Source>>,
    pub outbound: Option<OutboundConfig>,
    /// The admin listener, when enabled.
    pub admin: Option<AdminConfig>,
    /// Certificate and key of the public listener, when it terminates TLS.
    pub tls: Option<TlsFiles>,
    /// Extra CA for `https://` upstreams.
    pub upstream_ca: Option<PathBuf>,
    pub limits: Limits,
    /// Things that work but should not be in production (logged at start).
    pub warnings: Vec<String>,
}

/// A configuration error: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(at: &str, message: impl fmt::Display) -> Result<T, ConfigError> {
    Err(ConfigError(format!("{at}: {message}")))
}

/// Reads and validates a configuration file; relative secret files are taken from its folder.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &base, env).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
}

/// Parses and validates configuration text.
pub fn parse(text: &str, base_dir: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    resolve(file, base_dir, env)
}

/// A TOML error on one line: position and message (the default rendering spans several lines).
fn toml_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            ConfigError(format!("line {line}, column {column}: {message}"))
        }
        None => ConfigError(message.to_string()),
    }
}

fn resolve(file: FileConfig, base_dir: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let defaults = Defaults {
        max_body: file.server.max_body_bytes.unwrap_or(1024 * 1024),
        body_timeout: file
            .server
            .body_timeout
            .map_or(Duration::from_secs(30), |d| d.0),
        upstream_timeout: file
            .server
            .upstream_timeout
            .map_or(Duration::from_secs(30), |d| d.0),
    };
    if file.sources.is_empty() {
        return err("source", "no [[source]] is configured");
    }
    let mut warnings = Vec::new();
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    let mut sources = Vec::new();
    for spec in file.sources {
        let at = format!("source[{}]", spec.name);
        if !names.insert(spec.name.clone()) {
            return err(&at, "duplicate source name");
        }
        if !paths.insert(spec.path.clone()) {
            return err(
                &format!("{at}.path"),
                format!("path {} is used twice", spec.path),
            );
        }
        let source = resolve_source(spec, &at, base_dir, env, &defaults, &mut warnings)?;
        sources.push(Arc::new(source));
    }
    let capacity = file.dedup.capacity.unwrap_or(1_000_000);
    if capacity == 0 {
        return err("dedup.capacity", "must be at least 1");
    }
    let dedup_backend = match file.dedup.backend.as_deref().unwrap_or("memory") {
        "memory" => {
            if file.dedup.redis.is_some() {
                return err("dedup.redis", "is set but dedup.backend is not \"redis\"");
            }
            DedupBackend::Memory { capacity }
        }
        "redis" => {
            let spec = file.dedup.redis.as_ref().ok_or_else(|| {
                ConfigError("dedup.redis: the redis backend needs [dedup.redis]".into())
            })?;
            let url = match (&spec.url, &spec.url_env) {
                (Some(url), None) => {
                    if redact::url(url) != *url {
                        warnings.push(
                            "dedup.redis.url: carries credentials in the configuration file; use url_env".into(),
                        );
                    }
                    url.clone()
                }
                (None, Some(var)) => env.var(var).ok_or_else(|| {
                    ConfigError(format!(
                        "dedup.redis.url_env: environment variable {var} is not set"
                    ))
                })?,
                _ => return err("dedup.redis", "set exactly one of url and url_env"),
            };
            let timeout = spec.timeout.map_or(Duration::from_millis(250), |d| d.0);
            if timeout.is_zero() {
                return err("dedup.redis.timeout", "must be more than 0");
            }
            let settings = RedisSettings {
                url,
                timeout,
                key_prefix: spec
                    .key_prefix
                    .clone()
                    .unwrap_or_else(|| "hookgate:".into()),
                on_unavailable: spec.on_unavailable.unwrap_or(UnavailablePolicy::FailClosed),
            };
            // Parses the URL now, so a bad one is a start-up error.
            RedisStore::new(settings.clone()).or_else(|m| err("dedup.redis.url", m))?;
            if settings.on_unavailable == UnavailablePolicy::FailOpen {
                warnings.push(
                    "dedup.redis.on_unavailable = fail_open: while Redis is unreachable, replays and duplicates are forwarded".into(),
                );
            }
            DedupBackend::Redis(settings)
        }
        other => {
            return err(
                "dedup.backend",
                format!("unknown backend `{other}` (memory or redis)"),
            )
        }
    };
    let outbound = match file.outbound {
        Some(spec) => Some(resolve_outbound(spec, base_dir, env, &mut warnings)?),
        None => None,
    };
    let tls = match file.server.tls {
        Some(spec) => {
            let files = TlsFiles {
                cert: base_dir.join(spec.cert),
                key: base_dir.join(spec.key),
            };
            // Loaded now so a bad file is a start-up (or reload) error, not a handshake error.
            TlsReloader::new(&files)?;
            Some(files)
        }
        None => None,
    };
    let upstream_ca = file
        .upstream_tls
        .and_then(|t| t.ca)
        .map(|ca| base_dir.join(ca));
    if let Some(ca) = &upstream_ca {
        upstream_client_config(Some(ca))?;
    }
    let limits = resolve_limits(&file.limits)?;
    let admin = file
        .admin
        .map(|spec| resolve_admin(spec, base_dir, env, &mut warnings))
        .transpose()?;
    Ok(Config {
        listen: file
            .server
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        dedup_capacity: capacity,
        dedup_backend,
        sources,
        outbound,
        admin,
        tls,
        upstream_ca,
        limits,
        warnings,
    })
}

fn resolve_admin(
    spec: AdminSpec,
    base_dir: &Path,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<AdminConfig, ConfigError> {
    let listen = spec
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090)));
    let mut load = |r: &Option<SecretRef>, key: &str| -> Result<Option<TokenSet>, ConfigError> {
        let Some(r) = r else { return Ok(None) };
        if matches!(r, SecretRef::Value(_)) {
            warnings.push(format!(
                "admin.{key}: literal token in the configuration file"
            ));
        }
        let token = r
            .load(env, base_dir)
            .or_else(|m| err(&format!("admin.{key}"), m))?;
        if token.len() < 16 {
            return err(&format!("admin.{key}"), "must be at least 16 characters");
        }
        Ok(Some(TokenSet::new(&[Secret::new(token)])))
    };
    let auth = AdminAuth {
        token: load(&spec.token, "token")?,
        metrics_token: load(&spec.metrics_token, "metrics_token")?,
    };
    check_admin_exposure(listen, &auth)?;
    Ok(AdminConfig { listen, auth })
}

/// An admin listener off loopback must have a token: it can reload the configuration and
/// forget dedup keys.
pub fn check_admin_exposure(listen: SocketAddr, auth: &AdminAuth) -> Result<(), ConfigError> {
    if !listen.ip().is_loopback() && auth.token.is_none() {
        return err(
            "admin.token",
            format!("admin.listen {listen} is not a loopback address: set admin.token (env or file) or listen on 127.0.0.1"),
        );
    }
    Ok(())
}

fn resolve_limits(spec: &LimitsSpec) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let limits = Limits {
        first_request_timeout: spec
            .first_request_timeout
            .map_or(d.first_request_timeout, |t| t.0),
        header_read_timeout: spec
            .header_read_timeout
            .map_or(d.header_read_timeout, |t| t.0),
        idle_timeout: spec.idle_timeout.map_or(d.idle_timeout, |t| t.0),
        max_connections: spec.max_connections.unwrap_or(d.max_connections),
        max_pending_body_bytes: spec
            .max_pending_body_bytes
            .unwrap_or(d.max_pending_body_bytes),
        h2_max_pending_accept_reset_streams: spec
            .h2_max_pending_accept_reset_streams
            .unwrap_or(d.h2_max_pending_accept_reset_streams),
        h2_max_local_error_reset_streams: spec
            .h2_max_local_error_reset_streams
            .unwrap_or(d.h2_max_local_error_reset_streams),
        max_header_bytes: spec.max_header_bytes.unwrap_or(d.max_header_bytes),
        max_headers: spec.max_headers.unwrap_or(d.max_headers),
        max_concurrent_requests: spec
            .max_concurrent_requests
            .unwrap_or(d.max_concurrent_requests),
        h2_max_concurrent_streams: spec
            .h2_max_concurrent_streams
            .unwrap_or(d.h2_max_concurrent_streams),
        shutdown_grace: spec.shutdown_grace.map_or(d.shutdown_grace, |t| t.0),
    };
    for (key, value) in [
        ("first_request_timeout", limits.first_request_timeout),
        ("header_read_timeout", limits.header_read_timeout),
        ("idle_timeout", limits.idle_timeout),
    ] {
        if value.is_zero() {
            return err(&format!("limits.{key}"), "must be more than 0");
        }
    }
    if limits.max_connections == 0 || limits.max_connections > u32::MAX as usize {
        return err("limits.max_connections", "must be between 1 and 4294967295");
    }
    if limits.max_pending_body_bytes == 0 {
        return err("limits.max_pending_body_bytes", "must be at least 1");
    }
    if limits.max_header_bytes < 8192 {
        return err("limits.max_header_bytes", "must be at least 8192");
    }
    if limits.max_headers == 0
        || limits.max_concurrent_requests == 0
        || limits.h2_max_concurrent_streams == 0
    {
        return err(
            "limits",
            "max_headers, max_concurrent_requests and h2_max_concurrent_streams must be at least 1",
        );
    }
    Ok(limits)
}

fn resolve_outbound(
    spec: OutboundSpec,
    base_dir: &Path,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<OutboundConfig, ConfigError> {
    if spec.targets.is_empty() {
        return err(
            "outbound.target",
            "[outbound] needs at least one [[outbound.target]]",
        );
    }
    let listen = spec
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081)));
    if !listen.ip().is_loopback() {
        warnings.push(format!(
            "outbound.listen: {listen} is not loopback; anyone who reaches it can make hookgate sign events"
        ));
    }
    let mut names = HashSet::new();
    let mut targets = Vec::new();
    for t in spec.targets {
        let at = format!("outbound.target[{}]", t.name);
        if t.name.is_empty() || t.name.contains('/') || !names.insert(t.name.clone()) {
            return err(&at, "name must be non-empty, unique and without '/'");
        }
        let url: Uri = t
            .url
            .parse()
            .ok()
            .filter(|u: &Uri| u.scheme() == Some(&UriScheme::HTTP) && u.authority().is_some())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{at}.url: `{}` is not an http:// URL",
                    redact::url(&t.url)
                ))
            })?;
        let secret = match &t.secret {
            Some(r) => {
                if matches!(r, SecretRef::Value(_)) {
                    warnings.push(format!(
                        "{at}.secret: literal secret in the configuration file"
                    ));
                }
                Some(
                    r.load(env, base_dir)
                        .or_else(|m| err(&format!("{at}.secret"), m))?,
                )
            }
            None => None,
        };
        let signer = Signer::for_preset(&t.preset, secret.as_deref())
            .or_else(|e| err(&format!("{at}.preset"), e))?;
        let mut retry =
            RetryPolicy::parse(t.retry.as_deref().unwrap_or(signer.preset().sender.retry))
                .or_else(|m| err(&format!("{at}.retry"), m))?;
        if let Some(jitter) = t.jitter {
            if !(0.0..=1.0).contains(&jitter) {
                return err(&format!("{at}.jitter"), "must be between 0 and 1");
            }
            retry.jitter = jitter;
        }
        if let Some(template) = &t.template {
            let probe = TemplateValues {
                payload: "{}",
                unix_secs: 0,
                event_type: "probe",
                event_id: "probe",
            };
            render_template(template, &probe).or_else(|e| err(&format!("{at}.template"), e))?;
        }
        targets.push(Target {
            name: t.name.clone(),
            url,
            signer,
            retry,
            pause_after: t.pause_after.unwrap_or(10).max(1),
            concurrency: t.concurrency.unwrap_or(4).clamp(1, 256),
            template: t.template,
        });
    }
    Ok(OutboundConfig {
        listen,
        queue: spec.queue.unwrap_or(1000).max(1),
        targets,
    })
}

struct Defaults {
    max_body: usize,
    body_timeout: Duration,
    upstream_timeout: Duration,
}

fn resolve_source(
    spec: SourceSpec,
    at: &str,
    base_dir: &Path,
    env: &dyn Env,
    defaults: &Defaults,
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
            let scheme = build_scheme(&sig).or_else(|m| err(&format!("{at}.signature"), m))?;
            if spec.secrets.is_empty() {
                return err(
                    &format!("{at}.secrets"),
                    "a signed source needs at least one secret",
                );
            }
            let encoding = sig.secret_encoding.unwrap_or(SecretEncoding::Raw);
            let mut keys = Vec::new();
            for (i, r) in spec.secrets.iter().enumerate() {
                let text = load_secret(r, &format!("secrets[{i}]"))?;
                let secret = encoding
                    .decode(&text)
                    .or_else(|m| err(&format!("{at}.secrets[{i}]"), m))?;
                keys.push(SigningKey::new(scheme.algorithm, &secret));
                secret_origins.push(r.describe());
            }
            Some(SignatureCheck { scheme, keys })
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
            if value.contains('/') || value.len() < 16 {
                return err(
                    &format!("{at}.path_token"),
                    "must be at least 16 characters and contain no '/'",
                );
            }
            Some(TokenSet::new(&[Secret::new(value)]))
        }
        None => None,
    };
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
    let upstream_timeout = spec.upstream_timeout.map(|d| d.0).unwrap_or_else(|| {
        preset
            .as_ref()
            .map_or(defaults.upstream_timeout, |p| p.upstream_timeout())
    });
    let timeout_reason = match (&spec.upstream_timeout, &preset) {
        (None, Some(p)) => Some(p.timeout_reason),
        _ => None,
    };
    let upstream = parse_upstream(&spec.upstream, &spec.name, upstream_timeout)
        .or_else(|m| err(&format!("{at}.upstream"), m))?;

    let (preset_fresh, preset_dedup, window_reason, preset_name) = match &preset {
        Some(p) => (
            p.freshness.clone(),
            DedupSpec {
                inflight_wait: Some(Dur(p.inflight_wait())),
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
        upstream,
        max_body: spec.max_body_bytes.unwrap_or(defaults.max_body),
        body_timeout: defaults.body_timeout,
        window_reason,
        timeout_reason,
        secret_origins,
    };
    if source.max_body == 0 {
        return err(&format!("{at}.max_body_bytes"), "must be at least 1");
    }
    source.freshness =
        build_freshness(&fresh_spec, &source).or_else(|m| err(&format!("{at}.freshness"), m))?;
    source.dedup = build_dedup(&dedup_spec, &source).or_else(|m| err(&format!("{at}.dedup"), m))?;
    check_replay_cover(source.freshness.as_ref(), source.dedup.as_ref())
        .or_else(|m| err(&format!("{at}.dedup.ttl"), m))?;
    if source.freshness.is_none() && source.dedup.is_none() {
        warnings.push(format!(
            "{at}: neither freshness nor dedup is on: replays are not stopped"
        ));
    }
    Ok(source)
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

pub(crate) fn build_scheme(sig: &SignatureSpec) -> Result<Scheme, String> {
    let header = sig.header.as_deref().ok_or("header is not set")?;
    let header = HeaderName::from_bytes(header.as_bytes())
        .map_err(|_| format!("`{header}` is not a valid header name"))?;
    let format = sig.format.unwrap_or(SignatureFormat::Plain);
    let shape = match format {
        SignatureFormat::Plain => Shape::Plain {
            prefix: sig.prefix.clone().unwrap_or_default(),
        },
        SignatureFormat::KeyValue => Shape::KeyValue {
            timestamp_key: sig.timestamp_key.clone().unwrap_or_else(|| "t".into()),
            signature_key: sig.version.clone().unwrap_or_else(|| "v1".into()),
        },
        SignatureFormat::Versioned => Shape::Versioned {
            version: sig.version.clone().unwrap_or_else(|| "v1".into()),
        },
    };
    let parse_source = |s: &Option<String>, key: &str| -> Result<Option<ValueSource>, String> {
        s.as_deref()
            .map(|t| ValueSource::parse(t).map_err(|m| format!("{key}: {m}")))
            .transpose()
    };
    let scheme = Scheme {
        algorithm: sig.algorithm.ok_or("algorithm is not set")?,
        encoding: sig.encoding.ok_or("encoding is not set")?,
        header,
        shape,
        template: Template::parse(sig.signed.as_deref().unwrap_or("{body}"))
            .map_err(|m| format!("signed: {m}"))?,
        timestamp: parse_source(&sig.timestamp, "timestamp")?,
        id: parse_source(&sig.id, "id")?,
    };
    scheme.validate()?;
    Ok(scheme)
}

fn build_freshness(spec: &FreshnessSpec, source: &Source) -> Result<Option<Freshness>, String> {
    let enabled = spec.enabled.unwrap_or(spec.from.is_some());
    if !enabled {
        return Ok(None);
    }
    let from = spec
        .from
        .as_ref()
        .filter(|f| !f.is_empty())
        .ok_or("from is not set")?;
    let from = from
        .iter()
        .map(|s| ValueSource::parse(s).map_err(|m| format!("from: {m}")))
        .collect::<Result<Vec<_>, _>>()?;
    if from
        .iter()
        .any(|s| matches!(s, ValueSource::SignatureParam(_)))
        && !source
            .signature
            .as_ref()
            .is_some_and(|s| matches!(s.scheme.shape, Shape::KeyValue { .. }))
    {
        return Err("from = signature:<param> needs a key-value signature format".into());
    }
    let window = spec.window.map_or(Duration::from_secs(300), |d| d.0);
    let future_skew = spec.future_skew.map_or(Duration::from_secs(300), |d| d.0);
    if window.is_zero() || window > MAX_WINDOW {
        return Err(format!(
            "window {} must be between 1s and 30 days",
            Dur(window)
        ));
    }
    if future_skew > Duration::from_secs(24 * 3600) {
        return Err(format!(
            "future_skew {} must be at most 24h",
            Dur(future_skew)
        ));
    }
    Ok(Some(Freshness {
        from,
        format: spec.format.unwrap_or(TimeFormat::Auto),
        required: spec.required.unwrap_or(true),
        window,
        future_skew,
    }))
}

fn build_dedup(spec: &DedupSpec, source: &Source) -> Result<Option<DedupPolicy>, String> {
    if !spec.enabled.unwrap_or(true) {
        return Ok(None);
    }
    let id = spec
        .id
        .as_deref()
        .map(|s| ValueSource::parse(s).map_err(|m| format!("id: {m}")))
        .transpose()?;
    if matches!(id, Some(ValueSource::SignatureParam(_))) {
        return Err("id must come from a header or the body".into());
    }
    let default_ttl = source
        .freshness
        .as_ref()
        .map_or(Duration::from_secs(24 * 3600), DedupPolicy::required_ttl);
    let ttl = spec.ttl.map_or(default_ttl, |d| d.0);
    if ttl.is_zero() || ttl > MAX_WINDOW {
        return Err(format!("ttl {} must be between 1s and 30 days", Dur(ttl)));
    }
    let inflight_wait = spec.inflight_wait.map_or(DEFAULT_INFLIGHT_WAIT, |d| d.0);
    if inflight_wait > MAX_INFLIGHT_WAIT {
        return Err(format!(
            "inflight_wait {} must be at most {}",
            Dur(inflight_wait),
            Dur(MAX_INFLIGHT_WAIT)
        ));
    }
    let id_signed = id.as_ref().is_some_and(|s| source.id_signed(s));
    let scope: [u8; 32] = Sha256::digest(source.name.as_bytes()).into();
    Ok(Some(DedupPolicy {
        id,
        id_signed,
        on_missing: spec.on_missing.unwrap_or(MissingId::Digest),
        ttl,
        inflight_wait,
        scope: scope[..16].try_into().expect("16 bytes"),
    }))
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
    let base_uri = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path_and_query.as_str())
        .build()
        .map_err(|e| format!("`{shown}`: {e}"))?;
    Ok(Upstream {
        host_header: HeaderValue::from_str(authority.as_str())
            .map_err(|_| "bad host".to_string())?,
        source_header: HeaderValue::from_str(source).map_err(|_| "bad source name".to_string())?,
        base_uri,
        scheme,
        authority,
        path_and_query,
        timeout,
    })
}

/// The default location of the configuration file.
pub fn default_path() -> PathBuf {
    PathBuf::from("config/hookgate.toml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<String, String> {
        [("S".to_string(), "secret".to_string())].into()
    }

    fn parse_ok(text: &str) -> Config {
        parse(text, Path::new("."), &env()).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("."), &env()).unwrap_err().0
    }

    const MINIMAL: &str = r#"
[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "http://127.0.0.1:9000/in"
secrets = [{ env = "S" }]
"#;

    #[test]
    fn embedded_default_is_valid() {
        let config = parse(EMBEDDED_DEFAULT, Path::new("config"), &HashMap::new()).unwrap();
        assert!(!config.sources.is_empty());
        assert!(!config.warnings.is_empty(), "demo secrets must warn");
    }

    #[test]
    fn example_configurations_match_the_schema() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for example in [
            "config/examples/standalone.toml",
            "config/examples/sidecar.toml",
        ] {
            let text = std::fs::read_to_string(root.join(example)).unwrap();
            let file: FileConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
            assert!(!file.sources.is_empty());
        }
        // The manifest embeds a configuration too.
        let manifest =
            std::fs::read_to_string(root.join("deploy/kubernetes/hookgate-sidecar.yaml")).unwrap();
        let start = manifest.find("hookgate.toml: |").unwrap();
        let embedded: String = manifest[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("---"))
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let file: FileConfig = toml::from_str(&embedded).unwrap();
        assert_eq!(file.sources[0].preset.as_deref(), Some("github"));
    }

    #[test]
    fn preset_fields_are_filled_and_overridable() {
        let config = parse_ok(MINIMAL);
        let source = &config.sources[0];
        assert_eq!(
            source.freshness.as_ref().unwrap().window,
            Duration::from_secs(18 * 3600)
        );
        assert!(source.dedup.as_ref().unwrap().id_signed);
        let text = MINIMAL.to_string()
            + "freshness = { window = \"20h\" }\ndedup = { ttl = \"20h 5m\" }\n";
        let config = parse_ok(&text);
        assert_eq!(
            config.sources[0].freshness.as_ref().unwrap().window,
            Duration::from_secs(20 * 3600)
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert!(parse_err(&MINIMAL.replace("preset", "presett")).contains("presett"));
        assert!(parse_err(&MINIMAL.replace("\"S\"", "\"NOPE\"")).contains("source[ck].secrets[0]"));
        assert!(
            parse_err(&MINIMAL.replace("cloudkeep", "cloudcreep")).contains("source[ck].preset")
        );
        assert!(
            parse_err(&MINIMAL.replace("http://127.0.0.1:9000/in", "not a url"))
                .contains("source[ck].upstream")
        );
        let twice = format!("{MINIMAL}{}", MINIMAL.replace("\"ck\"", "\"ck2\""));
        assert!(parse_err(&twice).contains("source[ck2].path"));
        assert!(parse_err(&MINIMAL.replace("/hooks/ck", "/hooks/../ck")).contains("path"));
        let short = MINIMAL.to_string() + "dedup = { ttl = \"1m\" }\n";
        assert!(parse_err(&short).contains("dedup.ttl"));
        let unknown = MINIMAL.to_string() + "signature = { algo = \"sha1\" }\n";
        assert!(parse_err(&unknown).contains("algo"));
    }

    #[test]
    fn unauthenticated_sources_are_refused() {
        let text = r#"
[[source]]
name = "cc"
path = "/hooks/cc"
preset = "certifyclouds"
upstream = "http://127.0.0.1:9000/in"
"#;
        assert!(parse_err(text).contains("no way to authenticate"));
        let with_token =
            text.to_string() + "token = { prefix = \"Bearer \", secrets = [{ env = \"S\" }] }\n";
        let config = parse_ok(&with_token);
        assert!(config.sources[0].dedup.as_ref().unwrap().id.is_none());
    }

    #[test]
    fn generic_scheme_is_built_from_fields() {
        let text = r#"
[[source]]
name = "gen"
path = "/g"
upstream = "http://127.0.0.1:1/"
secrets = [{ value = "demo" }]
signature = { header = "X-Sig", algorithm = "sha512", encoding = "base64url-nopad", signed = "{timestamp}:{body}", timestamp = "header:X-Ts" }
freshness = { from = "header:X-Ts", format = "unix_ms", window = "2m" }
"#;
        let config = parse_ok(text);
        let s = &config.sources[0];
        assert!(s.timestamp_signed(&ValueSource::parse("header:X-Ts").unwrap()));
        assert_eq!(config.warnings.len(), 1);
        let missing = text.replace(", timestamp = \"header:X-Ts\"", "");
        assert!(parse_err(&missing).contains("signature.timestamp"));
    }
}
