//! The [`Engine`]: accepts events durably, and runs the scheduler that attempts them.
//!
//! - [`Engine::enqueue`] returns only once the delivery is committed (fsynced): answer `202`
//!   after it, never before.
//! - **At-least-once**: an attempt that was running when the process died is attempted again
//!   after restart (the store's leases are released at start). Receivers dedup on the event
//!   id, which stays the same across attempts.
//! - Deliveries resume after a restart at their stored times; a paused or disabled target's
//!   deliveries wait (nothing is dropped) until [`Engine::resume`].
//! - Operator controls: [`list`](Engine::list), [`get`](Engine::get),
//!   [`redeliver`](Engine::redeliver), [`pause`](Engine::pause), [`resume`](Engine::resume),
//!   [`disable`](Engine::disable), [`targets`](Engine::targets), [`stats`](Engine::stats).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Uri;
use tokio::sync::{Mutex, Notify, Semaphore};
use tokio::task::JoinHandle;

use super::metrics::{AttemptCounts, Counters, EngineStats};
use super::policy::{HealthRules, Limits};
use super::store::*;
use crate::clock::{SharedClock, SystemClock};
use crate::sender::deliver::{Sender, Sleeper, TokioSleeper};
use crate::sender::outbound::Target;
use crate::sender::retry::RetryPolicy;
use crate::sender::Signer;

/// A target the engine delivers to.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The name deliveries are stored under.
    pub name: String,
    /// The receiver's `http://` or `https://` URL.
    pub url: Uri,
    /// Signs each attempt afresh; `None` sends the stored headers as they are (the inbound
    /// queued mode forwards a verified request that way).
    pub signer: Option<Signer>,
    /// When a failed attempt is retried, and when the delivery is given up.
    pub retry: RetryPolicy,
    /// When the target is paused or disabled (consecutive failures, failing period, `410 Gone`).
    pub health: HealthRules,
    /// Attempts in flight at once for this target.
    pub concurrency: usize,
    /// The client this target's attempts use, when not the engine's (an inbound source's
    /// upstream trusts `[upstream_tls] ca`, outbound targets `[outbound] ca`).
    pub client: Option<Sender>,
    /// Accept new deliveries while the target is paused or disabled (they wait for a resume)
    /// instead of refusing them: an inbound source's events are never turned away for it.
    pub hold_when_stopped: bool,
}

impl TargetSpec {
    /// The engine's view of a configured outbound target: its `pause_after`, and the
    /// preset's documented disabling rules.
    pub fn from_outbound(target: &Target) -> Self {
        let mut health = HealthRules::for_preset(target.signer.preset().name);
        health.pause_after = Some(target.pause_after.max(1));
        TargetSpec {
            name: target.name.clone(),
            url: target.url.clone(),
            signer: Some(target.signer.clone()),
            retry: target.retry.clone(),
            health,
            concurrency: target.concurrency.max(1),
            client: None,
            hold_when_stopped: false,
        }
    }
}

/// The engine's tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Bounds kept whatever the policy says: `Retry-After` floor, attempts per cycle, history.
    pub limits: Limits,
    /// A claimed delivery's lease: the policy's timeout plus this.
    pub lease_margin: Duration,
    /// How long a graceful shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            limits: Limits::default(),
            lease_margin: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What the engine talks to: the HTTP client, the clock, the waiting.
#[derive(Clone)]
pub struct EngineIo {
    /// The HTTP client attempts are sent with.
    pub sender: Sender,
    /// The clock delivery times are read from (a fake one in tests).
    pub clock: SharedClock,
    /// What waits between attempts (the tokio timer, or a test's).
    pub sleeper: Arc<dyn Sleeper>,
}

