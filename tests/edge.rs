//! The gateway's edge as an attacker meets it, on raw sockets against the real server:
//! silent and idle connections (HTTP/1.1 and HTTP/2) closed by their deadlines, connections
//! past the cap refused at once and counted, unauthenticated requests answered from their head
//! without a byte of body, memory under a flood of unauthenticated uploads bounded by the body
//! budget (the real binary, its peak RSS read from /proc), and what the upstream receives
//! limited to what was verified.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "edge-secret";
const TOKEN: &str = "edge-token-0123456789";

fn config(limits: &str) -> String {
    format!(
        r#"
[limits]
{limits}

[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "{{upstream}}/ck"
secrets = [{{ value = "{SECRET}" }}]

[[source]]
name = "allow"
path = "/hooks/allow"
preset = "cloudkeep"
upstream = "{{upstream}}/allow"
secrets = [{{ value = "{SECRET}" }}]
allow_ips = ["192.0.2.1"]

[[source]]
name = "tok"
path = "/hooks/tok"
preset = "certifyclouds"
upstream = "{{upstream}}/tok"
token = {{ prefix = "Bearer ", secrets = [{{ value = "{TOKEN}" }}] }}
"#
    )
}

/// Reads until the server closes the connection; returns how long that took, or `None` when
/// it was still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

fn render(gateway: &TestGateway) -> String {
    gateway.gateway.metrics().render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_by_their_deadlines() {
    let upstream = Upstream::start().await;
    let limits =
        "first_request_timeout = \"300ms\"\nidle_timeout = \"400ms\"\nheader_read_timeout = \"5s\"";
    let gateway = TestGateway::start(&config(limits), &upstream, &[]).await;

    // A connection that never says anything.
    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    let took = took.expect("a silent connection is closed");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");

    // The start of the HTTP/2 preface, then silence (stuck in protocol detection).
    let mut preface = TcpStream::connect(gateway.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP").await.unwrap();
    assert!(closed_within(&mut preface, Duration::from_secs(5))
        .await
        .is_some());

    // HTTP/2 with prior knowledge: a complete handshake and no request.
    let io = TokioIo::new(TcpStream::connect(gateway.addr).await.unwrap());
    let (_sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), io)
            .await
            .unwrap();
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(
        ended.is_ok(),
        "an HTTP/2 connection without requests is closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    // HTTP/2 that made one request and then idles (it answers pings all the while).
    let io = TokioIo::new(TcpStream::connect(gateway.addr).await.unwrap());
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), io)
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/nowhere", gateway.addr))
        .body(Empty::new())
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 404);
    let answered = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection is closed");
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(350), "closed after {idle:?}");

    // HTTP/1.1 keep-alive: one request, then silence.
    let mut keep = TcpStream::connect(gateway.addr).await.unwrap();
    keep.write_all(b"GET /nowhere HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    keep.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 404");
    assert!(closed_within(&mut keep, Duration::from_secs(5))
        .await
        .is_some());

    let text = render(&gateway);
    let first = metric(
        &text,
        r#"hookgate_connections_closed_total{reason="first_request_timeout"}"#,
    );
    let idle = metric(
        &text,
        r#"hookgate_connections_closed_total{reason="idle_timeout"}"#,
    );
    assert!(first >= 3.0, "first-request closes: {first}\n{text}");
    assert!(idle >= 2.0, "idle closes: {idle}\n{text}");
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_second_head_is_cut_off_by_the_header_read_timeout_and_http2_is_not() {
    let upstream = Upstream::start().await;
    let limits =
        "first_request_timeout = \"5s\"\nidle_timeout = \"60s\"\nheader_read_timeout = \"300ms\"";
    let gateway = TestGateway::start(&config(limits), &upstream, &[]).await;

    // HTTP/1.1: one request, then the next head dribbles in and never completes.
    let mut slow = TcpStream::connect(gateway.addr).await.unwrap();
    slow.write_all(b"GET /nowhere HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    slow.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 404");
    slow.write_all(b"POST /hooks/ck HTTP/1.1\r\nHost: g\r\n")
        .await
        .unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(5))
        .await
        .expect("a slow second head is cut off");
    assert!(took >= Duration::from_millis(200), "closed after {took:?}");

    // HTTP/2 is bounded by the idle timeout (60 s here), not the header-read timeout.
    let io = TokioIo::new(TcpStream::connect(gateway.addr).await.unwrap());
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), io)
            .await
            .unwrap();
    let mut connection = tokio::spawn(connection);
    let request = || {
        http::Request::get(format!("http://{}/nowhere", gateway.addr))
            .body(Empty::new())
            .unwrap()
    };
    assert_eq!(sender.send_request(request()).await.unwrap().status(), 404);
    let still_open = tokio::time::timeout(Duration::from_millis(900), &mut connection).await;
    assert!(
        still_open.is_err(),
        "an HTTP/2 connection outlived 3x the header timeout"
    );
    assert_eq!(sender.send_request(request()).await.unwrap().status(), 404);

    let text = render(&gateway);
    let cut = metric(
        &text,
        r#"hookgate_connections_closed_total{reason="header_read_timeout"}"#,
    );
    assert_eq!(cut, 1.0, "{text}");
    connection.abort();
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let upstream = Upstream::start().await;
    let limits = "max_connections = 3\nfirst_request_timeout = \"20s\"";
    let gateway = TestGateway::start(&config(limits), &upstream, &[]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    wait_until("3 connections are open", Duration::from_secs(5), || {
        metric(&render(&gateway), "hookgate_connections_open") == 3.0
    })
    .await;

    let mut extra = TcpStream::connect(gateway.addr).await.unwrap();
    let took = closed_within(&mut extra, Duration::from_secs(2)).await;
    assert!(
        took.is_some(),
        "a connection past the cap is closed at once"
    );
    let text = render(&gateway);
    assert_eq!(metric(&text, "hookgate_connections_refused_total"), 1.0);
    assert_eq!(metric(&text, "hookgate_connections_max"), 3.0);

    // A slot comes back when a connection closes.
    drop(held.pop());
    wait_until("a slot is free", Duration::from_secs(5), || {
        metric(&render(&gateway), "hookgate_connections_open") < 3.0
    })
    .await;
    assert_eq!(
        send(gateway.addr, "GET", "/nowhere", &[], b"").await.status,
        404
    );
    gateway.shutdown().await;
}

