//! Provider presets: for each sender we speak, its signature scheme, where its timestamp and
//! event id live, and freshness/dedup windows chosen from its documented retry horizon.
//!
//! A preset fills the same typed, optional specs a user writes in TOML; the user's fields override the
//! preset's one by one. The window rationale for each preset is in `window_reason` and is
//! printed by `hookgate check-config`.
//!
//! One file per family: `seed` (the seed providers, Standard Webhooks, GitHub, Stripe, Slack,
//! Shopify), `devtools` (source hosting, issue trackers, monitoring, product tools),
//! `commerce` (payments, shops, accounting, storage), `messaging` (communications and
//! the asymmetric signers) and `platforms` (SNS, Pub/Sub, Plaid, Mailgun: signatures that
//! are not one header). Each preset cites the provider's documentation beside it.

mod commerce;
mod devtools;
mod handshakes;
mod messaging;
mod platforms;
mod seed;

use std::time::Duration;

use http::HeaderName;

use crate::extract::ValueSource;
use crate::scheme::signed::Profile;
use crate::scheme::{Algorithm, Encoding, SignatureFormat, SignatureSpec, Template};
use crate::secret::SecretEncoding;
use crate::source::{DedupSpec, FreshnessSpec, MissingId};
use crate::timestamp::TimeFormat;

/// Everything a preset contributes to a source.
#[derive(Debug, Clone)]
pub struct Preset {
    /// The name `preset = "…"` selects it by (e.g. `stripe`, `github`).
    pub name: &'static str,
    /// `None` for senders that do not sign (authenticated by token, path token or address).
    pub signature: Option<SignatureSpec>,
    /// The timestamp's source and format, and the window a delivery must fall within.
    pub freshness: FreshnessSpec,
    /// Where the delivery id comes from, and what to do when it is missing.
    pub dedup: DedupSpec,
    /// Why the freshness window has the length it has.
    pub window_reason: &'static str,
    /// How long the sender waits for an answer before it gives up on an attempt (and retries).
    pub sender_timeout: Duration,
    /// Where that number comes from, printed by `check-config`.
    pub timeout_reason: &'static str,
    /// How the provider sends, for hookgate's own sender.
    pub sender: SenderProfile,
    /// The provider's documentation of its signature (or token).
    pub docs: &'static str,
    /// For senders authenticated by a static token: the header it travels in (configure
    /// `token = { header = …, secrets = […] }`).
    pub token_header: Option<&'static str>,
}

