//! Dedup memory: fills the in-memory store with N delivered keys and reports the resident
//! memory it took per entry (RSS delta / N).
//!
//!     cargo run --release --example dedup_memory -- 1000000

use std::time::{Duration, Instant};

use hookgate::dedup::{ClaimOutcome, DedupKey, DedupStore, MemoryStore};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let scope = [7u8; 16];
    let before = rss_bytes();
    let store = MemoryStore::new(n + n / 10);
    let started = Instant::now();
    let ttl = Duration::from_secs(24 * 3600);
    for i in 0..n {
        let key = DedupKey::for_id(&scope, format!("evt_{i:012}").as_bytes());
        let ClaimOutcome::Claimed(token) = store.claim(key, Duration::from_secs(35)).await.unwrap()
        else {
            panic!("fresh key {i} was not claimable");
        };
        store.complete(key, token, ttl).await.unwrap();
    }
    let entries = store.len();
    let after = rss_bytes();
    let per_entry = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "dedup memory: {n} keys inserted ({entries} held) in {:.1} s; RSS {:.1} MiB -> {:.1} MiB; {per_entry:.0} bytes per entry",
        started.elapsed().as_secs_f64(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    let day = 86_400.0 * 100.0;
    println!(
        "projection: a 24 h window at 100 events/s ({day:.0} keys) needs {:.2} GiB",
        per_entry * day / 1073741824.0
    );
}