impl EngineIo {
    /// The real client, wall clock and timer.
    pub fn real() -> Self {
        EngineIo {
            sender: Sender::default(),
            clock: SystemClock::shared(),
            sleeper: Arc::new(TokioSleeper),
        }
    }
}

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// No target is configured under this name.
    #[error("no target with this name")]
    UnknownTarget,
    /// The target is paused; holds why.
    #[error("the target is paused: {0}; resume it first")]
    Paused(String),
    /// The target is disabled; holds why.
    #[error("the target is disabled: {0}; resume it first")]
    Disabled(String),
    /// The engine is shutting down and takes no new events.
    #[error("the delivery engine is shutting down")]
    ShuttingDown,
    /// `max_pending` deliveries are waiting already.
    #[error("the delivery queue is full ({0} pending)")]
    Full(u64),
    /// The store could not commit the event.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A target's health and load, as the admin view shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetStatus {
    /// The target's persisted health.
    #[serde(flatten)]
    pub health: TargetHealth,
    /// Attempts to this target running now.
    pub in_flight: usize,
}

pub(super) struct TargetRt {
    /// Replaced whole when a reload changes the target (its health and permits stay).
    pub spec: ArcSwap<TargetSpec>,
    /// The permits the target was started with (`concurrency`).
    pub capacity: usize,
    pub permits: Arc<Semaphore>,
    /// The truth about health; held across its write to the store so writes stay in order.
    pub health: Mutex<TargetHealth>,
    /// The mode, readable without waiting (0 active, 1 paused, 2 disabled).
    pub mode: AtomicI64,
    /// This target's attempts by outcome since start.
    pub counters: Counters,
}

impl TargetRt {
    pub(super) fn mode(&self) -> TargetMode {
        TargetMode::from_code(self.mode.load(Ordering::SeqCst))
    }

    fn new(spec: TargetSpec, health: TargetHealth) -> Self {
        let capacity = spec.concurrency.max(1);
        TargetRt {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            mode: AtomicI64::new(health.mode.code()),
            health: Mutex::new(health),
            spec: ArcSwap::from_pointee(spec),
            counters: Counters::default(),
        }
    }

    fn in_flight(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }
}

/// The targets by name; replaced whole when targets are added.
pub(super) type Targets = HashMap<String, Arc<TargetRt>>;

pub(super) struct Inner {
    pub store: Arc<dyn DeliveryStore>,
    pub targets: ArcSwap<Targets>,
    /// Every target's health as stored when the engine started (for targets added later).
    pub stored_health: HashMap<String, TargetHealth>,
    pub options: EngineOptions,
    pub io: EngineIo,
    pub wake: Notify,
    pub stopping: AtomicBool,
    pub counters: Counters,
    /// Pending deliveries, counted from the store at start (for `max_pending`).
    pub pending: AtomicI64,
}

impl Inner {
    pub(super) fn now_ms(&self) -> i64 {
        self.io.clock.wall_ms()
    }
}

/// Aborts the scheduler (and with it every attempt in flight) when the last handle goes.
struct Scheduler(std::sync::Mutex<Option<JoinHandle<()>>>);

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some(task) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// The durable delivery engine. Cheap to clone; dropping the last clone without
/// [`shutdown`](Engine::shutdown) stops at once, like a crash (nothing acknowledged is lost).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    scheduler: Arc<Scheduler>,
}

impl Engine {
    /// Releases the leases a previous process left, loads the targets' stored health and
    /// starts the scheduler. Deliveries of targets not in `targets` stay stored, unattempted.
    pub async fn start(
        store: Arc<dyn DeliveryStore>,
        targets: Vec<TargetSpec>,
        options: EngineOptions,
        io: EngineIo,
    ) -> Result<Engine, StoreError> {
        let released = store.recover().await?;
        if released > 0 {
            tracing::warn!(
                released,
                "deliveries that were being attempted when hookgate stopped are attempted again"
            );
        }
        let stored: HashMap<String, TargetHealth> = store
            .targets()
            .await?
            .into_iter()
            .map(|h| (h.name.clone(), h))
            .collect();
        let now = io.clock.wall_ms();
        let pending = i64::try_from(store.queue_stats().await?.pending).unwrap_or(i64::MAX);
        let targets = targets
            .into_iter()
            .map(|spec| {
                let health = stored
                    .get(&spec.name)
                    .cloned()
                    .unwrap_or_else(|| TargetHealth::active(&spec.name, now));
                (spec.name.clone(), Arc::new(TargetRt::new(spec, health)))
            })
            .collect();
        let inner = Arc::new(Inner {
            store,
            targets: ArcSwap::from_pointee(targets),
            stored_health: stored,
            options,
            io,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            pending: AtomicI64::new(pending),
        });
        let task = tokio::spawn(super::scheduler::run(inner.clone()));
        Ok(Engine {
            inner,
            scheduler: Arc::new(Scheduler(std::sync::Mutex::new(Some(task)))),
        })
    }

