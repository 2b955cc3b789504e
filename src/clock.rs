//! Time as the gateway sees it: wall-clock milliseconds (for freshness windows) and monotonic
//! milliseconds since start (for dedup expiries). Both are `u64`/`i64` milliseconds, so neither
//! runs out (a `u64` of milliseconds lasts 584 million years).
//!
//! Injected rather than read directly, so tests can put the gateway at any uptime (past the
//! 497 days where a `u32` of 10 ms ticks would wrap) or at the very end of a freshness window
//! without sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> i64;
    /// Milliseconds since an arbitrary fixed start; never goes backwards.
    fn uptime_ms(&self) -> u64;
}

/// The shared clock handle every component holds.
pub type SharedClock = Arc<dyn Clock>;

/// The real clocks: the system's wall clock and a monotonic clock started at construction.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }

    /// A shared real clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn uptime_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to (tests, simulations). Both readings advance together.
#[derive(Debug, Default)]
pub struct ManualClock {
    wall: AtomicI64,
    uptime: AtomicU64,
}

impl ManualClock {
    /// A clock reading `wall_ms` on the wall and `uptime` since start.
    pub fn new(wall_ms: i64, uptime: Duration) -> Arc<Self> {
        Arc::new(ManualClock {
            wall: AtomicI64::new(wall_ms),
            uptime: AtomicU64::new(u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    /// A clock at the real current wall time, `uptime` after start.
    pub fn starting_now(uptime: Duration) -> Arc<Self> {
        Self::new(SystemClock::new().wall_ms(), uptime)
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.uptime.fetch_add(ms, Ordering::SeqCst);
        self.wall
            .fetch_add(i64::try_from(ms).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn uptime_ms(&self) -> u64 {
        self.uptime.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_readings_together() {
        let clock = ManualClock::new(1_000, Duration::from_secs(1));
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.wall_ms(), 1_250);
        assert_eq!(clock.uptime_ms(), 1_250);
    }

    #[test]
    fn system_clock_is_monotonic_and_near_the_wall() {
        let clock = SystemClock::new();
        let a = clock.uptime_ms();
        let b = clock.uptime_ms();
        assert!(b >= a);
        assert!(clock.wall_ms() > 1_600_000_000_000);
    }
}
