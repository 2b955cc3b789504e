//! Soak with faults: drives the gateway on 127.0.0.1 for a while with many senders that retry
//! as providers do, sends 20 % of the events twice (a provider re-sending after a lost
//! acknowledgement), and puts an upstream behind it that injects 5xx answers and timeouts.
//! At the end every event must have been processed by the upstream exactly once: 0 lost,
//! 0 double-forwarded. Exits non-zero otherwise.
//!
//! A second phase makes the upstream slower than the senders' own timeouts: senders give up on
//! an attempt after 1 s while 15 % of upstream answers take 1.5 s (and are processed), and the
//! gateway's upstream timeout is 3 s. A sender's retry then arrives while its first attempt is
//! still in flight: it waits for that attempt's outcome (in-flight wait 900 ms) and is answered
//! 200 duplicate, or forwarded if the first attempt failed, or 503 (retried) if still pending.
//!
//!     cargo run --release --example soak -- [SECONDS] [SENDERS]   (SECONDS per phase)
//!
//! The upstream "processes" an event only when it answers 2xx; an injected timeout sleeps past
//! the gateway's upstream timeout and then answers 500 (not processed), so a retry after it is
//! legitimate and must be forwarded again.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookgate::sender::deliver::{AttemptResult, DeliveryOutcome, Sender, TokioSleeper};
use hookgate::sender::retry::RetryPolicy;
use hookgate::sender::{now_secs, sample, Signer};
use hookgate::{config, serve, Gateway};
use http_body_util::{BodyExt, Full};

const SECRET: &str = "soak-secret";
/// Share of upstream answers that are injected 5xx.
const FAIL_5XX: f64 = 0.10;
/// Share of upstream answers that are injected timeouts.
const FAIL_TIMEOUT: f64 = 0.03;
/// Share of events sent twice.
const DUPLICATES: f64 = 0.20;
/// Slow phase: share of upstream answers slower (1.5 s) than the senders' timeout (1 s).
const SLOW: f64 = 0.15;

#[derive(Default)]
struct Ledger {
    /// Event id → times the upstream processed it (answered 2xx).
    processed: Mutex<HashMap<String, u32>>,
    upstream_requests: AtomicU64,
    injected_5xx: AtomicU64,
    injected_timeouts: AtomicU64,
    slow: AtomicU64,
}

