//! hookgate: a receiver-side webhook verification gateway.
//!
//! It stands between the public internet and webhook receivers and lets through only
//! authentic, fresh, first-time deliveries, forwarded byte for byte.
//!
//! # Layout
//! - [`config`]: the TOML model, presets merged in, secrets resolved, validation.
//! - [`source`]: a resolved source — how it authenticates, freshness, dedup, upstream.
//! - [`scheme`]: the signing core shared by verifying and sending; provider [`scheme::presets`].
//! - [`access`]: authentication without signatures (tokens, path tokens, address allowlists).
//! - [`extract`]: reading timestamps and ids from headers and JSON bodies.
//! - [`clock`]: injectable wall and uptime clocks (freshness, dedup expiries).
//! - [`timestamp`]: strict timestamp parsing (unix s/ms, ISO 8601).
//! - [`dedup`]: the three-state dedup store trait and its in-memory backend.
//! - [`gateway`]: the tower stack, one layer per concern.
//! - [`server`]: the accept loop shared by the listeners (limits, graceful shutdown).
//! - [`sender`]: the outbound sender (signing, retries, payload formats, sidecar endpoint).
//! - [`demo`]: `hookgate demo`, the newcomer's first minute.
//! - [`error`]: rejections and their JSON answers.
//! - [`metrics`]: the Prometheus metrics.
//! - [`secret`]: secret sources and a value type that never prints.
//! - [`redact`]: secret references parsed without echo, URLs shown without passwords.
//! - [`telemetry`]: log setup.
//! - [`admin`]: the admin listener (metrics, health, readiness, reload, dedup forget).
//! - [`reload`]: hot reload of configuration and secrets.
//! - [`tls`]: TLS for the listener (reloadable certificate) and for https upstreams.
//! - `fuzzing`: entry points of the cargo-fuzz targets and the corpus replay test (hidden).
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod extract;
pub mod fuzzing;
pub mod gateway;
pub mod metrics;
pub mod redact;
pub mod reload;
pub mod scheme;
pub mod secret;
pub mod sender;
pub mod server;
pub mod source;
pub mod telemetry;
pub mod timestamp;
pub mod tls;

pub use config::Config;
pub use gateway::{serve, Gateway};
