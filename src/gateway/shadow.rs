//! Shadow mode (`enforce = false`), for switching a live provider over without dropping a
//! delivery: each check (admission, signature, freshness, dedup) still runs, and a failure is
//! logged and counted (`hookgate_shadow_failures_total{source,reason}`, the first failure of each
//! delivery) instead of refused.
//! The delivery is forwarded anyway with `X-Hookgate-Verification: failed; reason=<code>`
//! (the first failure), or `passed`. Any `X-Hookgate-Verification` a client sends is removed
//! with every other incoming `X-Hookgate-*` header (in `forward`), so only hookgate's reaches
//! the upstream.

use http::HeaderValue;

use super::facts::Facts;
use super::rejection::Rejection;
use super::RequestId;
use crate::metrics::Metrics;
use crate::source::Source;

/// The header that tells the upstream of a shadow-mode source what the checks found.
pub(super) const HEADER: &str = "x-hookgate-verification";

/// What the checks found for one request of a shadow-mode source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The code of the first check that failed.
    failure: Option<&'static str>,
}

impl Verdict {
    /// The value of [`HEADER`].
    pub(super) fn header_value(&self) -> HeaderValue {
        match self.failure {
            None => HeaderValue::from_static("passed"),
            Some(code) => HeaderValue::from_str(&format!("failed; reason={code}"))
                .unwrap_or_else(|_| HeaderValue::from_static("failed")),
        }
    }
}

/// What a layer does with a failed check. An enforcing source gets the refusal back; on a
/// shadow-mode source the failure is recorded on the request (the first one is what the
/// upstream is told), logged and counted, and `Ok` lets the request go on.
pub(super) fn refuse_or_record<B>(
    source: &Source,
    req: &mut http::Request<B>,
    rejection: Rejection,
    metrics: &Metrics,
) -> Result<(), Rejection> {
    if source.enforce {
        return Err(rejection);
    }
    record(source, req, rejection.code(), metrics);
    Ok(())
}

/// Records a failed check `code` on a shadow-mode request. Only the first failure of a request
/// is logged and counted (and reported upstream): a later check often fails for the same
/// reason (no signature header, then no signature).
pub(super) fn record<B>(
    source: &Source,
    req: &mut http::Request<B>,
    code: &'static str,
    metrics: &Metrics,
) {
    if failed(req) {
        return;
    }
    tracing::warn!(request_id = RequestId::of(req), source = %source.name, reason = code, "shadow mode: check failed, forwarding anyway");
    metrics.shadow_failure(&source.name, code);
    Facts::of_mut(req)
        .verdict
        .get_or_insert_with(Verdict::default)
        .failure
        .get_or_insert(code);
}

/// True when a check already failed on this (shadow-mode) request.
pub(super) fn failed<B>(req: &http::Request<B>) -> bool {
    Facts::of(req)
        .and_then(|f| f.verdict)
        .is_some_and(|v| v.failure.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_one_reported() {
        let mut verdict = Verdict::default();
        assert_eq!(verdict.header_value(), "passed");
        verdict.failure.get_or_insert("bad_signature");
        verdict.failure.get_or_insert("stale_timestamp");
        assert_eq!(verdict.header_value(), "failed; reason=bad_signature");
    }
}
