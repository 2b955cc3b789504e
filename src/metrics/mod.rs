//! Prometheus metrics: requests by source and outcome, request and upstream latency
//! histograms, upstream answers by class, dedup entries and early evictions (each one a hole in
//! replay protection), config reloads, the edge (`edge`), handshakes, secret positions and
//! shadow-mode failures (`verification`) and the durable delivery engine
//! (`delivery`: queue by state, attempts, commit latency).
//! Recording is lock-free: counters are atomics, and the latency histograms keep one shard of
//! atomic counters per serving thread (`crate::histogram`); the text exposition is rendered on
//! scrape.

use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::histogram::LatencyHistogram;
use crate::sharded::ShardedCounter;

mod delivery;
mod edge;
mod verification;

pub use crate::source::SourceHandles;

/// A shared name (source or target) used as a label value without copying.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Name(pub Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    source: Name,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    source: Name,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// 100 µs … ~52 s, one shard per serving thread (`crate::histogram`).
type HistogramFamily<L> = Family<L, LatencyHistogram, fn() -> LatencyHistogram>;

/// Every metric hookgate exposes.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, ShardedCounter>,
    request_seconds: HistogramFamily<SourceLabels>,
    upstream_seconds: HistogramFamily<SourceLabels>,
    upstream_responses: Family<UpstreamLabels, ShardedCounter>,
    dedup_entries: Gauge,
    dedup_early_evictions: Counter,
    dedup_fail_open: Family<SourceLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    config_generation: Gauge,
    edge: edge::Edge,
    delivery: delivery::Delivery,
    dedup_promote_deferred: Family<SourceLabels, Counter>,
    verification: verification::Verification,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookgate");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests by source and outcome",
            requests.clone(),
        );
        let request_seconds: HistogramFamily<SourceLabels> =
            Family::new_with_constructor(LatencyHistogram::default);
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head",
            request_seconds.clone(),
        );
        let upstream_seconds: HistogramFamily<SourceLabels> =
            Family::new_with_constructor(LatencyHistogram::default);
        registry.register(
            "upstream_duration_seconds",
            "Time the upstream took to answer",
            upstream_seconds.clone(),
        );
        let upstream_responses = Family::default();
        registry.register(
            "upstream_responses",
            "Upstream answers by status class (2xx, 3xx, 4xx, 5xx)",
            upstream_responses.clone(),
        );
        let dedup_entries = Gauge::default();
        registry.register(
            "dedup_entries",
            "Keys held by the dedup store (in flight and delivered)",
            dedup_entries.clone(),
        );
        let dedup_early_evictions = Counter::default();
        registry.register(
            "dedup_early_evictions",
            "Keys evicted for space before their lifetime ended (holes in replay protection)",
            dedup_early_evictions.clone(),
        );
        let dedup_fail_open = Family::default();
        registry.register(
            "dedup_fail_open",
            "Deliveries forwarded without dedup because the store was unavailable (fail_open)",
            dedup_fail_open.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "Generation of the configuration in use (1 at start, +1 per successful reload)",
            config_generation.clone(),
        );
        config_generation.set(1);
        let edge = edge::Edge::register(&mut registry);
        let delivery = delivery::Delivery::register(&mut registry);
        let dedup_promote_deferred = Family::default();
        registry.register(
            "dedup_promote_deferred",
            "Delivered events the dedup store refused to mark delivered; kept as delivered in process and retried",
            dedup_promote_deferred.clone(),
        );
        let verification = verification::Verification::register(&mut registry);
        Metrics {
            registry,
            requests,
            request_seconds,
            upstream_seconds,
            upstream_responses,
            dedup_entries,
            dedup_early_evictions,
            dedup_fail_open,
            reloads,
            config_generation,
            edge,
            delivery,
            dedup_promote_deferred,
            verification,
        }
    }
}

impl Metrics {
    /// This registry's identity for the handles cached in sources.
    fn id(&self) -> usize {
        self as *const Metrics as usize
    }
}

