//! A *source*: one configured sender, resolved and validated — how its deliveries are
//! authenticated, how fresh they must be, how they are deduplicated and where they go.
//! Built by [`crate::config`]; read by every gateway layer; printed (without secrets) by
//! `hookgate check-config`.

use std::time::Duration;

use http::uri::{Authority, Scheme as UriScheme};
use http::{HeaderValue, Uri};

mod describe;
mod destination;
mod handles;
mod handshake;
pub mod method;
mod spec;

pub use destination::Destination;
pub use handles::{Handles, SourceHandles};
pub use handshake::{Handshake, HandshakeKind};
pub use spec::{DedupSpec, FreshnessSpec};

use crate::access::{AddressAllowlist, HeaderToken, TokenSet};
use crate::extract::{JsonPath, ValueSource};
use crate::scheme::{Part, Scheme, Shape, SigningKey};
use crate::timestamp::TimeFormat;

#[derive(Debug)]
pub struct Source {
    /// Shared so metric labels and logs can hold it without copying.
    pub name: std::sync::Arc<str>,
    /// The series its deliveries update, cached at first use (see `handles`).
    pub metric_handles: SourceHandles,
    /// The path the sender posts to (without the path token, if any).
    pub path: String,
    pub preset: Option<&'static str>,
    pub signature: Option<SignatureCheck>,
    pub token: Option<HeaderToken>,
    /// A secret last path segment: the sender posts to `<path>/<token>`.
    pub path_token: Option<TokenSet>,
    pub addresses: Option<AddressAllowlist>,
    /// Peers whose forwarding headers (`X-Forwarded-For`, `Forwarded`, …) are believed and
    /// passed on; everyone else's are replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Pass the request's query string to the upstream (it is not signed).
    pub forward_query: bool,
    pub freshness: Option<Freshness>,
    pub dedup: Option<DedupPolicy>,
    /// Every JSON body path the freshness and dedup stages read, so one walk of the body per
    /// delivery reads them all (see [`Source::collect_body_paths`]).
    pub body_paths: Vec<JsonPath>,
    pub upstream: Upstream,
    pub max_body: usize,
    pub body_timeout: Duration,
    pub window_reason: Option<&'static str>,
    /// Why the upstream timeout has the length it has (the sender's own request timeout).
    pub timeout_reason: Option<&'static str>,
    /// Where each secret came from, for display.
    pub secret_origins: Vec<String>,
    /// The handshake the gateway answers for this source itself, if any.
    pub handshake: Option<Handshake>,
    /// False in shadow mode: every check runs, is logged and counted, and the delivery is
    /// forwarded anyway, marked with `X-Hookgate-Verification`.
    pub enforce: bool,
    /// Forwarded at once, or stored and delivered by the delivery engine.
    pub delivery: DeliveryMode,
}

/// How a source's verified deliveries reach its upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Forwarded at once; the upstream's answer goes back to the sender.
    #[default]
    Sync,
    /// Stored durably, answered `202`, then delivered by the delivery engine.
    Queue {
        /// The retry policy's text (validated with the configuration).
        retry: String,
    },
}

impl DeliveryMode {
    /// The delivery engine's target name for a queued source's upstream.
    pub fn target_name(source: &str) -> String {
        format!("source:{source}")
    }
}

#[derive(Debug)]
pub struct SignatureCheck {
    pub scheme: Scheme,
    pub keys: Vec<SigningKey>,
    /// Public keys, for an asymmetric scheme (`scheme.verifier`).
    pub public_keys: Vec<crate::scheme::keys::PublicKey>,
    /// Where the signature travels; [`method::Method::Header`] for the scheme's header.
    pub method: method::Method,
}

#[derive(Debug)]
pub struct Freshness {
    /// Candidates, first present wins.
    pub from: Vec<ValueSource>,
    pub format: TimeFormat,
    /// When false, a delivery without a timestamp passes (and relies on dedup).
    pub required: bool,
    pub window: Duration,
    pub future_skew: Duration,
}

/// What to do when a delivery has no usable event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingId {
    /// Deduplicate on a digest of the body instead.
    Digest,
    /// Refuse with 400.
    Reject,
}

