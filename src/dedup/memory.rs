//! The in-process dedup store: a compact sharded table from 16-byte key to a slot (claim token,
//! expiry in milliseconds of uptime), about 40 bytes per key held.
//!
//! Expiries are `u64` milliseconds of the injected [`Clock`]'s uptime, so the clock cannot run
//! out (a `u32` of 10 ms ticks wrapped after 497 days, after which every key read as expired).
//! The slot is 16 bytes either way: the table's `u128` key is 16-byte aligned.
//!
//! Why not a general cache: keys are uniformly random digests and values are eight bytes, so a
//! general cache's per-entry bookkeeping (access and write orders, timer wheels, reference
//! counts — over 400 bytes per entry measured with moka) would dominate. Here a key is its own
//! hash, an expired entry counts as absent the moment it expires, and each shard sweeps out
//! expired entries at most every few seconds, on access. Capacity is bounded: a full shard
//! first sweeps, then evicts the entry closest to expiry and counts it as an early eviction —
//! each one a hole in replay protection, reported in metrics.
//!
//! Every operation holds its shard's lock, so claim, promote and release are atomic per key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::waiters::{Registration, Waiters};
use super::{ClaimOutcome, ClaimToken, DedupKey, DedupStore, StoreError};
use crate::clock::{SharedClock, SystemClock};

/// Token value meaning "delivered".
const DELIVERED: u32 = 0;
const SHARDS: usize = 64;
/// A shard sweeps expired entries at most this often (milliseconds).
const SWEEP_EVERY_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// `DELIVERED`, or the token of the in-flight claim.
    token: u32,
    /// Milliseconds of uptime at which the entry expires.
    expires: u64,
}

/// The key bytes are a digest already: their first eight bytes are the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

type Table = HashMap<u128, Slot, BuildHasherDefault<DigestHasher>>;

struct Shard {
    table: Table,
    last_sweep: u64,
}

struct Inner {
    shards: Vec<Mutex<Shard>>,
    per_shard_capacity: usize,
    clock: SharedClock,
    waiters: Waiters,
    next_token: AtomicU32,
    early_evictions: AtomicU64,
}

