//! The configuration file's schema: serde types mirroring the TOML, unknown keys refused.
//! Every field is optional where a default or a preset can fill it; the defaults are the
//! constants of [`super::defaults`], written once. Durations are humantime (`90s`, `5m`,
//! `18h`); value sources, templates and header names are parsed as the file is read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::dedup::UnavailablePolicy;
use crate::scheme::SignatureSpec;
use crate::secret::SecretRef;
use crate::source::{DedupSpec, FreshnessSpec};

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
    /// The durable delivery store (used by `[outbound]`).
    #[serde(default)]
    pub delivery: DeliverySpec,
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
    #[serde(default, with = "humantime_serde")]
    pub first_request_timeout: Option<Duration>,
    /// Time to receive a request head once it has begun.
    #[serde(default, with = "humantime_serde")]
    pub header_read_timeout: Option<Duration>,
    /// A connection with no request in progress this long is closed.
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
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
    #[serde(default, with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// Folder of the delivery store (`deliveries.sqlite3` and its `-wal` file). Default
    /// `data`, relative to the configuration file's folder.
    pub data_dir: Option<PathBuf>,
    /// The least wait after a `Retry-After`. Default 1 s.
    #[serde(default, with = "humantime_serde")]
    pub retry_after_floor: Option<Duration>,
    /// Attempts per delivery cycle at most, whatever the retry policy. Default 25.
    pub max_attempts: Option<u32>,
    /// Attempts kept per delivery in its history. Default 20.
    pub history: Option<u32>,
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
    /// Ignored: deliveries wait in the durable store (`[delivery]`). Accepted for old files.
    pub queue: Option<usize>,
    /// A PEM file of CA certificates trusted for `https://` targets besides the system's.
    pub ca: Option<PathBuf>,
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
    #[serde(default, with = "humantime_serde")]
    pub body_timeout: Option<Duration>,
    /// Default upstream timeout for sources that set none. Default 30 s.
    #[serde(default, with = "humantime_serde")]
    pub upstream_timeout: Option<Duration>,
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
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Prefix of every key. Default `hookgate:`.
    pub key_prefix: Option<String>,
    /// `fail_closed` (default: 503 + Retry-After) or `fail_open` (forward without dedup).
    pub on_unavailable: Option<UnavailablePolicy>,
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
    /// The public URL (scheme, host, any path prefix) the provider calls, in front of the
    /// path the gateway receives: what `{url}` in a signed template starts with.
    pub public_url: Option<String>,
    pub freshness: Option<FreshnessSpec>,
    pub dedup: Option<DedupSpec>,
    pub token: Option<TokenSpec>,
    pub path_token: Option<SecretRef>,
    pub allow_ips: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    /// Pass the query string to the upstream (no signature covers it). Default false.
    pub forward_query: Option<bool>,
    pub max_body_bytes: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub upstream_timeout: Option<Duration>,
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
