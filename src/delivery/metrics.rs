//! The engine's figures as plain numbers, for the Prometheus wiring to read on scrape: queue
//! depth by state, the oldest pending delivery's age, attempts by outcome, deliveries by
//! final state, attempts in flight, and the store's commit (fsync) latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::store::{CommitStats, QueueStats};

/// Counters the engine bumps as it works.
#[derive(Debug, Default)]
pub struct Counters {
    attempts_success: AtomicU64,
    attempts_retry: AtomicU64,
    attempts_final: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// What an attempt came to, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// A 2xx.
    Success,
    /// Failed; the delivery is retried.
    Retry,
    /// Failed; the delivery failed for good.
    Final,
}

impl Counters {
    /// Counts one attempt; `no_answer` is `Some(true)` for a timeout, `Some(false)` for a
    /// connection error.
    pub fn attempt(&self, kind: AttemptKind, no_answer: Option<bool>) {
        let counter = match kind {
            AttemptKind::Success => &self.attempts_success,
            AttemptKind::Retry => &self.attempts_retry,
            AttemptKind::Final => &self.attempts_final,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match no_answer {
            Some(true) => self.timeouts.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.errors.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        match kind {
            AttemptKind::Success => self.delivered.fetch_add(1, Ordering::Relaxed),
            AttemptKind::Final => self.failed.fetch_add(1, Ordering::Relaxed),
            AttemptKind::Retry => 0,
        };
    }

    /// The counters now.
    pub fn snapshot(&self) -> AttemptCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AttemptCounts {
            success: get(&self.attempts_success),
            retried: get(&self.attempts_retry),
            final_failures: get(&self.attempts_final),
            timeouts: get(&self.timeouts),
            errors: get(&self.errors),
            delivered: get(&self.delivered),
            failed: get(&self.failed),
        }
    }
}

/// Attempts and deliveries since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttemptCounts {
    /// Attempts answered 2xx.
    pub success: u64,
    /// Failed attempts followed by a retry.
    pub retried: u64,
    /// Failed attempts that ended their delivery.
    pub final_failures: u64,
    /// Attempts without an answer in time (among the failed ones).
    pub timeouts: u64,
    /// Attempts without a connection or an answer (among the failed ones).
    pub errors: u64,
    /// Deliveries that ended with a 2xx answer.
    pub delivered: u64,
    /// Deliveries that failed for good (a final answer, or attempts or window exhausted).
    pub failed: u64,
}

/// Everything the engine reports, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EngineStats {
    /// Deliveries per state in the store.
    pub queue: QueueStats,
    /// How long the oldest pending delivery has waited.
    pub oldest_pending_age: Option<Duration>,
    /// Attempts and deliveries since start, by outcome.
    pub attempts: AttemptCounts,
    /// Attempts running now.
    pub in_flight: u64,
    /// The store's commit latency (every acknowledged write includes one fsync).
    pub commits: CommitStats,
}
