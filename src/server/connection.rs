//! One connection's lifetime: the deadline from accept to its first complete request head, the
//! deadline for each later head on HTTP/1.1, the idle deadline between requests (HTTP/1.1
//! keep-alive and HTTP/2 alike: a connection with no request in progress is closed once it has
//! been idle that long), and the bookkeeping that lets all three be decided without a timer
//! per request. (hyper's own HTTP/1 header-read timer allocated and registered a timer for
//! every request; it is off, and this watchdog applies `header_read_timeout` instead.)
//!
//! Requests are counted by [`Tracked`], the connection's service, which also adds the peer
//! address; the watchdog ([`Activity::expired`]) sleeps until the next deadline and re-reads
//! the counters when it wakes, so a busy connection costs two atomic increments per request
//! and one timer wake per idle period.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::future::Either;
use futures_util::task::{noop_waker_ref, AtomicWaker};
use http::{Request, Version};
use hyper::body::Incoming;
use tokio::time::Instant;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

use super::PeerAddr;

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete request head (TLS handshake and protocol detection included) in time.
    FirstRequestTimeout,
    /// No request in progress for the idle timeout.
    IdleTimeout,
    /// HTTP/1.1: no complete next request head within the header-read timeout of the end of
    /// the previous request (a slow head, or an idle keep-alive connection when that timeout
    /// is the shorter).
    HeaderReadTimeout,
}

impl CloseReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::FirstRequestTimeout => "first_request_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::HeaderReadTimeout => "header_read_timeout",
        }
    }
}

/// Request counters of one connection, shared by its service and its watchdog.
#[derive(Debug)]
pub(super) struct Activity {
    accepted: Instant,
    started: AtomicU64,
    finished: AtomicU64,
    /// Milliseconds from `accepted` to the end of the last finished request.
    last_done_ms: AtomicU64,
    /// Set by the first HTTP/2 request: the header-read deadline is HTTP/1's.
    http2: AtomicBool,
}

impl Activity {
    pub(super) fn new(accepted: Instant) -> Arc<Self> {
        Arc::new(Activity {
            accepted,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            last_done_ms: AtomicU64::new(0),
            http2: AtomicBool::new(false),
        })
    }

    /// When the first request head must have arrived.
    pub(super) fn first_request_deadline(&self, first_request_timeout: Duration) -> Instant {
        self.accepted + first_request_timeout
    }

    fn begin(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        let ms = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_done_ms.store(ms, Ordering::Release);
        self.finished.fetch_add(1, Ordering::AcqRel);
    }

