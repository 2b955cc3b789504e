//! The services below a layer whose requests call them only after awaiting something (the
//! body, a dedup claim), held once per copy of the stack — one copy per connection — and
//! shared by that copy's requests.
//!
//! tower's usual way is to clone the inner services for every request (`mem::replace` with a
//! clone), so that the request's future owns them. Below the body layer that clone is a
//! dozen reference counts (metrics, clock, dedup store, upstream client …) that every serving
//! thread increments and decrements on every request, which costs more the more cores serve.
//! A [`Held`] is copied when the stack is (per connection, a deep copy) and each request takes
//! a handle on its own copy's: one reference count that only that connection's thread touches.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::future::Either;
use futures_util::task::noop_waker_ref;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

/// The inner services of one copy of a layer.
pub(super) struct Held<S>(Arc<Mutex<S>>);

impl<S> Held<S> {
    pub(super) fn new(inner: S) -> Self {
        Held(Arc::new(Mutex::new(inner)))
    }

    /// Locked for a readiness check or a call: never held across an await, and only the
    /// requests of one connection share it.
    fn lock(&self) -> MutexGuard<'_, S> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle on this copy's services, for one request's future.
    pub(super) fn handle(&self) -> Held<S> {
        Held(self.0.clone())
    }

    /// Readiness of the services, for the layer's own `poll_ready`.
    pub(super) fn poll_ready<R>(&self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>>
    where
        S: Service<R>,
    {
        self.lock().poll_ready(cx)
    }

    /// Calls the services with `req`. When they are not ready at once (the gateway's always
    /// are), a copy of them waits for readiness, as tower's contract wants.
    pub(super) fn call<R>(&self, req: R) -> Either<S::Future, Oneshot<S, R>>
    where
        S: Service<R> + Clone,
    {
        let mut inner = self.lock();
        match inner.poll_ready(&mut Context::from_waker(noop_waker_ref())) {
            Poll::Ready(Ok(())) => Either::Left(inner.call(req)),
            _ => Either::Right(inner.clone().oneshot(req)),
        }
    }
}

/// A copy of the stack gets services of its own (a deep copy), not a handle on these.
impl<S: Clone> Clone for Held<S> {
    fn clone(&self) -> Self {
        Held::new(self.lock().clone())
    }
}

/// State of one copy of a layer (its handles on the metrics, the stores, the upstream
/// client) that its requests' futures keep: copied with the stack, shared by the copy's
/// requests, so a request clones one reference count of its connection's instead of several
/// that every serving thread shares.
pub(super) struct PerCopy<T>(Arc<T>);

impl<T> PerCopy<T> {
    pub(super) fn new(state: T) -> Self {
        PerCopy(Arc::new(state))
    }

    /// A handle on this copy's state, for one request's future.
    pub(super) fn handle(&self) -> PerCopy<T> {
        PerCopy(self.0.clone())
    }
}

impl<T> std::ops::Deref for PerCopy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A copy of the stack gets state of its own (a deep copy), not a handle on this.
impl<T: Clone> Clone for PerCopy<T> {
    fn clone(&self) -> Self {
        PerCopy::new(T::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::future::{ready, Ready};

    /// Counts its calls; ready or not as told.
    #[derive(Clone, Default)]
    struct Counter {
        calls: usize,
        not_ready: bool,
    }

    impl Service<u32> for Counter {
        type Response = (u32, usize);
        type Error = Infallible;
        type Future = Ready<Result<(u32, usize), Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.not_ready {
                // Ready next time it is asked, as a service that was waiting would be.
                self.not_ready = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: u32) -> Self::Future {
            self.calls += 1;
            ready(Ok((req, self.calls)))
        }
    }

    #[tokio::test]
    async fn handles_share_their_copy_and_copies_do_not() {
        let held = Held::new(Counter::default());
        let first = held.handle();
        let second = held.handle();
        assert_eq!(first.call(7).await.unwrap(), (7, 1));
        assert_eq!(second.call(8).await.unwrap(), (8, 2));
        let copy = held.clone();
        assert_eq!(copy.call(9).await.unwrap(), (9, 3));
        assert_eq!(held.call(10).await.unwrap(), (10, 3));
        assert_eq!(copy.call(11).await.unwrap(), (11, 4));
    }

    #[tokio::test]
    async fn services_that_are_not_ready_are_waited_for() {
        let held = Held::new(Counter {
            calls: 0,
            not_ready: true,
        });
        assert_eq!(held.call(1).await.unwrap(), (1, 1));
    }

    #[test]
    fn per_copy_state_is_shared_by_handles_and_copied_by_clones() {
        let state = PerCopy::new(Arc::new(5));
        let handle = state.handle();
        assert!(Arc::ptr_eq(&state.0, &handle.0));
        let copy = state.clone();
        assert!(!Arc::ptr_eq(&state.0, &copy.0));
        // What the state itself points to is the same: only the copy's own count is new.
        assert!(Arc::ptr_eq(&state, &copy));
        assert_eq!(**copy, 5);
    }
}
