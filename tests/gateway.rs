//! The gateway's edges through real sockets: routing (never an open proxy), body limits,
//! header hygiene on the way upstream, path tokens, address allowlists and the JSON error
//! answers.

mod common;

use common::*;

const SECRET: &str = "edge-test-secret";
const PATH_TOKEN: &str = "0123456789abcdef-path-token";

const CONFIG: &str = r#"
[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "{upstream}/in?fixed=1"
max_body_bytes = 2048
secrets = [{ env = "S" }]

[[source]]
name = "cc"
path = "/hooks/cc"
preset = "certifyclouds"
upstream = "{upstream}/cc"
path_token = { env = "PT" }

[[source]]
name = "cc-ip"
path = "/hooks/cc-ip"
preset = "certifyclouds"
upstream = "{upstream}/cc-ip"
allow_ips = ["192.0.2.0/24"]
trusted_proxies = ["127.0.0.1"]

[[source]]
name = "cc-local"
path = "/hooks/cc-local"
preset = "certifyclouds"
upstream = "{upstream}/cc-local"
allow_ips = ["127.0.0.1/32"]
"#;

async fn start() -> (Upstream, TestGateway) {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(CONFIG, &upstream, &[("S", SECRET), ("PT", PATH_TOKEN)]).await;
    (upstream, gateway)
}

fn signed(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    sign::cloudkeep_event(SECRET, id, now_secs())
}

fn alert() -> Vec<u8> {
    format!(
        r#"{{"title":"Scan Completed","message":"ok","timestamp":"{}","source":"CertifyClouds"}}"#,
        iso_zoneless(now_secs())
    )
    .into_bytes()
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let (upstream, gateway) = start().await;
    let (h, body) = signed("evt_route");
    for path in [
        "/",
        "/hooks",
        "/hooks/ck/",
        "/hooks/ck/extra",
        "/hooks/CK",
        "/hooks/%63k",
        "/hooks/x/../ck",
    ] {
        let answer = gateway.post(path, &h, &body).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.error_code(), "unknown_source");
        assert_eq!(answer.headers["content-type"], "application/json");
    }
    let answer = send(gateway.addr, "GET", "/hooks/ck", &[], b"").await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (405, "method_not_allowed")
    );
    assert_eq!(answer.headers["allow"], "POST");
    // Absolute-form targets (proxy-style requests): routed by path only, so an unknown path is
    // 404 and a known one goes to the configured upstream — never to the named host.
    let reply = raw(
        gateway.addr,
        b"POST http://example.com/elsewhere HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert_eq!(upstream.count(), 0);
    let mut request = format!(
        "POST http://example.com/hooks/ck HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\n{}: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        h[0].0,
        h[0].1
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let reply = raw(gateway.addr, &request).await;
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    assert_eq!(
        upstream.received()[0].headers["host"],
        upstream.addr.to_string()
    );
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

/// The event id goes upstream as `X-Hookgate-Event-Id` byte for byte, UTF-8 included; an id
/// no header can carry (a control character, escaped in the JSON) is forwarded without it.
#[tokio::test]
async fn event_id_header_is_the_id_or_absent() {
    let (upstream, gateway) = start().await;
    let (h, body) = signed("évt_ünïcode");
    assert_eq!(gateway.post("/hooks/ck", &h, &body).await.status, 202);
    let (h, body) = signed(r"evt_\u0007bell");
    assert_eq!(gateway.post("/hooks/ck", &h, &body).await.status, 202);
    let got = upstream.wait_for_requests(2, LIMIT).await;
    assert_eq!(
        got[0].headers["x-hookgate-event-id"].as_bytes(),
        "évt_ünïcode".as_bytes()
    );
    assert!(got[1].headers.get("x-hookgate-event-id").is_none());
    assert_eq!(got[1].body, body, "forwarded byte for byte");
    gateway.shutdown().await;
}

#[tokio::test]
async fn forwarded_request_has_clean_trustworthy_headers() {
    let (upstream, gateway) = start().await;
    let (mut h, body) = signed("evt_headers");
    h.extend(headers(&[
        ("X-Hookgate-Source", "spoofed"),
        ("X-Hookgate-Event-Id", "spoofed"),
        ("X-Forwarded-For", "198.51.100.1"),
        ("Forwarded", "for=198.51.100.1;host=evil.example"),
        ("X-Real-IP", "198.51.100.1"),
        ("X-Forwarded-Host", "evil.example"),
        ("Connection", "x-drop-me"),
        ("X-Drop-Me", "1"),
        ("X-Custom", "kept"),
    ]));
    let answer = gateway.post("/hooks/ck?delivery=9", &h, &body).await;
    assert_eq!(answer.status, 202);
    let got = &upstream.received()[0];
    // The query string is not signed: dropped (forward_query is off).
    assert_eq!(got.path_and_query, "/in?fixed=1");
    assert_eq!(got.headers["x-hookgate-source"], "ck");
    assert_eq!(got.headers["x-hookgate-event-id"], "evt_headers");
    // The client's forwarding headers are replaced by hookgate's own.
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(got.headers["x-real-ip"], "127.0.0.1");
    assert!(got.headers.get("forwarded").is_none());
    assert!(got.headers.get("x-forwarded-host").is_none());
    assert_eq!(got.headers["x-custom"], "kept");
    assert!(got.headers.get("x-drop-me").is_none());
    assert_eq!(got.headers["host"], upstream.addr.to_string());
    assert_eq!(got.body, body);
    gateway.shutdown().await;
}

#[tokio::test]
async fn body_limit_is_enforced_for_declared_and_chunked_bodies() {
    let (upstream, gateway) = start().await;
    let big = vec![b'x'; 4096];
    // A signature header is present (the head checks pass), so the body limit decides.
    let sig = headers(&[("X-CloudKeep-Signature-256", "sha256=00")]);
    let answer = gateway.post("/hooks/ck", &sig, &big).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (413, "payload_too_large")
    );

    // A chunked body that passes the limit mid-stream, over a raw socket.
    let mut request =
        b"POST /hooks/ck HTTP/1.1\r\nHost: x\r\nX-CloudKeep-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..4 {
        request.extend_from_slice(b"400\r\n");
        request.extend_from_slice(&[b'y'; 1024]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let reply = raw(gateway.addr, &request).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn path_token_opens_only_the_exact_path() {
    let (upstream, gateway) = start().await;
    let good = format!("/hooks/cc/{PATH_TOKEN}");
    assert_eq!(gateway.post(&good, &[], &alert()).await.status, 202);
    for path in [
        "/hooks/cc".to_string(),
        "/hooks/cc/".to_string(),
        format!("/hooks/cc/{}", &PATH_TOKEN[..PATH_TOKEN.len() - 1]),
        format!("/hooks/cc/{PATH_TOKEN}x"),
        format!("/hooks/cc/{PATH_TOKEN}/more"),
    ] {
        assert_eq!(
            gateway.post(&path, &[], &alert()).await.status,
            404,
            "{path}"
        );
    }
    // The token never travels upstream.
    assert_eq!(upstream.received()[0].path_and_query, "/cc");
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn address_allowlist_and_trusted_proxies() {
    let (upstream, gateway) = start().await;
    // Direct loopback peer, allowed.
    assert_eq!(
        gateway.post("/hooks/cc-local", &[], &alert()).await.status,
        202
    );
    // Loopback is a trusted proxy for cc-ip: the forwarded client address decides.
    let allowed = headers(&[("X-Forwarded-For", "192.0.2.10")]);
    assert_eq!(
        gateway
            .post("/hooks/cc-ip", &allowed, &alert())
            .await
            .status,
        202
    );
    let denied = headers(&[("X-Forwarded-For", "203.0.113.5")]);
    let answer = gateway.post("/hooks/cc-ip", &denied, &alert()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (403, "forbidden_address")
    );
    let answer = gateway.post("/hooks/cc-ip", &[], &alert()).await;
    assert_eq!(
        answer.status, 403,
        "the proxy itself is not an allowed client"
    );
    assert_eq!(upstream.count(), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn malformed_timestamps_and_bodies_are_400() {
    let (upstream, gateway) = start().await;
    let cases: [(&str, &str); 5] = [
        (r#"{"id":"e1"}"#, "missing_timestamp"),
        (r#"{"id":"e2","timestamp":"yesterday"}"#, "bad_timestamp"),
        (r#"{"id":"e3","timestamp":1749637800}"#, "bad_timestamp"),
        (
            r#"{"id":"e4","timestamp":"2025-06-11T10:30:00Z","timestamp":"2025-06-11T10:30:00Z"}"#,
            "bad_json",
        ),
        ("not json at all", "bad_json"),
    ];
    for (body, code) in cases {
        let h = sign::cloudkeep_headers(SECRET, body.as_bytes());
        let answer = gateway.post("/hooks/ck", &h, body.as_bytes()).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code().as_str()),
            (400, code),
            "{body}"
        );
    }
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}
