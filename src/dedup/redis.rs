//! The Redis dedup store, for several replicas sharing one view of which events are in
//! flight and which were delivered. The same three states as in memory, made atomic in Redis:
//!
//! - claim: `SET key "f:<instance>:<token>" NX PX <in-flight ttl>`; when the key exists, its
//!   value tells delivered (`d`) from in flight;
//! - complete: set `d` with the source's dedup ttl, only if the claim is still ours or lapsed;
//! - release: delete, only if the claim is still ours.
//!
//! Promote, release and forget `PUBLISH` the key on the channel `<prefix>settled`. Each process
//! holds one subscription to it (opened on the first wait) and wakes its local waiters (see
//! [`super::waiters`]): a duplicate that arrives while another replica delivers the event waits
//! for that replica's outcome without polling Redis. When the subscription is (re)made, every
//! waiter re-checks once, since settlements published while it was down were missed.
//!
//! A promote that Redis refuses after the upstream answered 2xx is retried a few times within
//! the request; if it still fails, the key is kept as delivered in this process (a replay here
//! is answered as a duplicate) and retried in the background until Redis takes it.
//!
//! Each is one Lua script, so no other replica can interleave. Claims carry this instance's
//! random id, so one replica never promotes or releases another's claim, and a claim whose
//! holder dies lapses by its own TTL. Every call has a timeout; the connection is made lazily
//! and re-made after failures, so hookgate starts while Redis is down and recovers when it
//! returns. What the gateway does while Redis is unreachable is the source of truth's choice:
//! see [`UnavailablePolicy`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::waiters::{Registration, Waiters};
use super::{ClaimOutcome, ClaimToken, DedupKey, DedupStore, StoreError};

/// What the gateway does when Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailablePolicy {
    /// Answer 503 with Retry-After: the sender retries later; nothing is lost or delivered twice.
    FailClosed,
    /// Forward without dedup (replays and duplicates pass), with a warning and a metric.
    FailOpen,
}

/// Redis connection settings. `Debug` shows the URL without its password.
#[derive(Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Timeout of every Redis call (and of connecting).
    pub timeout: Duration,
    pub key_prefix: String,
    pub on_unavailable: UnavailablePolicy,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &crate::redact::url(&self.url))
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .field("on_unavailable", &self.on_unavailable)
            .finish()
    }
}

/// After a failed connection attempt, calls fail fast for this long.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == 'd' then return 2 end
return 3
";

/// How many times a promote is tried within the request before it is deferred.
const PROMOTE_ATTEMPTS: u32 = 3;
/// Pause between background promote attempts.
const DEFERRED_RETRY_EVERY: Duration = Duration::from_millis(250);

const COMPLETE: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
  redis.call('PUBLISH', ARGV[3], KEYS[1])
  return 1
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], KEYS[1])
  return 1
end
return 0
";

const FORGET: &str = r"
local n = redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], KEYS[1])
return n
";

/// A promote Redis refused: the key counts as delivered in this process until `until`.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    token: ClaimToken,
    until: Instant,
}

/// The Redis-backed store. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    /// When the last connection attempt failed: for a short while after it, calls fail fast
    /// instead of queueing behind new attempts.
    failed_at: std::sync::Mutex<Option<Instant>>,
    settings: RedisSettings,
    /// Distinguishes this process's claims from every other replica's.
    instance: String,
    next_token: AtomicU32,
    claim: Script,
    complete: Script,
    release: Script,
    forget: Script,
    /// Local waiters, woken from the pub/sub subscription.
    waiters: Waiters,
    subscribed: AtomicBool,
    /// Promotes Redis refused, kept as delivered here and retried in the background.
    deferred: std::sync::Mutex<HashMap<DedupKey, Deferred>>,
    retrying: AtomicBool,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

