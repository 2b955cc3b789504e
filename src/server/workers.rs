//! Per-core serving ([`super::Runtime::PerCore`]): the listener's socket is shared by `n`
//! threads, each running a single-threaded tokio runtime that accepts from it and runs the
//! connections it accepted from start to end. The kernel wakes the threads waiting in
//! `accept`; one of them gets each new connection. What the threads share is the
//! [`Accepting`] state: the connection cap's slots, the protocol settings and the signal to
//! stop.
//!
//! Balance: the first thread to wake would drain a burst of new connections on its own (its
//! accept loop takes whatever is queued), and a connection never moves to another thread: on
//! the 2-core VM, one thread of two ran all 64 (or 16) of wrk's connections in half the runs.
//! So a thread holding more than its [`Share`] of the open connections (an equal part, plus
//! one) stops accepting and looks again every [`RECHECK`], leaving new connections to the
//! others, the way nginx's workers disable accepting past 7/8 of their connections. The
//! threads' counts add up to the open connections, so one of them is always below its share;
//! should that one be held up, the others accept again after [`MAX_DEFER`].
//!
//! Shutdown: the caller flips `stopping` (every thread stops accepting and its connections
//! close gracefully), waits for the slots to come back within the grace period, then
//! [`Workers::finish`] lets the threads end, dropping whatever connection outlived the grace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use super::{accept, Accepting, BoxError};

/// How often a thread past its share of the connections looks again.
const RECHECK: Duration = Duration::from_millis(2);
/// Longest a thread past its share leaves new connections to the others: if the thread below
/// its share is held up (a long computation on it), the rest still accept.
const MAX_DEFER: Duration = Duration::from_millis(50);

/// One serving thread's part of the listener's open connections.
pub(super) struct Share {
    index: usize,
    threads: usize,
    mine: Arc<AtomicUsize>,
}

/// One of a thread's connections, counted until dropped.
pub(super) struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Share {
    pub(super) fn new(index: usize, threads: usize) -> Self {
        Share {
            index,
            threads,
            mine: Arc::default(),
        }
    }

    /// The thread's number, for the log.
    pub(super) fn index(&self) -> usize {
        self.index
    }

    /// Whether a thread holding `mine` of `open` connections holds more than its share.
    fn over(mine: usize, open: usize, threads: usize) -> bool {
        mine > open / threads.max(1) + 1
    }

    /// Returns once this thread may accept: at once unless it holds more than its share,
    /// else when it no longer does or after [`MAX_DEFER`].
    pub(super) async fn wait_for_turn(&self, accepting: &Accepting) {
        let deadline = tokio::time::Instant::now() + MAX_DEFER;
        while Share::over(
            self.mine.load(Ordering::Relaxed),
            accepting.open(),
            self.threads,
        ) && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// Counts a connection this thread accepted, until the result is dropped.
    pub(super) fn hold(&self) -> Held {
        self.mine.fetch_add(1, Ordering::Relaxed);
        Held(self.mine.clone())
    }
}

/// The serving threads of one listener.
pub(super) struct Workers {
    done: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts `n` threads accepting from `listener`.
pub(super) fn start<S, B>(
    listener: TcpListener,
    n: usize,
    accepting: &Arc<Accepting>,
    service: S,
) -> std::io::Result<Workers>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // Taken off this runtime's reactor; each thread registers its own handle with its own.
    let listener = listener.into_std()?;
    let (done, finished) = watch::channel(false);
    let mut threads = Vec::with_capacity(n);
    for index in 0..n {
        let listener = listener.try_clone()?;
        let accepting = accepting.clone();
        let service = service.clone();
        let mut finished = finished.clone();
        let share = Share::new(index, n);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("hookgate-serve-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let mut stopping = accepting.stopping.clone();
                            tokio::select! {
                                () = accept(listener, &accepting, service, Some(&share)) => {}
                                _ = stopping.wait_for(|stop| *stop) => {}
                            }
                        }
                        Err(error) => tracing::error!(%error, "a serving thread cannot listen"),
                    }
                    // Keep running this thread's connections until the listener is done with
                    // them (all closed, or the grace period over).
                    let _ = finished.wait_for(|done| *done).await;
                });
            })?;
        threads.push(thread);
    }
    Ok(Workers { done, threads })
}

impl Workers {
    /// Lets every thread end and waits for them.
    pub(super) async fn finish(self) {
        let _ = self.done.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_past_an_equal_part_plus_one_waits() {
        // Two threads, ten connections open.
        assert!(!Share::over(6, 10, 2));
        assert!(Share::over(7, 10, 2));
        // The counts add up to the open connections, so some thread is never past its share.
        for open in 0..50 {
            for threads in 1..6 {
                let least = open / threads;
                assert!(!Share::over(least, open, threads), "{open} {threads}");
            }
        }
        // One thread alone always accepts.
        assert!(!Share::over(100, 100, 1));
    }

    fn accepting(max: usize) -> Accepting {
        let limits = super::super::Limits::default();
        Accepting {
            tls: None,
            limits,
            metrics: None,
            builder: Arc::new(super::super::protocol_builder(&limits)),
            slots: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            stopping: watch::channel(false).1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_thread_past_its_share_waits_for_a_while_at_most() {
        let accepting = accepting(100);
        let share = Share::new(0, 2);
        // Ten connections open, all on this thread: the other thread should take the next.
        let _slots = accepting.slots.clone().try_acquire_many_owned(10).unwrap();
        let _held: Vec<Held> = (0..10).map(|_| share.hold()).collect();
        let started = tokio::time::Instant::now();
        share.wait_for_turn(&accepting).await;
        let waited = started.elapsed();
        assert!(waited >= MAX_DEFER, "{waited:?}");
        assert!(waited < MAX_DEFER + RECHECK * 2, "{waited:?}");
        // Within its share, it accepts at once.
        let within = Share::new(1, 2);
        let started = tokio::time::Instant::now();
        within.wait_for_turn(&accepting).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_connection_is_counted_while_held() {
        let share = Share::new(0, 2);
        let first = share.hold();
        let second = share.hold();
        assert_eq!(share.mine.load(Ordering::Relaxed), 2);
        drop(first);
        drop(second);
        assert_eq!(share.mine.load(Ordering::Relaxed), 0);
    }
}
