//! Requests of this process waiting for an in-flight key to settle (be delivered, released or
//! forgotten). A waiter registers *before* it re-reads the key's state, so a settlement that
//! happens between the read and the wait still wakes it (no lost wake-ups).
//!
//! The memory store wakes waiters itself when it promotes, releases or forgets a key; the Redis
//! store wakes them from its one pub/sub subscription per process (see `redis.rs`), and wakes
//! all of them whenever that subscription is (re)established, since settlements published
//! while it was down were missed.
//!
//! Every settlement asks to wake a key's waiters, and there almost never are any: a count of
//! the keys waited on answers that without the lock, so the settlements of every serving
//! thread only read a cache line nobody writes until someone waits. A waiter counts itself
//! before its re-read of the key's state and a settlement reads the count after changing that
//! state, so at least one of them sees the other.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

use super::DedupKey;

#[derive(Default)]
struct Entry {
    notify: Arc<Notify>,
    waiters: usize,
}

/// The keys waited on in this process.
#[derive(Clone, Default)]
pub struct Waiters {
    map: Arc<Mutex<HashMap<DedupKey, Entry>>>,
    /// Registrations not yet dropped (the sum of the entries' `waiters`).
    waiting: Arc<AtomicUsize>,
    /// Woken on every (re)subscription: everyone re-checks.
    all: Arc<Notify>,
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, HashMap<DedupKey, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers interest in `key`. Re-read the key's state after this, then `wait`.
    pub fn register(&self, key: DedupKey) -> Registration {
        let notify = {
            let mut map = self.lock();
            let entry = map.entry(key).or_default();
            entry.waiters += 1;
            self.waiting.fetch_add(1, SeqCst);
            entry.notify.clone()
        };
        Registration::new(self.clone(), key, notify)
    }

    /// Wakes every waiter of `key`.
    pub fn wake(&self, key: &DedupKey) {
        if self.waiting.load(SeqCst) == 0 {
            return;
        }
        if let Some(entry) = self.lock().get(key) {
            entry.notify.notify_waiters();
        }
    }

    /// Wakes every waiter of every key (their settlements may have been missed).
    pub fn wake_all(&self) {
        self.all.notify_waiters();
        for entry in self.lock().values() {
            entry.notify.notify_waiters();
        }
    }

    /// How many requests are waiting (for tests and diagnostics).
    pub fn waiting(&self) -> usize {
        self.waiting.load(SeqCst)
    }

    fn unregister(&self, key: &DedupKey) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(key) {
            entry.waiters -= 1;
            self.waiting.fetch_sub(1, SeqCst);
            if entry.waiters == 0 {
                map.remove(key);
            }
        }
    }
}

/// One waiter's registration; armed at creation, so a wake-up after `register` is never lost.
pub struct Registration {
    waiters: Waiters,
    key: DedupKey,
    notified: Pin<Box<OwnedNotified>>,
    everyone: Pin<Box<OwnedNotified>>,
}

impl Registration {
    fn new(waiters: Waiters, key: DedupKey, notify: Arc<Notify>) -> Self {
        let mut notified = Box::pin(notify.notified_owned());
        let mut everyone = Box::pin(waiters.all.clone().notified_owned());
        notified.as_mut().enable();
        everyone.as_mut().enable();
        Registration {
            waiters,
            key,
            notified,
            everyone,
        }
    }

    /// Resolves when the key may have settled (or everyone was told to re-check). Consumes
    /// the registration: register again before the next re-check.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.notified.as_mut() => {}
            _ = self.everyone.as_mut() => {}
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.waiters.unregister(&self.key);
    }
}
