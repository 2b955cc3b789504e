//! `[server] runtime` through the real binary: the default runs one serving thread per CPU and
//! `shared` none; connections accepted by several serving threads are all served, each
//! delivery reaches the upstream exactly once (on both runtimes), the connection cap is the
//! listener's (not a thread's), a burst of new connections is spread over the serving
//! threads, an HTTP/2 connection's concurrent streams share its one copy
//! of the service stack, silent and slow-loris connections are closed by their deadlines, a request in flight at SIGTERM still finishes, and a runtime name that does not
//! exist is refused at start.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn per_core_config(upstream: &str, extra: &str) -> String {
    runtime_config("runtime = \"per-core\"", upstream, extra)
}

/// A CloudKeep source with `runtime_line` in `[server]` (empty: the default runtime).
fn runtime_config(runtime_line: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[server]\n{runtime_line}\n{extra}\n[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\n\
         preset = \"cloudkeep\"\nupstream = \"{upstream}/ck\"\nsecrets = [{{ file = \"ck.secret\" }}]\n"
    )
}

fn start(name: &str, config: &str) -> Server {
    start_with_env(name, config, &[])
}

fn start_with_env(name: &str, config: &str, env: &[(&str, &str)]) -> Server {
    let dir = temp_dir(name);
    std::fs::write(dir.join("ck.secret"), "per-core-secret").unwrap();
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    Server::start(&dir, &["--config", "gw.toml"], env)
}

/// A signed CloudKeep delivery of event `id` to the source at `server`.
fn signed_delivery(server: std::net::SocketAddr, id: &str) -> http::Request<Full<Bytes>> {
    let (headers, body) = sign::cloudkeep_event("per-core-secret", id, now_secs());
    let mut request = http::Request::post(format!("http://{server}/hooks/ck"));
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request.body(Full::new(Bytes::from(body))).unwrap()
}

/// Sends `count` deliveries one after the other on one keep-alive connection.
async fn deliveries_on_one_connection(server: std::net::SocketAddr, client: usize, count: usize) {
    let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http();
    for n in 0..count {
        let response = http
            .request(signed_delivery(server, &format!("evt_{client}_{n}")))
            .await
            .expect("the gateway answered");
        let status = response.status();
        let _ = response.into_body().collect().await;
        assert!(
            status.is_success(),
            "client {client}, delivery {n}: {status}"
        );
    }
}

