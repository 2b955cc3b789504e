//! The accept loop shared by hookgate's listeners: HTTP/1.1 and HTTP/2 on one port (by ALPN
//! over TLS, by preface in cleartext), optional TLS termination, a cap on open connections,
//! per-connection deadlines (see `connection`), protocol limits, and graceful shutdown (stop
//! accepting, let open requests finish within a grace period). A listener runs on the
//! caller's runtime, or on one single-threaded runtime per CPU (`workers`, [`Runtime`]).

mod connection;
mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::Service;

pub use connection::CloseReason;
use connection::{Activity, Tracked, Watched};
use futures_util::future::Either;

use crate::metrics::Metrics;

/// The error type of the services and bodies a listener serves.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TCP peer of the connection a request came on (added to every request's extensions).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Connection and protocol limits of a listener. Every field is documented with its default
/// in the README's limits table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time from accept to a complete first request head: TLS handshake, HTTP/1-vs-HTTP/2
    /// detection and the head itself (or `header_read_timeout`, if that is shorter). A silent
    /// connection is closed when it runs out.
    pub first_request_timeout: Duration,
    /// HTTP/1.1: each request head must be complete this soon after the previous request
    /// ended (slow-loris protection; an idle keep-alive connection is closed after the shorter
    /// of this and `idle_timeout`), the first this soon after accept.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed (HTTP/1.1 keep-alive
    /// and HTTP/2 alike). HTTP/2 connections are also pinged at this interval and closed when
    /// a ping is not acknowledged within `header_read_timeout`.
    pub idle_timeout: Duration,
    /// Open connections at most; a connection accepted beyond it is closed at once.
    pub max_connections: usize,
    /// Largest request head; larger ones are answered 431.
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Requests in progress at once on the gateway; more are shed with 503.
    pub max_concurrent_requests: usize,
    /// Bytes of request bodies being received before their signature is verified, all
    /// requests together; an upload that would pass it is answered 503 + `Retry-After`.
    pub max_pending_body_bytes: usize,
    /// HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before the server accepted them, per connection,
    /// before the connection is closed (the "rapid reset" attack, CVE-2023-44487).
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server had to reset for protocol errors, per connection, before the
    /// connection is closed (CVE-2024-27316-style floods).
    pub h2_max_local_error_reset_streams: usize,
    /// How long open requests may take to finish after shutdown is requested.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            first_request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_concurrent_requests: 1024,
            max_pending_body_bytes: 64 * 1024 * 1024,
            h2_max_concurrent_streams: 128,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 256,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How the connections of the public listener are run (`[server] runtime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Runtime {
    /// On the process's work-stealing runtime, shared with everything else.
    Shared,
    /// One single-threaded runtime per CPU, each accepting from the listener and running its
    /// connections start to end, the way nginx runs one worker per core: no task moves between
    /// threads, and a request's wake-ups stay on the thread that owns its connection. The
    /// default: on 4 cores it spent 0.87x the shared runtime's CPU per request for 1.22x its
    /// throughput, and on 1 core the same (docs/performance.md).
    #[default]
    PerCore,
}

impl Runtime {
    /// Serving threads of their own for this choice: none for `Shared` (the caller's
    /// runtime serves), the CPUs this process may run on for `PerCore` (one on one CPU: a
    /// single-threaded runtime is still cheaper than the work-stealing one).
    pub fn threads(self) -> usize {
        match self {
            Runtime::Shared => 0,
            Runtime::PerCore => std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// How a listener serves: TLS or not, its limits, and the metrics it reports to. The
/// default: plain HTTP, default limits, on the caller's runtime.
#[derive(Clone, Default)]
pub struct Listener {
    pub tls: Option<TlsAcceptor>,
    pub limits: Limits,
    /// Connection metrics (open, refused at the cap, closed by a deadline); none for the
    /// admin and outbound listeners.
    pub metrics: Option<Arc<Metrics>>,
    /// Threads accepting and running connections: 0 serves on the caller's runtime; more
    /// start that many threads, each with a runtime of its own (see [`Runtime::PerCore`]).
    /// The connection cap, the limits and the shutdown are shared by all of them.
    pub threads: usize,
}

/// Serves `service` on `listener` (plain HTTP, default limits) until `shutdown` completes.
pub async fn run<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve(listener, Listener::default(), service, shutdown).await
}

/// What every accepting thread of one listener shares.
struct Accepting {
    tls: Option<TlsAcceptor>,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// One per open connection, whichever thread runs it: the cap is the listener's.
    slots: Arc<Semaphore>,
    /// The cap: `max - slots.available_permits()` connections are open.
    max: usize,
    stopping: watch::Receiver<bool>,
}

impl Accepting {
    /// Connections open now, on every thread.
    fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

/// Serves `service` on `listener` as `options` says until `shutdown` completes, then stops
/// accepting and gives open connections `shutdown_grace` to finish.
pub async fn serve<S, B>(
    listener: TcpListener,
    options: Listener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Listener {
        tls,
        limits,
        metrics,
        threads,
    } = options;
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if let Some(m) = &metrics {
        m.connection_cap(max as usize);
    }
    let (stop, stopping) = watch::channel(false);
    let accepting = Arc::new(Accepting {
        tls,
        limits,
        metrics,
        builder: Arc::new(protocol_builder(&limits)),
        slots: Arc::new(Semaphore::new(max as usize)),
        max: max as usize,
        stopping,
    });
    let workers = if threads > 0 {
        let workers = workers::start(listener, threads, &accepting, service)?;
        shutdown.await;
        Some(workers)
    } else {
        tokio::select! {
            () = accept(listener, &accepting, service, None) => {}
            () = shutdown => {}
        }
        None
    };
    // Stop accepting (the threads' listeners are dropped) and ask open connections to close.
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: all slots back means all connections done.
    let all_closed = accepting.slots.acquire_many(max);
    if tokio::time::timeout(limits.shutdown_grace, all_closed)
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
    if let Some(workers) = workers {
        workers.finish().await;
    }
    Ok(())
}

/// Accepts connections on `listener` and runs each in a task of the current runtime, until
/// the future is dropped (the listener with it). A serving thread of several passes its
/// `share`: while it holds more than its share of the open connections it leaves new ones to
/// the other threads.
async fn accept<S, B>(
    listener: TcpListener,
    accepting: &Accepting,
    service: S,
    share: Option<&workers::Share>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let limits = accepting.limits;
    loop {
        if let Some(share) = share {
            share.wait_for_turn(accepting).await;
        }
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(error) => {
                // Out of descriptors and similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = accepting.slots.clone().try_acquire_owned() else {
            // At the cap: close at once, before any byte is read or any task spawned; counted
            // first, so whoever sees the close also sees it counted.
            if let Some(m) = &accepting.metrics {
                m.connection_refused();
            }
            drop(stream);
            continue;
        };
        let held = share.map(|share| {
            tracing::debug!(serving_thread = share.index(), %peer, "accepted a connection");
            share.hold()
        });
        let _ = stream.set_nodelay(true);
        let activity = Activity::new(Instant::now());
        let service = Tracked::new(peer, activity.clone(), service.clone());
        let mut connection = Connection {
            builder: accepting.builder.clone(),
            limits,
            activity,
            stopping: accepting.stopping.clone(),
            metrics: accepting.metrics.clone(),
        };
        let tls = accepting.tls.clone();
        tokio::spawn(async move {
            if let Some(m) = &connection.metrics {
                m.connection_opened();
            }
            match tls {
                None => connection.drive(TokioIo::new(stream), service).await,
                Some(acceptor) => {
                    let deadline = connection
                        .activity
                        .first_request_deadline(limits.first_request_timeout);
                    // Dropped (closing the socket) only after a timeout is counted.
                    let accept = acceptor.accept(stream);
                    tokio::pin!(accept);
                    match tokio::time::timeout_at(deadline, accept.as_mut()).await {
                        Ok(Ok(stream)) => connection.drive(TokioIo::new(stream), service).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => connection.deadline(CloseReason::FirstRequestTimeout),
                    }
                }
            }
            if let Some(m) = &connection.metrics {
                m.connection_closed();
            }
            drop(slot);
            drop(held);
        });
    }
}

/// HTTP/1.1 and HTTP/2 settings from the limits. Every HTTP/2 protection is set explicitly
/// rather than left to the library's defaults, so the README's table is the truth.
fn protocol_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // The connection's watchdog applies `header_read_timeout` (`connection::Activity`):
        // hyper's own allocates and registers a timer for every request head.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        // A sender that closes its side once its request is sent still gets its answer. It
        // also spares every request a read hyper would otherwise try while the request is
        // handled, to notice a hang-up: that read reserves a fresh 8 KiB buffer (the request
        // still holds the old one), about 2 of 29 allocations per delivery
        // (docs/performance.md, ninth round). A hang-up is seen when the answer is written;
        // the forward ran to its end either way (`gateway::detach`).
        .half_close(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams)
        .keep_alive_interval(limits.idle_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}

/// What one connection's task needs besides its stream and service.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    activity: Arc<Activity>,
    stopping: watch::Receiver<bool>,
    metrics: Option<Arc<Metrics>>,
}

impl Connection {
    /// Counts a deadline that is closing the connection, before the socket is closed.
    fn deadline(&self, reason: CloseReason) {
        if let Some(m) = &self.metrics {
            m.connection_deadline(reason.as_str());
        }
    }

    /// Serves one connection until it ends, a deadline closes it, or the server stops.
    async fn drive<I, S, B>(&mut self, io: I, service: S)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let expired = self.activity.expired(
            self.limits.first_request_timeout,
            self.limits.idle_timeout,
            self.limits.header_read_timeout,
        );
        let stopping = self.stopping.wait_for(|stop| *stop);
        // The deadlines and the stop signal are polled when they wake, not on every wake of
        // the connection (several per request).
        let guard = async {
            tokio::select! {
                reason = expired => Some(reason),
                _ = stopping => None,
            }
        };
        let reason = match Watched::new(connection.as_mut(), guard).await {
            Either::Left(result) => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            Either::Right(reason) => reason,
        };
        if let Some(reason) = reason {
            self.deadline(reason);
        }
        if reason == Some(CloseReason::FirstRequestTimeout) {
            // No request was ever dispatched: nothing to finish, close now.
            return;
        }
        // Idle or shutting down: say goodbye (HTTP/2 GOAWAY, HTTP/1.1 close after the
        // response in progress), and still bound how long a response may keep it open.
        connection.as_mut().graceful_shutdown();
        let bound = match reason {
            Some(_) => self.limits.idle_timeout,
            None => self.limits.shutdown_grace,
        };
        let _ = tokio::time::timeout(bound, connection).await;
    }
}
