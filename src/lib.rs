//! hookgate: a receiver-side webhook verification gateway.
//!
//! It stands between the public internet and webhook receivers and lets through only
//! authentic, fresh, first-time deliveries, forwarded byte for byte.
//!
//! # The public API
//! - [`app`]: the whole process as one call ([`app::run`]) on bound listeners.
//! - [`config`]: the TOML schema, presets merged in, secrets resolved, validation.
//! - [`scheme`]: the signing core shared by verifying and sending.
//! - [`presets`]: what each provider signs, how fresh its deliveries are, how it retries.
//! - [`sender`]: the outbound sender (signing, retries, payload formats, sidecar endpoint).
//! - [`delivery`]: the durable delivery engine (SQLite store, scheduler, target health).
//!
//! The other modules are the gateway's internals. They are reachable (hidden from the
//! documentation) for the integration tests, benchmarks and fuzz targets, and are not a stable
//! API:
//! - `source`: a resolved source — how it authenticates, freshness, dedup, upstream.
//! - `gateway`: the tower stack, one layer per concern; `server`: the accept loop, connection
//!   deadlines and limits; `admin`: the admin listener; `reload`: hot reload.
//! - `dedup`: the three-state dedup store and its memory and Redis backends.
//! - `keyfetch`: provider keys fetched over HTTPS (SNS certificates, Google's JWKS), cached.
//! - `access` (tokens, allowlists, admin auth), `extract` (timestamps and ids from headers
//!   and JSON), `timestamp`, `clock`, `secret`, `redact`, `tls`, `metrics`, `telemetry`,
//!   `histogram` (the latency histogram every serving thread updates).
//! - `sidecar`: the outbound sidecar endpoint, which stores events in the delivery engine.
//! - `fuzzing`: entry points of the cargo-fuzz targets and their corpus replay.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod delivery;
pub mod presets;
pub mod scheme;
pub mod sender;

#[doc(hidden)]
pub mod access;
#[doc(hidden)]
pub mod admin;
mod answer;
#[doc(hidden)]
pub mod clock;
#[doc(hidden)]
pub mod dedup;
#[doc(hidden)]
pub mod extract;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod gateway;
#[doc(hidden)]
pub mod histogram;
#[doc(hidden)]
pub mod keyfetch;
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod redact;
#[doc(hidden)]
pub mod reload;
#[doc(hidden)]
pub mod secret;
#[doc(hidden)]
pub mod server;
#[doc(hidden)]
pub mod sharded;
#[doc(hidden)]
pub mod sidecar;
#[doc(hidden)]
pub mod source;
#[doc(hidden)]
pub mod telemetry;
#[doc(hidden)]
pub mod timestamp;
#[doc(hidden)]
pub mod tls;

pub use config::Config;
#[doc(hidden)]
pub use gateway::{serve, Gateway};
