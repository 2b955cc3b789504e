//! Queued vs sync inbound mode, side by side in one run: the real process (`app::run`) on
//! 127.0.0.1 with two Standard Webhooks sources on the same upstream, one `delivery = "sync"`
//! and one `delivery = "queue"` (every 202 after a commit with fsync: SQLite WAL,
//! `synchronous=FULL`). N concurrent clients, each on its own keep-alive connection, post
//! signed events with fresh ids for a bounded time; the figures are accepted deliveries per
//! second (2xx answers) and the accept latency percentiles as the sender sees them.
//!
//!     cargo run --release --example queued_vs_sync -- [data_dir] [seconds] [clients,…]
//!
//! The data_dir must be on the disk to measure (not tmpfs); it is emptied first. The queued
//! source's engine delivers to the same upstream during the run, as it would in production.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

const KEY: &[u8] = b"bench-key-0123456789abcdefghijkl";

/// An upstream that answers 200 at once.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    tokio::spawn(hookgate::server::serve(
        listener,
        hookgate::server::Listener::default(),
        service,
        std::future::pending(),
    ));
    addr
}

/// Standard Webhooks headers for event `id`: `v1,base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))`.
fn signed(id: &str, body: &[u8]) -> [(&'static str, String); 3] {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", format!("v1,{signature}")),
    ]
}

struct Figures {
    accepted: usize,
    refused: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

async fn drive(gateway: SocketAddr, path: &str, clients: usize, run_for: Duration) -> Figures {
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let (mut accepted, mut refused, mut latencies) = (0, 0, Vec::new());
            let body = Bytes::from(format!(
                r#"{{"type":"bench.event","pad":"{}"}}"#,
                "x".repeat(900)
            ));
            for n in 0.. {
                if Instant::now() >= deadline {
                    break;
                }
                let id = format!("msg_{path}_{c}_{n}").replace('/', "_");
                let mut request = http::Request::post(format!("http://{gateway}{path}"))
                    .header("content-type", "application/json");
                for (name, value) in signed(&id, &body) {
                    request = request.header(name, value);
                }
                let request = request.body(Full::new(body.clone())).unwrap();
                let sent = Instant::now();
                let answer = client.request(request).await.unwrap();
                let ok = answer.status().is_success();
                let _ = answer.into_body().collect().await;
                latencies.push(sent.elapsed());
                if ok {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
            (accepted, refused, latencies)
        }));
    }
    let mut figures = Figures {
        accepted: 0,
        refused: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (accepted, refused, latencies) = task.await.unwrap();
        figures.accepted += accepted;
        figures.refused += refused;
        figures.latencies.extend(latencies);
    }
    figures.elapsed = started.elapsed();
    figures.latencies.sort();
    figures
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().unwrap().join("target/queued-bench"));
    let seconds: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let clients: Vec<usize> = args
        .next()
        .map(|list| list.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 64]);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let upstream = upstream().await;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    );
    let source = |name: &str, mode: &str| {
        format!(
            "[[source]]\nname = \"{name}\"\npath = \"/{name}\"\npreset = \"standard-webhooks\"\n\
             upstream = \"http://{upstream}/in\"\nsecrets = [{{ value = \"{secret}\" }}]\n\
             delivery = \"{mode}\"\n"
        )
    };
    let config = format!(
        "{}{}[delivery]\ndata_dir = \"{}\"\n[limits]\nmax_concurrent_requests = 4096\n",
        source("sync", "sync"),
        source("queue", "queue"),
        dir.join("store").display()
    );
    std::fs::write(dir.join("bench.toml"), config).unwrap();
    let origin = hookgate::app::ConfigOrigin::File(dir.join("bench.toml"));
    let loaded = origin.load().unwrap();
    let listeners =
        hookgate::app::Listeners::bind(&loaded, Some("127.0.0.1:0".parse().unwrap()), None)
            .await
            .unwrap();
    let gateway = listeners.gateway.local_addr().unwrap();
    tokio::spawn(hookgate::app::run(
        origin,
        loaded,
        listeners,
        hookgate::app::Options::default(),
        std::future::pending(),
    ));
    println!(
        "store: {} (fsync per commit); {seconds} s per run; 1 KiB bodies; upstream answers 200 at once",
        dir.join("store").display()
    );
    println!(
        "{:<7} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "mode", "clients", "accepts/s", "p50", "p99", "max", "refused"
    );
    for &n in &clients {
        for (mode, path) in [("sync", "/sync"), ("queue", "/queue")] {
            let f = drive(gateway, path, n, Duration::from_secs(seconds)).await;
            println!(
                "{:<7} {:>7} {:>10.0} {:>9.2?} {:>9.2?} {:>9.2?} {:>8}",
                mode,
                n,
                f.accepted as f64 / f.elapsed.as_secs_f64(),
                percentile(&f.latencies, 0.50),
                percentile(&f.latencies, 0.99),
                f.latencies.last().copied().unwrap_or_default(),
                f.refused
            );
        }
    }
}
