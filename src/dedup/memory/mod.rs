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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use self::shard::{Made, Shard, DELIVERED};
use super::waiters::{Registration, Waiters};
use super::{ClaimOutcome, ClaimToken, DedupKey, DedupStore, StoreError};
use crate::clock::{SharedClock, SystemClock};

const SHARDS: usize = 64;

/// One shard's table and what only its lock's holder changes: the next claim token and its
/// early evictions. Aligned to its own cache lines (and the adjacent one the prefetcher pairs
/// with them), so that threads working on different shards never write the same line: the
/// store keeps no count that every claim updates.
#[repr(align(128))]
struct Locked(Mutex<Table>);

struct Table {
    shard: Shard,
    /// A claim's token is unique among the claims of its shard, which is all a key's claims.
    next_token: u32,
    early_evictions: u64,
}

impl Table {
    fn token(&mut self) -> u32 {
        if self.next_token == DELIVERED {
            self.next_token = DELIVERED.wrapping_add(1);
        }
        let token = self.next_token;
        self.next_token = token.wrapping_add(1);
        token
    }

    /// Sets `key`, counting a live entry evicted for room as an early eviction.
    fn put(&mut self, key: &DedupKey, token: u32, ttl: Duration, now: u64) {
        let Made { evicted, .. } = self.shard.put(key.0, token, millis(ttl), now);
        self.early_evictions += u64::from(evicted);
    }
}

struct Inner {
    shards: Box<[Locked]>,
    clock: SharedClock,
    waiters: Waiters,
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
                        Locked(Mutex::new(Table {
                            shard: Shard::new(per_shard_capacity),
                            next_token: 1,
                            early_evictions: 0,
                        }))
                    })
                    .collect(),
                clock,
                waiters: Waiters::default(),
            }),
        }
    }

    /// Keys evicted for lack of space before their lifetime ended.
    pub fn early_evictions(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|locked| lock(locked).early_evictions)
            .sum()
    }

    /// Keys held and not yet expired. Drops what has expired first: each shard's expired
    /// entries are at the fronts of its lists, so this costs one lock per shard plus the
    /// entries dropped, never a walk over the entries held.
    pub fn len(&self) -> u64 {
        let now = self.now();
        self.inner
            .shards
            .iter()
            .map(|locked| {
                let mut table = lock(locked);
                table.shard.purge(now);
                table.shard.len() as u64
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> u64 {
        self.inner.clock.uptime_ms()
    }

    fn shard(&self, key: &DedupKey) -> MutexGuard<'_, Table> {
        let index = (key.0[8] as usize) % SHARDS;
        lock(&self.inner.shards[index])
    }

    /// [`DedupStore::claim`], synchronously (the memory store never waits).
    pub fn claim_now(&self, key: DedupKey, ttl: Duration) -> ClaimOutcome {
        let now = self.now();
        let mut shard = self.shard(&key);
        match shard.shard.get(&key.0) {
            Some(slot) if slot.expires > now && slot.token == DELIVERED => ClaimOutcome::Delivered,
            Some(slot) if slot.expires > now => ClaimOutcome::InFlight,
            _ => {
                let token = shard.token();
                shard.put(&key, token, ttl, now);
                ClaimOutcome::Claimed(ClaimToken(token))
            }
        }
    }

    /// [`DedupStore::complete`], synchronously.
    pub fn complete_now(&self, key: DedupKey, token: ClaimToken, ttl: Duration) {
        let now = self.now();
        let mut shard = self.shard(&key);
        let ours_or_lapsed = match shard.shard.get(&key.0) {
            None => true,
            Some(slot) => slot.token == token.0 || slot.expires <= now,
        };
        // Someone else's live claim, or already delivered: leave it.
        if ours_or_lapsed {
            shard.put(&key, DELIVERED, ttl, now);
        }
        drop(shard);
        self.inner.waiters.wake(&key);
    }

    /// [`DedupStore::release`], synchronously.
    pub fn release_now(&self, key: DedupKey, token: ClaimToken) {
        let mut shard = self.shard(&key);
        if shard
            .shard
            .get(&key.0)
            .is_some_and(|slot| slot.token == token.0)
        {
            shard.shard.remove(&key.0);
        }
        drop(shard);
        self.inner.waiters.wake(&key);
    }

    /// [`DedupStore::forget`], synchronously.
    pub fn forget_now(&self, key: DedupKey) {
        let mut shard = self.shard(&key);
        shard.shard.remove(&key.0);
        drop(shard);
        self.inner.waiters.wake(&key);
    }
}

fn lock(locked: &Locked) -> MutexGuard<'_, Table> {
    locked.0.lock().unwrap_or_else(|e| e.into_inner())
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