/// The serving threads of their own a running hookgate has (`hookgate-serve-N`, which the
/// kernel's 15-byte thread names cut to `hookgate-serve-`).
/// The event ids the upstream received, without repeats.
fn event_ids(received: &[common::Recorded]) -> HashSet<String> {
    received
        .iter()
        .map(|r| {
            r.headers["x-hookgate-event-id"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn serving_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("hookgate-serve"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_runtime_serves_on_one_thread_per_cpu_and_shared_on_none() {
    // The test runs with the affinity the server inherits, so it sees the same CPUs.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let upstream = Upstream::start().await;
    for (name, line, expected) in [
        ("runtime-default", "", cpus),
        ("runtime-shared", "runtime = \"shared\"", 0),
    ] {
        let server = start(name, &runtime_config(line, &upstream.url(), ""));
        let (headers, body) = sign::cloudkeep_event("per-core-secret", name, now_secs());
        let answer = send(server.addr, "POST", "/hooks/ck", &headers, &body).await;
        assert!(answer.status.is_success(), "{name}: {}", answer.status);
        // Served, so the threads are starting or started: each shows up within the bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while serving_threads(server.pid()) != expected && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(serving_threads(server.pid()), expected, "{name}");
        let (code, log) = server.stop();
        assert_eq!(code, Some(0), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_connections_are_served_and_each_delivery_arrives_once() {
    for line in ["runtime = \"per-core\"", "runtime = \"shared\""] {
        concurrent_deliveries_arrive_once(line).await;
    }
}

async fn concurrent_deliveries_arrive_once(runtime_line: &str) {
    let upstream = Upstream::start().await;
    let server = start(
        "per-core-many",
        &runtime_config(runtime_line, &upstream.url(), ""),
    );
    let (clients, each) = (8, 25);
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(deliveries_on_one_connection(server.addr, c, each)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let received = upstream
        .wait_for_requests(clients * each, Duration::from_secs(20))
        .await;
    assert_eq!(received.len(), clients * each);
    let ids = event_ids(&received);
    assert_eq!(
        ids.len(),
        clients * each,
        "{runtime_line}: an event reached the upstream twice"
    );
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_http2_streams_on_one_connection_each_arrive_once() {
    // Each connection calls its own copy of the stack in place; HTTP/2 streams are calls made
    // while earlier ones are still in flight on the same connection.
    let upstream = Upstream::start().await;
    let streams = 20;
    upstream.set_default(Reply::delayed(200, Duration::from_millis(200)));
    let server = start("per-core-h2", &per_core_config(&upstream.url(), ""));
    let io =
        hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    let (sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(connection);
    let tasks: Vec<_> = (0..streams)
        .map(|n| {
            let mut sender = sender.clone();
            let addr = server.addr;
            tokio::spawn(async move {
                let request = signed_delivery(addr, &format!("evt_h2_{n}"));
                let response =
                    tokio::time::timeout(Duration::from_secs(20), sender.send_request(request))
                        .await
                        .expect("answered in time")
                        .expect("the stream was answered");
                response.status()
            })
        })
        .collect();
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status.is_success(), "{status}");
    }
    let received = upstream
        .wait_for_requests(streams, Duration::from_secs(20))
        .await;
    let ids = event_ids(&received);
    assert_eq!(ids.len(), streams, "each stream's delivery arrived once");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_connections_is_spread_over_the_serving_threads() {
    // Each accepted connection is logged with its thread at debug level; no thread may hold
    // more than its share (an equal part plus one) plus one more for a simultaneous accept.
    // (The imbalance this prevents, one thread of two serving all of wrk's connections in
    // about half the runs, shows under wrk: `bench/balance.py`. This client's burst did not
    // reproduce it on the 2-core VM.)
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let upstream = Upstream::start().await;
    let mut server = start_with_env(
        "per-core-burst",
        &per_core_config(&upstream.url(), ""),
        &[("RUST_LOG", "info,hookgate::server=debug")],
    );
    // "listening" is logged before the serving threads start; a burst sent earlier would
    // find one thread accepting (the others may take more than the 50 ms a thread defers).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while serving_threads(server.pid()) < threads && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        serving_threads(server.pid()),
        threads,
        "serving threads started"
    );
    let count = 10 * threads;
    // All connections at once, each busy at once (as a load generator's are): a thread
    // serving requests polls the listener between them while an idle one must be woken, so
    // without a share the busy thread kept winning the accepts.
    let addr = server.addr;
    let streams = futures_util::future::join_all((0..count).map(|_| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        for _ in 0..20 {
            stream
                .write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
                .await
                .expect("answered in time")
                .unwrap();
            assert!(answer[..n].starts_with(b"HTTP/1.1 404"));
        }
        stream
    }))
    .await;
    let mut per_thread = vec![0usize; threads];
    for _ in 0..count {
        let line = server.wait_for("accepted a connection");
        let index: usize = line
            .split("serving_thread=")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no thread in {line}"));
        per_thread[index] += 1;
    }
    // An equal part plus one, plus one more for two threads accepting at the same moment.
    let bound = count / threads + 2;
    assert!(
        per_thread.iter().all(|&n| n <= bound),
        "connections per thread {per_thread:?}, at most {bound} each"
    );
    drop(streams);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_cap_is_shared_by_every_serving_thread() {
    let upstream = Upstream::start().await;
    let server = start(
        "per-core-cap",
        &per_core_config(&upstream.url(), "[limits]\nmax_connections = 2\n"),
    );
    // Two connections, each proven open by a complete exchange.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 404"), "{:?}", &buf[..n]);
        open.push(stream);
    }
    // The third is closed at once, whichever thread accepts it.
    let mut third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let _ = third
        .write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    drop(open);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_half_sent_connections_are_closed_on_every_serving_thread() {
    let upstream = Upstream::start().await;
    let server = start(
        "per-core-idle",
        &per_core_config(
            &upstream.url(),
            "[limits]\nfirst_request_timeout = \"1s\"\nheader_read_timeout = \"1s\"\n",
        ),
    );
    // Several of each, so both threads get some: a connection that never speaks, and one
    // that stops in the middle of a request head (slow loris).
    let mut attackers = Vec::new();
    for n in 0..6 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        if n % 2 == 1 {
            stream
                .write_all(b"POST /hooks/ck HTTP/1.1\r\nhost: x\r\nx-slow: ")
                .await
                .unwrap();
        }
        attackers.push(stream);
    }
    for (n, stream) in attackers.iter_mut().enumerate() {
        let mut buf = [0u8; 512];
        // Closed by the server well within this bound (the deadlines are 1 s); an answer
        // before the close (408 for the slow head) is allowed.
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "attacker {n} was never disconnected");
    }
    // The gateway still serves.
    let (headers, body) = sign::cloudkeep_event("per-core-secret", "evt_after", now_secs());
    let answer = send(server.addr, "POST", "/hooks/ck", &headers, &body).await;
    assert!(answer.status.is_success(), "{}", answer.status);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_at_sigterm_still_finishes() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_secs(2))]);
    let server = start("per-core-drain", &per_core_config(&upstream.url(), ""));
    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        let (headers, body) = sign::cloudkeep_event("per-core-secret", "evt_drain", now_secs());
        send(addr, "POST", "/hooks/ck", &headers, &body).await
    });
    upstream.wait_for_requests(1, Duration::from_secs(10)).await;
    let (code, log) = server.stop();
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "{log}");
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn an_unknown_runtime_is_refused_with_the_key() {
    let dir = temp_dir("per-core-bad");
    std::fs::write(dir.join("ck.secret"), "per-core-secret").unwrap();
    let config = per_core_config("http://127.0.0.1:9", "").replace("per-core", "turbo");
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let out = hookgate()
        .current_dir(&dir)
        .args(["check-config", "gw.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.runtime"), "{stderr}");
    assert!(stderr.contains("per-core"), "{stderr}");
}
