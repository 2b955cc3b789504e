//! Metrics of verification beyond accept/refuse: handshakes the gateway answered itself, which
//! configured secret or key verified each accepted delivery (for secret rotation: the old
//! one can go once its position stops counting), and the checks that failed on shadow-mode
//! sources (forwarded anyway).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{Metrics, Name, SourceHandles};
use crate::sharded::ShardedCounter;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    source: Name,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PositionLabels {
    source: Name,
    position: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    source: Name,
    reason: &'static str,
}

/// The verification metrics, registered beside the others.
pub(super) struct Verification {
    handshakes: Family<KindLabels, Counter>,
    secret_matches: Family<PositionLabels, ShardedCounter>,
    shadow_failures: Family<ReasonLabels, Counter>,
}

impl Verification {
    pub(super) fn register(registry: &mut Registry) -> Verification {
        let metrics = Verification {
            handshakes: Family::default(),
            secret_matches: Family::default(),
            shadow_failures: Family::default(),
        };
        registry.register(
            "handshakes",
            "Handshakes (endpoint verification requests) the gateway answered itself, by source and kind",
            metrics.handshakes.clone(),
        );
        registry.register(
            "secret_matches",
            "Accepted signatures by source and position of the configured secret or key that verified them (0 = first)",
            metrics.secret_matches.clone(),
        );
        registry.register(
            "shadow_failures",
            "Checks failed by deliveries of shadow-mode sources (enforce = false), forwarded anyway, by source and reason",
            metrics.shadow_failures.clone(),
        );
        metrics
    }
}

impl Metrics {
    /// A handshake of `kind` answered for `source`.
    pub fn handshake(&self, source: &Arc<str>, kind: &'static str) {
        self.verification
            .handshakes
            .get_or_create(&KindLabels {
                source: Name(source.clone()),
                kind,
            })
            .inc();
    }

    /// A signature of `source` verified by the secret or key at `position`.
    pub fn secret_matched(&self, source: &Arc<str>, handles: &SourceHandles, position: usize) {
        let handles = handles.for_owner(self.id());
        super::cached(
            handles.filter(|_| position == 0).map(|h| &h.first_secret),
            || {
                self.verification
                    .secret_matches
                    .get_or_create(&PositionLabels {
                        source: Name(source.clone()),
                        position: u32::try_from(position).unwrap_or(u32::MAX),
                    })
                    .clone()
            },
            |counter| {
                counter.inc();
            },
        );
    }

    /// A check failed on a shadow-mode source (the delivery was forwarded anyway).
    pub fn shadow_failure(&self, source: &Arc<str>, reason: &'static str) {
        self.verification
            .shadow_failures
            .get_or_create(&ReasonLabels {
                source: Name(source.clone()),
                reason,
            })
            .inc();
    }
}
