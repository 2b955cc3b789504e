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
    /// The public listener (`[server]`).
    #[serde(default)]
    pub server: ServerSpec,
    /// The dedup store shared by every source (`[dedup]`).
    #[serde(default)]
    pub dedup: DedupStoreSpec,
    /// The inbound webhook sources, one `[[source]]` table each.
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

/// `[limits]`: connection and request limits of the public listener. An unset key takes the
/// default of [`crate::server::Limits`].
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

/// `[admin]`: the admin listener (metrics, health, reload, dedup forget).
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

/// `[delivery]`: where the durable delivery store lives and the engine's bounds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// Folder of the delivery store (`deliveries.sqlite3` and its `-wal` file). Default
    /// `data`, relative to the configuration file's folder; required by a queued source.
    pub data_dir: Option<PathBuf>,
    /// The least wait after a `Retry-After`. Default 1 s.
    #[serde(default, with = "humantime_serde")]
    pub retry_after_floor: Option<Duration>,
    /// Attempts per delivery cycle at most, whatever the retry policy. Default 25.
    pub max_attempts: Option<u32>,
    /// Attempts kept per delivery in its history. Default 20.
    pub history: Option<u32>,
    /// Pending deliveries at most (outbound and queued sources together); new events are
    /// refused with `503` past it. Default: no bound but the disk.
    pub max_pending: Option<u64>,
}

/// `[upstream_tls]`: extra trust for `https://` upstreams.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSpec {
    /// A PEM file of CA certificates trusted in addition to the system's roots.
    pub ca: Option<PathBuf>,
}

/// `[server.tls]`: the certificate and key the public listener terminates TLS with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM certificate chain (relative paths: from the configuration file's folder).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[outbound]`: the sidecar listener local applications post events to, and its targets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSpec {
    /// Default `127.0.0.1:8081` (loopback: it takes unauthenticated events from local apps).
    pub listen: Option<SocketAddr>,
    /// Ignored: deliveries wait in the durable store (`[delivery]`). Accepted for old files.
    pub queue: Option<usize>,
    /// A PEM file of CA certificates trusted for `https://` targets besides the system's.
    pub ca: Option<PathBuf>,
    /// The targets events are delivered to, one `[[outbound.target]]` table each.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetSpec>,
}

/// `[[outbound.target]]`: one receiver the sidecar delivers signed events to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Name of the target: the `<target>` in `/outbound/<target>`; unique, non-empty, no `/`.
    pub name: String,
    /// The receiver's `http://` or `https://` URL, posted to once per attempt.
    pub url: String,
    /// The preset whose scheme signs the deliveries (and whose retry policy is the default).
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

/// `[server]`: the public listener and the defaults of sources that set none.
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
    /// `per-core` (default) or `shared`: how the public listener's connections are run.
    pub runtime: Option<String>,
}

/// `[dedup]`: which store remembers delivery ids, and its settings.
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

/// `[dedup.redis]`: the Redis store shared by several replicas.
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

/// `[[source]]`: one webhook sender, the path it posts to and how it is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Name of the source, unique; shown in logs and metric labels.
    pub name: String,
    /// The path the sender posts to: starts with `/`, unique, no trailing `/`.
    pub path: String,
    /// The preset (provider) whose signature scheme, freshness window and dedup id apply.
    pub preset: Option<String>,
    /// The `http://` or `https://` URL verified deliveries are forwarded to.
    pub upstream: String,
    /// Signing secrets (public keys, for an asymmetric scheme); a delivery signed with any of
    /// them is accepted, so a new one can be added before the old one is removed.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// The signature scheme, or adjustments to the preset's scheme when a preset is set.
    pub signature: Option<SignatureSpec>,
    /// The public URL (scheme, host, any path prefix) the provider calls, in front of the
    /// path the gateway receives: what `{url}` in a signed template starts with.
    pub public_url: Option<String>,
    /// How old (or how far ahead) a delivery's timestamp may be; default: the preset's.
    pub freshness: Option<FreshnessSpec>,
    /// Where the delivery id comes from and how long it is remembered; default: the preset's.
    pub dedup: Option<DedupSpec>,
    /// A static token the sender puts in a header.
    pub token: Option<TokenSpec>,
    /// A secret last path segment: the sender posts to `<path>/<token>` (16 bytes at least).
    pub path_token: Option<SecretRef>,
    /// Client networks (IP addresses or CIDR) allowed to deliver; others are refused.
    pub allow_ips: Option<Vec<String>>,
    /// Proxies (IP addresses or CIDR) whose forwarding headers are believed for the client address.
    pub trusted_proxies: Option<Vec<String>>,
    /// Pass the query string to the upstream (no signature covers it). Default false.
    pub forward_query: Option<bool>,
    /// Body limit in bytes; default `[server] max_body_bytes`.
    pub max_body_bytes: Option<usize>,
    /// Time the upstream gets to answer; default: the preset's, else `[server] upstream_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub upstream_timeout: Option<Duration>,
    /// The handshake the gateway answers itself (`slack`, `zoom`, `twitch`, `discord`, `meta`,
    /// `dropbox`, or `none`); default: the preset's.
    pub handshake: Option<crate::source::HandshakeKind>,
    /// The verify token of Meta's `GET ?hub.verify_token=…` handshake (chosen by the operator
    /// when registering the callback URL).
    pub verify_token: Option<SecretRef>,
    /// `false`: shadow mode. Every check runs and is logged and counted, and the delivery is
    /// forwarded anyway with `X-Hookgate-Verification: failed; reason=<code>` (or `passed`).
    /// Default true.
    pub enforce: Option<bool>,
    /// `sync` (default): forward at once and pass the upstream's answer back; `queue`: store
    /// the verified delivery durably (`[delivery] data_dir`), answer `202`, deliver it with
    /// `retry`.
    pub delivery: Option<String>,
    /// The retry policy of a queued source (the syntax of `[[outbound.target]] retry`).
    /// Default `standard-webhooks`.
    pub retry: Option<String>,
}

/// A static token in a header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Header carrying the token. Default `Authorization`.
    #[serde(default = "default_token_header")]
    pub header: String,
    /// Text before the token, e.g. `Bearer `. Default: none.
    #[serde(default)]
    pub prefix: String,
    /// Accepted tokens; any of them authenticates a delivery.
    pub secrets: Vec<SecretRef>,
}

fn default_token_header() -> String {
    "Authorization".to_string()
}
