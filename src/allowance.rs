//! A limit shared by every serving thread on something counted: the requests in progress
//! (`limits.max_concurrent_requests`) and the bytes of bodies not yet verified
//! (`limits.max_pending_body_bytes`).
//!
//! A semaphore keeps one count that every request changes twice (tokio's also locks a mutex to
//! give permits back), so on several cores each request moves that count's cache line from
//! core to core. Here the units not in use are kept partly in a common pool and partly in one
//! slot per thread ([`crate::sharded`]), each on cache lines of its own: a thread takes from and
//! gives back to its own slot, and touches the pool only for a chunk at a time. The limit
//! stays exact: units only move between the pool, the slots and the grants, and a thread that
//! finds too few in its slot and the pool first gathers every slot's back into the pool before
//! it refuses. (A unit given back to a slot while that gathering runs can be missed: a refusal
//! at the very edge of the limit, never a grant past it.)

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::sharded::{shard_of_this_thread, SHARDS};

/// Units held unused by one thread, alone on its cache line (and the adjacent one the
/// prefetcher pairs with it).
#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicUsize);

struct Inner {
    total: usize,
    /// What a thread takes from the pool beyond its need, and keeps after giving back.
    chunk: usize,
    /// Units in no slot and no grant.
    pool: Slot,
    slots: [Slot; SHARDS],
}

impl Inner {
    /// Takes `n` units from the pool, if it holds them.
    fn take_from_pool(&self, n: usize) -> bool {
        let mut free = self.pool.0.load(Relaxed);
        while free >= n {
            match self
                .pool
                .0
                .compare_exchange_weak(free, free - n, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => free = now,
            }
        }
        false
    }
}

/// A limit of `total` units; clones share it.
#[derive(Clone)]
pub struct Allowance {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Allowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allowance")
            .field("total", &self.total())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Allowance {
    /// At most `total` units in use at once (at least 1).
    pub fn new(total: usize) -> Self {
        let total = total.max(1);
        Allowance {
            inner: Arc::new(Inner {
                total,
                // Slots hold at most two chunks each: a quarter of the limit in all.
                chunk: (total / (SHARDS * 8)).max(1),
                pool: Slot(AtomicUsize::new(total)),
                slots: Default::default(),
            }),
        }
    }

    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// Units granted now (a snapshot: units moving between the pool and a slot meanwhile can
    /// make it read high or low for that instant).
    pub fn in_use(&self) -> usize {
        let unused = self.inner.pool.0.load(Relaxed)
            + self
                .inner
                .slots
                .iter()
                .map(|slot| slot.0.load(Relaxed))
                .sum::<usize>();
        self.inner.total.saturating_sub(unused)
    }

    /// Takes `n` units, if that keeps the units in use within the limit. The caller gives
    /// them back with [`Allowance::give`]; [`Allowance::grant`] does it on drop.
    pub fn take(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let inner = &*self.inner;
        let slot = &inner.slots[shard_of_this_thread()].0;
        let mut held = slot.load(Relaxed);
        while held >= n {
            match slot.compare_exchange_weak(held, held - n, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(now) => held = now,
            }
        }
        if inner.take_from_pool(n + inner.chunk) {
            slot.fetch_add(inner.chunk, Relaxed);
            return true;
        }
        if inner.take_from_pool(n) {
            return true;
        }
        // Before refusing: every thread's unused units back to the pool.
        for other in &inner.slots {
            let unused = other.0.swap(0, Relaxed);
            if unused > 0 {
                inner.pool.0.fetch_add(unused, Relaxed);
            }
        }
        inner.take_from_pool(n)
    }

    /// Gives back `n` units taken with [`Allowance::take`].
    pub fn give(&self, n: usize) {
        if n == 0 {
            return;
        }
        let inner = &*self.inner;
        let slot = &inner.slots[shard_of_this_thread()].0;
        let held = slot.fetch_add(n, Relaxed) + n;
        if held > 2 * inner.chunk
            && slot
                .compare_exchange(held, inner.chunk, Relaxed, Relaxed)
                .is_ok()
        {
            inner.pool.0.fetch_add(held - inner.chunk, Relaxed);
        }
    }

    /// `n` units, given back when the grant is dropped.
    pub fn grant(&self, n: usize) -> Option<Grant<'_>> {
        // Built only once taken: a grant dropped gives its units back.
        if self.take(n) {
            Some(Grant { from: self, n })
        } else {
            None
        }
    }
}

/// Units of an [`Allowance`], given back on drop.
#[must_use = "the units are given back as soon as the grant is dropped"]
pub struct Grant<'a> {
    from: &'a Allowance,
    n: usize,
}

impl Grant<'_> {
    /// Adds `other`'s units to this grant (both from the same allowance).
    pub fn merge(&mut self, mut other: Grant<'_>) {
        debug_assert!(Arc::ptr_eq(&self.from.inner, &other.from.inner));
        self.n += std::mem::take(&mut other.n);
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        self.from.give(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn grants_up_to_the_limit_and_gives_back() {
        let allowance = Allowance::new(10);
        let a = allowance.grant(6).unwrap();
        assert!(allowance.grant(5).is_none());
        let mut b = allowance.grant(4).unwrap();
        assert_eq!(allowance.in_use(), 10);
        assert!(!allowance.take(1));
        drop(a);
        assert_eq!(allowance.in_use(), 4);
        b.merge(allowance.grant(6).unwrap());
        assert_eq!(allowance.in_use(), 10);
        drop(b);
        assert_eq!(allowance.in_use(), 0);
        assert!(allowance.grant(11).is_none(), "more than the limit at once");
        assert!(allowance.grant(10).is_some());
        assert_eq!(Allowance::new(0).total(), 1);
    }

    #[test]
    fn units_left_in_another_threads_slot_are_not_lost() {
        let allowance = Allowance::new(1000);
        // A thread takes and gives back: it keeps some units in its slot.
        std::thread::scope(|s| {
            s.spawn(|| {
                for n in [1, 7, 300, 2] {
                    assert!(allowance.take(n));
                    allowance.give(n);
                }
            });
        });
        assert_eq!(allowance.in_use(), 0);
        // All of them are still grantable from this thread.
        let all = allowance
            .grant(1000)
            .expect("the other thread's units come back");
        assert!(!allowance.take(1));
        drop(all);
        assert_eq!(allowance.in_use(), 0);
    }

    #[test]
    fn threads_together_never_pass_the_limit() {
        const LIMIT: usize = 50;
        let allowance = Allowance::new(LIMIT);
        let out = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let refused = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..4usize {
                let (allowance, out, peak, refused) = (&allowance, &out, &peak, &refused);
                s.spawn(move || {
                    for i in 0..20_000usize {
                        let n = 1 + (i * 7 + t) % 9;
                        if allowance.take(n) {
                            let now = out.fetch_add(n, Relaxed) + n;
                            peak.fetch_max(now, Relaxed);
                            out.fetch_sub(n, Relaxed);
                            allowance.give(n);
                        } else {
                            refused.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Relaxed) <= LIMIT, "peak {}", peak.load(Relaxed));
        assert_eq!(allowance.in_use(), 0, "every unit came back");
        assert!(allowance.grant(LIMIT).is_some());
    }
}