/// What a provider puts on each delivery besides the signature, and how it retries.
#[derive(Debug, Clone, Copy)]
pub struct SenderProfile {
    /// The `User-Agent` the provider sends, which hookgate's sender copies.
    pub user_agent: &'static str,
    /// Header naming the event type, where the provider has one.
    pub event_type_header: Option<&'static str>,
    /// Header with a new id for every attempt (e.g. `X-Corgea-Delivery`).
    pub attempt_id_header: Option<&'static str>,
    /// A delivery-time header that is not part of the signature, and its format.
    pub timestamp_header: Option<(&'static str, TimeFormat)>,
    /// The provider's retry schedule (a name accepted by `RetryPolicy::parse`).
    pub retry: &'static str,
}

pub(super) const fn profile(user_agent: &'static str, retry: &'static str) -> SenderProfile {
    SenderProfile {
        user_agent,
        event_type_header: None,
        attempt_id_header: None,
        timestamp_header: None,
        retry,
    }
}

/// Every preset name accepted in configuration, aliases included.
pub const NAMES: &[&str] = &[
    "cloudkeep",
    "policycortex",
    "corgea",
    "vaas",
    "certifyclouds",
    "standard-webhooks",
    "svix",
    "github",
    "stripe",
    "slack",
    "shopify",
    "bitbucket",
    "gitlab",
    "gitlab-signed",
    "intercom",
    "linear",
    "notion",
    "calendly",
    "typeform",
    "zendesk",
    "vercel",
    "sentry",
    "pagerduty",
    "segment",
    "woocommerce",
    "razorpay",
    "xero",
    "paddle",
    "coinbase",
    "square",
    "box",
    "webflow",
    "hubspot",
    "zoom",
    "clerk",
    "resend",
    "meta",
    "whatsapp",
    "twilio",
    "discord",
    "telnyx",
    "sendgrid",
    "standard-webhooks-v1a",
    "twitch",
    "dropbox",
    "sns",
    "google-pubsub",
    "plaid",
    "mailgun",
    "paypal",
];

/// Aliases among [`NAMES`]: they resolve to the preset named second.
pub const ALIASES: &[(&str, &str)] = &[("svix", "standard-webhooks"), ("whatsapp", "meta")];

/// Looks up a preset by name or alias.
pub fn find(name: &str) -> Option<Preset> {
    seed::find(name)
        .or_else(|| devtools::find(name))
        .or_else(|| commerce::find(name))
        .or_else(|| messaging::find(name))
        .or_else(|| platforms::find(name))
}

/// Every distinct preset (aliases left out), in [`NAMES`] order.
pub fn all() -> Vec<Preset> {
    NAMES
        .iter()
        .filter(|n| !ALIASES.iter().any(|(alias, _)| alias == *n))
        .filter_map(|n| find(n))
        .collect()
}

pub(super) const MINUTE: u64 = 60;
pub(super) const HOUR: u64 = 60 * MINUTE;

pub(super) fn dur(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

/// A value source written as in configuration (`body:id`, `header:X-Id`); presets only use
/// valid ones, which the unit tests build for every preset.
pub(super) fn at(text: &str) -> ValueSource {
    ValueSource::parse(text).expect("preset value sources are valid")
}

pub(super) fn hmac(
    header: &str,
    encoding: Encoding,
    format: SignatureFormat,
    prefix: &str,
    signed: &str,
) -> SignatureSpec {
    SignatureSpec {
        header: Some(HeaderName::from_bytes(header.as_bytes()).expect("preset headers are valid")),
        algorithm: Some(Algorithm::Sha256),
        encoding: Some(encoding),
        format: Some(format),
        prefix: Some(prefix.to_string()),
        signed: Some(Template::parse(signed).expect("preset templates are valid")),
        secret_encoding: Some(SecretEncoding::Raw),
        ..SignatureSpec::default()
    }
}

impl Preset {
    /// The default upstream timeout: below the sender's own request timeout, so the sender
    /// sees the upstream's real answer (or hookgate's 504) rather than its own timeout.
    pub fn upstream_timeout(&self) -> Duration {
        under(self.sender_timeout)
    }

    /// The default in-flight wait: a duplicate is answered before its sender gives up.
    pub fn inflight_wait(&self) -> Duration {
        under(self.sender_timeout)
    }
}

/// 90 % of a sender's timeout: a little under it, leaving room for the network and hookgate.
fn under(sender_timeout: Duration) -> Duration {
    sender_timeout * 9 / 10
}

/// Sender timeout assumed where the provider documents none: the shortest of the seed
/// providers' documented timeouts (CloudKeep, Corgea, CertifyClouds: 10 s).
pub(super) const UNDOCUMENTED_TIMEOUT: &str =
    "sender timeout not documented; 10 s assumed (the shortest documented by the seed providers)";

pub(super) fn freshness(
    from: &[&str],
    format: TimeFormat,
    required: bool,
    window: u64,
) -> FreshnessSpec {
    FreshnessSpec {
        enabled: Some(true),
        from: Some(from.iter().map(|s| at(s)).collect()),
        format: Some(format),
        required: Some(required),
        window: dur(window),
        future_skew: dur(5 * MINUTE),
    }
}

pub(super) fn no_freshness() -> FreshnessSpec {
    FreshnessSpec {
        enabled: Some(false),
        ..FreshnessSpec::default()
    }
}

pub(super) fn dedup(id: Option<&str>, ttl: u64) -> DedupSpec {
    DedupSpec {
        enabled: Some(true),
        id: id.map(at),
        on_missing: Some(MissingId::Digest),
        ttl: dur(ttl),
        inflight_wait: None,
    }
}

/// Every preset accepts a future skew of 5 minutes, so its keys are remembered for the window
/// plus 5 minutes: a delivery stamped 5 minutes ahead stays fresh that long after it arrives.
pub(super) const SKEW: u64 = 5 * MINUTE;

/// A preset with the sender's defaults (hookgate's User-Agent, no retries of its own).
#[allow(clippy::too_many_arguments)]
pub(super) fn basic(
    name: &'static str,
    docs: &'static str,
    signature: Option<SignatureSpec>,
    freshness: FreshnessSpec,
    dedup: DedupSpec,
    window_reason: &'static str,
    sender_timeout: u64,
    timeout_reason: &'static str,
) -> Preset {
    Preset {
        name,
        signature,
        freshness,
        dedup,
        window_reason,
        sender_timeout: Duration::from_secs(sender_timeout),
        timeout_reason,
        sender: profile("hookgate-sender", "none"),
        docs,
        token_header: None,
    }
}

/// An HMAC scheme whose `{timestamp}` comes from `timestamp` (a header or signature param).
pub(super) fn hmac_ts(
    header: &str,
    algorithm: Algorithm,
    encoding: Encoding,
    prefix: &str,
    signed: &str,
    timestamp: &str,
) -> SignatureSpec {
    SignatureSpec {
        algorithm: Some(algorithm),
        timestamp: Some(at(timestamp)),
        ..hmac(header, encoding, SignatureFormat::Plain, prefix, signed)
    }
}

/// An HMAC scheme over the raw body with another hash than SHA-256.
pub(super) fn hmac_with(
    algorithm: Algorithm,
    header: &str,
    encoding: Encoding,
    prefix: &str,
) -> SignatureSpec {
    SignatureSpec {
        algorithm: Some(algorithm),
        ..hmac(header, encoding, SignatureFormat::Plain, prefix, "{body}")
    }
}

/// The Standard Webhooks HMAC scheme with its headers named `{prefix}-id` etc. (`webhook`,
/// or `svix` for senders that deliver through Svix).
pub(super) fn standard_webhooks(prefix: &str) -> SignatureSpec {
    SignatureSpec {
        version: Some("v1".into()),
        timestamp: Some(at(&format!("header:{prefix}-timestamp"))),
        id: Some(at(&format!("header:{prefix}-id"))),
        secret_encoding: Some(SecretEncoding::Whsec),
        ..hmac(
            &format!("{prefix}-signature"),
            Encoding::Base64,
            SignatureFormat::Versioned,
            "",
            "{id}.{timestamp}.{body}",
        )
    }
}

/// The scheme of an asymmetric signer's [`Profile`]; public keys come from configuration.
pub(super) fn asymmetric(profile: &Profile) -> SignatureSpec {
    let (format, version) = match profile.version {
        Some(v) => (SignatureFormat::Versioned, Some(v.to_string())),
        None => (SignatureFormat::Plain, None),
    };
    SignatureSpec {
        header: Some(HeaderName::from_static(profile.signature_header)),
        encoding: Some(profile.encoding),
        format: Some(format),
        prefix: Some(String::new()),
        version,
        signed: Some(profile.template()),
        timestamp: profile.timestamp_header.map(|h| at(&format!("header:{h}"))),
        id: profile.id_header.map(|h| at(&format!("header:{h}"))),
        kind: Some(profile.kind),
        ..SignatureSpec::default()
    }
}

/// What a preset authenticates with, in one line (`hookgate presets`).
pub fn scheme_summary(preset: &Preset) -> String {
    let method = preset.signature.as_ref().and_then(|s| s.method);
    if let Some(text) = method.and_then(platforms::scheme_text) {
        return text.to_string();
    }
    match (&preset.signature, preset.token_header) {
        (Some(sig), _) => {
            let kind = match sig.kind {
                Some(kind) => kind.name().to_string(),
                None => sig.algorithm.map_or("hmac", |a| a.name()).to_string(),
            };
            let encoding = sig.encoding.map_or("", |e| e.name());
            let header = sig.header.as_ref().map_or("", |h| h.as_str());
            match &sig.secondary_header {
                Some(second) => format!("{kind} {encoding} in {header} and {second}"),
                None => format!("{kind} {encoding} in {header}"),
            }
        }
        (None, Some(header)) => format!("static token in {header}"),
        (None, None) => "none (path token, header token or address allowlist)".to_string(),
    }
}

/// The signed bytes of a preset, as a template (`-` when nothing is signed).
pub fn signed_summary(preset: &Preset) -> String {
    let method = preset.signature.as_ref().and_then(|s| s.method);
    if let Some(text) = method.and_then(platforms::signed_text) {
        return text.to_string();
    }
    preset
        .signature
        .as_ref()
        .and_then(|s| s.signed.as_ref())
        .map_or_else(|| "-".to_string(), |t| t.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_timeouts_sit_below_the_senders_timeouts() {
        let expected = [
            ("cloudkeep", 10),
            ("policycortex", 30),
            ("corgea", 10),
            ("certifyclouds", 10),
            ("github", 10),
            ("slack", 3),
            ("shopify", 5),
        ];
        for (name, sender) in expected {
            let p = find(name).unwrap();
            assert_eq!(p.sender_timeout, Duration::from_secs(sender), "{name}");
        }
        for name in NAMES {
            let p = find(name).unwrap();
            assert!(p.upstream_timeout() < p.sender_timeout, "{name}");
            assert!(p.inflight_wait() < p.sender_timeout, "{name}");
            assert!(!p.inflight_wait().is_zero(), "{name}");
        }
    }

    #[test]
    fn the_catalogue_has_at_least_forty_presets_with_docs() {
        let all = all();
        assert!(all.len() >= 40, "{} presets", all.len());
        for p in &all {
            assert!(!p.docs.is_empty(), "{}", p.name);
            if let Some(sig) = &p.signature {
                crate::scheme::Scheme::from_spec(sig).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            }
        }
    }

    #[test]
    fn every_listed_name_resolves() {
        for name in NAMES {
            assert!(find(name).is_some(), "{name}");
        }
        assert!(find("nope").is_none());
        assert_eq!(find("svix").unwrap().name, "standard-webhooks");
    }

    #[test]
    fn windows_cover_retry_horizons() {
        let cloudkeep = find("cloudkeep").unwrap();
        let horizon = Duration::from_secs(60 + 5 * 60 + 30 * 60 + 2 * 3600 + 12 * 3600);
        assert!(cloudkeep.freshness.window.unwrap() > horizon);
        let policycortex = find("policycortex").unwrap();
        assert!(policycortex.freshness.window.unwrap() > Duration::from_secs(24 * 3600));
        for name in NAMES {
            let p = find(name).unwrap();
            if let (Some(w), Some(skew), Some(ttl)) =
                (p.freshness.window, p.freshness.future_skew, p.dedup.ttl)
            {
                assert!(
                    ttl >= w + skew,
                    "{name}: dedup must cover the freshness window plus the future skew"
                );
            }
        }
    }
}
