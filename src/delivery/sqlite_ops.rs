//! The SQLite store's statements: every write in one transaction committed (and fsynced)
//! before the caller hears back; statements prepared once and cached by the connection.

use bytes::Bytes;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use tokio::sync::oneshot;

use super::sqlite::{backend, Db, EnqueueOp, SqliteStore};
use super::store::*;

/// Where an enqueue's answer goes.
type Reply = oneshot::Sender<Result<Enqueued, StoreError>>;

const SUMMARY: &str = "id, target, event_id, event_type, state, LENGTH(body), created_ms, \
                       next_attempt_ms, attempts, reason, finished_ms";

fn summary(row: &Row<'_>) -> rusqlite::Result<DeliverySummary> {
    Ok(DeliverySummary {
        id: row.get(0)?,
        target: row.get(1)?,
        event_id: row.get(2)?,
        event_type: row.get(3)?,
        state: DeliveryState::from_code(row.get(4)?).unwrap_or(DeliveryState::Failed),
        body_len: row.get::<_, i64>(5)?.max(0) as u64,
        created_ms: row.get(6)?,
        next_attempt_ms: row.get(7)?,
        attempts: row.get(8)?,
        reason: row.get(9)?,
        finished_ms: row.get(10)?,
    })
}

fn health(row: &Row<'_>) -> rusqlite::Result<TargetHealth> {
    Ok(TargetHealth {
        name: row.get(0)?,
        mode: TargetMode::from_code(row.get(1)?),
        reason: row.get(2)?,
        consecutive_failures: row.get(3)?,
        failing_since_ms: row.get(4)?,
        changed_ms: row.get(5)?,
    })
}

fn write_health(tx: &rusqlite::Transaction<'_>, h: &TargetHealth) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO targets (name, mode, reason, consecutive_failures, failing_since_ms, changed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET mode = ?2, reason = ?3, consecutive_failures = ?4,
             failing_since_ms = ?5, changed_ms = ?6",
    )?
    .execute(params![
        h.name,
        h.mode.code(),
        h.reason,
        h.consecutive_failures,
        h.failing_since_ms,
        h.changed_ms
    ])?;
    Ok(())
}

impl Db {
    fn write_tx(&self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(backend)
    }

    /// Writes a batch of enqueues in one transaction, then answers each.
    pub(super) fn enqueue_batch(&mut self, batch: Vec<EnqueueOp>) {
        let mut replies: Vec<(Reply, Result<Enqueued, StoreError>)> =
            Vec::with_capacity(batch.len());
        let result = (|| {
            let tx = self.write_tx()?;
            for op in batch {
                let answer = insert(&tx, &op.delivery, op.now_ms).map_err(backend);
                replies.push((op.reply, answer));
            }
            self.commit(tx)
        })();
        for (reply, answer) in replies {
            let answer = match &result {
                Ok(()) => answer,
                Err(e) => Err(e.clone()),
            };
            let _ = reply.send(answer);
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "delivery store: an enqueue batch was not committed");
        }
    }
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    d: &NewDelivery,
    now_ms: i64,
) -> rusqlite::Result<Enqueued> {
    let headers = serde_json::to_vec(&d.headers).unwrap_or_else(|_| b"[]".to_vec());
    let inserted: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO deliveries (target, event_id, event_type, body, headers, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (target, event_id) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![
                d.target,
                d.event_id,
                d.event_type,
                &d.body[..],
                headers,
                now_ms,
                d.not_before_ms.unwrap_or(now_ms)
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = inserted {
        return Ok(Enqueued { id, created: true });
    }
    let id = tx
        .prepare_cached("SELECT id FROM deliveries WHERE target = ?1 AND event_id = ?2")?
        .query_row(params![d.target, d.event_id], |r| r.get(0))?;
    Ok(Enqueued { id, created: false })
}

fn claim(
    db: &mut Db,
    target: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<Claimed>, StoreError> {
    let tx = db.write_tx()?;
    let claimed = {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE deliveries SET lease_until_ms = ?3 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE target = ?1 AND state = 0 AND next_attempt_ms <= ?2
                       AND lease_until_ms IS NULL
                     ORDER BY next_attempt_ms, id LIMIT ?4)
                 RETURNING id, target, event_id, event_type, body, headers, attempts,
                     attempts - cycle_base, cycle_started_ms, next_attempt_ms",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![target, now_ms, lease_ms, limit as i64], |r| {
                let body: Vec<u8> = r.get(4)?;
                let headers: Vec<u8> = r.get(5)?;
                Ok((
                    r.get::<_, i64>(9)?,
                    Claimed {
                        id: r.get(0)?,
                        target: r.get(1)?,
                        event_id: r.get(2)?,
                        event_type: r.get(3)?,
                        body: Bytes::from(body),
                        headers: serde_json::from_slice(&headers).unwrap_or_default(),
                        attempts: r.get(6)?,
                        cycle_attempts: r.get(7)?,
                        cycle_started_ms: r.get(8)?,
                    },
                ))
            })
            .map_err(backend)?;
        let mut claimed = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
        claimed.sort_by_key(|(due, c)| (*due, c.id));
        claimed.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
    };
    if claimed.is_empty() {
        // Nothing written: not a commit worth timing (no fsync).
        tx.commit().map_err(backend)?;
    } else {
        db.commit(tx)?;
    }
    Ok(claimed)
}

