//! The [`DeliveryStore`] trait and the records it keeps: deliveries (event bytes, target,
//! state, next attempt time, lease), their bounded attempt history, and each target's health.
//!
//! Times are wall-clock milliseconds since the Unix epoch (they survive restarts). Bodies are
//! stored but never returned by listing calls and never logged: [`DeliverySummary`] and
//! [`AttemptRecord`] carry no event bytes.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;

/// A delivery's id in its store.
pub type DeliveryId = i64;

/// What store calls return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Given up: a final answer, or the policy's attempts or window ran out (dead letter).
    Failed,
}

impl DeliveryState {
    /// The state's code in a store.
    pub fn code(self) -> i64 {
        match self {
            DeliveryState::Pending => 0,
            DeliveryState::Delivered => 1,
            DeliveryState::Failed => 2,
        }
    }

    /// The state for a store code.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(DeliveryState::Pending),
            1 => Some(DeliveryState::Delivered),
            2 => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event to deliver, as handed to [`DeliveryStore::enqueue`].
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The target's configured name.
    pub target: String,
    /// The event id; unique per target (enqueueing it again returns the existing delivery).
    pub event_id: String,
    /// The event type (`X-Hookgate-Event-Type`), for presets that sign it; `None` when not given.
    pub event_type: Option<String>,
    /// The exact bytes to send.
    pub body: Bytes,
    /// Headers sent with every attempt (a signer's headers override them). An inbound queued
    /// mode stores the verified request's headers here.
    pub headers: Vec<(String, String)>,
    /// The first attempt's time (ms); `None` is "now".
    pub not_before_ms: Option<i64>,
}

/// What [`DeliveryStore::enqueue`] answers once the delivery is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The stored delivery: the new one, or the existing one for a repeated event id.
    pub id: DeliveryId,
    /// False when the (target, event id) was already stored: nothing new was written.
    pub created: bool,
}

/// A claimed delivery with everything an attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery's id in the store.
    pub id: DeliveryId,
    /// The target's configured name.
    pub target: String,
    /// The event id, unique per target.
    pub event_id: String,
    /// The event type, when one was given.
    pub event_type: Option<String>,
    /// The exact bytes to send.
    pub body: Bytes,
    /// Headers sent with every attempt (a signer's headers override them).
    pub headers: Vec<(String, String)>,
    /// Attempts made so far (all cycles).
    pub attempts: u32,
    /// Attempts made in the current cycle (a redelivery starts a new one).
    pub cycle_attempts: u32,
    /// The current cycle's first attempt (ms), if any.
    pub cycle_started_ms: Option<i64>,
}

/// A delivery without its bytes (for listings and the admin view).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliverySummary {
    /// The delivery's id in the store.
    pub id: DeliveryId,
    /// The target's configured name.
    pub target: String,
    /// The event id, unique per target.
    pub event_id: String,
    /// The event type, when one was given.
    pub event_type: Option<String>,
    /// Pending, delivered or failed.
    pub state: DeliveryState,
    /// Length of the stored body in bytes.
    pub body_len: u64,
    /// When the delivery was accepted (ms since the Unix epoch).
    pub created_ms: i64,
    /// The next attempt (pending) or the last scheduled one.
    pub next_attempt_ms: i64,
    /// Attempts made so far (all cycles).
    pub attempts: u32,
    /// Why a delivery failed (`rejected: HTTP 400`, `exhausted`, `gone`).
    pub reason: Option<String>,
    /// When it was delivered or failed for good (ms); `None` while pending.
    pub finished_ms: Option<i64>,
}

/// One attempt as recorded: status, latency, error. Never the body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRecord {
    /// 1-based over the delivery's whole life.
    pub number: u32,
    /// When the attempt started (ms since the Unix epoch).
    pub started_ms: i64,
    /// Time from the start of the attempt to its answer or failure, in milliseconds.
    pub latency_ms: u64,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// `timeout` or the connection error, when no answer came.
    pub error: Option<String>,
}

/// A delivery with its recent attempts (the last `history` of them, oldest first).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryDetail {
    /// The delivery itself.
    pub delivery: DeliverySummary,
    /// Its most recent attempts, oldest first.
    pub attempts: Vec<AttemptRecord>,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The target answered 2xx: done.
    Delivered,
    /// Try again at this time (ms).
    Retry {
        /// When the next attempt is due (ms since the Unix epoch).
        at_ms: i64,
    },
    /// Give up, for this reason.
    Failed {
        /// Why the delivery failed (`rejected: HTTP 400`, `exhausted`, `gone`).
        reason: String,
    },
}

/// Whether a target is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// Deliveries are attempted.
    Active,
    /// After consecutive failures or by hand; pending deliveries wait, new ones are refused.
    Paused,
    /// After a failing period or a `410 Gone`; like paused, until resumed by hand.
    Disabled,
}

impl TargetMode {
    /// The mode's code in a store.
    pub fn code(self) -> i64 {
        match self {
            TargetMode::Active => 0,
            TargetMode::Paused => 1,
            TargetMode::Disabled => 2,
        }
    }

    /// The mode for a store code (unknown codes read as disabled: never attempt blindly).
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => TargetMode::Active,
            1 => TargetMode::Paused,
            _ => TargetMode::Disabled,
        }
    }
}

/// A target's persisted health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetHealth {
    /// The target's configured name.
    pub name: String,
    /// Active, paused or disabled.
    pub mode: TargetMode,
    /// Why it is paused or disabled.
    pub reason: Option<String>,
    /// Deliveries failed in a row.
    pub consecutive_failures: u32,
    /// The first failed attempt since the last success (ms).
    pub failing_since_ms: Option<i64>,
    /// When the mode last changed (ms).
    pub changed_ms: i64,
}