#[derive(Debug)]
pub struct DedupPolicy {
    /// Where the event id is; `None` means dedup on the body digest alone.
    pub id: Option<ValueSource>,
    /// True when the id is covered by the signature. An unsigned id can be changed by whoever
    /// replays a captured body, so the body digest is claimed as well.
    pub id_signed: bool,
    /// A signed header unique to each signed transmission, claimed besides the event id:
    /// where the signature covers the body only weakly (PayPal signs its CRC32), a captured
    /// signature replayed with another body (and another event id) is still a duplicate.
    pub transmission_key: Option<http::HeaderName>,
    pub on_missing: MissingId,
    pub ttl: Duration,
    /// How long a duplicate waits for an in-flight copy's outcome before it is answered 503.
    pub inflight_wait: Duration,
    /// Namespace for this source's keys.
    pub scope: [u8; 16],
}

impl DedupPolicy {
    /// How long keys must be remembered for a source with this freshness: a delivery stamped
    /// `future_skew` ahead of the gateway's clock stays fresh for `window + future_skew` after
    /// it arrives, and a replay of it must still find its key.
    pub fn required_ttl(freshness: &Freshness) -> Duration {
        freshness.window + freshness.future_skew
    }
}

/// The start-up rule that keeps replay protection from lapsing: where a delivery's timestamp
/// can be replayed (any source with freshness and dedup, signed or unsigned timestamp), dedup
/// memory covers everything freshness lets through. The message shows the arithmetic.
pub fn check_replay_cover(
    freshness: Option<&Freshness>,
    dedup: Option<&DedupPolicy>,
) -> Result<(), String> {
    let (Some(f), Some(d)) = (freshness, dedup) else {
        return Ok(());
    };
    let needed = DedupPolicy::required_ttl(f);
    if d.ttl >= needed {
        return Ok(());
    }
    let fmt = humantime::format_duration;
    Err(format!(
        "{} is shorter than freshness.window {} + freshness.future_skew {} = {}: a delivery \
         stamped {} ahead stays fresh for {} after it arrives, so a replay after {} would pass",
        fmt(d.ttl),
        fmt(f.window),
        fmt(f.future_skew),
        fmt(needed),
        fmt(f.future_skew),
        fmt(needed),
        fmt(d.ttl),
    ))
}

#[derive(Debug)]
pub struct Upstream {
    pub scheme: UriScheme,
    pub authority: Authority,
    /// Path (and query, if configured) the delivery is sent to.
    pub path_and_query: String,
    /// The URI, the request line and the connection pool, worked out once.
    pub destination: Destination,
    pub host_header: HeaderValue,
    /// The `X-Hookgate-Source` value (the source's name).
    pub source_header: HeaderValue,
    pub timeout: Duration,
}

impl Upstream {
    /// The request line's URI (origin form) for a request that arrived with `query`.
    pub fn origin(&self, query: Option<&str>) -> Result<Uri, http::Error> {
        match query {
            Some(q) if !q.is_empty() => self.destination.origin_with(q),
            _ => Ok(self.destination.origin.clone()),
        }
    }
}

impl Source {
    /// True when `{timestamp}` of the signature is read from `source`.
    fn signs(&self, part: Part, source: &ValueSource) -> bool {
        let Some(check) = &self.signature else {
            return false;
        };
        let scheme = &check.scheme;
        match source {
            ValueSource::Body(_) => check.method.covers_body(),
            ValueSource::SignatureParam(_) => matches!(scheme.shape, Shape::KeyValue { .. }),
            header => {
                let declared = match part {
                    Part::Timestamp => &scheme.timestamp,
                    _ => &scheme.id,
                };
                scheme.template.uses(&part) && declared.as_ref() == Some(header)
            }
        }
    }

    /// Whether a timestamp read from `source` is covered by the signature.
    pub fn timestamp_signed(&self, source: &ValueSource) -> bool {
        self.signs(Part::Timestamp, source)
    }

    /// Whether an event id read from `source` is covered by the signature.
    pub fn id_signed(&self, source: &ValueSource) -> bool {
        self.signs(Part::Id, source)
    }

    /// Fills `body_paths` from the freshness candidates and the dedup id (each path once).
    pub fn collect_body_paths(&mut self) {
        let candidates = self.freshness.iter().flat_map(|f| f.from.iter());
        let id = self.dedup.iter().filter_map(|d| d.id.as_ref());
        let mut paths: Vec<JsonPath> = Vec::new();
        for source in candidates.chain(id) {
            if let ValueSource::Body(path) = source {
                if !paths.contains(path) {
                    paths.push(path.clone());
                }
            }
        }
        self.body_paths = paths;
    }
}
