//! A latency histogram that every serving thread updates at once: the request and upstream
//! latency series of each source. prometheus-client's `Histogram` keeps its buckets behind one
//! mutex, so on several cores each request's two observations queued on the same lock and
//! moved its cache line between cores. Here each thread adds to a shard of its own (atomic
//! counters on separate cache lines); a scrape sums the shards. The exposition is the same as
//! prometheus-client's with `exponential_buckets(0.0001, 2.0, 20)`: 100 µs to about 52 s.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use crate::sharded::{shard_of_this_thread, SHARDS};

/// Finite buckets: upper bounds of 100 µs × 2^i.
const BUCKETS: usize = 20;
/// The first upper bound, in nanoseconds.
const FIRST_BOUND_NS: u64 = 100_000;

/// One thread's counters: the finite buckets, then +Inf; the sum in whole microseconds (each
/// observation rounded), which a shard fills only after centuries even at 10,000 requests in
/// flight all the time (by Little's law the sum grows by the requests in flight, in seconds
/// per second; nanoseconds would last under a year at that load). Aligned so that no two
/// shards share a cache line (or the adjacent line the prefetcher pairs with it).
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    buckets: [AtomicU64; BUCKETS + 1],
    sum_us: AtomicU64,
}

/// A latency histogram; clones share their counters.
#[derive(Clone, Default)]
pub struct LatencyHistogram {
    shards: Arc<[Shard; SHARDS]>,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sum, count, _) = self.snapshot();
        f.debug_struct("LatencyHistogram")
            .field("count", &count)
            .field("sum", &sum)
            .finish()
    }
}

/// The bucket of an observation: the first bound it does not exceed, else +Inf.
fn bucket_of(ns: u64) -> usize {
    (0..BUCKETS)
        .find(|&i| ns <= FIRST_BOUND_NS << i)
        .unwrap_or(BUCKETS)
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let shard = &self.shards[shard_of_this_thread()];
        shard.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        shard
            .sum_us
            .fetch_add(ns.saturating_add(500) / 1000, Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts with their upper bounds; +Inf as infinity,
    /// as prometheus-client encodes it).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = (0..=BUCKETS)
            .map(|i| {
                let bound = if i == BUCKETS {
                    f64::INFINITY
                } else {
                    // As prometheus-client's `exponential_buckets` computes them.
                    0.0001 * 2f64.powf(i as f64)
                };
                (bound, 0)
            })
            .collect();
        // Summed as floating point, as prometheus-client keeps its sum: it never wraps.
        let mut sum_us = 0f64;
        for shard in self.shards.iter() {
            for (i, counter) in shard.buckets.iter().enumerate() {
                buckets[i].1 += counter.load(Relaxed);
            }
            sum_us += shard.sum_us.load(Relaxed) as f64;
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        (sum_us / 1e6, count, buckets)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
    use prometheus_client::registry::Registry;

    fn exposition(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn exposes_what_the_library_histogram_exposes_for_the_same_observations() {
        // Bucket edges included (exactly 100 µs, exactly 0.8 ms), past the last bound, zero.
        let micros = [0, 50, 100, 101, 800, 801, 3_000, 250_000, 60_000_000, 1_000];
        let ours = LatencyHistogram::default();
        let theirs = Histogram::new(exponential_buckets(0.0001, 2.0, 20));
        // From several threads, so several shards are summed.
        std::thread::scope(|scope| {
            for chunk in micros.chunks(3) {
                let ours = ours.clone();
                scope.spawn(move || {
                    for &us in chunk {
                        ours.observe(Duration::from_micros(us));
                    }
                });
            }
        });
        for &us in &micros {
            theirs.observe(Duration::from_micros(us).as_secs_f64());
        }
        let a = exposition(|r| r.register("latency", "help", ours.clone()));
        let b = exposition(|r| r.register("latency", "help", theirs));
        // Same lines; the sums may differ in the last digit (microseconds against f64 adds).
        let without_sum = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with("latency_sum"))
                .map(String::from)
                .collect()
        };
        assert_eq!(without_sum(&a), without_sum(&b));
        assert!(a.contains("latency_count 10"), "{a}");
        let (sum, count, _) = ours.snapshot();
        assert_eq!(count, 10);
        let expected: u64 = micros.iter().sum();
        assert!((sum - expected as f64 / 1e6).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn the_sum_rounds_each_observation_to_the_nearest_microsecond() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_nanos(1_499));
        histogram.observe(Duration::from_nanos(1_500));
        histogram.observe(Duration::from_nanos(400));
        let (sum, count, _) = histogram.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 3e-6).abs() < 1e-12, "{sum}");
    }

    #[test]
    fn each_bound_holds_what_does_not_exceed_it() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(FIRST_BOUND_NS), 0);
        assert_eq!(bucket_of(FIRST_BOUND_NS + 1), 1);
        assert_eq!(bucket_of(FIRST_BOUND_NS << 19), 19);
        assert_eq!(bucket_of((FIRST_BOUND_NS << 19) + 1), BUCKETS);
        assert_eq!(bucket_of(u64::MAX), BUCKETS);
    }
}