    /// Stores `delivery` durably and returns once it is committed: the caller may then
    /// acknowledge the event. Refused for unknown, paused and disabled targets. The same
    /// (target, event id) again returns the stored delivery (`created: false`).
    pub async fn enqueue(&self, delivery: NewDelivery) -> Result<Enqueued, EnqueueError> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            return Err(EnqueueError::ShuttingDown);
        }
        let targets = self.inner.targets.load();
        let target = targets
            .get(&delivery.target)
            .ok_or(EnqueueError::UnknownTarget)?;
        match target.mode() {
            TargetMode::Active => {}
            _ if target.spec.load().hold_when_stopped => {}
            mode => {
                let reason = target.health.lock().await.reason.clone();
                let reason = reason.unwrap_or_else(|| "by the operator".into());
                return Err(match mode {
                    TargetMode::Paused => EnqueueError::Paused(reason),
                    _ => EnqueueError::Disabled(reason),
                });
            }
        }
        if let Some(max) = self.inner.options.limits.max_pending {
            let pending = self.inner.pending.load(Ordering::SeqCst);
            if u64::try_from(pending).unwrap_or(0) >= max {
                return Err(EnqueueError::Full(max));
            }
        }
        let enqueued = self
            .inner
            .store
            .enqueue(delivery, self.inner.now_ms())
            .await?;
        if enqueued.created {
            self.inner.pending.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.wake.notify_one();
        Ok(enqueued)
    }

    /// Deliveries, newest first (no bodies).
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<DeliverySummary>, StoreError> {
        self.inner.store.list(filter).await
    }

    /// One delivery with its kept attempts (status, latency, error; never the body).
    pub async fn get(&self, id: DeliveryId) -> Result<Option<DeliveryDetail>, StoreError> {
        self.inner.store.get(id).await
    }

    /// Attempts a failed (or delivered) delivery again now, with a fresh retry cycle.
    pub async fn redeliver(&self, id: DeliveryId) -> Result<DeliverySummary, StoreError> {
        let summary = self.inner.store.redeliver(id, self.inner.now_ms()).await?;
        self.inner.pending.fetch_add(1, Ordering::SeqCst);
        self.inner.wake.notify_one();
        Ok(summary)
    }

    /// Pauses a target by hand. Returns false for an unknown target.
    pub async fn pause(&self, target: &str) -> Result<bool, StoreError> {
        self.set_mode(
            target,
            TargetMode::Paused,
            Some("paused by the operator".into()),
        )
        .await
    }

    /// Disables a target by hand. Returns false for an unknown target.
    pub async fn disable(&self, target: &str, reason: &str) -> Result<bool, StoreError> {
        self.set_mode(target, TargetMode::Disabled, Some(reason.to_string()))
            .await
    }

    /// Makes a paused or disabled target active again, its failure count cleared; its
    /// waiting deliveries are attempted. Returns false for an unknown target.
    pub async fn resume(&self, target: &str) -> Result<bool, StoreError> {
        self.set_mode(target, TargetMode::Active, None).await
    }

    async fn set_mode(
        &self,
        target: &str,
        mode: TargetMode,
        reason: Option<String>,
    ) -> Result<bool, StoreError> {
        let Some(rt) = self.inner.targets.load().get(target).cloned() else {
            return Ok(false);
        };
        let mut health = rt.health.lock().await;
        let mut next = health.clone();
        next.mode = mode;
        next.reason = reason;
        next.changed_ms = self.inner.now_ms();
        if mode == TargetMode::Active {
            next.consecutive_failures = 0;
            next.failing_since_ms = None;
        }
        self.inner.store.set_target(next.clone()).await?;
        *health = next;
        rt.mode.store(mode.code(), Ordering::SeqCst);
        tracing::info!(target = %target, ?mode, "delivery target changed by the operator");
        self.inner.wake.notify_one();
        Ok(true)
    }

    /// Every configured target's health and attempts in flight.
    pub async fn targets(&self) -> Vec<TargetStatus> {
        let mut all = Vec::new();
        let targets = self.inner.targets.load_full();
        for rt in targets.values() {
            all.push(TargetStatus {
                health: rt.health.lock().await.clone(),
                in_flight: rt.in_flight(),
            });
        }
        all.sort_by(|a, b| a.health.name.cmp(&b.health.name));
        all
    }

    /// One target's health and attempts in flight.
    pub async fn target(&self, name: &str) -> Option<TargetStatus> {
        let rt = self.inner.targets.load().get(name).cloned()?;
        let health = rt.health.lock().await.clone();
        Some(TargetStatus {
            health,
            in_flight: rt.in_flight(),
        })
    }

    /// Queue depth by state, oldest pending age, attempts and outcomes, commit latency.
    pub async fn stats(&self) -> Result<EngineStats, StoreError> {
        let queue = self.inner.store.queue_stats().await?;
        let now = self.inner.now_ms();
        let in_flight = self
            .inner
            .targets
            .load()
            .values()
            .map(|rt| rt.in_flight())
            .sum::<usize>();
        Ok(EngineStats {
            queue,
            oldest_pending_age: queue
                .oldest_pending_ms
                .map(|t| Duration::from_millis(u64::try_from(now - t).unwrap_or(0))),
            attempts: self.inner.counters.snapshot(),
            in_flight: in_flight as u64,
            commits: self.inner.store.commit_stats(),
        })
    }

    /// Attempts and outcomes since start per configured target, by name (the labels of a
    /// per-target metric: only targets the configuration names, so their number is bounded).
    pub fn target_attempts(&self) -> Vec<(String, AttemptCounts)> {
        let targets = self.inner.targets.load();
        let mut all: Vec<_> = targets
            .iter()
            .map(|(name, rt)| (name.clone(), rt.counters.snapshot()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Adds targets, and gives existing ones (by name) their new URL, client, retry policy and
    /// health rules; their health, waiting deliveries and attempts in flight stay. Targets
    /// not named stay too: what they hold is still delivered. A new concurrency takes effect
    /// at the next start. A new target starts with the health stored by an earlier process.
    pub fn update_targets(&self, specs: Vec<TargetSpec>) {
        let mut targets: Targets = (**self.inner.targets.load()).clone();
        for spec in specs {
            if let Some(rt) = targets.get(&spec.name) {
                rt.spec.store(Arc::new(spec));
                continue;
            }
            let health = self
                .inner
                .stored_health
                .get(&spec.name)
                .cloned()
                .unwrap_or_else(|| TargetHealth::active(&spec.name, self.inner.now_ms()));
            targets.insert(spec.name.clone(), Arc::new(TargetRt::new(spec, health)));
        }
        self.inner.targets.store(Arc::new(targets));
        self.inner.wake.notify_one();
    }

    /// Deletes delivered and failed deliveries finished longer than `age` ago.
    pub async fn purge_finished(&self, age: Duration) -> Result<u64, StoreError> {
        let before = self.inner.now_ms() - super::policy::millis(age);
        self.inner.store.purge_finished(before).await
    }

    /// Stops accepting and claiming, waits (at most the configured grace) for attempts in
    /// flight to be recorded, then stops. Attempts cut short are retried after restart.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let task = self
            .scheduler
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