impl RedisStore {
    /// A store for `settings`; no connection is made until the first call.
    pub fn new(settings: RedisSettings) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str()).map_err(|e| {
            format!(
                "`{}` is not a Redis URL ({:?})",
                crate::redact::url(&settings.url),
                e.kind()
            )
        })?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                connection: Mutex::new(None),
                failed_at: std::sync::Mutex::new(None),
                instance: format!("{:016x}", fastrand::u64(..)),
                next_token: AtomicU32::new(1),
                claim: Script::new(CLAIM),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
                forget: Script::new(FORGET),
                waiters: Waiters::default(),
                subscribed: AtomicBool::new(false),
                deferred: std::sync::Mutex::new(HashMap::new()),
                retrying: AtomicBool::new(false),
                settings,
            }),
        })
    }

    fn key(&self, key: &DedupKey) -> String {
        format!("{}{}", self.inner.settings.key_prefix, hex::encode(key.0))
    }

    /// The pub/sub channel settlements are published on.
    fn channel(&self) -> String {
        format!("{}settled", self.inner.settings.key_prefix)
    }

    fn claim_value(&self, token: ClaimToken) -> String {
        format!("f:{}:{}", self.inner.instance, token.0)
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let recently_failed = self
            .inner
            .failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < RECONNECT_PAUSE);
        let mut slot = self.inner.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        if recently_failed {
            return Err(unavailable("Redis is unreachable (reconnecting)"));
        }
        let timeout = self.inner.settings.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1);
        let attempt = tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(self.inner.client.clone(), config),
        )
        .await
        .map_err(|_| unavailable("connecting to Redis timed out"))
        .and_then(|r| r.map_err(unavailable));
        let mut failed_at = self
            .inner
            .failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match attempt {
            Ok(connection) => {
                *failed_at = None;
                *slot = Some(connection.clone());
                Ok(connection)
            }
            Err(error) => {
                *failed_at = Some(Instant::now());
                Err(error)
            }
        }
    }

    /// Runs `script` with a timeout.
    async fn run(&self, script: &Script, key: String, args: &[String]) -> Result<i64, StoreError> {
        let mut connection = self.connection().await?;
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        match tokio::time::timeout(
            self.inner.settings.timeout,
            invocation.invoke_async(&mut connection),
        )
        .await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(unavailable(error)),
            Err(_) => Err(unavailable("Redis did not answer in time")),
        }
    }

    /// Runs one command with a timeout.
    async fn command<T: redis::FromRedisValue>(
        &self,
        command: redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(
            self.inner.settings.timeout,
            command.query_async(&mut connection),
        )
        .await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("Redis did not answer in time")),
        }
    }

    /// Checks that Redis answers (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.command::<String>(redis::cmd("PING")).await.map(|_| ())
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

impl RedisStore {
    /// Promotes that Redis refused and that are still retried in the background.
    pub fn deferred_promotes(&self) -> usize {
        self.deferred().len()
    }