/// Updates a series through its cached handle when there is one (taking it from its family
/// the first time), else straight from its family.
fn cached<M>(slot: Option<&OnceLock<M>>, from_family: impl FnOnce() -> M, update: impl FnOnce(&M)) {
    match slot {
        Some(slot) => update(slot.get_or_init(from_family)),
        None => update(&from_family()),
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// One finished request; `source` (its name and handles) is `None` when no source was
    /// routed to.
    pub fn request(
        &self,
        source: Option<(&Arc<str>, &SourceHandles)>,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        // The label is built only on the family path: the cached one needs none.
        let name = || Name(source.map_or_else(|| Arc::from("-"), |(name, _)| name.clone()));
        let handles = source.and_then(|(_, handles)| handles.for_owner(self.id()));
        cached(
            handles.map(|h| &h.request_seconds),
            || {
                self.request_seconds
                    .get_or_create(&SourceLabels { source: name() })
                    .clone()
            },
            |histogram| histogram.observe(elapsed),
        );
        cached(
            handles
                .filter(|_| outcome == "forwarded")
                .map(|h| &h.forwarded),
            || {
                self.requests
                    .get_or_create(&RequestLabels {
                        source: name(),
                        outcome,
                    })
                    .clone()
            },
            |counter| {
                counter.inc();
            },
        );
    }

    /// One upstream answer.
    pub fn upstream(
        &self,
        source: &Arc<str>,
        handles: &SourceHandles,
        status: u16,
        elapsed: Duration,
    ) {
        let name = || Name(source.clone());
        let class = status_class(status);
        let handles = handles.for_owner(self.id());
        cached(
            handles.map(|h| &h.upstream_seconds),
            || {
                self.upstream_seconds
                    .get_or_create(&SourceLabels { source: name() })
                    .clone()
            },
            |histogram| histogram.observe(elapsed),
        );
        cached(
            handles.filter(|_| class == "2xx").map(|h| &h.upstream_2xx),
            || {
                self.upstream_responses
                    .get_or_create(&UpstreamLabels {
                        source: name(),
                        class,
                    })
                    .clone()
            },
            |counter| {
                counter.inc();
            },
        );
    }

    pub fn reload(&self, ok: bool, generation: u64) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        self.config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// A delivery forwarded without dedup because the store was unavailable.
    pub fn dedup_fail_open(&self, source: &Arc<str>) {
        self.dedup_fail_open
            .get_or_create(&SourceLabels {
                source: Name(source.clone()),
            })
            .inc();
    }

    /// Updates the dedup gauges from the store's current numbers.
    pub fn dedup(&self, entries: u64, early_evictions: u64) {
        self.dedup_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        let seen = self.dedup_early_evictions.get();
        if early_evictions > seen {
            self.dedup_early_evictions.inc_by(early_evictions - seen);
        }
    }

    /// A delivered event whose promote the dedup store refused (kept delivered in process).
    pub fn dedup_promote_deferred(&self, source: &Arc<str>) {
        self.dedup_promote_deferred
            .get_or_create(&SourceLabels {
                source: Name(source.clone()),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let metrics = Metrics::default();
        let (name, handles): (Arc<str>, _) = (Arc::from("ck"), SourceHandles::default());
        let source = Some((&name, &handles));
        metrics.request(source, "forwarded", Duration::from_millis(3));
        metrics.request(source, "forwarded", Duration::from_millis(3));
        metrics.request(source, "bad_signature", Duration::from_millis(3));
        metrics.request(None, "unknown_source", Duration::from_millis(3));
        metrics.upstream(&name, &handles, 503, Duration::from_millis(1));
        metrics.upstream(&name, &handles, 204, Duration::from_millis(1));
        metrics.dedup(10, 2);
        let text = metrics.render();
        assert!(
            text.contains(r#"hookgate_requests_total{source="ck",outcome="forwarded"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"hookgate_requests_total{source="ck",outcome="bad_signature"} 1"#));
        assert!(text.contains(r#"hookgate_requests_total{source="-",outcome="unknown_source"} 1"#));
        assert!(
            text.contains(r#"hookgate_request_duration_seconds_count{source="ck"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"hookgate_upstream_responses_total{source="ck",class="5xx"} 1"#));
        assert!(text.contains(r#"hookgate_upstream_responses_total{source="ck",class="2xx"} 1"#));
        assert!(text.contains("hookgate_dedup_entries 10"));
        assert!(text.contains("hookgate_dedup_early_evictions_total 2"));
        assert!(text.contains("hookgate_config_generation 1"));
    }

    #[test]
    fn a_source_counted_by_two_registries_lands_in_each() {
        // The first registry caches the source's handles; the second must not write to them.
        let (first, second) = (Metrics::default(), Metrics::default());
        let (name, handles): (Arc<str>, _) = (Arc::from("ck"), SourceHandles::default());
        let source = Some((&name, &handles));
        first.request(source, "forwarded", Duration::from_millis(1));
        second.request(source, "forwarded", Duration::from_millis(1));
        second.request(source, "forwarded", Duration::from_millis(1));
        first.secret_matched(&name, &handles, 0);
        second.secret_matched(&name, &handles, 0);
        let series = r#"hookgate_requests_total{source="ck",outcome="forwarded"}"#;
        assert!(
            first.render().contains(&format!("{series} 1")),
            "{}",
            first.render()
        );
        assert!(
            second.render().contains(&format!("{series} 2")),
            "{}",
            second.render()
        );
    }

    #[test]
    fn no_series_appears_before_it_is_used() {
        let metrics = Metrics::default();
        let (name, handles): (Arc<str>, _) = (Arc::from("ck"), SourceHandles::default());
        metrics.request(
            Some((&name, &handles)),
            "bad_signature",
            Duration::from_millis(1),
        );
        let text = metrics.render();
        assert!(!text.contains(r#"outcome="forwarded""#), "{text}");
        assert!(
            !text.contains("hookgate_upstream_responses_total{"),
            "{text}"
        );
    }
}
