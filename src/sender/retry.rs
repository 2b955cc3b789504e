//! Retry policies as the providers document them, selectable by name and overridable, and the
//! classification of an answer: 2xx is success; 4xx is final except 408 and 429 (which honours
//! `Retry-After`); 5xx, timeouts and connection errors are retried.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

/// When the next attempt comes.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// The delay before each retry, in order; the list's length is the number of retries.
    Fixed(Vec<Duration>),
    /// `initial`, then each delay `multiplier` times the last, for at most `retries` retries.
    Exponential {
        /// The first retry's delay.
        initial: Duration,
        /// Each delay is the previous one times this.
        multiplier: f64,
        /// Retries at most (attempts = retries + 1).
        retries: u32,
    },
}

/// A complete retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The policy as named in the configuration (a preset's policy, `custom:…` or `exponential:…`).
    pub name: String,
    /// The delays between attempts.
    pub schedule: Schedule,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// No retry is scheduled past this much time since the first attempt.
    pub window: Option<Duration>,
    /// Randomise each delay by up to ± this fraction (0 = none).
    pub jitter: f64,
}

/// Ceiling on the attempts of any policy whose schedule alone does not bound them (an
/// exponential schedule with `retries = u32::MAX` and a long or no window).
pub const MAX_ATTEMPTS: u32 = 25;

/// The least wait a `Retry-After` can ask for: `Retry-After: 0` on every answer must slow the
/// sender down, never make it spin.
pub const RETRY_AFTER_FLOOR: Duration = Duration::from_secs(1);

/// Names accepted by [`RetryPolicy::parse`], besides `custom:` and `exponential:`.
pub const NAMES: &[&str] = &[
    "certifyclouds",
    "cloudkeep",
    "corgea",
    "policycortex",
    "vaas",
    "standard-webhooks",
    "stripe",
    "slack",
    "shopify",
    "none",
];

const S: u64 = 1;
const M: u64 = 60;
const H: u64 = 3600;

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|s| Duration::from_secs(*s)).collect()
}

fn fixed(name: &str, delays: &[u64], timeout: u64) -> RetryPolicy {
    RetryPolicy {
        name: name.to_string(),
        schedule: Schedule::Fixed(secs(delays)),
        timeout: Duration::from_secs(timeout),
        window: None,
        jitter: 0.0,
    }
}

fn exponential(name: &str, initial: u64, retries: u32, window: u64, timeout: u64) -> RetryPolicy {
    RetryPolicy {
        name: name.to_string(),
        schedule: Schedule::Exponential {
            initial: Duration::from_secs(initial),
            multiplier: 2.0,
            retries,
        },
        timeout: Duration::from_secs(timeout),
        window: Some(Duration::from_secs(window)),
        jitter: 0.0,
    }
}

