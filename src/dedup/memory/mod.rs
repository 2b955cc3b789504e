//! The in-process dedup store: 64 shards, each a compact table from 16-byte key to (claim token,
//! expiry in milliseconds of uptime) with per-TTL expiry lists (see `shard.rs`), about 50 bytes
//! per key held.
//!
//! Expiries are `u64` milliseconds of the injected [`crate::clock::Clock`]'s uptime, so the clock cannot run
//! out (a `u32` of 10 ms ticks wrapped after 497 days, after which every key read as expired).
//!
//! Why not a general cache: keys are uniformly random digests and values are eight bytes, so a
//! general cache's per-entry bookkeeping would dominate (measured in `docs/dedup-store.md`).
//! Here a key is its own hash, an expired entry counts as absent the moment it expires, and
//! since one TTL's insertion order is its expiry order, the entry that expires first is always
//! at the front of a list: a full shard drops its expired fronts, then evicts the live entry
//! closest to expiry and counts it as an early eviction — each one a hole in replay protection,
//! reported in metrics. Full or empty, a claim costs the same.
//!
//! Every operation holds its shard's lock, so claim, promote and release are atomic per key.

mod shard;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use self::shard::{Made, Shard, DELIVERED};
use super::waiters::{Registration, Waiters};
use super::{ClaimOutcome, ClaimToken, DedupKey, DedupStore, StoreError};
use crate::clock::{SharedClock, SystemClock};

const SHARDS: usize = 64;

struct Inner {
    shards: Vec<Mutex<Shard>>,
    clock: SharedClock,
    waiters: Waiters,
    next_token: AtomicU32,
    early_evictions: AtomicU64,
    /// Entries held in all shards (expired ones until dropped).
    held: AtomicU64,
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
                    .map(|_| Mutex::new(Shard::new(per_shard_capacity)))
                    .collect(),
                clock,
                waiters: Waiters::default(),
                next_token: AtomicU32::new(1),
                early_evictions: AtomicU64::new(0),
                held: AtomicU64::new(0),
            }),
        }
    }

    /// Keys evicted for lack of space before their lifetime ended.
    pub fn early_evictions(&self) -> u64 {
        self.inner.early_evictions.load(Ordering::Relaxed)
    }

    /// Keys held and not yet expired. Drops what has expired first: each shard's expired
    /// entries are at the fronts of its lists, so this costs one lock per shard plus the
    /// entries dropped, never a walk over the entries held.
    pub fn len(&self) -> u64 {
        let now = self.now();
        for shard in &self.inner.shards {
            let mut shard = lock(shard);
            let dropped = shard.purge(now);
            self.settle(dropped, false);
        }
        self.inner.held.load(Ordering::Relaxed)
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

    fn shard(&self, key: &DedupKey) -> MutexGuard<'_, Shard> {
        let index = (key.0[8] as usize) % SHARDS;
        lock(&self.inner.shards[index])
    }

    /// Accounts for `dropped` entries removed and, with `evicted`, one live entry evicted.
    fn settle(&self, dropped: usize, evicted: bool) {
        let dropped = dropped + usize::from(evicted);
        if dropped > 0 {
            self.inner.held.fetch_sub(dropped as u64, Ordering::Relaxed);
        }
        if evicted {
            self.inner.early_evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sets `key` in `shard`, keeping the count and the eviction counter.
    fn put(&self, shard: &mut Shard, key: &DedupKey, token: u32, ttl: Duration, now: u64) {
        let before = shard.len();
        let Made { expired, evicted } = shard.put(key.0, token, millis(ttl), now);
        // Whatever was dropped, the shard's size grew by one or stayed (an update in place).
        let grown = shard.len() + expired + usize::from(evicted) - before;
        self.inner.held.fetch_add(grown as u64, Ordering::Relaxed);
        self.settle(expired, evicted);
    }

    fn remove(&self, shard: &mut Shard, key: &DedupKey) {
        if shard.remove(&key.0) {
            self.inner.held.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// [`DedupStore::claim`], synchronously (the memory store never waits).
    pub fn claim_now(&self, key: DedupKey, ttl: Duration) -> ClaimOutcome {
        let now = self.now();
        let mut shard = self.shard(&key);
        match shard.get(&key.0) {
            Some(slot) if slot.expires > now && slot.token == DELIVERED => ClaimOutcome::Delivered,
            Some(slot) if slot.expires > now => ClaimOutcome::InFlight,
            _ => {
                let token = self.token();
                self.put(&mut shard, &key, token, ttl, now);
                ClaimOutcome::Claimed(ClaimToken(token))
            }
        }
    }

    /// [`DedupStore::complete`], synchronously.
    pub fn complete_now(&self, key: DedupKey, token: ClaimToken, ttl: Duration) {
        let now = self.now();
        let mut shard = self.shard(&key);
        let ours_or_lapsed = match shard.get(&key.0) {
            None => true,
            Some(slot) => slot.token == token.0 || slot.expires <= now,
        };
        // Someone else's live claim, or already delivered: leave it.
        if ours_or_lapsed {
            self.put(&mut shard, &key, DELIVERED, ttl, now);
        }
        drop(shard);
        self.inner.waiters.wake(&key);
    }

    /// [`DedupStore::release`], synchronously.
    pub fn release_now(&self, key: DedupKey, token: ClaimToken) {
        let mut shard = self.shard(&key);
        if shard.get(&key.0).is_some_and(|slot| slot.token == token.0) {
            self.remove(&mut shard, &key);
        }
        drop(shard);
        self.inner.waiters.wake(&key);
    }

    /// [`DedupStore::forget`], synchronously.
    pub fn forget_now(&self, key: DedupKey) {
        let mut shard = self.shard(&key);
        self.remove(&mut shard, &key);
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
        self.forget_now(key);
        Ok(())
    }

    fn watch(&self, key: DedupKey) -> Registration {
        self.inner.waiters.register(key)
    }
}

#[cfg(test)]
mod tests;