fn record(
    db: &mut Db,
    id: DeliveryId,
    a: &AttemptRecord,
    outcome: &AttemptOutcome,
    h: &TargetHealth,
    history: u32,
) -> Result<(), StoreError> {
    let tx = db.write_tx()?;
    (|| {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO attempts (delivery_id, number, started_ms, latency_ms, status, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, a.number, a.started_ms, a.latency_ms as i64, a.status, a.error])?;
        tx.prepare_cached("DELETE FROM attempts WHERE delivery_id = ?1 AND number <= ?2")?
            .execute(params![id, i64::from(a.number) - i64::from(history.max(1))])?;
        let (state, next, reason, finished) = match outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, None, None, Some(a.started_ms)),
            AttemptOutcome::Retry { at_ms } => (DeliveryState::Pending, Some(*at_ms), None, None),
            AttemptOutcome::Failed { reason } => {
                (DeliveryState::Failed, None, Some(reason.as_str()), Some(a.started_ms))
            }
        };
        tx.prepare_cached(
            "UPDATE deliveries SET state = ?2, attempts = MAX(attempts, ?3),
                 next_attempt_ms = COALESCE(?4, next_attempt_ms), lease_until_ms = NULL,
                 cycle_started_ms = COALESCE(cycle_started_ms, ?5), reason = ?6, finished_ms = ?7
             WHERE id = ?1",
        )?
        .execute(params![id, state.code(), a.number, next, a.started_ms, reason, finished])?;
        write_health(&tx, h)
    })()
    .map_err(backend)?;
    db.commit(tx)
}