impl RetryPolicy {
    /// A named policy, `custom:<delay>,<delay>,…` or
    /// `exponential:initial=<d>,multiplier=<f>,retries=<n>,window=<d>,timeout=<d>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy = match text {
            // Seed 000: immediately, then 2 s, 5 s, 10 s; 10 s timeout.
            "certifyclouds" => fixed(text, &[2 * S, 5 * S, 10 * S], 10),
            // Seed 001: 1 m, 5 m, 30 m, 2 h, 12 h; 10 s timeout.
            "cloudkeep" => fixed(text, &[M, 5 * M, 30 * M, 2 * H, 12 * H], 10),
            // Seed 004: 3 attempts, 2 s then 4 s; 10 s timeout.
            "corgea" => fixed(text, &[2 * S, 4 * S], 10),
            // Seed 003: exponential (multiplier 2) within a 24 h window; 30 s timeout. The first
            // delay is not documented: 1 minute is assumed.
            "policycortex" => exponential(text, M, u32::MAX, 24 * H, 30),
            // Seed 002: retried for up to 24 h; the schedule is not documented.
            "vaas" => exponential(text, M, u32::MAX, 24 * H, 30),
            "standard-webhooks" => fixed(
                text,
                &[5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H],
                15,
            ),
            "stripe" => exponential(text, M, u32::MAX, 72 * H, 30),
            "slack" => fixed(text, &[0, M, 5 * M], 3),
            "shopify" => exponential(text, M, 8, 4 * H, 5),
            "none" => fixed(text, &[], 30),
            _ => return parse_custom(text),
        };
        Ok(policy)
    }

    /// The delay before retry number `retry` (0-based), or `None` when there is none.
    pub fn delay(&self, retry: u32) -> Option<Duration> {
        match &self.schedule {
            Schedule::Fixed(delays) => delays.get(retry as usize).copied(),
            Schedule::Exponential {
                initial,
                multiplier,
                retries,
            } => (retry < *retries).then(|| {
                let factor = multiplier.powi(i32::try_from(retry).unwrap_or(i32::MAX));
                Duration::try_from_secs_f64(initial.as_secs_f64() * factor).unwrap_or(Duration::MAX)
            }),
        }
    }

    /// Attempts in all (the first one and its retries), bounded for every policy: a fixed
    /// schedule's length plus one; for an exponential one, the retries whose delays fit in the
    /// window (and its `retries`), at most [`MAX_ATTEMPTS`].
    pub fn max_attempts(&self) -> u32 {
        let retries = match &self.schedule {
            Schedule::Fixed(delays) => u32::try_from(delays.len()).unwrap_or(u32::MAX),
            Schedule::Exponential { retries, .. } => {
                let mut total = Duration::ZERO;
                let mut fitting = 0;
                while fitting < *retries && fitting < MAX_ATTEMPTS - 1 {
                    let Some(delay) = self.delay(fitting) else {
                        break;
                    };
                    total = total.saturating_add(delay);
                    if self.window.is_some_and(|w| total > w) {
                        break;
                    }
                    fitting += 1;
                }
                fitting
            }
        };
        retries.saturating_add(1)
    }

    /// `delay` randomised by the policy's jitter.
    pub fn jittered(&self, delay: Duration) -> Duration {
        if self.jitter <= 0.0 {
            return delay;
        }
        let spread = (fastrand::f64() * 2.0 - 1.0) * self.jitter;
        Duration::try_from_secs_f64(delay.as_secs_f64() * (1.0 + spread)).unwrap_or(delay)
    }
}

