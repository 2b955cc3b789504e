//! Provider keys fetched over the network: AWS SNS and PayPal signing certificates and
//! Google's JWKS.
//!
//! A [`KeyFetcher`] belongs to one source. It fetches over `https://` only (the connector
//! refuses anything else; URLs are checked against pinned host patterns by [`pinned`] before
//! this module sees them), trusts the system's roots plus an optional configured CA, follows
//! no redirects (anything but `200` is a failure), bounds each fetch in time
//! ([`FETCH_TIMEOUT`]) and size ([`MAX_KEY_BYTES`]), and parses the answer into public keys
//! before anything is cached — an answer that does not parse is a failure like any other.
//!
//! Keys are cached per URL until `Cache-Control: max-age` (or the configured TTL) runs out,
//! bounded to [`MIN_TTL`]..[`MAX_TTL`], in at most [`MAX_ENTRIES`] entries. Concurrent
//! requests for a URL that is not cached share one fetch. A failure is not cached: the
//! gateway answers the delivery `503` with `Retry-After`, the sender retries, and the next
//! delivery tries again. Time comes from the gateway's clock, so expiry is testable.

pub mod pinned;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::{header, HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::clock::SharedClock;
use crate::scheme::keys::{KeyKind, PublicKey};
use crate::tls::client_config;

/// The longest a fetch may take, connection and body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key document accepted (Google's JWKS is about 1.5 KiB, an SNS certificate 2).
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Keys are kept at least this long, whatever the server says (no refetch storms).
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// Keys are kept at most this long, whatever the server says.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Kept when the server sends no `max-age` and no TTL is configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// URLs cached per source at most (SNS rotates certificates rarely; Google has one JWKS).
pub const MAX_ENTRIES: usize = 32;
/// What the `Retry-After` of a failed fetch says.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// A JWKS lacking a token's key id is refetched if it is at least this old.
pub const REFETCH_UNKNOWN_KID_AFTER: Duration = Duration::from_secs(5 * 60);

/// How the fetched document holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// A PEM certificate (or public key) of this family: AWS SNS's `SigningCertURL`.
    Pem(KeyKind),
    /// A JSON Web Key Set: Google's `oauth2/v3/certs`.
    Jwks,
}

/// Why keys could not be had. Never holds the URL's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No connection, TLS failure, or the connection broke.
    #[error("the key server could not be reached")]
    Unreachable,
    /// No complete answer within [`FETCH_TIMEOUT`].
    #[error("the key server did not answer in time")]
    Timeout,
    /// An answer other than `200` (redirects are not followed).
    #[error("the key server answered with status {0}")]
    Status(u16),
    /// More than [`MAX_KEY_BYTES`].
    #[error("the key server's answer is too large")]
    TooLarge,
    /// The answer holds no usable key.
    #[error("the key server's answer holds no usable key")]
    Unusable,
    /// Every cache entry is a fetch in progress.
    #[error("too many key fetches in progress")]
    Busy,
}

type Keys = Arc<Vec<PublicKey>>;
type Pending = Shared<BoxFuture<'static, Result<Keys, FetchError>>>;

