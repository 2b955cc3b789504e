//! Counters that every serving thread increments at once: the per-source series each forwarded
//! delivery updates (`outcome="forwarded"`, `class="2xx"`, the first secret's matches) and
//! their families. prometheus-client's `Counter` is one atomic: on several cores each request
//! moved its cache line from core to core. Here each thread adds to a slot of its own, on its
//! own cache lines; a scrape sums the slots. Exposed exactly as prometheus-client's `Counter`.
//!
//! Also home of the thread-to-shard assignment the latency histograms use.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Shards per series; threads beyond this share them round-robin.
pub const SHARDS: usize = 16;

/// This thread's shard, given out round-robin at its first update.
pub fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// One thread's count, alone on its cache line (and the adjacent one the prefetcher pairs
/// with it): 2 KiB per series.
#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter; clones share their count.
#[derive(Clone, Default)]
pub struct ShardedCounter {
    slots: Arc<[Slot; SHARDS]>,
}

impl ShardedCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.slots[shard_of_this_thread()].0.fetch_add(1, Relaxed);
    }

    /// The count: the sum of every thread's.
    pub fn get(&self) -> u64 {
        self.slots.iter().map(|slot| slot.0.load(Relaxed)).sum()
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.get()).finish()
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::registry::Registry;

    #[test]
    fn increments_from_many_threads_all_count() {
        let counter = ShardedCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..(SHARDS + 3) {
                let counter = counter.clone();
                scope.spawn(move || (0..1000).for_each(|_| counter.inc()));
            }
        });
        assert_eq!(counter.get(), 1000 * (SHARDS as u64 + 3));
    }

    #[test]
    fn exposed_as_the_library_counter_is() {
        fn render<
            M: EncodeMetric + TypedMetric + Clone + std::fmt::Debug + Send + Sync + 'static,
        >(
            family: &Family<Vec<(String, String)>, M>,
        ) -> String {
            let mut registry = Registry::with_prefix("hookgate");
            registry.register("requests", "Requests", family.clone());
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            text
        }
        let labels = vec![("source".to_string(), "ck".to_string())];
        let ours: Family<_, ShardedCounter> = Family::default();
        let library: Family<_, Counter> = Family::default();
        for _ in 0..3 {
            ours.get_or_create(&labels).inc();
            library.get_or_create(&labels).inc();
        }
        assert_eq!(render(&ours), render(&library));
        assert!(render(&ours).contains("hookgate_requests_total{source=\"ck\"} 3"));
    }
}
