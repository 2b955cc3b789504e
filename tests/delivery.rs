//! The durable delivery engine's bounds and controls: a real SQLite file, real sockets (a
//! recording upstream on 127.0.0.1:0) and virtual time (a manual clock moved by a recording
//! sleeper: hour-long schedules run in milliseconds, and every wait the engine asked for is
//! checked). Crashes and restarts are in `delivery_crash.rs`.

mod common;

use std::time::Duration;

use hookgate::delivery::*;
use hookgate::sender::retry::RetryPolicy;

use common::delivery::{event, settled, spec, Virtual};
use common::{temp_dir, Reply, Upstream};

// ---------------------------------------------------------------- bounds and controls

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_zero_is_floored_and_attempts_are_bounded() {
    let dir = temp_dir("delivery-429");
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::status(429).with_header("retry-after", "0"));
    let time = Virtual::at(1_750_000_000_000);
    let engine = time
        .engine(&dir, spec(&upstream.url(), "stripe", "corgea"))
        .await;
    let id = engine.enqueue(event("evt_429", None)).await.unwrap().id;
    let detail = settled(&engine, id).await;
    let allowed = RetryPolicy::parse("stripe").unwrap().max_attempts();
    assert_eq!(allowed, 13);
    assert_eq!(detail.delivery.state, DeliveryState::Failed);
    assert!(detail
        .delivery
        .reason
        .as_deref()
        .unwrap()
        .starts_with("exhausted"));
    assert_eq!(upstream.count(), allowed as usize);
    let slept = time.slept();
    assert_eq!(slept.len(), allowed as usize - 1);
    assert!(
        slept.iter().all(|d| *d == Duration::from_secs(1)),
        "{slept:?}"
    );
    let gaps: Vec<i64> = detail
        .attempts
        .windows(2)
        .map(|w| w[1].started_ms - w[0].started_ms)
        .collect();
    assert!(gaps.iter().all(|g| *g >= 1000), "{gaps:?}");
    let stats = engine.stats().await.unwrap();
    assert_eq!(stats.attempts.retried, u64::from(allowed) - 1);
    assert_eq!((stats.attempts.final_failures, stats.queue.failed), (1, 1));
    assert!(stats.commits.commits > 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_target_and_a_failed_delivery_can_be_redelivered() {
    let dir = temp_dir("delivery-gone");
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(410)]);
    let time = Virtual::at(1_750_000_000_000);
    let engine = time
        .engine(&dir, spec(&upstream.url(), "cloudkeep", "cloudkeep"))
        .await;
    let id = engine.enqueue(event("evt_gone", None)).await.unwrap().id;
    let detail = settled(&engine, id).await;
    assert_eq!(detail.delivery.state, DeliveryState::Failed);
    assert_eq!(detail.delivery.reason.as_deref(), Some("gone: HTTP 410"));
    let target = engine.target("t").await.unwrap();
    assert_eq!(target.health.mode, TargetMode::Disabled);
    let refused = engine.enqueue(event("evt_2", None)).await.unwrap_err();
    assert!(matches!(refused, EnqueueError::Disabled(_)), "{refused}");

    assert!(engine.resume("t").await.unwrap());
    let again = engine.redeliver(id).await.unwrap();
    assert_eq!(again.state, DeliveryState::Pending);
    let detail = settled(&engine, id).await;
    assert_eq!(detail.delivery.state, DeliveryState::Delivered);
    let statuses: Vec<_> = detail.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(410), Some(202)]);
    let listed = engine
        .list(ListFilter {
            state: Some(DeliveryState::Delivered),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_pauses_after_ten_failed_deliveries_and_resumes() {
    let dir = temp_dir("delivery-pause");
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::status(500));
    let time = Virtual::at(1_750_000_000_000);
    let engine = time
        .engine(&dir, spec(&upstream.url(), "corgea", "corgea"))
        .await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            engine
                .enqueue(event(&format!("evt_{n}"), None))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &ids {
        assert_eq!(
            settled(&engine, *id).await.delivery.state,
            DeliveryState::Failed
        );
    }
    assert_eq!(upstream.count(), 30, "3 attempts each (Corgea)");
    let target = engine.target("t").await.unwrap();
    assert_eq!(target.health.mode, TargetMode::Paused);
    assert_eq!(target.health.consecutive_failures, 10);
    let refused = engine.enqueue(event("evt_late", None)).await.unwrap_err();
    assert!(matches!(refused, EnqueueError::Paused(_)), "{refused}");

    upstream.set_default(Reply::status(200));
    assert!(engine.resume("t").await.unwrap());
    assert_eq!(
        engine
            .target("t")
            .await
            .unwrap()
            .health
            .consecutive_failures,
        0
    );
    let id = engine.enqueue(event("evt_late", None)).await.unwrap().id;
    assert_eq!(
        settled(&engine, id).await.delivery.state,
        DeliveryState::Delivered
    );
    assert!(!engine.resume("nope").await.unwrap());
    engine.shutdown().await;
}

// ---------------------------------------------------------------- start-up errors

#[test]
fn a_corrupt_store_is_a_clear_startup_error() {
    let dir = temp_dir("delivery-garbage");
    let path = dir.join(hookgate::delivery::sqlite::FILE_NAME);
    std::fs::write(&path, b"this is not a database ".repeat(400)).unwrap();
    let error = SqliteStore::open(&dir).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("corrupt"),
        "{text}"
    );

    // A real store whose pages were overwritten.
    let dir = temp_dir("delivery-damaged");
    let path = dir.join(hookgate::delivery::sqlite::FILE_NAME);
    drop(SqliteStore::open(&dir).unwrap());
    let mut bytes = Vec::new();
    for _ in 0..200 {
        // The store thread closes the file just after the handle is dropped.
        bytes = std::fs::read(&path).unwrap();
        if !dir
            .join(format!("{}-wal", hookgate::delivery::sqlite::FILE_NAME))
            .exists()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for b in &mut bytes[100..] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let error = SqliteStore::open(&dir).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
}

#[test]
fn a_locked_store_is_a_clear_startup_error() {
    let dir = temp_dir("delivery-locked");
    let mut options = SqliteOptions::new(&dir);
    options.busy_timeout = Duration::from_millis(100);
    let owner = SqliteStore::open_with(&options).unwrap();
    let error = SqliteStore::open_with(&options).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(
        error.to_string().contains("locked by another process"),
        "{error}"
    );
    drop(owner);

    // Another connection holding an exclusive lock.
    let dir = temp_dir("delivery-locked-raw");
    let mut options = SqliteOptions::new(&dir);
    options.busy_timeout = Duration::from_millis(100);
    let raw = rusqlite::Connection::open(dir.join(hookgate::delivery::sqlite::FILE_NAME)).unwrap();
    raw.execute_batch("CREATE TABLE other (x); BEGIN EXCLUSIVE; INSERT INTO other VALUES (1);")
        .unwrap();
    let error = SqliteStore::open_with(&options).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    raw.execute_batch("COMMIT").unwrap();
}
