//! The in-process dedup store on `moka`: bounded capacity, a per-entry lifetime (the claim's or
//! the source's dedup memory), and a count of keys evicted for space before they expired — each
//! such eviction is a hole in replay protection and is reported.
//!
//! Every operation goes through `and_compute_with`, which moka serialises per key, so claim,
//! promote and release are atomic with respect to each other.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;
use moka::Expiry;

use super::{ClaimOutcome, ClaimToken, DedupKey, DedupStore, StoreError};

/// Token value meaning "delivered".
const DELIVERED: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// `DELIVERED`, or the token of the in-flight claim.
    token: u32,
    /// Lifetime from the last write, in milliseconds.
    ttl_ms: u32,
}

impl Slot {
    fn new(token: u32, ttl: Duration) -> Self {
        let ttl_ms = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX).max(1);
        Slot { token, ttl_ms }
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(u64::from(self.ttl_ms))
    }
}

struct SlotExpiry;

impl Expiry<DedupKey, Slot> for SlotExpiry {
    fn expire_after_create(&self, _: &DedupKey, slot: &Slot, _: Instant) -> Option<Duration> {
        Some(slot.ttl())
    }

    fn expire_after_update(
        &self,
        _: &DedupKey,
        slot: &Slot,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.ttl())
    }
}

/// In-memory dedup store. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<DedupKey, Slot>,
    next_token: Arc<AtomicU32>,
    early_evictions: Arc<AtomicU64>,
}

impl MemoryStore {
    /// A store holding at most `capacity` keys.
    pub fn new(capacity: u64) -> Self {
        let early_evictions = Arc::new(AtomicU64::new(0));
        let counter = early_evictions.clone();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(SlotExpiry)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        MemoryStore {
            cache,
            next_token: Arc::new(AtomicU32::new(1)),
            early_evictions,
        }
    }

    /// Keys evicted for lack of space before their lifetime ended.
    pub fn early_evictions(&self) -> u64 {
        self.early_evictions.load(Ordering::Relaxed)
    }

    /// Approximate number of keys held.
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn token(&self) -> u32 {
        loop {
            let t = self.next_token.fetch_add(1, Ordering::Relaxed);
            if t != DELIVERED {
                return t;
            }
        }
    }

    fn claim_now(&self, key: DedupKey, ttl: Duration) -> ClaimOutcome {
        let token = self.token();
        let result = self
            .cache
            .entry(key)
            .and_compute_with(|current| match current {
                None => Op::Put(Slot::new(token, ttl)),
                Some(_) => Op::Nop,
            });
        match result {
            CompResult::Inserted(_) => ClaimOutcome::Claimed(ClaimToken(token)),
            CompResult::Unchanged(entry) if entry.value().token == DELIVERED => {
                ClaimOutcome::Delivered
            }
            _ => ClaimOutcome::InFlight,
        }
    }

    fn complete_now(&self, key: DedupKey, token: ClaimToken, ttl: Duration) {
        self.cache
            .entry(key)
            .and_compute_with(|current| match current {
                // Ours, or our claim lapsed while the upstream was answering: the event is delivered.
                None => Op::Put(Slot::new(DELIVERED, ttl)),
                Some(e) if e.value().token == token.0 => Op::Put(Slot::new(DELIVERED, ttl)),
                // Someone else's claim or already delivered: leave it.
                Some(_) => Op::Nop,
            });
    }

    fn release_now(&self, key: DedupKey, token: ClaimToken) {
        self.cache
            .entry(key)
            .and_compute_with(|current| match current {
                Some(e) if e.value().token == token.0 => Op::Remove,
                _ => Op::Nop,
            });
    }
}

impl DedupStore for MemoryStore {
    async fn claim(&self, key: DedupKey, ttl: Duration) -> Result<ClaimOutcome, StoreError> {
        Ok(self.claim_now(key, ttl))
    }

    async fn complete(
        &self,
        key: DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.complete_now(key, token, ttl);
        Ok(())
    }

    async fn release(&self, key: DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        self.release_now(key, token);
        Ok(())
    }

    async fn forget(&self, key: DedupKey) -> Result<(), StoreError> {
        self.cache.invalidate(&key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: [u8; 16] = [7; 16];
    const LONG: Duration = Duration::from_secs(60);

    fn key(id: &str) -> DedupKey {
        DedupKey::for_id(&SCOPE, id.as_bytes())
    }

    fn claimed(outcome: ClaimOutcome) -> ClaimToken {
        match outcome {
            ClaimOutcome::Claimed(t) => t,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn absent_in_flight_delivered() {
        let store = MemoryStore::new(100);
        let t = claimed(store.claim(key("a"), LONG).await.unwrap());
        assert_eq!(
            store.claim(key("a"), LONG).await.unwrap(),
            ClaimOutcome::InFlight
        );
        store.complete(key("a"), t, LONG).await.unwrap();
        assert_eq!(
            store.claim(key("a"), LONG).await.unwrap(),
            ClaimOutcome::Delivered
        );
    }

    #[tokio::test]
    async fn release_lets_a_retry_through_and_ignores_foreign_tokens() {
        let store = MemoryStore::new(100);
        let t = claimed(store.claim(key("a"), LONG).await.unwrap());
        store
            .release(key("a"), ClaimToken(t.0 + 1000))
            .await
            .unwrap();
        assert_eq!(
            store.claim(key("a"), LONG).await.unwrap(),
            ClaimOutcome::InFlight
        );
        store.release(key("a"), t).await.unwrap();
        claimed(store.claim(key("a"), LONG).await.unwrap());
    }

    #[tokio::test]
    async fn claims_lapse_by_themselves() {
        let store = MemoryStore::new(100);
        claimed(
            store
                .claim(key("a"), Duration::from_millis(50))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        claimed(store.claim(key("a"), LONG).await.unwrap());
    }

    #[tokio::test]
    async fn late_completion_after_a_lapse_still_marks_delivered() {
        let store = MemoryStore::new(100);
        let t = claimed(
            store
                .claim(key("a"), Duration::from_millis(30))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        store.complete(key("a"), t, LONG).await.unwrap();
        assert_eq!(
            store.claim(key("a"), LONG).await.unwrap(),
            ClaimOutcome::Delivered
        );
    }

    #[test]
    fn concurrent_claims_have_one_winner() {
        let store = MemoryStore::new(1000);
        let winners = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| store.claim_now(key("race"), LONG)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|o| matches!(o, ClaimOutcome::Claimed(_)))
                .count()
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn keys_are_scoped() {
        let a = DedupKey::for_id(&[1; 16], b"evt");
        let b = DedupKey::for_id(&[2; 16], b"evt");
        let c = DedupKey::for_body(&[1; 16], b"evt");
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
