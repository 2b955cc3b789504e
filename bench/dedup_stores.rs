//! Dedup stores side by side: bytes per key held (RSS growth over N keys, each store in a fresh
//! process) and claim latency on an empty store against a 100 % full one (every claim then
//! evicts). The custom store always; moka and quick_cache with `--features bench-caches`, so CI
//! never builds them.
//!
//!     cargo run --release --example dedup_stores                                # custom only
//!     cargo run --release --features bench-caches --example dedup_stores        # all three
//!     cargo run --release --example dedup_stores -- latency custom 1000000      # one figure
//!
//! A claim is "read the key; if absent, mark it in flight", a promote "mark it delivered". The
//! custom store does both atomically under its shard lock with per-state TTLs; the general
//! caches are driven the closest way they allow (moka: `entry().or_insert()` and one TTL;
//! quick_cache: `get` then `insert`, not atomic, no TTL), which flatters them if anything.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use hookgate::dedup::{ClaimOutcome, ClaimToken, DedupKey, MemoryStore};

const DAY: Duration = Duration::from_secs(24 * 3600);
const IN_FLIGHT: Duration = Duration::from_secs(35);
#[cfg(feature = "bench-caches")]
const DELIVERED: u64 = 0;

/// The dedup operations every contender offers.
trait Contender {
    fn build(capacity: u64) -> Self;
    /// The claim's token if `key` was absent and is now claimed (`token` offered).
    fn claim(&self, key: u128, token: u64) -> Option<u64>;
    fn promote(&self, key: u128, token: u64);
    /// Lets a cache finish deferred bookkeeping before memory is read.
    fn settle(&self) {}
}

impl Contender for MemoryStore {
    fn build(capacity: u64) -> Self {
        MemoryStore::new(capacity)
    }
    fn claim(&self, key: u128, _token: u64) -> Option<u64> {
        match self.claim_now(DedupKey(key.to_le_bytes()), IN_FLIGHT) {
            ClaimOutcome::Claimed(t) => Some(u64::from(t.0)),
            _ => None,
        }
    }
    fn promote(&self, key: u128, token: u64) {
        let token = ClaimToken(u32::try_from(token).unwrap());
        self.complete_now(DedupKey(key.to_le_bytes()), token, DAY);
    }
}

#[cfg(feature = "bench-caches")]
impl Contender for moka::sync::Cache<u128, u64> {
    fn build(capacity: u64) -> Self {
        moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(DAY)
            .build()
    }
    fn claim(&self, key: u128, token: u64) -> Option<u64> {
        self.entry(key).or_insert(token).is_fresh().then_some(token)
    }
    fn promote(&self, key: u128, _token: u64) {
        self.insert(key, DELIVERED);
    }
    fn settle(&self) {
        self.run_pending_tasks();
    }
}

#[cfg(feature = "bench-caches")]
impl Contender for quick_cache::sync::Cache<u128, (u64, u64)> {
    fn build(capacity: u64) -> Self {
        quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap())
    }
    fn claim(&self, key: u128, token: u64) -> Option<u64> {
        // (token, expiry): the cache has no TTL of its own, so the value carries it.
        match self.get(&key) {
            Some(_) => None,
            None => {
                self.insert(key, (token, u64::MAX));
                Some(token)
            }
        }
    }
    fn promote(&self, key: u128, _token: u64) {
        self.insert(key, (DELIVERED, u64::MAX));
    }
}

/// The contenders this build knows.
fn contenders() -> Vec<&'static str> {
    let mut all = vec!["custom"];
    if cfg!(feature = "bench-caches") {
        all.extend(["moka", "quick_cache"]);
    }
    all
}

fn dispatch(store: &str, mode: &str, n: u64) {
    match store {
        "custom" => run::<MemoryStore>(mode, n),
        #[cfg(feature = "bench-caches")]
        "moka" => run::<moka::sync::Cache<u128, u64>>(mode, n),
        #[cfg(feature = "bench-caches")]
        "quick_cache" => run::<quick_cache::sync::Cache<u128, (u64, u64)>>(mode, n),
        other => {
            panic!("unknown store {other} (moka and quick_cache need --features bench-caches)")
        }
    }
}

