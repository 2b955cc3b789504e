//! Freshness: the delivery's timestamp must lie within the source's window in the past and its
//! allowed skew in the future. The timestamp is read from the first present candidate (header,
//! JSON body field, or a parameter of the signature header). Missing where required or
//! unparseable: 400. Too old or too far ahead: 401.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{ready, Either, Ready};
use tower::{Layer, Service};

use super::fields::BodyFields;
use super::rejection::Rejection;
use super::{shadow, Response};
use crate::clock::SharedClock;
use crate::extract::{HeaderLookup, JsonError, ValueSource};
use crate::metrics::Metrics;
use crate::source::{Freshness, Source};
use crate::timestamp::{self, TimestampError};

/// Checks freshness against the gateway's (injectable) wall clock.
#[derive(Clone)]
pub(super) struct FreshnessLayer {
    clock: SharedClock,
    metrics: Arc<Metrics>,
}

impl FreshnessLayer {
    pub(super) fn new(clock: SharedClock, metrics: Arc<Metrics>) -> Self {
        FreshnessLayer { clock, metrics }
    }
}

impl<S> Layer<S> for FreshnessLayer {
    type Service = Fresh<S>;

    fn layer(&self, inner: S) -> Fresh<S> {
        Fresh {
            inner,
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Fresh<S> {
    inner: S,
    clock: SharedClock,
    metrics: Arc<Metrics>,
}

fn bad(error: TimestampError) -> Rejection {
    Rejection::BadTimestamp {
        reason: error.reason(),
    }
}

/// Reads the delivery's timestamp in milliseconds, `Ok(None)` when absent.
fn read_timestamp(
    source: &Source,
    policy: &Freshness,
    req: &http::Request<Bytes>,
    fields: &BodyFields,
) -> Result<Option<i64>, Rejection> {
    for candidate in &policy.from {
        match candidate {
            ValueSource::Header(_) => match candidate.header(req.headers()) {
                HeaderLookup::Missing => continue,
                HeaderLookup::Value(text) => {
                    return timestamp::parse_str(text, policy.format)
                        .map(Some)
                        .map_err(bad)
                }
                HeaderLookup::Repeated | HeaderLookup::Invalid => {
                    return Err(Rejection::BadTimestamp {
                        reason: "timestamp header repeated or not ASCII",
                    })
                }
            },
            ValueSource::Body(path) => match fields.get(source, path) {
                Ok(None) => continue,
                Ok(Some(value)) => {
                    return timestamp::parse_scalar(value, policy.format)
                        .map(Some)
                        .map_err(bad)
                }
                // A key given twice is refused whether or not the timestamp is required: the
                // receiver might read the other one.
                Err(error @ JsonError::DuplicateKey(_)) => {
                    return Err(Rejection::BadJson {
                        reason: error.to_string(),
                    })
                }
                // A body that is not JSON has no timestamp field; only an error if required.
                Err(_) if !policy.required => continue,
                Err(error) => {
                    return Err(Rejection::BadJson {
                        reason: error.to_string(),
                    })
                }
            },
            ValueSource::SignatureParam(key) => {
                let Some(check) = &source.signature else {
                    continue;
                };
                match check.scheme.param(req.headers(), key) {
                    Some(text) => {
                        return timestamp::parse_str(text, policy.format)
                            .map(Some)
                            .map_err(bad)
                    }
                    None => continue,
                }
            }
        }
    }
    Ok(None)
}

/// Checks the delivery's timestamp against the source's window at time `now_ms`.
pub(super) fn check(
    source: &Source,
    req: &http::Request<Bytes>,
    fields: &BodyFields,
    now_ms: i64,
) -> Result<(), Rejection> {
    let Some(policy) = &source.freshness else {
        return Ok(());
    };
    let Some(stamp) = read_timestamp(source, policy, req, fields)? else {
        return if policy.required {
            Err(Rejection::MissingTimestamp)
        } else {
            Ok(())
        };
    };
    let age = now_ms.saturating_sub(stamp);
    if age > millis(policy.window) {
        return Err(Rejection::StaleTimestamp {
            window: humantime::format_duration(policy.window).to_string(),
        });
    }
    if -age > millis(policy.future_skew) {
        return Err(Rejection::FutureTimestamp {
            skew: humantime::format_duration(policy.future_skew).to_string(),
        });
    }
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<S> Service<http::Request<Bytes>> for Fresh<S>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Bytes>) -> Self::Future {
        let fields = BodyFields::of(&mut req);
        let checked =
            check(super::routed(&req), &req, &fields, self.clock.wall_ms()).or_else(|rejection| {
                let source = super::routed(&req).clone();
                shadow::refuse_or_record(&source, &mut req, rejection, &self.metrics)
            });
        match checked {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(rejection) => Either::Left(ready(Ok(rejection.into_response()))),
        }
    }
}
