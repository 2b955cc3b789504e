//! Deduplication state: the three states of an event key — absent, in flight, delivered — and
//! the store trait every backend implements, and the backends: in memory (one instance) and
//! Redis (several replicas sharing one view). The rule this module exists for: a key becomes
//! *delivered* only after the upstream accepted the event; a failed attempt releases its claim so
//! the sender's retry goes through.
//!
//! Keys are 16-byte digests of (source scope, key kind, id or body), so the store never holds
//! ids or bodies and every key has the same small size.

pub mod memory;
pub mod redis;
pub mod waiters;

use std::future::Future;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use memory::MemoryStore;
pub use redis::{RedisSettings, RedisStore, UnavailablePolicy};
pub use waiters::{Registration, Waiters};

/// A scoped, fixed-size dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupKey(pub [u8; 16]);

impl DedupKey {
    /// The key of an event id within a source.
    pub fn for_id(scope: &[u8; 16], id: &[u8]) -> Self {
        Self::derive(scope, b'i', id)
    }

    /// The key of a body digest within a source.
    pub fn for_body(scope: &[u8; 16], body: &[u8]) -> Self {
        Self::derive(scope, b'd', body)
    }

    fn derive(scope: &[u8; 16], kind: u8, data: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(scope)
            .chain_update([kind])
            .chain_update(data)
            .finalize();
        DedupKey(digest[..16].try_into().expect("16 bytes"))
    }
}

/// Identifies one claim, so only its holder can promote or release it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimToken(pub u32);

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was absent and is now in flight for this claimant.
    Claimed(ClaimToken),
    /// The event was delivered already.
    Delivered,
    /// Another request holds the key right now.
    InFlight,
}

/// The store could not answer (only remote backends fail).
#[derive(Debug, Clone, thiserror::Error)]
#[error("dedup store unavailable: {0}")]
pub struct StoreError(pub String);

/// A dedup backend. All operations are atomic per key.
pub trait DedupStore: Send + Sync + 'static {
    /// Whether deliveries are forwarded without dedup while the store is unavailable
    /// (instead of being answered 503).
    fn fails_open(&self) -> bool {
        false
    }

    /// Claims `key` for `in_flight_ttl` if absent (the claim lapses by itself if never resolved).
    fn claim(
        &self,
        key: DedupKey,
        in_flight_ttl: Duration,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Marks `key` delivered for `ttl`, if the claim is still ours or has lapsed.
    fn complete(
        &self,
        key: DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops our claim on `key` so a retry can go through. Another holder's claim is kept.
    fn release(
        &self,
        key: DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets `key` whatever its state (for deliberate redelivery by an operator).
    fn forget(&self, key: DedupKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Registers this process's interest in `key` settling (delivered, released or forgotten,
    /// here or on another replica). Re-read the key with `claim` after registering, then wait
    /// on the registration: a settlement in between still wakes it.
    fn watch(&self, key: DedupKey) -> Registration;
}

/// The configured backend.
#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// Entries and early evictions, for a store that keeps them in this process.
    pub fn local_stats(&self) -> Option<(u64, u64)> {
        match self {
            Store::Memory(m) => Some((m.len(), m.early_evictions())),
            Store::Redis(_) => None,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

/// The Redis store's futures are boxed: a network round trip's state is kilobytes, and unboxed
/// it would set the size of every request's future, in-memory store included (the dedup
/// layer's future was 4.6 KB, copied whole into its box on every request).
impl DedupStore for Store {
    fn fails_open(&self) -> bool {
        match self {
            Store::Memory(m) => m.fails_open(),
            Store::Redis(r) => r.fails_open(),
        }
    }

    async fn claim(&self, key: DedupKey, ttl: Duration) -> Result<ClaimOutcome, StoreError> {
        match self {
            Store::Memory(m) => m.claim(key, ttl).await,
            Store::Redis(r) => Box::pin(r.claim(key, ttl)).await,
        }
    }

    async fn complete(
        &self,
        key: DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => m.complete(key, token, ttl).await,
            Store::Redis(r) => Box::pin(r.complete(key, token, ttl)).await,
        }
    }

    async fn release(&self, key: DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => m.release(key, token).await,
            Store::Redis(r) => Box::pin(r.release(key, token)).await,
        }
    }

    async fn forget(&self, key: DedupKey) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => m.forget(key).await,
            Store::Redis(r) => Box::pin(r.forget(key)).await,
        }
    }

    fn watch(&self, key: DedupKey) -> Registration {
        match self {
            Store::Memory(m) => m.watch(key),
            Store::Redis(r) => r.watch(key),
        }
    }
}
