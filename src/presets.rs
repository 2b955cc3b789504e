//! Provider presets: for each sender we speak, its signature scheme, where its timestamp and
//! event id live, and freshness/dedup windows chosen from its documented retry horizon.
//!
//! A preset fills the same typed, optional specs a user writes in TOML; the user's fields override the
//! preset's one by one. The window rationale for each preset is in `window_reason` and is
//! printed by `hookgate check-config`.

use std::time::Duration;

use http::HeaderName;

use crate::extract::ValueSource;
use crate::scheme::{Algorithm, Encoding, SignatureFormat, SignatureSpec, Template};
use crate::secret::SecretEncoding;
use crate::source::{DedupSpec, FreshnessSpec, MissingId};
use crate::timestamp::TimeFormat;

/// Everything a preset contributes to a source.
#[derive(Debug, Clone)]
pub struct Preset {
    pub name: &'static str,
    /// `None` for senders that do not sign (authenticated by token, path token or address).
    pub signature: Option<SignatureSpec>,
    pub freshness: FreshnessSpec,
    pub dedup: DedupSpec,
    /// Why the freshness window has the length it has.
    pub window_reason: &'static str,
    /// How long the sender waits for an answer before it gives up on an attempt (and retries).
    pub sender_timeout: Duration,
    /// Where that number comes from, printed by `check-config`.
    pub timeout_reason: &'static str,
    /// How the provider sends, for hookgate's own sender.
    pub sender: SenderProfile,
}

