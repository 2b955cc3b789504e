//! The durable delivery engine shared by the outbound sender and (later) the inbound queued
//! mode: deliveries (event bytes, target, attempt history, next attempt time, state) kept in
//! a [`DeliveryStore`], attempted by an [`Engine`] with the existing retry policies, within
//! bounds that hold for every policy.
//!
//! - [`store`]: the [`DeliveryStore`] trait and its records.
//! - [`sqlite`]: the embedded store, one SQLite file in WAL mode, fsynced per commit.
//! - [`policy`]: what follows an attempt, the [`Limits`], target health rules.
//! - [`engine`]: the [`Engine`]: durable enqueue, operator controls, figures.
//! - `scheduler`: the task that claims due deliveries and attempts them.
//! - [`metrics`]: the engine's figures as numbers.
//!
//! # Use
//! ```no_run
//! # async fn demo(targets: Vec<hookgate::delivery::TargetSpec>) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use hookgate::delivery::*;
//! let store = Arc::new(SqliteStore::open("/var/lib/hookgate")?);
//! let engine = Engine::start(store, targets, EngineOptions::default(), EngineIo::real()).await?;
//! let accepted = engine
//!     .enqueue(NewDelivery {
//!         target: "cloudkeep".into(),
//!         event_id: "evt_1".into(),
//!         event_type: Some("secret.rotated".into()),
//!         body: bytes::Bytes::from_static(b"{}"),
//!         headers: Vec::new(),
//!         not_before_ms: None,
//!     })
//!     .await?; // durable now: answer 202 with accepted.id
//! # let _ = accepted;
//! engine.shutdown().await;
//! # Ok(()) }
//! ```

pub mod engine;
pub mod metrics;
pub mod policy;
mod scheduler;
pub mod sqlite;
mod sqlite_ops;
#[cfg(test)]
mod sqlite_tests;
pub mod store;

pub use engine::{Engine, EngineIo, EngineOptions, EnqueueError, TargetSpec, TargetStatus};
pub use metrics::{AttemptCounts, EngineStats};
pub use policy::{HealthRules, Limits};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::*;