fn parse_custom(text: &str) -> Result<RetryPolicy, String> {
    let duration = |v: &str| humantime::parse_duration(v).map_err(|e| format!("`{v}`: {e}"));
    if let Some(list) = text.strip_prefix("custom:") {
        let delays = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| duration(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(RetryPolicy {
            name: text.to_string(),
            schedule: Schedule::Fixed(delays),
            timeout: Duration::from_secs(30),
            window: None,
            jitter: 0.0,
        });
    }
    if let Some(params) = text.strip_prefix("exponential:") {
        let mut policy = exponential(text, 60, u32::MAX, 24 * H, 30);
        let mut initial = Duration::from_secs(60);
        let mut multiplier = 2.0;
        let mut retries = u32::MAX;
        for pair in params.split(',').filter(|s| !s.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` must be key=value"))?;
            match key.trim() {
                "initial" => initial = duration(value)?,
                "multiplier" => {
                    multiplier = value
                        .parse::<f64>()
                        .ok()
                        .filter(|m| *m >= 1.0 && m.is_finite())
                        .ok_or_else(|| format!("multiplier `{value}` must be a number ≥ 1"))?
                }
                "retries" => {
                    retries = value
                        .parse()
                        .map_err(|_| format!("retries `{value}` must be a whole number"))?
                }
                "window" => policy.window = Some(duration(value)?),
                "timeout" => policy.timeout = duration(value)?,
                other => return Err(format!("unknown exponential parameter `{other}`")),
            }
        }
        policy.schedule = Schedule::Exponential {
            initial,
            multiplier,
            retries,
        };
        return Ok(policy);
    }
    Err(format!(
        "unknown retry policy `{text}` (known: {}, custom:<d>,<d>…, exponential:initial=<d>,multiplier=<f>,retries=<n>,window=<d>)",
        NAMES.join(", ")
    ))
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx: delivered.
    Success,
    /// A client error the provider does not retry.
    Final,
    /// Retry; `after` is the receiver's `Retry-After`, when given.
    Retry {
        /// The receiver's `Retry-After`, when given.
        after: Option<Duration>,
    },
}

/// Classifies an HTTP answer.
pub fn classify(status: StatusCode, headers: &HeaderMap) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Success,
        408 => Verdict::Retry { after: None },
        429 => Verdict::Retry {
            after: retry_after(headers),
        },
        400..=499 => Verdict::Final,
        _ => Verdict::Retry { after: None },
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at 24 h.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(Duration::from_secs(24 * 3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_schedules() {
        let cloudkeep = RetryPolicy::parse("cloudkeep").unwrap();
        let delays: Vec<_> = (0..6).map_while(|i| cloudkeep.delay(i)).collect();
        assert_eq!(delays, secs(&[60, 300, 1800, 7200, 43200]));
        assert_eq!(cloudkeep.timeout, Duration::from_secs(10));
        let corgea = RetryPolicy::parse("corgea").unwrap();
        assert_eq!(corgea.delay(0), Some(Duration::from_secs(2)));
        assert_eq!(corgea.delay(1), Some(Duration::from_secs(4)));
        assert_eq!(corgea.delay(2), None);
        let pc = RetryPolicy::parse("policycortex").unwrap();
        assert_eq!(pc.delay(3), Some(Duration::from_secs(480)));
        assert_eq!(pc.window, Some(Duration::from_secs(24 * 3600)));
        for name in NAMES {
            let policy = RetryPolicy::parse(name).unwrap();
            assert!(
                (1..=MAX_ATTEMPTS).contains(&policy.max_attempts()),
                "{name}"
            );
        }
    }

    #[test]
    fn every_policy_has_bounded_attempts() {
        let attempts = |name: &str| RetryPolicy::parse(name).unwrap().max_attempts();
        assert_eq!(attempts("corgea"), 3);
        assert_eq!(attempts("cloudkeep"), 6);
        assert_eq!(attempts("none"), 1);
        // 1+2+…+512 min = 1023 min fits in 24 h, 2047 min does not.
        assert_eq!(attempts("policycortex"), 11);
        assert_eq!(attempts("vaas"), 11);
        // 4095 min fits in 72 h.
        assert_eq!(attempts("stripe"), 13);
        assert_eq!(attempts("shopify"), 8);
        let endless = RetryPolicy::parse("exponential:initial=1s,multiplier=1").unwrap();
        assert_eq!(endless.max_attempts(), MAX_ATTEMPTS);
    }

    #[test]
    fn custom_and_exponential_overrides() {
        let custom = RetryPolicy::parse("custom:1s,500ms").unwrap();
        assert_eq!(custom.delay(1), Some(Duration::from_millis(500)));
        assert_eq!(custom.delay(2), None);
        let exp = RetryPolicy::parse("exponential:initial=10s,multiplier=3,retries=2,timeout=5s")
            .unwrap();
        assert_eq!(exp.delay(1), Some(Duration::from_secs(30)));
        assert_eq!(exp.delay(2), None);
        assert_eq!(exp.timeout, Duration::from_secs(5));
        assert!(RetryPolicy::parse("sometimes").is_err());
        assert!(RetryPolicy::parse("exponential:multiplier=0.5").is_err());
    }

    #[test]
    fn classification() {
        let none = HeaderMap::new();
        assert_eq!(classify(StatusCode::NO_CONTENT, &none), Verdict::Success);
        assert_eq!(classify(StatusCode::BAD_REQUEST, &none), Verdict::Final);
        assert_eq!(classify(StatusCode::CONFLICT, &none), Verdict::Final);
        assert_eq!(
            classify(StatusCode::REQUEST_TIMEOUT, &none),
            Verdict::Retry { after: None }
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, &none),
            Verdict::Retry { after: None }
        );
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers),
            Verdict::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut policy = RetryPolicy::parse("custom:10s").unwrap();
        policy.jitter = 0.2;
        for _ in 0..100 {
            let d = policy.jittered(Duration::from_secs(10)).as_secs_f64();
            assert!((8.0..=12.0).contains(&d), "{d}");
        }
    }
}
