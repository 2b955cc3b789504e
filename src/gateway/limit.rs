//! Limits that refuse rather than wait: the requests in progress (`super::shed`) and the
//! bytes of unverified bodies being received (`super::body`). A count against a fixed
//! maximum, taken with one compare-and-swap and given back with one subtraction. A
//! semaphore (tokio's, which these were) also takes its waiter list's lock on every release,
//! for waiters these limits never have: two more atomic operations per request and limit, on
//! a lock every serving thread shares (`bench/instructions.py` with `INSN_ATOMICS=1`).

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Units in use, at most `max`.
#[derive(Debug)]
pub(super) struct Limit {
    used: AtomicUsize,
    max: usize,
}

impl Limit {
    pub(super) fn new(max: usize) -> Self {
        Limit {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Units taken now.
    pub(super) fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Takes `n` units if they fit under the maximum; they go back when the answer is
    /// dropped. `holder` is how the answer reaches the limit: a reference where the taker
    /// outlives it, else a handle that keeps it alive.
    pub(super) fn take<H: Deref<Target = Limit>>(holder: H, n: usize) -> Option<Taken<H>> {
        let max = holder.max;
        holder
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= max)
            })
            .ok()?;
        Some(Taken { limit: holder, n })
    }
}

/// Units taken from a [`Limit`], given back when dropped.
#[derive(Debug)]
pub(super) struct Taken<H: Deref<Target = Limit>> {
    limit: H,
    n: usize,
}

impl<H: Deref<Target = Limit>> Taken<H> {
    /// Adds `other`'s units to these (taken from the same limit): they go back together.
    pub(super) fn merge(&mut self, mut other: Taken<H>) {
        debug_assert!(std::ptr::eq(&*self.limit, &*other.limit), "one limit");
        self.n += std::mem::take(&mut other.n);
    }
}

impl<H: Deref<Target = Limit>> Drop for Taken<H> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.limit.used.fetch_sub(self.n, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn takes_up_to_the_maximum_and_no_further() {
        let limit = Limit::new(10);
        let a = Limit::take(&limit, 6).expect("fits");
        assert!(Limit::take(&limit, 5).is_none(), "6 + 5 > 10");
        let b = Limit::take(&limit, 4).expect("6 + 4 = 10 fits");
        assert_eq!(limit.in_use(), 10);
        assert!(Limit::take(&limit, 1).is_none());
        drop(a);
        assert_eq!(limit.in_use(), 4);
        assert!(Limit::take(&limit, 6).is_some());
        drop(b);
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn a_refused_take_leaves_the_count_alone_even_where_it_would_overflow() {
        let limit = Limit::new(usize::MAX);
        let _held = Limit::take(&limit, usize::MAX - 1).expect("fits");
        assert!(Limit::take(&limit, 2).is_none());
        assert_eq!(limit.in_use(), usize::MAX - 1);
    }

    #[test]
    fn merged_units_go_back_together_once() {
        let limit = Limit::new(100);
        let mut first = Limit::take(&limit, 30).unwrap();
        first.merge(Limit::take(&limit, 20).unwrap());
        assert_eq!(limit.in_use(), 50);
        drop(first);
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn units_taken_on_many_threads_all_go_back() {
        let limit = Arc::new(Limit::new(1_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || {
                    let mut granted = 0;
                    for _ in 0..10_000 {
                        if let Some(taken) = Limit::take(limit.clone(), 3) {
                            assert!(limit.in_use() <= 1_000);
                            granted += 1;
                            drop(taken);
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            granted, 40_000,
            "never more than 12 of 1,000 in use at once"
        );
        assert_eq!(limit.in_use(), 0);
    }
}