impl TargetHealth {
    /// A healthy target.
    pub fn active(name: &str, now_ms: i64) -> Self {
        TargetHealth {
            name: name.to_string(),
            mode: TargetMode::Active,
            reason: None,
            consecutive_failures: 0,
            failing_since_ms: None,
            changed_ms: now_ms,
        }
    }
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only deliveries in this state; `None`: every state.
    pub state: Option<DeliveryState>,
    /// Only deliveries to this target; `None`: every target.
    pub target: Option<String>,
    /// Only ids below this one (paging).
    pub before_id: Option<DeliveryId>,
    /// At most this many (0 reads as 100).
    pub limit: usize,
}

/// Deliveries per state and the oldest pending one, for gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Deliveries waiting for an attempt.
    pub pending: u64,
    /// Deliveries that were delivered.
    pub delivered: u64,
    /// Deliveries that failed for good.
    pub failed: u64,
    /// When the oldest pending delivery was accepted (ms).
    pub oldest_pending_ms: Option<i64>,
}

/// Commit (write + fsync) latency of a store, for a histogram or a summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CommitStats {
    /// Commits since the store was opened.
    pub commits: u64,
    /// Their total latency, in seconds.
    pub total_secs: f64,
    /// The slowest commit, in seconds.
    pub max_secs: f64,
    /// The latest commit, in seconds.
    pub last_secs: f64,
}

/// Why a store call failed. Start-up errors name the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store's lock.
    #[error("delivery store {}: locked by another process (is another hookgate using this data_dir?): {detail}", path.display())]
    Locked {
        /// The store's database file.
        path: PathBuf,
        /// SQLite's error message.
        detail: String,
    },
    /// The file is not a SQLite database or lacks hookgate's tables.
    #[error("delivery store {}: corrupt or not a hookgate delivery store: {detail}", path.display())]
    Corrupt {
        /// The store's database file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The store was written by a hookgate with another schema version.
    #[error("delivery store {}: schema version {found} is not one this hookgate knows (it knows {supported})", path.display())]
    Version {
        /// The store's database file.
        path: PathBuf,
        /// The schema version recorded in the file.
        found: i64,
        /// The schema version this build reads and writes.
        supported: i64,
    },
    /// The file or its folder cannot be opened or created.
    #[error("delivery store {}: cannot open: {detail}", path.display())]
    Open {
        /// The store's database file.
        path: PathBuf,
        /// The underlying error message.
        detail: String,
    },
    /// Any other error from the database.
    #[error("delivery store: {0}")]
    Backend(String),
    /// No delivery has this id.
    #[error("no delivery {0}")]
    NotFound(DeliveryId),
    /// A pending delivery cannot be redelivered: it is still being attempted.
    #[error("delivery {0} is still pending")]
    StillPending(DeliveryId),
    /// The store's worker has stopped: the store was closed or its thread ended.
    #[error("the delivery store is closed")]
    Closed,
}

/// A persistent store of deliveries. Every write returns only after it is durable, so a
/// caller may acknowledge an event once [`enqueue`](DeliveryStore::enqueue) returns.
///
/// One process owns a store's deliveries at a time; [`recover`](DeliveryStore::recover)
/// releases the leases a dead owner left. A backend shared by several replicas keeps the
/// same calls and relies on lease expiry instead.
pub trait DeliveryStore: Send + Sync + 'static {
    /// Stores a delivery (idempotent on target and event id) and makes it durable.
    fn enqueue(&self, delivery: NewDelivery, now_ms: i64) -> StoreFuture<'_, Enqueued>;

    /// Releases every lease (the deliveries they held become due again): called once at
    /// start, when the previous owner is gone. Returns how many were released.
    fn recover(&self) -> StoreFuture<'_, u64>;

    /// Leases up to `limit` due, unleased pending deliveries of `target` until `lease_until_ms`.
    fn claim_due(
        &self,
        target: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Claimed>>;

    /// The earliest next-attempt time of unleased pending deliveries of these targets.
    fn next_due(&self, targets: Vec<String>) -> StoreFuture<'_, Option<i64>>;

    /// Records an attempt, what follows it and the target's new health, in one commit; keeps
    /// only the last `history` attempts of the delivery.
    fn record_attempt(
        &self,
        id: DeliveryId,
        attempt: AttemptRecord,
        outcome: AttemptOutcome,
        health: TargetHealth,
        history: u32,
    ) -> StoreFuture<'_, ()>;

    /// Makes a delivered or failed delivery pending again at `now_ms`, in a new retry cycle.
    fn redeliver(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, DeliverySummary>;

    /// Lists deliveries, newest first.
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<DeliverySummary>>;

    /// One delivery and its kept attempts.
    fn get(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryDetail>>;

    /// Every target's stored health.
    fn targets(&self) -> StoreFuture<'_, Vec<TargetHealth>>;

    /// Stores a target's health.
    fn set_target(&self, health: TargetHealth) -> StoreFuture<'_, ()>;

    /// Deliveries per state and the oldest pending one.
    fn queue_stats(&self) -> StoreFuture<'_, QueueStats>;

    /// Deletes delivered and failed deliveries finished before `before_ms`; returns how many.
    fn purge_finished(&self, before_ms: i64) -> StoreFuture<'_, u64>;

    /// Commit latency so far.
    fn commit_stats(&self) -> CommitStats;
}
