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
    /// The target's name: the `<target>` in `/outbound/<target>`.
    pub name: String,
    /// The receiver's `http://` or `https://` URL.
    pub url: Uri,
    /// Signs each attempt the way the target's preset does.
    pub signer: Signer,
    /// When failed attempts are retried (`retry`, default: the preset's).
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
    /// Address of the sidecar listener (`[outbound] listen`, default `127.0.0.1:8081`).
    pub listen: SocketAddr,
    /// Extra CA trusted for `https://` targets, besides the system's roots.
    pub ca: Option<PathBuf>,
    /// The targets, in configuration order.
    pub targets: Vec<Target>,
}
