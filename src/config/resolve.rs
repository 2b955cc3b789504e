//! From a parsed file to a validated [`Config`]: sources (see [`super::source`]), the dedup
//! store, the listeners' limits, the admin plane, TLS files and outbound targets (see
//! [`super::outbound`]). Every error names the key it is about.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::outbound::{resolve_delivery, resolve_outbound};
use super::schema::{AdminSpec, DedupStoreSpec, FileConfig, LimitsSpec};
use super::source::SourceDefaults;
use super::{defaults, err, AdminConfig, Config, ConfigError, DedupBackend};
use crate::access::{AdminAuth, TokenSet};
use crate::dedup::{RedisSettings, RedisStore, UnavailablePolicy};
use crate::redact;
use crate::secret::{Env, Secret, SecretRef};
use crate::server::Limits;
use crate::source::{DeliveryMode, Source};
use crate::tls::{upstream_client_config, TlsFiles, TlsReloader};

pub(super) fn resolve(
    file: FileConfig,
    base_dir: &Path,
    env: &dyn Env,
) -> Result<Config, ConfigError> {
    let server_defaults = SourceDefaults {
        max_body: file
            .server
            .max_body_bytes
            .unwrap_or(defaults::MAX_BODY_BYTES),
        body_timeout: file.server.body_timeout.unwrap_or(defaults::BODY_TIMEOUT),
        upstream_timeout: file
            .server
            .upstream_timeout
            .unwrap_or(defaults::UPSTREAM_TIMEOUT),
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
        let source = Source::from_spec(spec, &at, base_dir, env, &server_defaults, &mut warnings)?;
        sources.push(Arc::new(source));
    }
    let dedup_backend = resolve_dedup(&file.dedup, env, &mut warnings)?;
    let outbound = match file.outbound {
        Some(spec) => Some(resolve_outbound(spec, base_dir, env, &mut warnings)?),
        None => None,
    };
    let queued: Vec<&Arc<Source>> = sources
        .iter()
        .filter(|s| s.delivery != DeliveryMode::Sync)
        .collect();
    if let Some(first) = queued.first() {
        if file.delivery.data_dir.is_none() {
            return err(
                &format!("source[{}].delivery", first.name),
                "\"queue\" stores deliveries durably: set [delivery] data_dir (a folder only hookgate writes)",
            );
        }
    }
    if let Some(outbound) = &outbound {
        for source in &queued {
            let name = DeliveryMode::target_name(&source.name);
            if outbound.targets.iter().any(|t| t.name == name) {
                return err(
                    &format!("outbound.target[{name}]"),
                    "this name is the queued source's own delivery target; rename the target",
                );
            }
        }
    }
    let delivery = resolve_delivery(file.delivery, base_dir)?;
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
        listen: file.server.listen.unwrap_or(defaults::LISTEN),
        dedup_backend,
        sources,
        outbound,
        delivery,
        admin,
        tls,
        upstream_ca,
        limits,
        runtime: resolve_runtime(file.server.runtime.as_deref())?,
        warnings,
    })
}

/// `[server] runtime`: `per-core` (default) or `shared`.
fn resolve_runtime(value: Option<&str>) -> Result<crate::server::Runtime, ConfigError> {
    match value {
        Some("shared") => Ok(crate::server::Runtime::Shared),
        None | Some("per-core") => Ok(crate::server::Runtime::PerCore),
        Some(other) => err(
            "server.runtime",
            format!("`{other}` is not a runtime: use \"shared\" or \"per-core\""),
        ),
    }
}

/// The dedup store: in memory (default) or Redis; a bad Redis URL is a start-up error.
fn resolve_dedup(
    spec: &DedupStoreSpec,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<DedupBackend, ConfigError> {
    let capacity = spec.capacity.unwrap_or(defaults::DEDUP_CAPACITY);
    if capacity == 0 {
        return err("dedup.capacity", "must be at least 1");
    }
    let backend = match spec.backend.as_deref().unwrap_or("memory") {
        "memory" => {
            if spec.redis.is_some() {
                return err("dedup.redis", "is set but dedup.backend is not \"redis\"");
            }
            DedupBackend::Memory { capacity }
        }
        "redis" => {
            let redis = spec.redis.as_ref().ok_or_else(|| {
                ConfigError("dedup.redis: the redis backend needs [dedup.redis]".into())
            })?;
            let url = match (&redis.url, &redis.url_env) {
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
            let timeout = redis.timeout.unwrap_or(defaults::REDIS_TIMEOUT);
            if timeout.is_zero() {
                return err("dedup.redis.timeout", "must be more than 0");
            }
            let settings = RedisSettings {
                url,
                timeout,
                key_prefix: redis
                    .key_prefix
                    .clone()
                    .unwrap_or_else(|| defaults::REDIS_KEY_PREFIX.into()),
                on_unavailable: redis
                    .on_unavailable
                    .unwrap_or(UnavailablePolicy::FailClosed),
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
    Ok(backend)
}

fn resolve_admin(
    spec: AdminSpec,
    base_dir: &Path,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<AdminConfig, ConfigError> {
    let listen = spec.listen.unwrap_or(defaults::ADMIN_LISTEN);
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
        if token.len() < defaults::MIN_ADMIN_TOKEN {
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
            .unwrap_or(d.first_request_timeout),
        header_read_timeout: spec.header_read_timeout.unwrap_or(d.header_read_timeout),
        idle_timeout: spec.idle_timeout.unwrap_or(d.idle_timeout),
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
        shutdown_grace: spec.shutdown_grace.unwrap_or(d.shutdown_grace),
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
