//! Unit tests of the SQLite store against real files in a scratch folder.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::sqlite::{SqliteOptions, SqliteStore, FILE_NAME};
use super::store::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookgate-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn event(id: &str, at: Option<i64>) -> NewDelivery {
    NewDelivery {
        target: "t".into(),
        event_id: id.into(),
        event_type: Some("x.y".into()),
        body: Bytes::from(format!("{{\"id\":\"{id}\"}}")),
        headers: vec![("x-extra".into(), "1".into())],
        not_before_ms: at,
    }
}

fn attempt(number: u32, status: u16) -> AttemptRecord {
    AttemptRecord {
        number,
        started_ms: 1_000 * i64::from(number),
        latency_ms: 3,
        status: Some(status),
        error: None,
    }
}

#[tokio::test]
async fn enqueue_claim_record_and_reopen() {
    let dir = scratch("lifecycle");
    let store = SqliteStore::open(&dir).unwrap();
    let a = store.enqueue(event("a", None), 100).await.unwrap();
    let b = store.enqueue(event("b", Some(5_000)), 100).await.unwrap();
    assert!(a.created && b.created);
    let again = store.enqueue(event("a", None), 200).await.unwrap();
    assert_eq!(
        again,
        Enqueued {
            id: a.id,
            created: false
        }
    );

    assert_eq!(store.next_due(vec!["t".into()]).await.unwrap(), Some(100));
    let claimed = store.claim_due("t", 1_000, 9_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "b is not due yet");
    assert_eq!(claimed[0].event_id, "a");
    assert_eq!(
        claimed[0].headers,
        vec![("x-extra".to_string(), "1".to_string())]
    );
    assert!(
        store
            .claim_due("t", 1_000, 9_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    assert_eq!(store.next_due(vec!["t".into()]).await.unwrap(), Some(5_000));

    let health = TargetHealth::active("t", 0);
    for n in 1..=5 {
        let outcome = AttemptOutcome::Retry { at_ms: 2_000 };
        store
            .record_attempt(a.id, attempt(n, 503), outcome, health.clone(), 3)
            .await
            .unwrap();
    }
    let detail = store.get(a.id).await.unwrap().unwrap();
    let kept: Vec<u32> = detail.attempts.iter().map(|a| a.number).collect();
    assert_eq!(kept, vec![3, 4, 5], "only the last 3 attempts are kept");
    assert_eq!(detail.delivery.attempts, 5);
    assert_eq!(detail.delivery.state, DeliveryState::Pending);
    assert_eq!(detail.delivery.next_attempt_ms, 2_000);
    drop(store);

    // Everything is on disk: reopen (after the store thread let go of the file).
    let store = reopen(&dir).await;
    store.enqueue(event("c", None), 300).await.unwrap();
    let claimed = store.claim_due("t", 2_000, 9_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "a is due again, and c");
    assert_eq!(claimed[0].event_id, "c", "earliest due first");
    assert_eq!((claimed[1].attempts, claimed[1].cycle_attempts), (5, 5));
    assert_eq!(claimed[1].cycle_started_ms, Some(1_000));
    let failed = AttemptOutcome::Failed {
        reason: "rejected: HTTP 400".into(),
    };
    store
        .record_attempt(a.id, attempt(6, 400), failed, health.clone(), 3)
        .await
        .unwrap();
    let stats = store.queue_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (2, 1));
    let c = store.list(ListFilter::default()).await.unwrap()[0].clone();
    assert_eq!(c.event_id, "c");
    store
        .record_attempt(
            c.id,
            attempt(1, 503),
            AttemptOutcome::Retry { at_ms: 20_000 },
            health.clone(),
            3,
        )
        .await
        .unwrap();
    assert_eq!(stats.oldest_pending_ms, Some(100));

    let again = store.redeliver(a.id, 7_000).await.unwrap();
    assert_eq!(again.state, DeliveryState::Pending);
    assert_eq!(again.next_attempt_ms, 7_000);
    assert!(matches!(
        store.redeliver(a.id, 7_000).await,
        Err(StoreError::StillPending(_))
    ));
    assert!(matches!(
        store.redeliver(999, 7_000).await,
        Err(StoreError::NotFound(999))
    ));
    let claimed = store.claim_due("t", 7_000, 9_000, 10).await.unwrap();
    let redelivered = claimed.iter().find(|c| c.id == a.id).unwrap();
    assert_eq!((redelivered.attempts, redelivered.cycle_attempts), (6, 0));
    assert_eq!(redelivered.cycle_started_ms, None);

    let pending = ListFilter {
        state: Some(DeliveryState::Pending),
        ..ListFilter::default()
    };
    assert_eq!(store.list(pending).await.unwrap().len(), 3);
    assert!(store.commit_stats().commits > 0);
}

async fn reopen(dir: &std::path::Path) -> SqliteStore {
    for _ in 0..100 {
        match SqliteStore::open(dir) {
            Err(StoreError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked")
}

#[tokio::test]
async fn leases_are_released_at_recovery() {
    let dir = scratch("recover");
    let store = SqliteStore::open(&dir).unwrap();
    store.enqueue(event("a", None), 0).await.unwrap();
    assert_eq!(store.claim_due("t", 0, 60_000, 1).await.unwrap().len(), 1);
    assert_eq!(store.recover().await.unwrap(), 1);
    assert_eq!(store.claim_due("t", 0, 60_000, 1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn target_health_persists() {
    let dir = scratch("targets");
    let store = SqliteStore::open(&dir).unwrap();
    let mut health = TargetHealth::active("t", 5);
    health.mode = TargetMode::Disabled;
    health.reason = Some("the target answered 410 Gone".into());
    store.set_target(health.clone()).await.unwrap();
    drop(store);
    let store = reopen(&dir).await;
    assert_eq!(store.targets().await.unwrap(), vec![health]);
}

#[test]
fn unknown_schema_versions_are_refused() {
    let dir = scratch("version");
    drop(SqliteStore::open(&dir).unwrap());
    let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
    conn.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(conn);
    let mut options = SqliteOptions::new(&dir);
    options.busy_timeout = Duration::from_secs(2);
    let error = SqliteStore::open_with(&options).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Version {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(FILE_NAME), "{error}");
}