/// A sender that hangs up once its verified delivery is at the upstream: its connection keeps
/// its place under `max_connections` until the upstream answers (the forward runs to its
/// end), then it is released, and the outcome is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_hanging_up_mid_forward_holds_its_connection_until_the_upstream_answers() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(500))]);
    let gateway = TestGateway::start(&config(""), &upstream, &[]).await;
    let (h, body) = sign::cloudkeep_event(SECRET, "evt_edge_hangup", now_secs());
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(&raw_post("/hooks/ck", &h, &body))
        .await
        .unwrap();
    upstream.wait_for_requests(1, LIMIT).await;
    drop(stream);
    assert_eq!(upstream.answered(), 0, "hung up before the answer");
    wait_until("the connection is released", Duration::from_secs(5), || {
        metric(&render(&gateway), "hookgate_connections_open") == 0.0
    })
    .await;
    assert_eq!(
        upstream.answered(),
        1,
        "released only once the upstream had answered (500 ms after the hang-up)"
    );
    gateway
        .post("/hooks/ck", &h, &body)
        .await
        .assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

/// Writes a request head declaring a 1 MB body, sends no body, and returns the status line
/// the gateway answers with (within two seconds, long before any body deadline).
async fn status_without_body(addr: std::net::SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !reply.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            reply.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .expect("answered from the head alone");
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn unauthenticated_requests_are_answered_from_their_head() {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&config(""), &upstream, &[]).await;
    let head = |path: &str, extra: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: g\r\n{extra}Content-Length: 1000000\r\n\r\n")
    };
    let signature = "X-CloudKeep-Signature-256: sha256=00\r\n";
    let cases = [
        (head("/hooks/allow", signature), "HTTP/1.1 403"),
        (
            head("/hooks/tok", "Authorization: Bearer wrong-token-000000\r\n"),
            "HTTP/1.1 401",
        ),
        (head("/hooks/tok", ""), "HTTP/1.1 401"),
        (head("/hooks/ck", ""), "HTTP/1.1 401"),
        (
            head("/hooks/ck", &format!("{signature}{signature}")),
            "HTTP/1.1 401",
        ),
    ];
    for (request, expected) in &cases {
        let status = status_without_body(gateway.addr, request).await;
        assert!(status.starts_with(expected), "{request:?}: {status}");
    }
    let text = render(&gateway);
    let refused = |source: &str, reason: &str| {
        metric(
            &text,
            &format!(
                "hookgate_requests_refused_before_body_total{{source=\"{source}\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(refused("allow", "forbidden_address"), 1.0);
    assert_eq!(refused("tok", "bad_token"), 2.0);
    assert_eq!(refused("ck", "missing_signature"), 1.0);
    assert_eq!(refused("ck", "bad_signature"), 1.0);
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// 200 clients each upload 1 MiB with a (wrong) signature header at once. Without a budget the
/// gateway would hold 200 MiB of unverified bodies; with `max_pending_body_bytes = 8 MiB` its
/// peak RSS grows by at most the budget plus a stated constant (hyper's per-connection read
/// buffers, at most 64 KiB × 200 = 12.5 MiB, and allocator slack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_flood_is_bounded_by_the_pending_body_budget() {
    const BUDGET: u64 = 8 * 1024 * 1024;
    const CONSTANT: u64 = 32 * 1024 * 1024;
    const CLIENTS: usize = 200;
    const BODY: usize = 1024 * 1024;
    let dir = temp_dir("edge-flood");
    std::fs::write(
        dir.join("gw.toml"),
        format!(
            "[limits]\nmax_pending_body_bytes = {BUDGET}\n\n[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\n\
             preset = \"cloudkeep\"\nupstream = \"http://127.0.0.1:9/ck\"\nmax_body_bytes = {BODY}\n\
             secrets = [{{ env = \"EDGE_SECRET\" }}]\n"
        ),
    )
    .unwrap();
    let server = Server::start(&dir, &["--config", "gw.toml"], &[("EDGE_SECRET", SECRET)]);
    let addr = server.addr;
    // Warm up: a few requests so the baseline includes the runtime's steady state.
    for _ in 0..3 {
        let _ = send(addr, "POST", "/hooks/ck", &[], b"{}").await;
    }
    let baseline = rss_kib(server.pid(), "VmRSS:") * 1024;

    let body = Bytes::from(vec![b'{'; BODY]);
    let uploads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let head = format!(
                    "POST /hooks/ck HTTP/1.1\r\nHost: g\r\nX-CloudKeep-Signature-256: sha256=00\r\n\
                     Content-Length: {BODY}\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                // The gateway may answer 503 and close before the body is sent.
                let _ = stream.write_all(&body).await;
                let mut reply = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut reply))
                        .await;
                String::from_utf8_lossy(&reply)
                    .get(9..12)
                    .map(str::to_string)
                    .unwrap_or_default()
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for upload in uploads {
        *statuses.entry(upload.await.unwrap()).or_insert(0) += 1;
    }
    let peak = rss_kib(server.pid(), "VmHWM:") * 1024;
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "upload flood: {CLIENTS} × {BODY} B, budget {BUDGET} B: statuses {statuses:?}, \
         RSS baseline {} KiB, peak {} KiB, growth {} KiB",
        baseline / 1024,
        peak / 1024,
        growth / 1024
    );
    assert!(
        statuses
            .keys()
            .all(|s| s == "401" || s == "503" || s.is_empty()),
        "{statuses:?}"
    );
    assert!(
        statuses.get("503").copied().unwrap_or(0) > 0,
        "the budget refused some: {statuses:?}"
    );
    assert!(
        growth <= BUDGET + CONSTANT,
        "peak RSS grew by {growth} bytes, over {BUDGET} + {CONSTANT}"
    );
    let (code, _) = server.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn the_upstream_receives_only_what_was_verified_unless_configured() {
    let upstream = Upstream::start().await;
    let text = format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{{upstream}}/ck\"\n\
         secrets = [{{ value = \"{SECRET}\" }}]\nforward_query = true\ntrusted_proxies = [\"127.0.0.0/8\"]\n"
    );
    let gateway = TestGateway::start(&text, &upstream, &[]).await;
    let body = format!(
        r#"{{"id":"evt_edge_q","type":"t","timestamp":"{}"}}"#,
        iso(now_secs())
    );
    let mut h = headers(&[
        ("X-Forwarded-For", "198.51.100.7"),
        ("Forwarded", "for=198.51.100.7"),
    ]);
    h.extend(sign::cloudkeep_headers(SECRET, body.as_bytes()));
    let answer = gateway
        .post("/hooks/ck?delivery=3", &h, body.as_bytes())
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let got = &upstream.received()[0];
    // forward_query = true: the operator chose to pass the unsigned query string.
    assert_eq!(got.path_and_query, "/ck?delivery=3");
    // The peer is a trusted proxy: its forwarding headers are believed and extended.
    assert_eq!(got.headers["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(got.headers["forwarded"], "for=198.51.100.7");
    assert_eq!(got.headers["x-hookgate-event-id"], "evt_edge_q");
    gateway.shutdown().await;
}
