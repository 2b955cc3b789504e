//! The engine's decisions, as pure functions: what follows an attempt (delivered, retry at a
//! time, failed) within bounds that hold for every policy, and how a target's health moves
//! (pause after consecutive failures, disable after a failing period or on `410 Gone`).

use std::time::Duration;

use crate::sender::retry::{RetryPolicy, Verdict, MAX_ATTEMPTS, RETRY_AFTER_FLOOR};

use super::store::{AttemptOutcome, TargetHealth, TargetMode};

/// Bounds the engine keeps whatever the policy or the target says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The least wait after a `Retry-After` (default 1 s): `Retry-After: 0` slows hookgate
    /// down, never makes it spin.
    pub retry_after_floor: Duration,
    /// Attempts per delivery cycle at most, whatever the policy (default 25).
    pub max_attempts: u32,
    /// No retry is scheduled later than this after a cycle's first attempt (default 7 days;
    /// a policy's own window applies when shorter).
    pub max_window: Duration,
    /// Attempts kept per delivery; older ones are dropped (default 20).
    pub history: u32,
    /// Pending deliveries at most; new events are refused (`503`) past it. `None`: bounded by
    /// the disk only (default).
    pub max_pending: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            retry_after_floor: RETRY_AFTER_FLOOR,
            max_attempts: MAX_ATTEMPTS,
            max_window: Duration::from_secs(7 * 24 * 3600),
            history: 20,
            max_pending: None,
        }
    }
}

impl Limits {
    /// The attempts a delivery under `policy` gets per cycle.
    pub fn attempts_for(&self, policy: &RetryPolicy) -> u32 {
        policy.max_attempts().min(self.max_attempts.max(1))
    }

    /// The retry window of `policy`.
    pub fn window_for(&self, policy: &RetryPolicy) -> Duration {
        policy
            .window
            .map_or(self.max_window, |w| w.min(self.max_window))
    }
}

/// When a target stops being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    /// Pause after this many failed deliveries in a row (Corgea: 10).
    pub pause_after: Option<u32>,
    /// Disable once attempts have failed for this long without a success (CloudKeep: 3 days;
    /// CyberArk Certificate Manager, preset `vaas`: its 24 h retry period).
    pub disable_after: Option<Duration>,
    /// Disable when the target answers `410 Gone`.
    pub disable_on_gone: bool,
}

impl Default for HealthRules {
    fn default() -> Self {
        HealthRules {
            pause_after: Some(10),
            disable_after: None,
            disable_on_gone: true,
        }
    }
}

impl HealthRules {
    /// The documented behaviour of a preset's sender (seeds 001, 002, 004); others get the
    /// defaults (pause after 10, disable on 410).
    pub fn for_preset(preset: &str) -> Self {
        let day = Duration::from_secs(24 * 3600);
        match preset {
            "cloudkeep" => HealthRules {
                disable_after: Some(3 * day),
                ..Self::default()
            },
            "vaas" => HealthRules {
                disable_after: Some(day),
                ..Self::default()
            },
            _ => Self::default(),
        }
    }
}

/// What follows attempt number `cycle_attempt` (1-based, in the current cycle) that ended at
/// `now_ms` with `verdict`; the cycle began at `cycle_started_ms`.
pub fn next_step(
    policy: &RetryPolicy,
    limits: &Limits,
    cycle_attempt: u32,
    cycle_started_ms: i64,
    now_ms: i64,
    verdict: Verdict,
    status: Option<u16>,
) -> AttemptOutcome {
    let after = match verdict {
        Verdict::Success => return AttemptOutcome::Delivered,
        Verdict::Final => {
            let reason = match status {
                Some(410) => "gone: HTTP 410".to_string(),
                Some(s) => format!("rejected: HTTP {s}"),
                None => "rejected".to_string(),
            };
            return AttemptOutcome::Failed { reason };
        }
        Verdict::Retry { after } => after,
    };
    let exhausted = |why: String| AttemptOutcome::Failed {
        reason: format!("exhausted: {why}"),
    };
    let allowed = limits.attempts_for(policy);
    let Some(delay) = policy
        .delay(cycle_attempt.saturating_sub(1))
        .filter(|_| cycle_attempt < allowed)
    else {
        return exhausted(format!("{cycle_attempt} attempts"));
    };
    let delay = after.map_or_else(
        || policy.jittered(delay),
        |after| after.max(limits.retry_after_floor),
    );
    let at_ms = now_ms.saturating_add(millis(delay));
    let window = limits.window_for(policy);
    if at_ms.saturating_sub(cycle_started_ms) > millis(window) {
        return exhausted(format!(
            "retry window of {}",
            humantime::format_duration(window)
        ));
    }
    AttemptOutcome::Retry { at_ms }
}

