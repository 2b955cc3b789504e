//! The client that carries verified deliveries to upstreams: HTTP/1.1 over plain TCP or TLS
//! (`http://` and `https://`, verified against the system's roots plus an optional configured
//! CA), with a bounded pool of idle connections per upstream (scheme and authority).
//!
//! Each pooled connection is a `hyper::client::conn::http1` sender whose connection future
//! runs in a task of its own. A request takes the most recently used idle sender (or
//! connects), sends, and the sender goes back to the pool when the response body has been
//! read to its end — no task and no channel besides hyper's own per request. A response body
//! dropped before its end (the sender hung up, a timeout) takes its connection down with it,
//! as HTTP/1.1 cannot abandon one response and reuse the connection.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

use super::BoxError;
use crate::source::Destination;
use crate::tls::upstream_client_config;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection older than this is closed rather than reused.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per upstream; more are closed as they come back.
const POOL_MAX_IDLE: usize = 1024;

/// A pool: the upstream's pool number ([`Destination::pool`], one per scheme and authority,
/// worked out when the configuration is loaded) and, with one runtime per core, the serving
/// thread (`lane`): a connection's task runs on the runtime that opened it, so a request sent
/// on another thread's connection would hand every read and write across threads. Each thread
/// keeps its own connections. Two numbers: nothing to clone or hash per request.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    pool: u64,
    lane: u64,
}

/// This thread's lane: a number of its own, from 1.
fn thread_lane() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    thread_local! {
        static LANE: u64 = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    LANE.with(|lane| *lane)
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    /// When the request that last used it started: idle since then at the latest. (Its end
    /// would be exact, but costs a reading of the clock per request; the difference only
    /// retires a connection early by one request's duration.)
    since: Instant,
}

/// Idle connections by upstream, for the serving threads whose lane falls in this shard.
/// The key is hashed with foldhash (it comes from the configuration, not from senders).
/// Aligned to its own cache lines, so that each per-core thread's lock stays on its own core.
/// A connection on its way back holds its shard (an `Arc` of its own), not the whole client:
/// with a pool per thread, that reference count is written by one thread only, where the
/// client's was written by every thread twice per request.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<HashMap<Key, VecDeque<Idle>, foldhash::fast::RandomState>>);

impl Shard {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Idle>, foldhash::fast::RandomState>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns a connection whose answer has been read to its end to its pool.
    fn put_back(&self, key: Key, sender: SendRequest<Full<Bytes>>, since: Instant) {
        if sender.is_closed() {
            return;
        }
        let mut pools = self.lock();
        let pool = pools.entry(key).or_default();
        // The least recently used connection is the first to go: past the cap, or once it has
        // been closed or left idle too long (one checked per return, so none lingers for ever
        // while the pool is in use).
        if pool.len() >= POOL_MAX_IDLE
            || pool.front().is_some_and(|o| {
                o.sender.is_closed()
                    || since.saturating_duration_since(o.since) >= POOL_IDLE_TIMEOUT
            })
        {
            pool.pop_front();
        }
        pool.push_back(Idle { sender, since });
    }
}

/// Shards of the idle pools: with one runtime per core each serving thread has one to
/// itself (up to this many threads), instead of every thread locking one map twice per
/// request.
const SHARDS: usize = 64;

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    idle: Box<[Arc<Shard>]>,
    /// Pools per serving thread (one runtime per core), else one per upstream.
    per_thread: bool,
}

/// The pooled HTTP(S) client shared by every request.
#[derive(Clone)]
pub(super) struct UpstreamClient(Arc<Inner>);

impl UpstreamClient {
    /// A client for `http://` and `https://` upstreams; `extra_ca` is trusted besides the
    /// system's roots (it was validated with the configuration).
    pub(super) fn new(extra_ca: Option<&std::path::Path>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.enforce_http(false);
        let tls = upstream_client_config(extra_ca).unwrap_or_else(|error| {
            tracing::error!(%error, "upstream CA unusable; trusting the system roots only");
            upstream_client_config(None).expect("a config without extra CA always builds")
        });
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        UpstreamClient(Arc::new(Inner {
            connector,
            idle: (0..SHARDS).map(|_| Arc::new(Shard::default())).collect(),
            per_thread: false,
        }))
    }

    /// The same client keeping one pool per serving thread (for one runtime per core). Call
    /// before the first request.
    pub(super) fn per_thread(self) -> Self {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| unreachable!("called on a fresh client, before any clone"));
        UpstreamClient(Arc::new(Inner {
            per_thread: true,
            ..inner
        }))
    }

    /// Sends `req` to `to` over one of its pooled connections (or a new one) and returns the
    /// upstream's answer. `req` carries the request line's URI in origin form and the `Host`
    /// header the caller set; `now` is when the caller read the clock last (the pool's idle
    /// times are measured from it).
    pub(super) async fn request(
        &self,
        to: &Destination,
        mut req: http::Request<Full<Bytes>>,
        now: Instant,
    ) -> Result<http::Response<PooledBody>, BoxError> {
        let key = Key {
            pool: to.pool,
            lane: if self.0.per_thread { thread_lane() } else { 0 },
        };
        // A pooled connection the upstream closed in the meantime gives the request back
        // unsent; it then goes on the next idle connection, or a new one.
        loop {
            let (mut sender, reused) = match self.take_idle(&key, now) {
                Some(sender) => (sender, true),
                // Boxed: a new connection (TLS included) is rare and its state is large.
                None => (Box::pin(self.connect(&to.uri)).await?, false),
            };
            if reused && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let mut body = PooledBody {
                        inner: body,
                        back: Some(Homeward {
                            sender,
                            shard: self.0.shard(&key).clone(),
                            key,
                            since: now,
                        }),
                    };
                    if body.inner.is_end_stream() {
                        body.give_back();
                    }
                    return Ok(http::Response::from_parts(parts, body));
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }

    fn take_idle(&self, key: &Key, now: Instant) -> Option<SendRequest<Full<Bytes>>> {
        let mut pools = self.0.shard(key).lock();
        let pool = pools.get_mut(key)?;
        while let Some(idle) = pool.pop_back() {
            if !idle.sender.is_closed()
                && now.saturating_duration_since(idle.since) < POOL_IDLE_TIMEOUT
            {
                return Some(idle.sender);
            }
        }
        None
    }

    async fn connect(&self, uri: &http::Uri) -> Result<SendRequest<Full<Bytes>>, BoxError> {
        let io = self.0.connector.clone().oneshot(uri.clone()).await?;
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

impl Inner {
    /// The shard holding `key`'s pool.
    fn shard(&self, key: &Key) -> &Arc<Shard> {
        // A lane is a small number; the remainder fits `usize` on every target.
        &self.idle[(key.lane % SHARDS as u64) as usize]
    }
}

/// An upstream response body that returns its connection to the pool once read to the end.
pub(super) struct PooledBody {
    inner: Incoming,
    back: Option<Homeward>,
}

/// A connection on its way back to its pool.
struct Homeward {
    sender: SendRequest<Full<Bytes>>,
    shard: Arc<Shard>,
    key: Key,
    /// When the request that used it started.
    since: Instant,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some(home) = self.back.take() {
            home.shard.put_back(home.key, home.sender, home.since);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            None => self.give_back(),
            Some(Ok(_)) if self.inner.is_end_stream() => self.give_back(),
            Some(Err(_)) => self.back = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
