//! Freshness and dedup as configuration writes them ([`FreshnessSpec`], [`DedupSpec`]: every
//! field optional, so a preset can fill what the user leaves out), and the one place each
//! becomes its runtime policy ([`Freshness::from_spec`], [`DedupPolicy::from_spec`]). Defaults
//! are the constants below, written once.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use super::{DedupPolicy, Freshness, MissingId, Source};
use crate::extract::ValueSource;
use crate::scheme::Shape;
use crate::timestamp::TimeFormat;

/// The past window and the future skew when a spec sets none.
pub(super) const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// How far ahead of the gateway's clock a timestamp may be, when a spec sets none.
pub(super) const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(300);
/// How long keys are kept for a source without freshness, when a spec sets none.
pub(super) const DEFAULT_TTL_WITHOUT_FRESHNESS: Duration = Duration::from_secs(24 * 3600);
/// How long a duplicate waits for an in-flight copy of a source without a preset: a little
/// under the most common documented sender timeout (10 s).
pub(super) const DEFAULT_INFLIGHT_WAIT: Duration = Duration::from_secs(9);
/// The longest in-flight wait accepted.
pub(super) const MAX_INFLIGHT_WAIT: Duration = Duration::from_secs(300);
/// The longest window or dedup memory accepted.
pub(super) const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// The largest future skew accepted.
pub(super) const MAX_FUTURE_SKEW: Duration = Duration::from_secs(24 * 3600);

/// Where the delivery time is and how old it may be.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessSpec {
    /// Off with `false`; on by default when `from` is set.
    pub enabled: Option<bool>,
    /// One value source or a list of candidates (first present wins).
    #[serde(default, deserialize_with = "one_or_many")]
    pub from: Option<Vec<ValueSource>>,
    /// How the timestamp is written.
    pub format: Option<TimeFormat>,
    /// When false, a delivery without a timestamp passes (dedup still applies).
    pub required: Option<bool>,
    /// How old a delivery may be.
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    /// How far ahead of the gateway's clock it may be.
    #[serde(default, with = "humantime_serde")]
    pub future_skew: Option<Duration>,
}

/// How deliveries are recognised as the same event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSpec {
    /// Off with `false`; on by default.
    pub enabled: Option<bool>,
    /// Where the event id is; absent means a digest of the body.
    pub id: Option<ValueSource>,
    /// What to do when the id is missing.
    pub on_missing: Option<MissingId>,
    /// How long a delivered key is remembered.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// How long a duplicate waits for an in-flight copy's outcome (then 503).
    #[serde(default, with = "humantime_serde")]
    pub inflight_wait: Option<Duration>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<ValueSource>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(ValueSource),
        Many(Vec<ValueSource>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

impl FreshnessSpec {
    /// This spec's fields, with `base`'s wherever this one leaves a field unset.
    pub fn over(self, base: FreshnessSpec) -> FreshnessSpec {
        FreshnessSpec {
            enabled: self.enabled.or(base.enabled),
            from: self.from.or(base.from),
            format: self.format.or(base.format),
            required: self.required.or(base.required),
            window: self.window.or(base.window),
            future_skew: self.future_skew.or(base.future_skew),
        }
    }
}

impl DedupSpec {
    /// This spec's fields, with `base`'s wherever this one leaves a field unset.
    pub fn over(self, base: DedupSpec) -> DedupSpec {
        DedupSpec {
            enabled: self.enabled.or(base.enabled),
            id: self.id.or(base.id),
            on_missing: self.on_missing.or(base.on_missing),
            ttl: self.ttl.or(base.ttl),
            inflight_wait: self.inflight_wait.or(base.inflight_wait),
        }
    }
}

fn fmt(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

impl Freshness {
    /// The freshness check of `source` (whose signature is already set), or `None` when off.
    pub fn from_spec(spec: &FreshnessSpec, source: &Source) -> Result<Option<Freshness>, String> {
        if !spec.enabled.unwrap_or(spec.from.is_some()) {
            return Ok(None);
        }
        let from = spec
            .from
            .clone()
            .filter(|f| !f.is_empty())
            .ok_or("from is not set")?;
        let key_value = source
            .signature
            .as_ref()
            .is_some_and(|s| matches!(s.scheme.shape, Shape::KeyValue { .. }));
        if !key_value
            && from
                .iter()
                .any(|s| matches!(s, ValueSource::SignatureParam(_)))
        {
            return Err("from = signature:<param> needs a key-value signature format".into());
        }
        let window = spec.window.unwrap_or(DEFAULT_WINDOW);
        let future_skew = spec.future_skew.unwrap_or(DEFAULT_FUTURE_SKEW);
        if window.is_zero() || window > MAX_WINDOW {
            return Err(format!(
                "window {} must be between 1s and 30 days",
                fmt(window)
            ));
        }
        if future_skew > MAX_FUTURE_SKEW {
            return Err(format!(
                "future_skew {} must be at most {}",
                fmt(future_skew),
                fmt(MAX_FUTURE_SKEW)
            ));
        }
        Ok(Some(Freshness {
            from,
            format: spec.format.unwrap_or(TimeFormat::Auto),
            required: spec.required.unwrap_or(true),
            window,
            future_skew,
        }))
    }
}

impl DedupPolicy {
    /// The dedup policy of `source` (whose signature and freshness are already set), or `None`
    /// when off.
    pub fn from_spec(spec: &DedupSpec, source: &Source) -> Result<Option<DedupPolicy>, String> {
        if !spec.enabled.unwrap_or(true) {
            return Ok(None);
        }
        let id = spec.id.clone();
        if matches!(id, Some(ValueSource::SignatureParam(_))) {
            return Err("id must come from a header or the body".into());
        }
        let default_ttl = source
            .freshness
            .as_ref()
            .map_or(DEFAULT_TTL_WITHOUT_FRESHNESS, DedupPolicy::required_ttl);
        let ttl = spec.ttl.unwrap_or(default_ttl);
        if ttl.is_zero() || ttl > MAX_WINDOW {
            return Err(format!("ttl {} must be between 1s and 30 days", fmt(ttl)));
        }
        let inflight_wait = spec.inflight_wait.unwrap_or(DEFAULT_INFLIGHT_WAIT);
        if inflight_wait > MAX_INFLIGHT_WAIT {
            return Err(format!(
                "inflight_wait {} must be at most {}",
                fmt(inflight_wait),
                fmt(MAX_INFLIGHT_WAIT)
            ));
        }
        let id_signed = id.as_ref().is_some_and(|s| source.id_signed(s));
        let scope: [u8; 32] = Sha256::digest(source.name.as_bytes()).into();
        // https://developer.paypal.com/api/webhooks/v1/definitions/verify_webhook_signature :
        // PAYPAL-TRANSMISSION-ID is signed with the body's CRC32, which anyone can match.
        let transmission_key = source
            .signature
            .as_ref()
            .filter(|check| matches!(check.method, super::method::Method::Paypal(_)))
            .map(|_| http::HeaderName::from_static("paypal-transmission-id"));
        Ok(Some(DedupPolicy {
            id,
            id_signed,
            transmission_key,
            on_missing: spec.on_missing.unwrap_or(MissingId::Digest),
            ttl,
            inflight_wait,
            scope: scope[..16].try_into().expect("16 bytes"),
        }))
    }
}