/// What a provider puts on each delivery besides the signature, and how it retries.
#[derive(Debug, Clone, Copy)]
pub struct SenderProfile {
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

const fn profile(user_agent: &'static str, retry: &'static str) -> SenderProfile {
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
];

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

fn dur(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

/// A value source written as in configuration (`body:id`, `header:X-Id`); presets only use
/// valid ones, which the unit tests build for every preset.
fn at(text: &str) -> ValueSource {
    ValueSource::parse(text).expect("preset value sources are valid")
}

fn hmac(
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
const UNDOCUMENTED_TIMEOUT: &str =
    "sender timeout not documented; 10 s assumed (the shortest documented by the seed providers)";

fn freshness(from: &[&str], format: TimeFormat, required: bool, window: u64) -> FreshnessSpec {
    FreshnessSpec {
        enabled: Some(true),
        from: Some(from.iter().map(|s| at(s)).collect()),
        format: Some(format),
        required: Some(required),
        window: dur(window),
        future_skew: dur(5 * MINUTE),
    }
}

fn no_freshness() -> FreshnessSpec {
    FreshnessSpec {
        enabled: Some(false),
        ..FreshnessSpec::default()
    }
}

fn dedup(id: Option<&str>, ttl: u64) -> DedupSpec {
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
const SKEW: u64 = 5 * MINUTE;

/// Looks up a preset by name or alias.
pub fn find(name: &str) -> Option<Preset> {
    use Encoding::*;
    use SignatureFormat::*;
    let preset = match name {
        // Retries at 1 m, 5 m, 30 m, 2 h, 12 h (≈14.6 h) keep the event's own time in the
        // signed body, so the window must cover the whole schedule plus slack.
        "cloudkeep" => Preset {
            name: "cloudkeep",
            signature: Some(hmac("X-CloudKeep-Signature-256", Hex, Plain, "sha256=", "{body}")),
            freshness: freshness(&["body:timestamp"], TimeFormat::Iso8601, true, 18 * HOUR),
            dedup: dedup(Some("body:id"), 18 * HOUR + SKEW),
            window_reason: "event time in the signed body; retries span ~14.6 h (1m,5m,30m,2h,12h)",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "CloudKeep waits 10 s for an answer, then retries (seed 001)",
            sender: profile("hookgate-sender (cloudkeep)", "cloudkeep"),
        },
        "policycortex" => Preset {
            name: "policycortex",
            signature: Some(hmac("X-PolicyCortex-Signature", Hex, Plain, "sha256=", "{body}")),
            freshness: freshness(&["body:created"], TimeFormat::Iso8601, true, 25 * HOUR),
            dedup: dedup(Some("body:id"), 25 * HOUR + SKEW),
            window_reason: "event time in the signed body; at-least-once with a 24 h retry window",
            sender_timeout: Duration::from_secs(30),
            timeout_reason: "PolicyCortex times out after 30 s (timeout_seconds, seed 003)",
            sender: profile("hookgate-sender (policycortex)", "policycortex"),
        },
        // The X-Corgea-Timestamp header is not signed; the body's `timestamp` is. Custom body
        // templates may leave it out, so it is optional and dedup on `event_id` carries the load.
        "corgea" => Preset {
            name: "corgea",
            signature: Some(hmac("X-Corgea-Signature", Hex, Plain, "", "{body}")),
            freshness: freshness(&["body:timestamp"], TimeFormat::Iso8601, false, HOUR),
            dedup: dedup(Some("body:event_id"), HOUR + SKEW),
            window_reason: "event time in the signed body; 3 attempts within ~40 s, manual retries later",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "Corgea waits 10 s per request (seed 004)",
            sender: SenderProfile {
                event_type_header: Some("X-Corgea-Event"),
                attempt_id_header: Some("X-Corgea-Delivery"),
                timestamp_header: Some(("X-Corgea-Timestamp", TimeFormat::Unix)),
                ..profile("Corgea-Webhooks/1.0", "corgea")
            },
        },
        // The public docs do not say which bytes are signed nor which hash: raw body with
        // HMAC-SHA256 is assumed (override signature.signed / signature.algorithm). The
        // VaaS-Timestamp header is therefore unsigned by default.
        "vaas" => Preset {
            name: "vaas",
            signature: Some(hmac("VaaS-Signature", Base64url, Plain, "", "{body}")),
            freshness: freshness(&["header:VaaS-Timestamp"], TimeFormat::Unix, true, 25 * HOUR),
            dedup: dedup(None, 25 * HOUR + SKEW),
            window_reason: "retried for up to 24 h; timestamp header is unsigned, so dedup covers the window",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: UNDOCUMENTED_TIMEOUT,
            sender: SenderProfile {
                timestamp_header: Some(("VaaS-Timestamp", TimeFormat::Unix)),
                ..profile("hookgate-sender (vaas)", "vaas")
            },
        },
        // No signature: authenticate with a path token, a static header token and/or an
        // address allowlist (the source must configure at least one).
        "certifyclouds" => Preset {
            name: "certifyclouds",
            signature: None,
            freshness: freshness(
                &["body:timestamp", "body:attachments.0.ts"],
                TimeFormat::Auto,
                false,
                15 * MINUTE,
            ),
            dedup: dedup(None, 15 * MINUTE + SKEW),
            window_reason: "retries immediately, 2 s, 5 s, 10 s (10 s timeout each); Teams cards carry no time",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "CertifyClouds waits 10 s per request, then retries (seed 000)",
            sender: profile("hookgate-sender (certifyclouds)", "certifyclouds"),
        },
        "standard-webhooks" | "svix" => Preset {
            name: "standard-webhooks",
            signature: Some(SignatureSpec {
                version: Some("v1".into()),
                timestamp: Some(at("header:webhook-timestamp")),
                id: Some(at("header:webhook-id")),
                secret_encoding: Some(SecretEncoding::Whsec),
                ..hmac(
                    "webhook-signature",
                    Base64,
                    Versioned,
                    "",
                    "{id}.{timestamp}.{body}",
                )
            }),
            freshness: freshness(&["header:webhook-timestamp"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup: dedup(Some("header:webhook-id"), 30 * HOUR),
            window_reason: "each attempt is re-signed with a fresh timestamp (spec tolerance 5 min); ids kept for the ~28 h retry schedule",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: UNDOCUMENTED_TIMEOUT,
            sender: profile("hookgate-sender (standard-webhooks)", "standard-webhooks"),
        },
        // https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks
        // ("Respond within 10 seconds": otherwise GitHub terminates the connection and counts
        // the delivery as failed).
        "github" => Preset {
            name: "github",
            signature: Some(hmac("X-Hub-Signature-256", Hex, Plain, "sha256=", "{body}")),
            freshness: no_freshness(),
            dedup: dedup(Some("header:X-GitHub-Delivery"), 72 * HOUR),
            window_reason: "GitHub sends no timestamp; manual redelivery is possible for 3 days",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: "GitHub expects a 2xx within 10 s, then fails the delivery",
            sender: SenderProfile {
                event_type_header: Some("X-GitHub-Event"),
                ..profile("GitHub-Hookshot/hookgate", "none")
            },
        },
        "stripe" => Preset {
            name: "stripe",
            signature: Some(SignatureSpec {
                version: Some("v1".into()),
                timestamp_key: Some("t".into()),
                timestamp: Some(at("signature:t")),
                ..hmac("Stripe-Signature", Hex, KeyValue, "", "{timestamp}.{body}")
            }),
            freshness: freshness(&["signature:t"], TimeFormat::Unix, true, 5 * MINUTE),
            dedup: dedup(Some("body:id"), 72 * HOUR),
            window_reason: "each attempt is re-signed (Stripe's tolerance is 5 min); event ids kept for its 3-day retries",
            sender_timeout: Duration::from_secs(10),
            timeout_reason: UNDOCUMENTED_TIMEOUT,
            sender: profile("Stripe/1.0 (+https://stripe.com/docs/webhooks)", "stripe"),
        },
        // https://api.slack.com/apis/events-api#responding and
        // https://docs.slack.dev/tools/bolt-python/concepts/acknowledge: answer within 3 s, or
        // Slack counts a timeout and retries (immediately, then after 1 m and 5 m).
        "slack" => Preset {
            name: "slack",
            signature: Some(SignatureSpec {
                timestamp: Some(at("header:X-Slack-Request-Timestamp")),
                ..hmac("X-Slack-Signature", Hex, Plain, "v0=", "v0:{timestamp}:{body}")
            }),
            freshness: freshness(
                &["header:X-Slack-Request-Timestamp"],
                TimeFormat::Unix,
                true,
                5 * MINUTE,
            ),
            dedup: dedup(Some("body:event_id"), HOUR),
            window_reason: "timestamp is signed per request (Slack's own guidance: 5 min)",
            sender_timeout: Duration::from_secs(3),
            timeout_reason: "Slack expects an answer within 3 s, then retries at once",
            sender: profile("Slackbot 1.0 (+https://api.slack.com/robots)", "slack"),
        },
        // Shopify gives the endpoint 5 s to answer (1 s to connect) before the attempt fails and
        // is retried: https://community.shopify.com/c/Shopify-APIs-SDKs/Webhook-on-create-orders-called-twice/m-p/543046
        // (Shopify staff), summarised from shopify.dev in
        // https://dev.to/shannonllc/shopify-webhooks-hmac-verification-5-second-timeout-retries-jkj
        "shopify" => Preset {
            name: "shopify",
            signature: Some(hmac("X-Shopify-Hmac-Sha256", Base64, Plain, "", "{body}")),
            freshness: freshness(
                &["header:X-Shopify-Triggered-At"],
                TimeFormat::Iso8601,
                false,
                5 * HOUR,
            ),
            dedup: dedup(Some("header:X-Shopify-Webhook-Id"), 5 * HOUR + SKEW),
            window_reason: "retried 8 times over 4 h; the triggered-at header is unsigned",
            sender_timeout: Duration::from_secs(5),
            timeout_reason: "Shopify waits 5 s for an answer, then retries",
            sender: SenderProfile {
                event_type_header: Some("X-Shopify-Topic"),
                timestamp_header: Some(("X-Shopify-Triggered-At", TimeFormat::Iso8601)),
                ..profile("Shopify-Captain-Hook", "shopify")
            },
        },
        _ => return None,
    };
    Some(preset)
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
