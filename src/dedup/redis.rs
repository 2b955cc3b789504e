//! The Redis dedup store, for several replicas sharing one view of which events are in
//! flight and which were delivered. The same three states as in memory, made atomic in Redis:
//!
//! - claim: `SET key "f:<instance>:<token>" NX PX <in-flight ttl>`; when the key exists, its
//!   value tells delivered (`d`) from in flight;
//! - complete: set `d` with the source's dedup ttl, only if the claim is still ours or lapsed;
//! - release: delete, only if the claim is still ours.
//!
//! Each is one Lua script, so no other replica can interleave. Claims carry this instance's
//! random id, so one replica never promotes or releases another's claim, and a claim whose
//! holder dies lapses by its own TTL. Every call has a timeout; the connection is made lazily
//! and re-made after failures, so hookgate starts while Redis is down and recovers when it
//! returns. What the gateway does while Redis is unreachable is the source of truth's choice:
//! see [`UnavailablePolicy`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use serde::Deserialize;
use tokio::sync::Mutex;

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

const COMPLETE: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
  return 1
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The Redis-backed store. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: std::sync::Arc<Inner>,
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
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

impl RedisStore {
    /// A store for `settings`; no connection is made until the first call.
    pub fn new(settings: RedisSettings) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| {
                format!(
                    "`{}` is not a Redis URL ({:?})",
                    crate::redact::url(&settings.url),
                    e.kind()
                )
            })?;
        Ok(RedisStore {
            inner: std::sync::Arc::new(Inner {
                client,
                connection: Mutex::new(None),
                failed_at: std::sync::Mutex::new(None),
                instance: format!("{:016x}", fastrand::u64(..)),
                next_token: AtomicU32::new(1),
                claim: Script::new(CLAIM),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
                settings,
            }),
        })
    }

    fn key(&self, key: &DedupKey) -> String {
        format!("{}{}", self.inner.settings.key_prefix, hex::encode(key.0))
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

impl DedupStore for RedisStore {
    fn fails_open(&self) -> bool {
        self.inner.settings.on_unavailable == UnavailablePolicy::FailOpen
    }

    async fn claim(&self, key: DedupKey, ttl: Duration) -> Result<ClaimOutcome, StoreError> {
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
        let args = [self.claim_value(token), millis(ttl)];
        self.run(&self.inner.complete, self.key(&key), &args)
            .await
            .map(|_| ())
    }

    async fn release(&self, key: DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let args = [self.claim_value(token)];
        self.run(&self.inner.release, self.key(&key), &args)
            .await
            .map(|_| ())
    }

    async fn forget(&self, key: DedupKey) -> Result<(), StoreError> {
        let mut delete = redis::cmd("DEL");
        delete.arg(self.key(&key));
        self.command::<i64>(delete).await.map(|_| ())
    }
}