    fn deferred(&self) -> std::sync::MutexGuard<'_, HashMap<DedupKey, Deferred>> {
        self.inner
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key` is kept as delivered in this process because Redis refused its promote.
    fn locally_delivered(&self, key: &DedupKey) -> bool {
        let mut deferred = self.deferred();
        match deferred.get(key) {
            Some(d) if d.until > Instant::now() => true,
            Some(_) => {
                deferred.remove(key);
                false
            }
            None => false,
        }
    }

    async fn promote(
        &self,
        key: DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let args = [self.claim_value(token), millis(ttl), self.channel()];
        self.run(&self.inner.complete, self.key(&key), &args)
            .await
            .map(|_| ())
    }

    /// Keeps `key` delivered here and retries its promote until Redis takes it.
    fn defer(&self, key: DedupKey, token: ClaimToken, ttl: Duration) {
        let until = Instant::now() + ttl;
        self.deferred().insert(key, Deferred { token, until });
        self.inner.waiters.wake(&key);
        if self.inner.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(retry_deferred(weak));
    }

    /// Opens this process's subscription to settlements, once.
    fn ensure_subscribed(&self) {
        if self.inner.subscribed.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let client = self.inner.client.clone();
        let waiters = self.inner.waiters.clone();
        let channel = self.channel();
        let prefix = self.inner.settings.key_prefix.clone();
        let timeout = self.inner.settings.timeout;
        tokio::spawn(async move {
            while weak.strong_count() > 0 {
                let connected = tokio::time::timeout(timeout, async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                })
                .await;
                if let Ok(Ok(pubsub)) = connected {
                    // Settlements published while unsubscribed were missed: everyone re-checks.
                    waiters.wake_all();
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        let settled = message
                            .get_payload_bytes()
                            .strip_prefix(prefix.as_bytes())
                            .and_then(|hex_key| hex::decode(hex_key).ok())
                            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok());
                        if let Some(bytes) = settled {
                            waiters.wake(&DedupKey(bytes));
                        }
                        if weak.strong_count() == 0 {
                            return;
                        }
                    }
                    tracing::debug!("dedup settlement subscription lost; re-subscribing");
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        });
    }
}

/// Retries deferred promotes until Redis takes them (or their lifetime ends).
async fn retry_deferred(weak: Weak<Inner>) {
    loop {
        tokio::time::sleep(DEFERRED_RETRY_EVERY).await;
        let Some(inner) = weak.upgrade() else { return };
        let store = RedisStore { inner };
        let pending: Vec<(DedupKey, Deferred)> =
            store.deferred().iter().map(|(k, d)| (*k, *d)).collect();
        for (key, d) in pending {
            let left = d.until.saturating_duration_since(Instant::now());
            let done = left.is_zero()
                || store
                    .promote(key, d.token, left.max(Duration::from_millis(1)))
                    .await
                    .is_ok();
            if done {
                store.deferred().remove(&key);
                if !left.is_zero() {
                    tracing::info!("a deferred dedup promote was taken by Redis");
                }
            }
        }
        let deferred = store.deferred();
        if deferred.is_empty() {
            store.inner.retrying.store(false, Ordering::SeqCst);
            return;
        }
        drop(deferred);
    }
}
impl DedupStore for RedisStore {
    fn fails_open(&self) -> bool {
        self.inner.settings.on_unavailable == UnavailablePolicy::FailOpen
    }

    async fn claim(&self, key: DedupKey, ttl: Duration) -> Result<ClaimOutcome, StoreError> {
        if self.locally_delivered(&key) {
            return Ok(ClaimOutcome::Delivered);
        }
        let token = ClaimToken(self.inner.next_token.fetch_add(1, Ordering::Relaxed));
        let args = [self.claim_value(token), millis(ttl)];
        match self.run(&self.inner.claim, self.key(&key), &args).await? {
            1 => Ok(ClaimOutcome::Claimed(token)),
            2 => Ok(ClaimOutcome::Delivered),
            _ => Ok(ClaimOutcome::InFlight),
        }
    }

    async fn complete(
        &self,
        key: DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut last = None;
        for attempt in 0..PROMOTE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            match self.promote(key, token, ttl).await {
                Ok(()) => return Ok(()),
                Err(error) => last = Some(error),
            }
        }
        // The upstream accepted the event: never let its key lapse into a replay.
        self.defer(key, token, ttl);
        let error = last.map_or_else(String::new, |e| e.0);
        Err(StoreError(format!(
            "{error}; kept as delivered in this process and retried in the background"
        )))
    }

    async fn release(&self, key: DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let args = [self.claim_value(token), self.channel()];
        self.run(&self.inner.release, self.key(&key), &args)
            .await
            .map(|_| ())
    }

    async fn forget(&self, key: DedupKey) -> Result<(), StoreError> {
        self.deferred().remove(&key);
        let args = [self.channel()];
        self.run(&self.inner.forget, self.key(&key), &args)
            .await
            .map(|_| ())
    }

    fn watch(&self, key: DedupKey) -> Registration {
        self.ensure_subscribed();
        self.inner.waiters.register(key)
    }
}