async fn fault_upstream(ledger: Arc<Ledger>, slow: bool) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let ledger = ledger.clone();
        async move {
            ledger.upstream_requests.fetch_add(1, Ordering::Relaxed);
            let id = req
                .headers()
                .get("x-hookgate-event-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let _ = req.into_body().collect().await;
            let roll = fastrand::f64();
            // The slow phase's 5xx share comes after its slow share.
            let fail_below = FAIL_5XX + if slow { SLOW } else { 0.0 };
            let status = if slow && roll < SLOW {
                // Slower than the sender's timeout, but processed.
                ledger.slow.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                *ledger.processed.lock().unwrap().entry(id).or_default() += 1;
                200
            } else if roll < fail_below {
                ledger.injected_5xx.fetch_add(1, Ordering::Relaxed);
                500
            } else if !slow && roll < FAIL_5XX + FAIL_TIMEOUT {
                ledger.injected_timeouts.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                500
            } else {
                *ledger.processed.lock().unwrap().entry(id).or_default() += 1;
                200
            };
            let mut response = http::Response::new(Full::new(Bytes::new()));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    tokio::spawn(hookgate::server::run(
        listener,
        service,
        std::future::pending(),
    ));
    addr
}

#[derive(Default)]
struct Senders {
    events: AtomicU64,
    duplicates_sent: AtomicU64,
    attempts: AtomicU64,
    delivered: AtomicU64,
    not_delivered: AtomicU64,
    statuses: Mutex<HashMap<String, u64>>,
}

/// One phase's settings.
struct Phase {
    name: &'static str,
    /// The slow upstream (answers slower than the senders' timeout).
    slow: bool,
    /// Extra source settings.
    source_extra: &'static str,
    /// The senders' per-attempt timeout.
    sender_timeout: Duration,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);
    let senders: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    let phases = [
        Phase {
            name: "faults",
            slow: false,
            source_extra: "upstream_timeout = \"1s\"",
            sender_timeout: Duration::from_secs(30),
        },
        Phase {
            name: "upstream slower than the senders' timeouts",
            slow: true,
            source_extra: "upstream_timeout = \"3s\"\ndedup = { inflight_wait = \"900ms\" }",
            sender_timeout: Duration::from_secs(1),
        },
    ];
    let mut ok = true;
    for phase in &phases {
        ok &= run_phase(phase, seconds, senders).await;
    }
    println!("{}", if ok { "PASS" } else { "FAIL" });
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run_phase(phase: &Phase, seconds: u64, senders: usize) -> bool {
    let ledger = Arc::new(Ledger::default());
    let upstream = fault_upstream(ledger.clone(), phase.slow).await;
    let text = format!(
        "[[source]]\nname = \"soak\"\npath = \"/hooks/soak\"\npreset = \"cloudkeep\"\n\
         upstream = \"http://{upstream}/soak\"\n{}\n\
         secrets = [{{ value = \"{SECRET}\" }}]\n",
        phase.source_extra
    );
    let config = config::parse(
        &text,
        Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("soak configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        Gateway::new(&config),
        std::future::pending(),
    ));

    // CloudKeep's schedule, scaled from minutes to milliseconds, with enough attempts that a
    // sender gives up only if something is really broken.
    let mut policy = RetryPolicy::parse(
        "custom:10ms,50ms,100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
    )
    .unwrap();
    policy.timeout = phase.sender_timeout;
    let policy = Arc::new(policy);
    let signer = Arc::new(Signer::for_preset("cloudkeep", Some(SECRET)).unwrap());
    let url: http::Uri = format!("http://{gateway_addr}/hooks/soak").parse().unwrap();
    let stats = Arc::new(Senders::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    println!("== phase: {}", phase.name);
    println!("soak: {seconds} s, {senders} senders, gateway {gateway_addr}, upstream {upstream}");
    if phase.slow {
        println!(
            "faults: {:.0} % answers after 1.5 s (sender timeout {:?}), {:.0} % 5xx; {:.0} % of events sent twice",
            SLOW * 100.0,
            phase.sender_timeout,
            FAIL_5XX * 100.0,
            DUPLICATES * 100.0
        );
    } else {
        println!(
            "faults: {:.0} % 5xx, {:.0} % timeouts; {:.0} % of events sent twice",
            FAIL_5XX * 100.0,
            FAIL_TIMEOUT * 100.0,
            DUPLICATES * 100.0
        );
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..senders {
        let (stats, signer, policy, url) =
            (stats.clone(), signer.clone(), policy.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let sender = Sender::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let id = format!("evt_{worker}_{n}");
                let event = sample::event("cloudkeep", &id, now_secs(), None);
                stats.events.fetch_add(1, Ordering::Relaxed);
                let copies = if fastrand::f64() < DUPLICATES { 2 } else { 1 };
                if copies == 2 {
                    stats.duplicates_sent.fetch_add(1, Ordering::Relaxed);
                }
                // A duplicated event's two copies race each other, as when a provider re-sends
                // while the first attempt is still in flight.
                let deliver = || {
                    sender.deliver(&url, &signer, &event, &policy, &TokioSleeper, |attempt| {
                        stats.attempts.fetch_add(1, Ordering::Relaxed);
                        let key = match &attempt.result {
                            AttemptResult::Status(s) => s.to_string(),
                            AttemptResult::Timeout => "timeout".into(),
                            AttemptResult::Error(_) => "error".into(),
                        };
                        *stats.statuses.lock().unwrap().entry(key).or_default() += 1;
                    })
                };
                let (first, second) = if copies == 2 {
                    let (a, b) = tokio::join!(deliver(), deliver());
                    (a, Some(b))
                } else {
                    (deliver().await, None)
                };
                // A copy that gave up (its own timeout, or a 503 it stopped retrying) yields to the
                // copy in flight, which keeps retrying.
                let any_delivered = first.outcome == DeliveryOutcome::Delivered
                    || second.is_some_and(|r| r.outcome == DeliveryOutcome::Delivered);
                if any_delivered {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.not_delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let injected timeouts still sleeping in the upstream finish.
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let processed = ledger.processed.lock().unwrap();
    let events = stats.events.load(Ordering::Relaxed);
    let once = processed.values().filter(|c| **c == 1).count() as u64;
    let double = processed.values().filter(|c| **c > 1).count() as u64;
    let lost = events - once - double;
    let attempts = stats.attempts.load(Ordering::Relaxed);
    let mut statuses: Vec<_> = stats.statuses.lock().unwrap().clone().into_iter().collect();
    statuses.sort();
    println!("events sent:                 {events}");
    println!(
        "duplicate copies sent:       {}",
        stats.duplicates_sent.load(Ordering::Relaxed)
    );
    println!(
        "attempts (all copies):       {attempts} ({:.0}/s)",
        attempts as f64 / elapsed
    );
    println!("answers seen by senders:     {statuses:?}");
    println!(
        "upstream requests:           {}",
        ledger.upstream_requests.load(Ordering::Relaxed)
    );
    println!(
        "injected 5xx / timeouts / slow: {} / {} / {}",
        ledger.injected_5xx.load(Ordering::Relaxed),
        ledger.injected_timeouts.load(Ordering::Relaxed),
        ledger.slow.load(Ordering::Relaxed)
    );
    println!(
        "events acknowledged to senders: {}",
        stats.delivered.load(Ordering::Relaxed)
    );
    println!(
        "events given up by senders:  {}",
        stats.not_delivered.load(Ordering::Relaxed)
    );
    println!("processed exactly once:      {once}");
    println!("lost:                        {lost}");
    println!("double-forwarded:            {double}");
    let ok = lost == 0 && double == 0 && stats.not_delivered.load(Ordering::Relaxed) == 0;
    println!("phase {}", if ok { "passed" } else { "FAILED" });
    ok
}
