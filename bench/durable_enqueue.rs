//! Durable enqueues: how many events per second the delivery engine acknowledges with every
//! acknowledgement committed and fsynced first (SQLite WAL, `synchronous=FULL`), and the
//! enqueue latency percentiles, one caller at a time and with concurrent callers (group
//! commit: enqueues that arrive during a commit share the next one).
//!
//!     cargo run --release --example durable_enqueue -- [data_dir] [events]
//!
//! The data_dir must be on the disk to measure (not tmpfs); it is emptied first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookgate::delivery::*;
use hookgate::sender::retry::RetryPolicy;
use hookgate::sender::Signer;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn event(id: String, body: &Bytes) -> NewDelivery {
    NewDelivery {
        target: "bench".into(),
        event_id: id,
        event_type: Some("bench.event".into()),
        body: body.clone(),
        headers: Vec::new(),
        // Never due during the run: only the enqueue path is measured.
        not_before_ms: Some(i64::MAX / 2),
    }
}

async fn run(engine: &Engine, label: &str, callers: usize, per_caller: usize, body: &Bytes) {
    let before = engine.stats().await.unwrap().commits.commits;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (engine, body, label) = (engine.clone(), body.clone(), label.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_caller);
            for n in 0..per_caller {
                let t = Instant::now();
                engine
                    .enqueue(event(format!("{label}-{c}-{n}"), &body))
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let commits = engine.stats().await.unwrap().commits.commits - before;
    println!(
        "{label:>12}: {callers:>3} callers, {:>6} events in {:>6.2} s = {:>7.0} durable enqueues/s; \
         latency p50 {:>6.2} ms, p99 {:>6.2} ms, max {:>6.2} ms; {:.1} events per commit",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        latencies.len() as f64 / commits.max(1) as f64,
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_dir()
                .unwrap()
                .join("target/durable-bench")
        });
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let target = TargetSpec {
        name: "bench".into(),
        url: "http://127.0.0.1:9/".parse().unwrap(),
        signer: Some(Signer::for_preset("corgea", Some("bench-secret")).unwrap()),
        retry: RetryPolicy::parse("corgea").unwrap(),
        health: HealthRules::default(),
        concurrency: 4,
        client: None,
        hold_when_stopped: false,
    };
    let engine = Engine::start(
        store,
        vec![target],
        EngineOptions::default(),
        EngineIo::real(),
    )
    .await
    .unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    println!("store: {} (1 KiB bodies, fsync per commit)", dir.display());
    run(&engine, "sequential", 1, events, &body).await;
    run(&engine, "concurrent", 16, events / 16, &body).await;
    run(&engine, "concurrent", 64, events / 16, &body).await;
    let stats = engine.stats().await.unwrap();
    println!(
        "commits: {}, mean {:.2} ms, max {:.2} ms",
        stats.commits.commits,
        stats.commits.total_secs / stats.commits.commits.max(1) as f64 * 1e3,
        stats.commits.max_secs * 1e3
    );
    engine.shutdown().await;
}