    /// Resolves when the connection has outlived a deadline: no complete first request head
    /// by the shorter of `first_request_timeout` and `header_read` after accept; or no request
    /// in progress for `idle` — on HTTP/1.1 for the shorter of `idle` and `header_read`, since
    /// a partial head cannot be told from silence.
    pub(super) async fn expired(
        &self,
        first_request_timeout: Duration,
        idle: Duration,
        header_read: Duration,
    ) -> CloseReason {
        let first = first_request_timeout.min(header_read);
        tokio::time::sleep_until(self.first_request_deadline(first)).await;
        if self.started.load(Ordering::Acquire) == 0 {
            return CloseReason::FirstRequestTimeout;
        }
        loop {
            let (limit, reason) = if self.http2.load(Ordering::Relaxed) || idle <= header_read {
                (idle, CloseReason::IdleTimeout)
            } else {
                (header_read, CloseReason::HeaderReadTimeout)
            };
            // Finished is read first: a request that starts after this read is in progress.
            let finished = self.finished.load(Ordering::Acquire);
            let started = self.started.load(Ordering::Acquire);
            if started > finished {
                tokio::time::sleep(limit).await;
                continue;
            }
            let last_done =
                self.accepted + Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
            let deadline = last_done + limit;
            if Instant::now() >= deadline {
                return reason;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// The connection's service: its own copy of the service stack, called for each request in
/// place. (hyper-util's `TowerToHyperService` copies the whole stack for every request: some
/// twenty reference counts that every serving thread shares, each incremented and decremented
/// per request, which cost more the more cores serve.) Also adds the connection's peer address
/// to each request and counts requests in progress.
pub(super) struct Tracked<S> {
    peer: SocketAddr,
    activity: Arc<Activity>,
    /// Borrowed only inside `call`, which returns before the next request's `call`.
    inner: RefCell<S>,
}

impl<S> Tracked<S> {
    pub(super) fn new(peer: SocketAddr, activity: Arc<Activity>, inner: S) -> Self {
        Tracked {
            peer,
            activity,
            inner: RefCell::new(inner),
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TrackedFuture<Either<S::Future, Oneshot<S, Request<Incoming>>>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(PeerAddr(self.peer));
        if req.version() == Version::HTTP_2 {
            self.activity.http2.store(true, Ordering::Relaxed);
        }
        self.activity.begin();
        let mut inner = self.inner.borrow_mut();
        let future = match inner.poll_ready(&mut Context::from_waker(noop_waker_ref())) {
            Poll::Ready(Ok(())) => Either::Left(inner.call(req)),
            // Not ready now (the gateway's stack always is): a copy of the stack waits for its
            // readiness, as tower's contract wants.
            _ => Either::Right(inner.clone().oneshot(req)),
        };
        TrackedFuture {
            inner: future,
            done: Done(self.activity.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// Runs a connection (`main`) beside its guard (its deadlines and the server's stop
    /// signal), polling the guard only when the guard's own waker has fired (and on the first
    /// poll). A `select!` of the two polled the guard's timer and channel on every wake of the
    /// connection's task, which is several times per request. Resolves with whichever ends
    /// first.
    pub(super) struct Watched<M, G> {
        #[pin]
        main: M,
        #[pin]
        guard: G,
        signal: Arc<GuardSignal>,
        guard_waker: Waker,
    }
}

/// Set when the guard's waker fires; wakes the connection's task.
#[derive(Default)]
pub(super) struct GuardSignal {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for GuardSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<M, G> Watched<M, G> {
    pub(super) fn new(main: M, guard: G) -> Self {
        let signal = Arc::new(GuardSignal {
            // The guard is polled on the first poll, to arm its timer.
            fired: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Watched {
            main,
            guard,
            guard_waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

impl<M: Future, G: Future> Future for Watched<M, G> {
    type Output = Either<M::Output, G::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.signal.task.register(cx.waker());
        if let Poll::Ready(output) = this.main.poll(cx) {
            return Poll::Ready(Either::Left(output));
        }
        if this.signal.fired.swap(false, Ordering::AcqRel) {
            let mut guard_cx = Context::from_waker(this.guard_waker);
            if let Poll::Ready(output) = this.guard.poll(&mut guard_cx) {
                return Poll::Ready(Either::Right(output));
            }
        }
        Poll::Pending
    }
}

/// Marks the request finished when dropped (answered or cancelled alike).
struct Done(Arc<Activity>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.end();
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Tracked`] request.
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        done: Done,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a connection that never completes a request head lives (first-request and
    /// header-read timeouts in seconds; idle 60 s), checking why it is closed.
    async fn silent_for(first_request: u64, header_read: u64) -> Duration {
        let activity = Activity::new(Instant::now());
        let started = Instant::now();
        let reason = activity
            .expired(
                Duration::from_secs(first_request),
                Duration::from_secs(60),
                Duration::from_secs(header_read),
            )
            .await;
        assert_eq!(reason, CloseReason::FirstRequestTimeout);
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_at_the_first_request_deadline() {
        assert_eq!(silent_for(10, 30).await, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_end_of_the_last_request_and_never_during_one() {
        let activity = Activity::new(Instant::now());
        activity.begin();
        let watchdog = {
            let activity = activity.clone();
            tokio::spawn(async move {
                let reason = activity
                    .expired(
                        Duration::from_secs(1),
                        Duration::from_secs(5),
                        Duration::from_secs(10),
                    )
                    .await;
                (reason, Instant::now())
            })
        };
        // A request in progress for 30 s keeps the connection open.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!watchdog.is_finished());
        activity.end();
        let ended = Instant::now();
        let (reason, at) = watchdog.await.unwrap();
        assert_eq!(reason, CloseReason::IdleTimeout);
        assert!(at >= ended + Duration::from_secs(5) - Duration::from_millis(1));
        assert!(at <= ended + Duration::from_secs(6));
    }

    /// Runs the watchdog with a 60 s idle timeout and a 2 s header-read timeout through one
    /// finished request; returns why and how long after the request it closed.
    async fn after_one_request(http2: bool) -> (CloseReason, Duration) {
        let activity = Activity::new(Instant::now());
        activity.http2.store(http2, Ordering::Relaxed);
        activity.begin();
        activity.end();
        let ended = Instant::now();
        let reason = activity
            .expired(
                Duration::from_secs(1),
                Duration::from_secs(60),
                Duration::from_secs(2),
            )
            .await;
        (reason, ended.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn http1_needs_its_next_head_within_the_header_read_timeout() {
        let (reason, after) = after_one_request(false).await;
        assert_eq!(reason, CloseReason::HeaderReadTimeout);
        assert!(
            after >= Duration::from_secs(2) && after < Duration::from_secs(3),
            "{after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_wait_for_the_idle_timeout() {
        let (reason, after) = after_one_request(true).await;
        assert_eq!(reason, CloseReason::IdleTimeout);
        assert!(
            after >= Duration::from_secs(60) && after < Duration::from_secs(61),
            "{after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_gets_the_shorter_of_its_two_timeouts() {
        assert_eq!(silent_for(10, 3).await, Duration::from_secs(3));
    }

    /// Pending `left` more times (waking itself each time), then ready.
    struct Spins {
        left: usize,
        polls: Arc<AtomicU64>,
    }

    impl Future for Spins {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Never ready; wakes itself on its first poll only.
    struct WakesOnce(Arc<AtomicU64>);

    impl Future for WakesOnce {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0.fetch_add(1, Ordering::Relaxed) == 0 {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn the_guard_is_polled_when_it_wakes_not_when_the_connection_does() {
        let main_polls = Arc::new(AtomicU64::new(0));
        let guard_polls = Arc::new(AtomicU64::new(0));
        let main = Spins {
            left: 50,
            polls: main_polls.clone(),
        };
        let guard = WakesOnce(guard_polls.clone());
        // The guard wakes itself on its first poll: polled once more, then not again.
        assert!(matches!(Watched::new(main, guard).await, Either::Left(())));
        assert_eq!(main_polls.load(Ordering::Relaxed), 51);
        assert_eq!(guard_polls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_guard_that_fires_ends_the_watch() {
        let started = Instant::now();
        let main = std::future::pending::<()>();
        let guard = tokio::time::sleep(Duration::from_secs(7));
        assert!(matches!(Watched::new(main, guard).await, Either::Right(())));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }
}
