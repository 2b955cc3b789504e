//! Every default of the configuration, written once. The README's configuration reference
//! and the doc comments of the schema quote these.

use std::net::SocketAddr;
use std::time::Duration;

/// `[server] listen`.
pub const LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// `[admin] listen`.
pub const ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);
/// `[outbound] listen`.
pub const OUTBOUND_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);
/// `[server] max_body_bytes`: the body limit of sources that set none.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// `[server] body_timeout`.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// `[server] upstream_timeout`: for sources with neither their own value nor a preset's.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// `[dedup] capacity`.
pub const DEDUP_CAPACITY: u64 = 1_000_000;
/// `[dedup.redis] timeout`.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// `[dedup.redis] key_prefix`.
pub const REDIS_KEY_PREFIX: &str = "hookgate:";
/// `[delivery] data_dir`, relative to the configuration file's folder.
pub const DATA_DIR: &str = "data";
/// `[[outbound.target]] pause_after`.
pub const PAUSE_AFTER: u32 = 10;
/// `[[outbound.target]] concurrency`.
pub const TARGET_CONCURRENCY: usize = 4;
/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN: usize = 16;
/// Shortest path token accepted.
pub const MIN_PATH_TOKEN: usize = 16;

/// The retry policy of a queued source that names none (about 28 h of retries).
pub const QUEUE_RETRY: &str = "standard-webhooks";