/// A uniformly distributed 128-bit key (keys are digests in hookgate).
fn key(i: u64) -> u128 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(i.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1));
    let b = mix(a ^ i);
    (u128::from(a) << 64) | u128::from(b)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn run<S: Contender>(mode: &str, n: u64) {
    match mode {
        "memory" => {
            let before = rss_bytes();
            // Sized as hookgate is: capacity a tenth above what it holds.
            let store = S::build(n + n / 10);
            for i in 0..n {
                let token = store.claim(key(i), i + 1).expect("a fresh key");
                store.promote(key(i), token);
            }
            store.settle();
            let per_key = rss_bytes().saturating_sub(before) as f64 / n as f64;
            println!("RESULT bytes_per_key {per_key:.1}");
            black_box(&store);
        }
        "latency" => {
            // Best of three batches of fresh keys, per operation.
            let batch = (n / 5).max(1000);
            let keys = |first: u64| (first..first + batch).map(key).collect::<Vec<_>>();
            let mut tokens = Vec::with_capacity(batch as usize);
            let mut measure = |store: &S, first: u64| {
                let keys = keys(first);
                tokens.clear();
                let t = Instant::now();
                for (i, &k) in keys.iter().enumerate() {
                    tokens.push(store.claim(k, i as u64 + 1).expect("a fresh key"));
                }
                let claim = t.elapsed();
                for (&k, &token) in keys.iter().zip(&tokens) {
                    store.promote(k, token);
                }
                store.settle();
                let both = t.elapsed();
                (
                    claim.as_nanos() as f64 / batch as f64,
                    both.as_nanos() as f64 / batch as f64,
                )
            };
            let best = |runs: Vec<(f64, f64)>| {
                runs.into_iter()
                    .fold((f64::MAX, f64::MAX), |a, b| (a.0.min(b.0), a.1.min(b.1)))
            };
            // Empty: a store of capacity n that ends each batch a fifth full.
            let empty = best(
                (0..3)
                    .map(|r| measure(&S::build(n), (r + 10) * n * 4))
                    .collect(),
            );
            // Full: n delivered keys held, so every new claim evicts one.
            let store = S::build(n);
            for i in 0..n {
                let token = store.claim(key(i), i + 1).expect("a fresh key");
                store.promote(key(i), token);
            }
            store.settle();
            let full = best((0..3).map(|r| measure(&store, (r + 1) * n * 2)).collect());
            drop(store);
            // Held: the same n keys in a store of twice the capacity, so nothing is evicted.
            // Same table size as full, hence the same cache misses per lookup: full against
            // held is the cost of being at capacity alone, full against empty adds the cost
            // of a table that no longer fits the CPU's caches.
            let store = S::build(2 * n);
            for i in 0..n {
                let token = store.claim(key(i), i + 1).expect("a fresh key");
                store.promote(key(i), token);
            }
            store.settle();
            let held = best((0..3).map(|r| measure(&store, (r + 20) * n * 2)).collect());
            println!(
                "RESULT claim_empty {:.0} claim_full {:.0} pair_empty {:.0} pair_full {:.0} \
                 claim_held {:.0} pair_held {:.0}",
                empty.0, full.0, empty.1, full.1, held.0, held.1
            );
        }
        other => panic!("unknown mode {other}"),
    }
}

fn child(args: &[String]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .output()
        .expect("spawn");
    assert!(out.status.success(), "{args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("RESULT ").map(str::to_owned))
        .expect("a RESULT line")
}

fn field(result: &str, name: &str) -> f64 {
    let mut words = result.split_whitespace();
    while let Some(w) = words.next() {
        if w == name {
            return words.next().unwrap().parse().unwrap();
        }
    }
    panic!("{name} missing in {result}")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, store, n] = &args[..] {
        return dispatch(store, mode, n.parse().expect("a key count"));
    }
    let sizes = [1_000_000u64, 8_640_000];
    let latency_capacity = 1_000_000u64;
    println!(
        "| store | bytes/key at 1 M | bytes/key at 8.64 M | claim empty | claim held | claim full \
         | full/empty | full/held | claim+promote empty | held | full | full/empty | full/held |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for store in contenders() {
        let bytes: Vec<f64> = sizes
            .iter()
            .map(|n| {
                let r = child(&["memory".into(), store.into(), n.to_string()]);
                field(&r, "bytes_per_key")
            })
            .collect();
        let r = child(&["latency".into(), store.into(), latency_capacity.to_string()]);
        let (ce, cf) = (field(&r, "claim_empty"), field(&r, "claim_full"));
        let (pe, pf) = (field(&r, "pair_empty"), field(&r, "pair_full"));
        let (ch, ph) = (field(&r, "claim_held"), field(&r, "pair_held"));
        println!(
            "| {store} | {:.0} | {:.0} | {ce:.0} ns | {ch:.0} ns | {cf:.0} ns | {:.2}× | {:.2}× \
             | {pe:.0} ns | {ph:.0} ns | {pf:.0} ns | {:.2}× | {:.2}× |",
            bytes[0],
            bytes[1],
            cf / ce,
            cf / ch,
            pf / pe,
            pf / ph
        );
    }
    println!(
        "\nlatency: one thread, store capacity {latency_capacity}, best of 3 batches of {} fresh keys; \
         empty: a fresh store; held: {latency_capacity} keys in a store of twice the capacity; \
         full: {latency_capacity} keys at capacity (every claim evicts)",
        latency_capacity / 5
    );
}
