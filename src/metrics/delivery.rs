//! Metrics of the durable delivery engine, set from [`EngineStats`] at scrape time: deliveries
//! in the store by state, the oldest pending delivery's age, attempts by result, attempts
//! without an answer, attempts per configured target (labels bounded by the configuration),
//! attempts in flight, and the store's commit (write + fsync) latency as a count, a sum and
//! the slowest commit.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Metrics;
use crate::delivery::{AttemptCounts, EngineStats};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The delivery engine's metrics, registered beside the others.
pub(super) struct Delivery {
    queue: Family<StateLabels, Gauge>,
    oldest_pending: Gauge<f64, AtomicU64>,
    attempts: Family<ResultLabels, Counter>,
    target_attempts: Family<TargetLabels, Counter>,
    unanswered: Family<ReasonLabels, Counter>,
    in_flight: Gauge,
    commits: Counter,
    commit_seconds: Counter<f64, AtomicU64>,
    commit_max: Gauge<f64, AtomicU64>,
}

impl Delivery {
    pub(super) fn register(registry: &mut Registry) -> Delivery {
        let delivery = Delivery {
            queue: Family::default(),
            oldest_pending: Gauge::default(),
            attempts: Family::default(),
            target_attempts: Family::default(),
            unanswered: Family::default(),
            in_flight: Gauge::default(),
            commits: Counter::default(),
            commit_seconds: Counter::default(),
            commit_max: Gauge::default(),
        };
        registry.register(
            "delivery_queue",
            "Deliveries in the durable store by state (pending, delivered, failed)",
            delivery.queue.clone(),
        );
        registry.register(
            "delivery_oldest_pending_seconds",
            "Age of the oldest pending delivery (0 when none is pending)",
            delivery.oldest_pending.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts by result (success, retry: failed and retried, final: failed for good)",
            delivery.attempts.clone(),
        );
        registry.register(
            "delivery_target_attempts",
            "Delivery attempts per configured target (an outbound target, or source:<name> for a queued source) by result (success, retry, final, timeout, error)",
            delivery.target_attempts.clone(),
        );
        registry.register(
            "delivery_attempts_unanswered",
            "Failed delivery attempts without an answer, by reason (timeout, error)",
            delivery.unanswered.clone(),
        );
        registry.register(
            "delivery_in_flight",
            "Delivery attempts running now",
            delivery.in_flight.clone(),
        );
        registry.register(
            "delivery_commits",
            "Commits (write + fsync) of the delivery store",
            delivery.commits.clone(),
        );
        registry.register(
            "delivery_commit_seconds",
            "Total time spent in delivery store commits; divide by hookgate_delivery_commits_total for the mean",
            delivery.commit_seconds.clone(),
        );
        registry.register(
            "delivery_commit_max_seconds",
            "The slowest delivery store commit since start",
            delivery.commit_max.clone(),
        );
        delivery
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Raises `counter` to `total` (the engine's counts only grow).
fn raise(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

impl Metrics {
    /// Attempts per configured delivery target, as read at scrape time.
    pub fn delivery_targets(&self, targets: &[(String, AttemptCounts)]) {
        for (target, counts) in targets {
            for (result, n) in [
                ("success", counts.success),
                ("retry", counts.retried),
                ("final", counts.final_failures),
                ("timeout", counts.timeouts),
                ("error", counts.errors),
            ] {
                let labels = TargetLabels {
                    target: target.clone(),
                    result,
                };
                raise(&self.delivery.target_attempts.get_or_create(&labels), n);
            }
        }
    }

    /// The delivery engine's figures, as read at scrape time.
    pub fn delivery(&self, stats: &EngineStats) {
        let d = &self.delivery;
        let queue = &stats.queue;
        for (state, n) in [
            ("pending", queue.pending),
            ("delivered", queue.delivered),
            ("failed", queue.failed),
        ] {
            d.queue
                .get_or_create(&StateLabels { state })
                .set(gauge_value(n));
        }
        d.oldest_pending.set(
            stats
                .oldest_pending_age
                .map_or(0.0, |age| age.as_secs_f64()),
        );
        let attempts = &stats.attempts;
        for (result, n) in [
            ("success", attempts.success),
            ("retry", attempts.retried),
            ("final", attempts.final_failures),
        ] {
            raise(&d.attempts.get_or_create(&ResultLabels { result }), n);
        }
        for (reason, n) in [("timeout", attempts.timeouts), ("error", attempts.errors)] {
            raise(&d.unanswered.get_or_create(&ReasonLabels { reason }), n);
        }
        d.in_flight.set(gauge_value(stats.in_flight));
        raise(&d.commits, stats.commits.commits);
        let seen = d.commit_seconds.get();
        if stats.commits.total_secs > seen {
            d.commit_seconds.inc_by(stats.commits.total_secs - seen);
        }
        d.commit_max.set(stats.commits.max_secs);
    }
}
