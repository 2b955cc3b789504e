//! The dedup claims held by requests still in progress, so shutdown can release those that
//! never finish (a shared store would otherwise keep them until they lapse).
//!
//! Every delivery registers its claims here and takes them off when it settles, so the list is
//! split into one lock per serving thread ([`crate::sharded`]), each on cache lines of its
//! own, where one shared lock and counter cost more the more cores served: a request lists its
//! claims in its thread's shard and remembers which, so settling on another thread still
//! finds them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;

use crate::dedup::{ClaimToken, DedupKey};
use crate::sharded::{shard_of_this_thread, SHARDS};

/// One request's claims: at most three keys (event id, body digest, transmission), inline.
pub(super) type Claims = SmallVec<[(DedupKey, ClaimToken); 3]>;

/// Where one request's claims are listed: the shard and a number unique within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    shard: usize,
    id: u64,
}

/// Aligned so that no two shards share a cache line (or the adjacent one the prefetcher
/// pairs with it).
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    next: u64,
    held: HashMap<u64, Claims, BuildHasherDefault<SlotIdHasher>>,
}

/// The shard-local slot numbers are distinct integers already: they are their own hash.
#[derive(Default)]
struct SlotIdHasher(u64);

impl Hasher for SlotIdHasher {
    fn finish(&self) -> u64 {
        // Spread sequential numbers over the table's control bytes (the top 7 bits).
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Claims by request, shared by every clone of the gateway's stack.
#[derive(Clone)]
pub(super) struct Outstanding {
    shards: Arc<[Mutex<Shard>]>,
}

impl Default for Outstanding {
    fn default() -> Self {
        Outstanding {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl std::fmt::Debug for Outstanding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outstanding").finish_non_exhaustive()
    }
}

impl Outstanding {
    /// Lists one request's claims (not empty) until [`Outstanding::settle`].
    pub(super) fn track(&self, claims: Claims) -> Slot {
        let shard = shard_of_this_thread();
        let mut locked = self.lock(shard);
        let id = locked.next;
        locked.next += 1;
        locked.held.insert(id, claims);
        Slot { shard, id }
    }

    /// Takes a request's claims off the list.
    pub(super) fn settle(&self, slot: Slot) {
        self.lock(slot.shard).held.remove(&slot.id);
    }

    /// Removes and returns every claim still listed.
    pub(super) fn take_all(&self) -> Vec<(DedupKey, ClaimToken)> {
        (0..self.shards.len())
            .flat_map(|shard| {
                let mut locked = self.lock(shard);
                locked
                    .held
                    .drain()
                    .flat_map(|(_, claims)| claims)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(first: u8, token: u32) -> (DedupKey, ClaimToken) {
        let mut key = [0u8; 16];
        key[0] = first;
        (DedupKey(key), ClaimToken(token))
    }

    #[test]
    fn settled_claims_leave_the_list_and_unsettled_ones_are_taken_at_shutdown() {
        let outstanding = Outstanding::default();
        // Two requests of this thread, one of another; one request holds two keys.
        let a = outstanding.track(smallvec::smallvec![claim(1, 10)]);
        let b = outstanding.track(smallvec::smallvec![claim(1, 11), claim(9, 12)]);
        let c = std::thread::scope(|s| {
            s.spawn(|| outstanding.track(smallvec::smallvec![claim(2, 13)]))
                .join()
                .unwrap()
        });
        assert_eq!(a.shard, b.shard);
        assert_ne!(a, b);
        // Settled from another thread than the one that listed it.
        std::thread::scope(|s| s.spawn(|| outstanding.settle(a)).join().unwrap());
        let mut left: Vec<u32> = outstanding.take_all().iter().map(|(_, t)| t.0).collect();
        left.sort_unstable();
        assert_eq!(left, vec![11, 12, 13]);
        assert!(outstanding.take_all().is_empty(), "taken once");
        // Settling a slot already taken is harmless.
        outstanding.settle(b);
        outstanding.settle(c);
    }
}
