//! The outbound targets' configuration: a [`Target`] is where events go, signed by which
//! preset, with which retry policy. The sidecar endpoint that accepts events lives in
//! `crate::sidecar`; the durable engine that delivers them in `crate::delivery`.

use std::net::SocketAddr;
use std::path::PathBuf;

use http::Uri;

use super::retry::RetryPolicy;
use super::Signer;

/// A configured delivery target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub url: Uri,
    pub signer: Signer,
    pub retry: RetryPolicy,
    /// Consecutive failed deliveries before the target pauses.
    pub pause_after: u32,
    /// Deliveries in progress at once.
    pub concurrency: usize,
    /// Corgea-style body template; `None` sends the posted body as it is.
    pub template: Option<String>,
}

/// The outbound listener's configuration.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub listen: SocketAddr,
    /// Extra CA trusted for `https://` targets, besides the system's roots.
    pub ca: Option<PathBuf>,
    pub targets: Vec<Target>,
}