fn redeliver(db: &mut Db, id: DeliveryId, now_ms: i64) -> Result<DeliverySummary, StoreError> {
    let tx = db.write_tx()?;
    let state: Option<i64> = tx
        .query_row("SELECT state FROM deliveries WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(backend)?;
    match state.and_then(DeliveryState::from_code) {
        None => return Err(StoreError::NotFound(id)),
        Some(DeliveryState::Pending) => return Err(StoreError::StillPending(id)),
        Some(_) => {}
    }
    tx.execute(
        "UPDATE deliveries SET state = 0, next_attempt_ms = ?2, lease_until_ms = NULL,
             cycle_base = attempts, cycle_started_ms = NULL, reason = NULL, finished_ms = NULL
         WHERE id = ?1",
        params![id, now_ms],
    )
    .map_err(backend)?;
    let summary = tx
        .query_row(
            &format!("SELECT {SUMMARY} FROM deliveries WHERE id = ?1"),
            [id],
            summary,
        )
        .map_err(backend)?;
    db.commit(tx)?;
    Ok(summary)
}

fn list(db: &mut Db, f: &ListFilter) -> Result<Vec<DeliverySummary>, StoreError> {
    let limit = if f.limit == 0 {
        100
    } else {
        f.limit.min(10_000)
    };
    let sql = format!(
        "SELECT {SUMMARY} FROM deliveries
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    );
    let mut stmt = db.conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(
            params![
                f.state.map(DeliveryState::code),
                f.target,
                f.before_id,
                limit as i64
            ],
            summary,
        )
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

fn get(db: &mut Db, id: DeliveryId) -> Result<Option<DeliveryDetail>, StoreError> {
    let conn = &db.conn;
    let Some(delivery) = conn
        .query_row(
            &format!("SELECT {SUMMARY} FROM deliveries WHERE id = ?1"),
            [id],
            summary,
        )
        .optional()
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, started_ms, latency_ms, status, error FROM attempts
             WHERE delivery_id = ?1 ORDER BY number",
        )
        .map_err(backend)?;
    let attempts = stmt
        .query_map([id], |r| {
            Ok(AttemptRecord {
                number: r.get(0)?,
                started_ms: r.get(1)?,
                latency_ms: r.get::<_, i64>(2)?.max(0) as u64,
                status: r.get(3)?,
                error: r.get(4)?,
            })
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(Some(DeliveryDetail { delivery, attempts }))
}

fn stats(db: &mut Db) -> Result<QueueStats, StoreError> {
    let mut stats = QueueStats::default();
    let mut stmt = db
        .conn
        .prepare_cached("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })
        .map_err(backend)?;
    for row in rows {
        let (state, count) = row.map_err(backend)?;
        match DeliveryState::from_code(state) {
            Some(DeliveryState::Pending) => stats.pending = count,
            Some(DeliveryState::Delivered) => stats.delivered = count,
            _ => stats.failed += count,
        }
    }
    stats.oldest_pending_ms = db
        .conn
        .query_row(
            "SELECT created_ms FROM deliveries WHERE state = 0 ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    Ok(stats)
}

impl DeliveryStore for SqliteStore {
    fn enqueue(&self, delivery: NewDelivery, now_ms: i64) -> StoreFuture<'_, Enqueued> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send_enqueue(EnqueueOp {
            delivery,
            now_ms,
            reply,
        });
        Box::pin(async move {
            sent?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn recover(&self) -> StoreFuture<'_, u64> {
        self.call(|db| {
            let tx = db.write_tx()?;
            let n = tx
                .execute(
                    "UPDATE deliveries SET lease_until_ms = NULL WHERE lease_until_ms IS NOT NULL",
                    [],
                )
                .map_err(backend)?;
            db.commit(tx)?;
            Ok(n as u64)
        })
    }

    fn claim_due(
        &self,
        target: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Claimed>> {
        let target = target.to_string();
        self.call(move |db| claim(db, &target, now_ms, lease_until_ms, limit))
    }

    fn next_due(&self, targets: Vec<String>) -> StoreFuture<'_, Option<i64>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT MIN(next_attempt_ms) FROM deliveries
                     WHERE target = ?1 AND state = 0 AND lease_until_ms IS NULL",
                )
                .map_err(backend)?;
            let mut earliest: Option<i64> = None;
            for target in &targets {
                let due: Option<i64> = stmt.query_row([target], |r| r.get(0)).map_err(backend)?;
                earliest = match (earliest, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(earliest)
        })
    }

    fn record_attempt(
        &self,
        id: DeliveryId,
        attempt: AttemptRecord,
        outcome: AttemptOutcome,
        health: TargetHealth,
        history: u32,
    ) -> StoreFuture<'_, ()> {
        self.call(move |db| record(db, id, &attempt, &outcome, &health, history))
    }

    fn redeliver(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, DeliverySummary> {
        self.call(move |db| redeliver(db, id, now_ms))
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<DeliverySummary>> {
        self.call(move |db| list(db, &filter))
    }

    fn get(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryDetail>> {
        self.call(move |db| get(db, id))
    }

    fn targets(&self) -> StoreFuture<'_, Vec<TargetHealth>> {
        self.call(|db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT name, mode, reason, consecutive_failures, failing_since_ms, changed_ms
                     FROM targets ORDER BY name",
                )
                .map_err(backend)?;
            let rows = stmt.query_map([], health).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    fn set_target(&self, h: TargetHealth) -> StoreFuture<'_, ()> {
        self.call(move |db| {
            let tx = db.write_tx()?;
            write_health(&tx, &h).map_err(backend)?;
            db.commit(tx)
        })
    }

    fn queue_stats(&self) -> StoreFuture<'_, QueueStats> {
        self.call(stats)
    }

    fn purge_finished(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        self.call(move |db| {
            let tx = db.write_tx()?;
            let n = tx
                .execute(
                    "DELETE FROM deliveries WHERE state != 0 AND finished_ms < ?1",
                    [before_ms],
                )
                .map_err(backend)?;
            db.commit(tx)?;
            Ok(n as u64)
        })
    }

    fn commit_stats(&self) -> CommitStats {
        self.stats()
    }
}
