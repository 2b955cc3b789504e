//! Per-source handles on the series every forwarded delivery updates: its request latency,
//! `outcome="forwarded"`, its upstream latency and `class="2xx"`, and the first secret's
//! match count. A handle is the series itself (prometheus-client's metrics share their
//! value between clones), taken from its family at the source's first use of it; afterwards
//! an update is one atomic operation instead of a label-set hash (SipHash) and a family
//! lookup under a read lock shared by every worker thread. Other series take the family path.
//!
//! The handles live in the source (`Source::metric_handles`), which outlives no registry in
//! practice; each set remembers the registry it belongs to (`crate::metrics::Metrics`, by
//! address), and a source seen by another one (two gateways built from one configuration)
//! takes the family path there. The metrics module fills and uses them.

use std::sync::OnceLock;

use crate::histogram::LatencyHistogram;
use crate::sharded::ShardedCounter;

/// A source's cached series; empty until the source's first request.
#[derive(Debug, Default)]
pub struct SourceHandles {
    slot: OnceLock<Handles>,
}

#[derive(Debug)]
pub struct Handles {
    owner: usize,
    pub request_seconds: OnceLock<LatencyHistogram>,
    pub forwarded: OnceLock<ShardedCounter>,
    pub upstream_seconds: OnceLock<LatencyHistogram>,
    pub upstream_2xx: OnceLock<ShardedCounter>,
    pub first_secret: OnceLock<ShardedCounter>,
}

impl SourceHandles {
    /// The handles for the registry `owner` (its address), or `None` when they belong to
    /// another one.
    pub fn for_owner(&self, owner: usize) -> Option<&Handles> {
        let handles = self.slot.get_or_init(|| Handles {
            owner,
            request_seconds: OnceLock::new(),
            forwarded: OnceLock::new(),
            upstream_seconds: OnceLock::new(),
            upstream_2xx: OnceLock::new(),
            first_secret: OnceLock::new(),
        });
        (handles.owner == owner).then_some(handles)
    }
}