enum Slot {
    Ready {
        keys: Keys,
        expires_ms: u64,
        fetched_ms: u64,
    },
    Pending(Pending),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// One source's key fetcher and cache.
pub struct KeyFetcher {
    format: KeyFormat,
    ca: Option<PathBuf>,
    ttl: Option<Duration>,
    client: OnceLock<HttpsClient>,
    cache: Mutex<HashMap<String, Slot>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for KeyFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFetcher")
            .field("format", &self.format)
            .field("ca", &self.ca)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl KeyFetcher {
    /// A fetcher for documents in `format`, trusting `ca` besides the system roots (checked
    /// with the configuration), caching for `ttl` when set (else the server's `max-age`).
    pub fn new(format: KeyFormat, ca: Option<PathBuf>, ttl: Option<Duration>) -> Arc<Self> {
        Arc::new(KeyFetcher {
            format,
            ca,
            ttl,
            client: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many fetches this fetcher has started.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The keys at `url` (already checked by [`pinned::check`]): cached, or fetched once
    /// for every caller asking at the same time.
    pub async fn keys(
        self: &Arc<Self>,
        url: &Uri,
        clock: &SharedClock,
    ) -> Result<Keys, FetchError> {
        let key = url.to_string();
        let pending = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let now = clock.uptime_ms();
            match cache.get(&key) {
                Some(Slot::Ready {
                    keys, expires_ms, ..
                }) if *expires_ms > now => return Ok(keys.clone()),
                Some(Slot::Pending(pending)) => pending.clone(),
                _ => {
                    make_room(&mut cache, now)?;
                    let pending = self.start(url.clone(), key.clone(), clock.clone());
                    cache.insert(key.clone(), Slot::Pending(pending.clone()));
                    pending
                }
            }
        };
        let result = pending.clone().await;
        if result.is_err() {
            // The fetch task settles its entry itself; should it have died before doing so,
            // its entry must not keep answering with the old failure.
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(cache.get(&key), Some(Slot::Pending(p)) if p.ptr_eq(&pending)) {
                cache.remove(&key);
            }
        }
        result
    }

    /// Forgets the keys cached for `url` if they were fetched at least `min_age` ago, so the
    /// next [`KeyFetcher::keys`] fetches them again. For a token naming a key the cached set
    /// lacks (the provider rotated): refetched at most once per `min_age`, so tokens with
    /// made-up key ids cannot make the gateway fetch on every request.
    pub fn forget_if_older(&self, url: &Uri, clock: &SharedClock, min_age: Duration) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let key = url.to_string();
        let min_age = u64::try_from(min_age.as_millis()).unwrap_or(u64::MAX);
        let old = matches!(
            cache.get(&key),
            Some(Slot::Ready { fetched_ms, .. })
                if clock.uptime_ms().saturating_sub(*fetched_ms) >= min_age
        );
        if old {
            cache.remove(&key);
        }
        old
    }

    /// Spawns the fetch (so it finishes even when the request that started it goes away);
    /// its result settles the cache entry before any waiter sees it.
    fn start(self: &Arc<Self>, url: Uri, key: String, clock: SharedClock) -> Pending {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let this = self.clone();
        let task = tokio::spawn(async move {
            let result = this.fetch(url).await;
            let mut cache = this.cache.lock().unwrap_or_else(|e| e.into_inner());
            match &result {
                Ok((keys, ttl)) => {
                    let fetched_ms = clock.uptime_ms();
                    let expires_ms = fetched_ms
                        .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
                    cache.insert(
                        key,
                        Slot::Ready {
                            keys: keys.clone(),
                            expires_ms,
                            fetched_ms,
                        },
                    );
                }
                Err(_) => {
                    cache.remove(&key);
                }
            }
            result.map(|(keys, _)| keys)
        });
        async move { task.await.unwrap_or(Err(FetchError::Unreachable)) }
            .boxed()
            .shared()
    }

    fn client(&self) -> &HttpsClient {
        self.client.get_or_init(|| {
            let tls = client_config(self.ca.as_deref(), "signature.key_server_ca")
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "key server CA unusable; trusting the system roots only");
                    client_config(None, "").expect("a config without extra CA always builds")
                });
            let mut http = HttpConnector::new();
            // The whole fetch, connection included, is bounded by FETCH_TIMEOUT.
            http.enforce_http(false);
            let connector = HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            Client::builder(TokioExecutor::new()).build(connector)
        })
    }

