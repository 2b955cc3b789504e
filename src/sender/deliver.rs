//! Delivering one event: sign each attempt afresh (new timestamp, new delivery id), send with
//! the policy's timeout, classify the answer, wait as the policy says, and record every attempt
//! (when, how long it waited, status or error, latency). Waiting goes through a [`Sleeper`] so
//! tests check hour-long schedules without waiting for them.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::retry::{classify, RetryPolicy, Verdict, RETRY_AFTER_FLOOR};
use super::{now_secs, OutboundEvent, Signer};
use crate::tls::{upstream_client_config, TlsError};

/// Waits between attempts.
pub trait Sleeper: Send + Sync {
    /// A future that completes after `delay`.
    fn sleep(&self, delay: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Real waiting on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, delay: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(delay))
    }
}

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The target answered with this HTTP status.
    Status(u16),
    /// No answer within the policy's timeout.
    Timeout,
    /// No connection or no complete answer; holds the error.
    Error(String),
}

/// One recorded attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// When the attempt started.
    pub started: SystemTime,
    /// How long the sender waited before this attempt.
    pub waited: Duration,
    /// The answer's status, a timeout or a connection error.
    pub result: AttemptResult,
    /// Time from sending the request to its answer or failure.
    pub latency: Duration,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let result = match &self.result {
            AttemptResult::Status(s) => format!("HTTP {s}"),
            AttemptResult::Timeout => "timeout".to_string(),
            AttemptResult::Error(e) => format!("error: {e}"),
        };
        write!(
            f,
            "attempt {} after {}: {result} in {} ms",
            self.number,
            humantime::format_duration(self.waited),
            self.latency.as_millis()
        )
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The target answered 2xx.
    Delivered,
    /// A final client error (4xx other than 408/429).
    Rejected(u16),
    /// The policy ran out of retries or its window.
    Exhausted,
}

/// What [`Sender::deliver`] did: every attempt and how the delivery ended.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// How the delivery ended.
    pub outcome: DeliveryOutcome,
    /// The last answer said the event was a duplicate, already delivered and not passed on
    /// again (a hookgate receiver's `X-Hookgate-Duplicate` header).
    pub duplicate: bool,
}

/// The header a hookgate receiver marks the answer to an already-delivered event with.
pub const DUPLICATE_HEADER: &str = "x-hookgate-duplicate";

/// Answers longer than this are not read further (the body is only drained for reuse).
const MAX_ANSWER: usize = 64 * 1024;

/// An HTTP client for deliveries to `http://` and `https://` targets. Redirects are not
/// followed: a `3xx` is an answer like any other (and not a success).
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl Default for Sender {
    /// A client trusting the system's roots.
    fn default() -> Self {
        Sender::with_ca(None).expect("a client without an extra CA always builds")
    }
}

impl Sender {
    /// A client trusting the system's roots and the CA certificates in the PEM file `ca`.
    pub fn with_ca(ca: Option<&std::path::Path>) -> Result<Self, TlsError> {
        let tls = upstream_client_config(ca)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Sender {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// One POST with exactly these headers and body; returns the status, headers and up to
    /// 64 KiB of the answer.
    pub async fn post(
        &self,
        url: &Uri,
        headers: http::HeaderMap,
        body: Bytes,
    ) -> Result<(http::StatusCode, http::HeaderMap, Bytes), String> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = url.clone();
        *request.headers_mut() = headers;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| error_chain(&e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok((parts.status, parts.headers, body))
    }

    /// Delivers `event` to `url`, calling `on_attempt` after each attempt.
    pub async fn deliver(
        &self,
        url: &Uri,
        signer: &Signer,
        event: &OutboundEvent,
        policy: &RetryPolicy,
        sleeper: &dyn Sleeper,
        mut on_attempt: impl FnMut(&Attempt),
    ) -> Report {
        let mut attempts = Vec::new();
        let mut waited = Duration::ZERO;
        let mut scheduled = Duration::ZERO;
        let mut duplicate = false;
        for number in 1u32.. {
            let headers = signer.headers(event, now_secs(), number);
            let mut request = http::Request::new(Full::new(event.body.clone()));
            *request.method_mut() = http::Method::POST;
            *request.uri_mut() = url.clone();
            *request.headers_mut() = headers;
            let started = SystemTime::now();
            let clock = Instant::now();
            let (result, verdict) =
                match tokio::time::timeout(policy.timeout, self.client.request(request)).await {
                    Err(_) => (AttemptResult::Timeout, Verdict::Retry { after: None }),
                    Ok(Err(error)) => (
                        AttemptResult::Error(error_chain(&error)),
                        Verdict::Retry { after: None },
                    ),
                    Ok(Ok(response)) => {
                        let verdict = classify(response.status(), response.headers());
                        let status = response.status().as_u16();
                        duplicate = response.headers().contains_key(DUPLICATE_HEADER);
                        let _ = Limited::new(response.into_body(), MAX_ANSWER)
                            .collect()
                            .await;
                        (AttemptResult::Status(status), verdict)
                    }
                };
            let attempt = Attempt {
                number,
                started,
                waited,
                result,
                latency: clock.elapsed(),
            };
            on_attempt(&attempt);
            attempts.push(attempt);
            let outcome = match verdict {
                Verdict::Success => Some(DeliveryOutcome::Delivered),
                Verdict::Final => match attempts.last().map(|a| &a.result) {
                    Some(AttemptResult::Status(s)) => Some(DeliveryOutcome::Rejected(*s)),
                    _ => Some(DeliveryOutcome::Exhausted),
                },
                Verdict::Retry { after } => match policy
                    .delay(number - 1)
                    .filter(|_| number < policy.max_attempts())
                {
                    None => Some(DeliveryOutcome::Exhausted),
                    Some(delay) => {
                        let delay = after.map_or_else(
                            || policy.jittered(delay),
                            |after| after.max(RETRY_AFTER_FLOOR),
                        );
                        scheduled += delay;
                        if policy.window.is_some_and(|w| scheduled > w) {
                            Some(DeliveryOutcome::Exhausted)
                        } else {
                            sleeper.sleep(delay).await;
                            waited = delay;
                            None
                        }
                    }
                },
            };
            if let Some(outcome) = outcome {
                return Report {
                    attempts,
                    outcome,
                    duplicate,
                };
            }
        }
        unreachable!("the attempt loop returns")
    }
}

/// An error and its sources on one line (no secrets are ever part of client errors).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