/// In-memory dedup store. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl MemoryStore {
    /// A store holding at most about `capacity` keys, on the real clock.
    pub fn new(capacity: u64) -> Self {
        Self::with_clock(capacity, SystemClock::shared())
    }

    /// A store holding at most about `capacity` keys, reading expiries off `clock`.
    pub fn with_clock(capacity: u64, clock: SharedClock) -> Self {
        let per_shard_capacity = usize::try_from(capacity.div_ceil(SHARDS as u64))
            .unwrap_or(usize::MAX)
            .max(1);
        MemoryStore {
            inner: Arc::new(Inner {
                shards: (0..SHARDS)
                    .map(|_| {
                        Mutex::new(Shard {
                            table: Table::default(),
                            last_sweep: 0,
                        })
                    })
                    .collect(),
                per_shard_capacity,
                clock,
                waiters: Waiters::default(),
                next_token: AtomicU32::new(1),
                early_evictions: AtomicU64::new(0),
            }),
        }
    }

    /// Keys evicted for lack of space before their lifetime ended.
    pub fn early_evictions(&self) -> u64 {
        self.inner.early_evictions.load(Ordering::Relaxed)
    }

    /// Keys held and not yet expired.
    pub fn len(&self) -> u64 {
        let now = self.now();
        self.inner
            .shards
            .iter()
            .map(|s| {
                lock(s)
                    .table
                    .values()
                    .filter(|slot| slot.expires > now)
                    .count() as u64
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> u64 {
        self.inner.clock.uptime_ms()
    }

    fn token(&self) -> u32 {
        loop {
            let t = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
            if t != DELIVERED {
                return t;
            }
        }
    }

    fn shard(&self, key: &DedupKey) -> (MutexGuard<'_, Shard>, u128) {
        let id = u128::from_le_bytes(key.0);
        let index = (key.0[8] as usize) % SHARDS;
        (lock(&self.inner.shards[index]), id)
    }

    /// Inserts `slot` for `id`, making room first if the shard is full.
    fn insert(&self, shard: &mut Shard, id: u128, slot: Slot, now: u64) {
        if now.saturating_sub(shard.last_sweep) > SWEEP_EVERY_MS {
            shard.table.retain(|_, s| s.expires > now);
            shard.last_sweep = now;
        }
        if shard.table.len() >= self.inner.per_shard_capacity && !shard.table.contains_key(&id) {
            shard.table.retain(|_, s| s.expires > now);
            shard.last_sweep = now;
            if shard.table.len() >= self.inner.per_shard_capacity {
                let victim = shard
                    .table
                    .iter()
                    .filter(|(_, s)| s.token == DELIVERED)
                    .min_by_key(|(_, s)| s.expires)
                    .or_else(|| shard.table.iter().min_by_key(|(_, s)| s.expires))
                    .map(|(k, _)| *k);
                if let Some(victim) = victim {
                    shard.table.remove(&victim);
                    self.inner.early_evictions.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        shard.table.insert(id, slot);
    }

    fn claim_now(&self, key: DedupKey, ttl: Duration) -> ClaimOutcome {
        let now = self.now();
        let (mut shard, id) = self.shard(&key);
        match shard.table.get(&id) {
            Some(slot) if slot.expires > now && slot.token == DELIVERED => ClaimOutcome::Delivered,
            Some(slot) if slot.expires > now => ClaimOutcome::InFlight,
            _ => {
                let token = self.token();
                let slot = Slot {
                    token,
                    expires: now.saturating_add(millis(ttl)),
                };
                self.insert(&mut shard, id, slot, now);
                ClaimOutcome::Claimed(ClaimToken(token))
            }
        }
    }

    fn complete_now(&self, key: DedupKey, token: ClaimToken, ttl: Duration) {
        let now = self.now();
        let (mut shard, id) = self.shard(&key);
        let ours_or_lapsed = match shard.table.get(&id) {
            None => true,
            Some(slot) => slot.token == token.0 || slot.expires <= now,
        };
        // Someone else's live claim, or already delivered: leave it.
        if ours_or_lapsed {
            let slot = Slot {
                token: DELIVERED,
                expires: now.saturating_add(millis(ttl)),
            };
            self.insert(&mut shard, id, slot, now);
        }
        drop(shard);
        self.inner.waiters.wake(&key);
    }

    fn release_now(&self, key: DedupKey, token: ClaimToken) {
        let (mut shard, id) = self.shard(&key);
        if shard
            .table
            .get(&id)
            .is_some_and(|slot| slot.token == token.0)
        {
            shard.table.remove(&id);
        }
        drop(shard);
        self.inner.waiters.wake(&key);
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
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
        let (mut shard, id) = self.shard(&key);
        shard.table.remove(&id);
        drop(shard);
        self.inner.waiters.wake(&key);
        Ok(())
    }

    fn watch(&self, key: DedupKey) -> Registration {
        self.inner.waiters.register(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

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
        assert_eq!(store.len(), 1);
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

    #[tokio::test]
    async fn a_lapsed_claim_taken_over_is_not_completed_by_its_old_holder() {
        let store = MemoryStore::new(100);
        let old = claimed(
            store
                .claim(key("a"), Duration::from_millis(30))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        let new = claimed(store.claim(key("a"), LONG).await.unwrap());
        store.release(key("a"), old).await.unwrap();
        assert_eq!(
            store.claim(key("a"), LONG).await.unwrap(),
            ClaimOutcome::InFlight
        );
        store.complete(key("a"), new, LONG).await.unwrap();
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
    fn capacity_is_bounded_and_early_evictions_are_counted() {
        let store = MemoryStore::new(SHARDS as u64 * 4);
        for i in 0..2000 {
            let t = match store.claim_now(key(&format!("k{i}")), LONG) {
                ClaimOutcome::Claimed(t) => t,
                other => panic!("{other:?}"),
            };
            store.complete_now(key(&format!("k{i}")), t, LONG);
        }
        assert!(store.len() <= SHARDS as u64 * 4);
        assert!(store.early_evictions() >= 2000 - SHARDS as u64 * 4);
    }

    #[test]
    fn expired_entries_make_room_without_counting_as_early() {
        let per_shard = 100u64;
        let store = MemoryStore::new(SHARDS as u64 * per_shard);
        for i in 0..SHARDS as u64 * per_shard {
            store.claim_now(key(&format!("short{i}")), Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(store.len(), 0, "all expired");
        let before = store.early_evictions();
        let fresh = SHARDS as u64 * per_shard / 2;
        for i in 0..fresh {
            claimed(store.claim_now(key(&format!("fresh{i}")), LONG));
        }
        assert_eq!(store.len(), fresh);
        assert_eq!(
            store.early_evictions(),
            before,
            "expired entries were swept, not evicted"
        );
    }

    /// 2^32 ticks of 10 ms: where the old `u32` expiry clock ran out (≈ 497 days).
    const U32_TICKS_OF_10MS: Duration = Duration::from_millis((1u64 << 32) * 10);

    #[test]
    fn expiries_hold_at_any_uptime_including_past_497_days() {
        for start in [
            Duration::ZERO,
            U32_TICKS_OF_10MS - Duration::from_secs(30),
            U32_TICKS_OF_10MS + Duration::from_secs(1),
            Duration::from_secs(100 * 365 * 24 * 3600),
        ] {
            let clock = ManualClock::new(0, start);
            let store = MemoryStore::with_clock(100, clock.clone());
            let t = claimed(store.claim_now(key("a"), LONG));
            store.complete_now(key("a"), t, LONG);
            // Crosses 2^32 ticks for the second start.
            clock.advance(LONG - Duration::from_millis(1));
            assert_eq!(
                store.claim_now(key("a"), LONG),
                ClaimOutcome::Delivered,
                "at {start:?}"
            );
            assert_eq!(store.len(), 1, "at {start:?}");
            clock.advance(Duration::from_millis(1));
            claimed(store.claim_now(key("a"), LONG));
        }
    }

    #[test]
    fn an_in_flight_claim_lapses_exactly_at_its_ttl_on_an_injected_clock() {
        let clock = ManualClock::new(0, U32_TICKS_OF_10MS);
        let store = MemoryStore::with_clock(100, clock.clone());
        claimed(store.claim_now(key("a"), Duration::from_secs(6)));
        clock.advance(Duration::from_millis(5_999));
        assert_eq!(store.claim_now(key("a"), LONG), ClaimOutcome::InFlight);
        clock.advance(Duration::from_millis(1));
        claimed(store.claim_now(key("a"), LONG));
    }

    #[tokio::test]
    async fn settlements_wake_registered_waiters() {
        let store = MemoryStore::new(100);
        let t = claimed(store.claim_now(key("a"), LONG));
        let waiting = store.watch(key("a"));
        assert_eq!(store.inner.waiters.waiting(), 1);
        store.complete_now(key("a"), t, LONG);
        tokio::time::timeout(Duration::from_secs(5), waiting.wait())
            .await
            .expect("woken by the promote");
        assert_eq!(store.inner.waiters.waiting(), 0, "unregistered when done");
    }

    #[test]
    fn slots_stay_compact() {
        // The table's u128 key is 16-byte aligned: a u64 expiry costs nothing per entry.
        assert_eq!(std::mem::size_of::<(u128, Slot)>(), 32);
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
