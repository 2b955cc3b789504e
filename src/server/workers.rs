//! Per-core serving ([`super::Runtime::PerCore`]): the listener's socket is shared by `n`
//! threads, each running a single-threaded tokio runtime that accepts from it and runs the
//! connections it accepted from start to end. The kernel wakes the threads waiting in
//! `accept`; one of them gets each new connection. What the threads share is the
//! [`Accepting`] state: the connection cap's slots, the protocol settings and the signal to
//! stop.
//!
//! Shutdown: the caller flips `stopping` (every thread stops accepting and its connections
//! close gracefully), waits for the slots to come back within the grace period, then
//! [`Workers::finish`] lets the threads end, dropping whatever connection outlived the grace.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use super::{accept, Accepting, BoxError};

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
                                () = accept(listener, &accepting, service) => {}
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