/// A target's health after an attempt that answered `status` (none: timeout or error) and
/// led to `outcome`. Only an active target changes mode.
pub fn after_attempt(
    health: &TargetHealth,
    rules: &HealthRules,
    now_ms: i64,
    status: Option<u16>,
    outcome: &AttemptOutcome,
) -> TargetHealth {
    let mut next = health.clone();
    if *outcome == AttemptOutcome::Delivered {
        next.consecutive_failures = 0;
        next.failing_since_ms = None;
        return next;
    }
    let since = *next.failing_since_ms.get_or_insert(now_ms);
    if matches!(outcome, AttemptOutcome::Failed { .. }) {
        next.consecutive_failures = next.consecutive_failures.saturating_add(1);
    }
    if next.mode != TargetMode::Active {
        return next;
    }
    let change = if status == Some(410) && rules.disable_on_gone {
        Some((
            TargetMode::Disabled,
            "the target answered 410 Gone".to_string(),
        ))
    } else if let Some(period) = rules
        .disable_after
        .filter(|p| now_ms.saturating_sub(since) >= millis(*p))
    {
        Some((
            TargetMode::Disabled,
            format!("failing for {}", humantime::format_duration(period)),
        ))
    } else {
        rules
            .pause_after
            .filter(|n| next.consecutive_failures >= *n)
            .map(|n| {
                (
                    TargetMode::Paused,
                    format!("{n} consecutive failed deliveries"),
                )
            })
    };
    if let Some((mode, reason)) = change {
        next.mode = mode;
        next.reason = Some(reason);
        next.changed_ms = now_ms;
    }
    next
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(after: Option<u64>) -> Verdict {
        Verdict::Retry {
            after: after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retry_after_zero_is_floored_and_attempts_are_bounded() {
        let stripe = RetryPolicy::parse("stripe").unwrap();
        let limits = Limits::default();
        let mut now = 0;
        let mut attempts = 1;
        while let AttemptOutcome::Retry { at_ms } = next_step(
            &stripe,
            &limits,
            attempts,
            0,
            now,
            retry(Some(0)),
            Some(429),
        ) {
            assert_eq!(at_ms - now, 1000);
            now = at_ms;
            attempts += 1;
        }
        assert_eq!(attempts, stripe.max_attempts());
    }

    #[test]
    fn schedules_follow_the_policy_within_its_window() {
        let cloudkeep = RetryPolicy::parse("cloudkeep").unwrap();
        let limits = Limits::default();
        let step = |n, now| next_step(&cloudkeep, &limits, n, 0, now, retry(None), Some(503));
        assert_eq!(step(1, 0), AttemptOutcome::Retry { at_ms: 60_000 });
        assert_eq!(step(5, 0), AttemptOutcome::Retry { at_ms: 43_200_000 });
        assert!(matches!(step(6, 0), AttemptOutcome::Failed { .. }));
        let vaas = RetryPolicy::parse("vaas").unwrap();
        let late = next_step(&vaas, &limits, 2, 0, 24 * 3_600_000, retry(None), None);
        assert!(matches!(late, AttemptOutcome::Failed { reason } if reason.contains("window")));
        let final_answer = next_step(&vaas, &limits, 1, 0, 0, Verdict::Final, Some(410));
        assert!(
            matches!(final_answer, AttemptOutcome::Failed { reason } if reason.contains("410"))
        );
    }

    #[test]
    fn health_pauses_disables_and_recovers() {
        let rules = HealthRules::for_preset("cloudkeep");
        let failed = AttemptOutcome::Failed { reason: "x".into() };
        let mut h = TargetHealth::active("t", 0);
        for _ in 0..9 {
            h = after_attempt(&h, &rules, 1, Some(500), &failed);
        }
        assert_eq!(h.mode, TargetMode::Active);
        h = after_attempt(&h, &rules, 2, Some(500), &failed);
        assert_eq!(h.mode, TargetMode::Paused);
        assert_eq!(h.failing_since_ms, Some(1));

        let retrying = AttemptOutcome::Retry { at_ms: 0 };
        let mut h = TargetHealth::active("t", 0);
        h = after_attempt(&h, &rules, 0, None, &retrying);
        h = after_attempt(&h, &rules, 3 * 86_400_000 - 1, None, &retrying);
        assert_eq!(h.mode, TargetMode::Active);
        let ok = after_attempt(
            &h,
            &rules,
            3 * 86_400_000 - 1,
            Some(200),
            &AttemptOutcome::Delivered,
        );
        assert_eq!(ok.failing_since_ms, None);
        h = after_attempt(&h, &rules, 3 * 86_400_000, None, &retrying);
        assert_eq!(h.mode, TargetMode::Disabled);

        let gone = after_attempt(&TargetHealth::active("t", 0), &rules, 5, Some(410), &failed);
        assert_eq!(gone.mode, TargetMode::Disabled);
        assert_eq!(gone.reason.as_deref(), Some("the target answered 410 Gone"));
    }
}
