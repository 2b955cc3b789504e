//! Configuration: the TOML [`schema`] (unknown keys refused), presets merged under the user's
//! fields, secrets resolved from the environment or files, and validation into runtime
//! [`Source`]s (`resolve`). Every error names the source and key it is about, never a
//! secret value. Nothing here fails open: an unknown preset, a source with no way to
//! authenticate, or a dedup memory shorter than the freshness window plus its future skew is
//! a start-up error. Defaults are written once, in [`defaults`].

pub mod defaults;
mod handshake;
mod method;
mod outbound;
mod resolve;
pub mod schema;
mod source;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use resolve::check_admin_exposure;
pub use schema::FileConfig;

use crate::access::AdminAuth;
use crate::dedup::RedisSettings;
use crate::secret::Env;
use crate::sender::outbound::OutboundConfig;
use crate::server::Limits;
use crate::source::Source;
use crate::tls::TlsFiles;

/// The default configuration, compiled in: `hookgate serve` uses it when no file is given and
/// `config/hookgate.toml` does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/hookgate.toml");

/// Which dedup store to use.
#[derive(Debug, Clone)]
pub enum DedupBackend {
    /// In process, holding at most `capacity` keys.
    Memory {
        /// Keys kept at most (`[dedup] capacity`, default 1,000,000).
        capacity: u64,
    },
    /// Shared by several replicas.
    Redis(RedisSettings),
}

impl DedupBackend {
    /// The in-memory store's capacity; `None` for Redis.
    pub fn capacity(&self) -> Option<u64> {
        match self {
            DedupBackend::Memory { capacity } => Some(*capacity),
            DedupBackend::Redis(_) => None,
        }
    }
}

/// The admin listener, resolved.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address of the admin listener (`[admin] listen`, default `127.0.0.1:9090`).
    pub listen: SocketAddr,
    /// The bearer tokens the admin endpoints require, resolved from `[admin] token` and
    /// `metrics_token`.
    pub auth: AdminAuth,
}

/// `[delivery]`, resolved: where the durable store lives and the engine's bounds.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Holds `deliveries.sqlite3` (and its `-wal` and `-shm` files while open).
    pub data_dir: PathBuf,
    /// Bounds of the delivery engine: `Retry-After` floor, attempts per cycle, history kept.
    pub limits: crate::delivery::Limits,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Address of the public listener (`[server] listen`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Which dedup store backs every source's replay protection (`[dedup] backend`).
    pub dedup_backend: DedupBackend,
    /// Every `[[source]]`, resolved: path, authentication, freshness, dedup and upstream.
    pub sources: Vec<Arc<Source>>,
    /// The outbound sidecar (`[outbound]`) and its targets; `None` when the section is absent.
    pub outbound: Option<OutboundConfig>,
    /// The durable delivery store's settings (used when something delivers through it).
    pub delivery: DeliverySettings,
    /// The admin listener, when enabled.
    pub admin: Option<AdminConfig>,
    /// Certificate and key of the public listener, when it terminates TLS.
    pub tls: Option<TlsFiles>,
    /// Extra CA for `https://` upstreams.
    pub upstream_ca: Option<PathBuf>,
    /// Connection and request limits of the public listener (`[limits]`, defaults filled in).
    pub limits: Limits,
    /// How the public listener's connections are run (`[server] runtime`).
    pub runtime: crate::server::Runtime,
    /// Things that work but should not be in production (logged at start).
    pub warnings: Vec<String>,
}

/// A configuration error: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<crate::tls::TlsError> for ConfigError {
    fn from(error: crate::tls::TlsError) -> Self {
        ConfigError(error.0)
    }
}

pub(crate) fn err<T>(at: &str, message: impl fmt::Display) -> Result<T, ConfigError> {
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
    resolve::resolve(file, base_dir, env)
}

/// A TOML error on one line: position and message (the default rendering spans several lines
/// and quotes the offending text, which could be a secret).
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

/// Where `hookgate serve` looks for a configuration file when none is named.
pub fn default_path() -> PathBuf {
    PathBuf::from("config/hookgate.toml")
}