    async fn fetch(&self, url: Uri) -> Result<(Keys, Duration), FetchError> {
        let request = Request::get(url)
            .header(header::USER_AGENT, "hookgate")
            .header(header::ACCEPT, "*/*")
            .body(Empty::new())
            .map_err(|_| FetchError::Unreachable)?;
        let client = self.client();
        let (body, max_age) = tokio::time::timeout(FETCH_TIMEOUT, async {
            let response = client
                .request(request)
                .await
                .map_err(|_| FetchError::Unreachable)?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            if content_length(response.headers()).is_some_and(|n| n > MAX_KEY_BYTES as u64) {
                return Err(FetchError::TooLarge);
            }
            let max_age = max_age(response.headers());
            let body = Limited::new(response.into_body(), MAX_KEY_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Unreachable
                    }
                })?
                .to_bytes();
            Ok((body, max_age))
        })
        .await
        .map_err(|_| FetchError::Timeout)??;
        let keys = parse(self.format, &body)?;
        let ttl = self
            .ttl
            .or(max_age)
            .unwrap_or(DEFAULT_TTL)
            .clamp(MIN_TTL, MAX_TTL);
        Ok((Arc::new(keys), ttl))
    }
}

/// Drops expired entries when the cache is full, then the entry expiring first.
fn make_room(cache: &mut HashMap<String, Slot>, now: u64) -> Result<(), FetchError> {
    if cache.len() < MAX_ENTRIES {
        return Ok(());
    }
    cache.retain(|_, slot| !matches!(slot, Slot::Ready { expires_ms, .. } if *expires_ms <= now));
    if cache.len() < MAX_ENTRIES {
        return Ok(());
    }
    let oldest = cache
        .iter()
        .filter_map(|(k, slot)| match slot {
            Slot::Ready { expires_ms, .. } => Some((*expires_ms, k.clone())),
            Slot::Pending(_) => None,
        })
        .min();
    match oldest {
        Some((_, key)) => {
            cache.remove(&key);
            Ok(())
        }
        None => Err(FetchError::Busy),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `Cache-Control: max-age=N` (`no-store`/`no-cache`: zero, raised to [`MIN_TTL`]).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

/// The keys in a fetched document; none is an error.
fn parse(format: KeyFormat, body: &Bytes) -> Result<Vec<PublicKey>, FetchError> {
    let text = std::str::from_utf8(body).map_err(|_| FetchError::Unusable)?;
    let keys = match format {
        KeyFormat::Pem(kind) => {
            vec![PublicKey::parse(kind, text.trim()).map_err(|_| FetchError::Unusable)?]
        }
        KeyFormat::Jwks => PublicKey::parse_jwks(text).map_err(|_| FetchError::Unusable)?,
    };
    if keys.is_empty() {
        return Err(FetchError::Unusable);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=21600, must-revalidate"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(21600)));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&h), Some(Duration::ZERO));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=x"));
        assert_eq!(max_age(&h), None);
    }

    #[test]
    fn garbage_is_unusable() {
        for body in [&b"<html>"[..], b"", b"\xff\xfe", b"{\"keys\": []}"] {
            let body = Bytes::copy_from_slice(body);
            assert_eq!(
                parse(KeyFormat::Jwks, &body).err(),
                Some(FetchError::Unusable)
            );
            assert_eq!(
                parse(KeyFormat::Pem(KeyKind::Rsa), &body).err(),
                Some(FetchError::Unusable)
            );
        }
    }

    #[test]
    fn a_full_cache_evicts_the_entry_expiring_first() {
        let mut cache = HashMap::new();
        for i in 0..MAX_ENTRIES {
            cache.insert(
                format!("u{i}"),
                Slot::Ready {
                    keys: Arc::new(Vec::new()),
                    expires_ms: 1000 + i as u64,
                    fetched_ms: 0,
                },
            );
        }
        make_room(&mut cache, 0).unwrap();
        assert_eq!(cache.len(), MAX_ENTRIES - 1);
        assert!(!cache.contains_key("u0"));
        // Full again: the expired entries go first, all of them.
        cache.insert(
            "x".into(),
            Slot::Ready {
                keys: Arc::new(Vec::new()),
                expires_ms: 5000,
                fetched_ms: 0,
            },
        );
        make_room(&mut cache, 1010).unwrap();
        assert_eq!(cache.len(), MAX_ENTRIES - 10);
    }
}
