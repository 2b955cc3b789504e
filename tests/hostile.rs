//! The hostile-input corpus: crafted requests written byte for byte on raw sockets — duplicated
//! and malformed signatures, signatures over empty bodies, non-UTF-8 and oversized headers,
//! lying lengths, chunked bodies past the limit, hostile JSON and timestamps, path tricks —
//! each answered with its documented status while the upstream receives nothing; requests that
//! fail their head checks are answered without their declared body ever being sent. Also the
//! listener limits: slow-loris heads, idle keep-alive, header count, load shedding.

mod common;

use std::time::Duration;

use common::*;

const SECRET: &str = "hostile-secret";
/// Standard Webhooks key bytes and their `whsec_` form.
const WH_KEY: &[u8] = b"hostile-standard-webhooks-key";
const TOKEN: &str = "hostile-token-0123456789";

fn config() -> String {
    let whsec = format!("whsec_{}", b64(WH_KEY));
    format!(
        r#"
[server]
body_timeout = "500ms"

[limits]
max_headers = 40
max_header_bytes = 16384

[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "{{upstream}}/ck"
max_body_bytes = 4096
secrets = [{{ value = "{SECRET}" }}]

[[source]]
name = "sw"
path = "/hooks/sw"
preset = "standard-webhooks"
upstream = "{{upstream}}/sw"
secrets = [{{ value = "{whsec}" }}]

[[source]]
name = "st"
path = "/hooks/st"
preset = "stripe"
upstream = "{{upstream}}/st"
secrets = [{{ value = "{SECRET}" }}]

[[source]]
name = "cc"
path = "/hooks/cc"
preset = "certifyclouds"
upstream = "{{upstream}}/cc"
token = {{ prefix = "Bearer ", secrets = [{{ value = "{TOKEN}" }}] }}
"#
    )
}

/// One raw HTTP/1.1 request; `Content-Length` is added unless a length header is given.
fn request(method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("{method} {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n").into_bytes();
    let has_length = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn ck_body(ts: &str) -> String {
    format!(r#"{{"id":"evt_hostile","timestamp":"{ts}"}}"#)
}

fn ck_sig(body: &[u8]) -> Vec<u8> {
    sign::cloudkeep(SECRET, body).into_bytes()
}

fn sw_sig(id: &str, ts: &str, body: &[u8]) -> Vec<u8> {
    sign::standard_webhooks(WH_KEY, id, ts, body).into_bytes()
}

fn st_sig(ts: &str, body: &[u8]) -> Vec<u8> {
    sign::stripe(SECRET, ts, body).into_bytes()
}

/// (what, raw request, documented status)
fn corpus() -> Vec<(&'static str, Vec<u8>, u16)> {
    let now = now_secs();
    let fresh = iso(now);
    let body = ck_body(&fresh);
    let b = body.as_bytes();
    let good = ck_sig(b);
    let h = sign::CLOUDKEEP_HEADER;
    let ck = |headers: &[(&str, &[u8])], body: &[u8]| request("POST", "/hooks/ck", headers, body);
    let signed_ck = |body: &[u8]| request("POST", "/hooks/ck", &[(h, &ck_sig(body))], body);
    let short_hex = format!("sha256={}", "a".repeat(62));
    let long_hex = format!("sha256={}", "a".repeat(66));
    let huge_hex = format!("sha256={}", "ab".repeat(4000));
    let empty_sig = ck_sig(b"");

    let sw_body = br#"{"type":"x"}"#;
    let ts = now.to_string();
    let sw = |id: &str, ts: &str, sig: &[u8]| {
        request(
            "POST",
            "/hooks/sw",
            &[
                ("webhook-id", id.as_bytes()),
                ("webhook-timestamp", ts.as_bytes()),
                ("webhook-signature", sig),
            ],
            sw_body,
        )
    };
    let sw_signed = |ts: &str| sw("msg_1", ts, &sw_sig("msg_1", ts, sw_body));
    let junk_list = "v1,AAAA ".repeat(100);

    let st_body = br#"{"id":"evt_st"}"#;
    let st = |sig: &[u8]| request("POST", "/hooks/st", &[("Stripe-Signature", sig)], st_body);

    let cc = |auth: &[&[u8]]| {
        let headers: Vec<(&str, &[u8])> = auth.iter().map(|v| ("Authorization", *v)).collect();
        request("POST", "/hooks/cc", &headers, br#"{"title":"t"}"#)
    };
    let bearer = format!("Bearer {TOKEN}");

    let mut deep = "[".repeat(1500);
    deep.push_str(&"]".repeat(1500));
    let huge_header = "x".repeat(20_000);
    let many_headers: Vec<(String, Vec<u8>)> = (0..60)
        .map(|i| (format!("X-Pad-{i}"), b"1".to_vec()))
        .collect();
    let many: Vec<(&str, &[u8])> = many_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();

    // It carries a (wrong) signature header, so it passes the head checks and meets the limit.
    let mut chunked = b"POST /hooks/ck HTTP/1.1\r\nHost: g\r\nConnection: close\r\nX-CloudKeep-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..6 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b'{'; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");

    vec![
        // Signature headers.
        (
            "duplicated valid signature headers",
            ck(&[(h, &good), (h, &good)], b),
            401,
        ),
        (
            "conflicting signature headers",
            ck(&[(h, &good), (h, b"sha256=00")], b),
            401,
        ),
        (
            "hex one byte short",
            ck(&[(h, short_hex.as_bytes())], b),
            401,
        ),
        ("hex one byte long", ck(&[(h, long_hex.as_bytes())], b), 401),
        (
            "non-hex signature",
            ck(&[(h, format!("sha256={}", "zz".repeat(32)).as_bytes())], b),
            401,
        ),
        ("prefix missing", ck(&[(h, &good[7..])], b), 401),
        (
            "prefix in other case",
            ck(
                &[(h, format!("SHA256={}", hex_sig(SECRET, b)).as_bytes())],
                b,
            ),
            401,
        ),
        ("empty signature", ck(&[(h, b"sha256=")], b), 401),
        ("whitespace signature", ck(&[(h, b"   ")], b), 401),
        (
            "signature of the empty body, sent with a body",
            ck(&[(h, &empty_sig)], b),
            401,
        ),
        (
            "empty body with its own valid signature",
            ck(&[(h, &empty_sig)], b""),
            400,
        ),
        ("8 KB signature", ck(&[(h, huge_hex.as_bytes())], b), 401),
        (
            "non-UTF-8 signature header",
            ck(&[(h, b"sha256=\xff\xfe")], b),
            401,
        ),
        ("signature header absent", ck(&[], b), 401),
        // Standard Webhooks list shapes and timestamps.
        (
            "100 junk v1 signatures",
            sw("msg_1", &ts, junk_list.as_bytes()),
            401,
        ),
        ("non-base64 v1 signature", sw("msg_1", &ts, b"v1,!!!!"), 401),
        ("only an unknown version", sw("msg_1", &ts, b"v2,abcd"), 401),
        (
            "webhook-id missing",
            request(
                "POST",
                "/hooks/sw",
                &[
                    ("webhook-timestamp", ts.as_bytes()),
                    ("webhook-signature", &sw_sig("msg_1", &ts, sw_body)),
                ],
                sw_body,
            ),
            401,
        ),
        (
            "webhook-timestamp missing",
            request(
                "POST",
                "/hooks/sw",
                &[
                    ("webhook-id", b"msg_1"),
                    ("webhook-signature", &sw_sig("msg_1", &ts, sw_body)),
                ],
                sw_body,
            ),
            401,
        ),
        ("negative timestamp, validly signed", sw_signed("-1"), 400),
        (
            "float timestamp, validly signed",
            sw_signed("1614265330.5"),
            400,
        ),
        (
            "overflowing timestamp, validly signed",
            sw_signed("99999999999999999999999"),
            400,
        ),
        ("exponent timestamp, validly signed", sw_signed("1e10"), 400),
        (
            "plus-signed timestamp, validly signed",
            sw_signed("+1614265330"),
            400,
        ),
        (
            "far-future timestamp, validly signed",
            sw_signed(&(now + 86_400).to_string()),
            401,
        ),
        // Read as seconds, a millisecond value lies past year 9999: out of range.
        (
            "milliseconds where seconds are expected",
            sw_signed(&(now * 1000).to_string()),
            400,
        ),
        ("ancient timestamp, validly signed", sw_signed("1"), 401),
        // Stripe lists.
        (
            "stripe t repeated",
            st(format!(
                "t={ts},{}",
                String::from_utf8(st_sig(&ts, st_body)).unwrap()
            )
            .as_bytes()),
            401,
        ),
        (
            "stripe without t",
            st(format!("v1={}", hex_sig(SECRET, st_body)).as_bytes()),
            401,
        ),
        (
            "stripe non-numeric t, validly signed",
            st(&st_sig("soon", st_body)),
            400,
        ),
        (
            "stripe only v0",
            st(format!("t={ts},v0={}", hex_sig(SECRET, st_body)).as_bytes()),
            401,
        ),
        ("stripe empty header", st(b""), 401),
        // Bodies where JSON fields are needed (all validly signed).
        ("not JSON", signed_ck(b"hello"), 400),
        (
            "deeply nested JSON without a timestamp",
            signed_ck(deep.as_bytes()),
            400,
        ),
        (
            "duplicate timestamp keys",
            signed_ck(format!(r#"{{"timestamp":"{fresh}","timestamp":"{fresh}"}}"#).as_bytes()),
            400,
        ),
        (
            "numeric timestamp where ISO 8601 is expected",
            signed_ck(format!(r#"{{"timestamp":{now}}}"#).as_bytes()),
            400,
        ),
        (
            "year 99999",
            signed_ck(br#"{"timestamp":"+99999-01-01T00:00:00Z"}"#),
            400,
        ),
        (
            "top-level array",
            signed_ck(format!(r#"["{fresh}"]"#).as_bytes()),
            400,
        ),
        (
            "invalid UTF-8 inside JSON",
            signed_ck(b"{\"timestamp\":\"\xff\"}"),
            400,
        ),
        (
            "byte-order mark before JSON",
            signed_ck(format!("\u{feff}{body}").as_bytes()),
            400,
        ),
        (
            "trailing garbage after JSON",
            signed_ck(format!("{body}garbage").as_bytes()),
            400,
        ),
        (
            "stale event time",
            signed_ck(ck_body(&iso(now - 40 * 3600)).as_bytes()),
            401,
        ),
        // Sizes and lengths.
        (
            "declared length over the limit",
            ck(&[(h, &good), ("Content-Length", b"5000")], &[b'x'; 5000]),
            413,
        ),
        (
            "lying length: promises more than it sends",
            ck(&[(h, &good), ("Content-Length", b"900")], b),
            408,
        ),
        ("chunked body past the limit", chunked, 413),
        // Refused from the head alone: the declared body is never sent, and the answer must
        // come anyway (a gateway that waited for it would answer 408 after body_timeout).
        (
            "1 MB declared, no signature header, body never sent",
            ck(&[("Content-Length", b"1000000")], b""),
            401,
        ),
        (
            "1 MB declared, signature header twice, body never sent",
            ck(
                &[(h, &good), (h, &good), ("Content-Length", b"1000000")],
                b"",
            ),
            401,
        ),
        (
            "1 MB declared, wrong bearer token, body never sent",
            request(
                "POST",
                "/hooks/cc",
                &[
                    ("Authorization", b"Bearer not-the-token"),
                    ("Content-Length", b"1000000"),
                ],
                b"",
            ),
            401,
        ),
        (
            "1 MB declared, bearer token missing, body never sent",
            request("POST", "/hooks/cc", &[("Content-Length", b"1000000")], b""),
            401,
        ),
        (
            "declared length over the limit and no signature",
            ck(&[("Content-Length", b"5000")], b""),
            401,
        ),
        // Framed by Transfer-Encoding alone (RFC 9112 §6.1); forwarded, if ever, with hookgate's
        // own Content-Length. Here the empty chunked body fails the signature.
        (
            "both Content-Length and Transfer-Encoding",
            ck(
                &[
                    (h, &good),
                    ("Content-Length", b"3"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                b"0\r\n\r\n",
            ),
            401,
        ),
        (
            "bad chunk size",
            ck(
                &[(h, &good), ("Transfer-Encoding", b"chunked")],
                b"zz\r\nabc\r\n0\r\n\r\n",
            ),
            400,
        ),
        (
            "negative Content-Length",
            ck(&[(h, &good), ("Content-Length", b"-1")], b),
            400,
        ),
        // Header abuse.
        (
            "20 KB header",
            ck(&[(h, &good), ("X-Big", huge_header.as_bytes())], b),
            431,
        ),
        ("60 headers", ck(&many, b), 431),
        (
            "NUL in a header value",
            ck(&[(h, &good), ("X-Nul", b"a\0b")], b),
            400,
        ),
        (
            "space before the colon",
            request("POST", "/hooks/ck", &[("X-Bad ", b"1")], b),
            400,
        ),
        // Path tricks: nothing matches but the exact path.
        (
            "dot-dot path",
            request("POST", "/hooks/x/../ck", &[(h, &good)], b),
            404,
        ),
        (
            "encoded slash",
            request("POST", "/hooks%2Fck", &[(h, &good)], b),
            404,
        ),
        (
            "encoded path",
            request("POST", "/hooks/%63k", &[(h, &good)], b),
            404,
        ),
        (
            "double slash",
            request("POST", "//hooks/ck", &[(h, &good)], b),
            404,
        ),
        (
            "trailing slash",
            request("POST", "/hooks/ck/", &[(h, &good)], b),
            404,
        ),
        (
            "upper-case path",
            request("POST", "/HOOKS/CK", &[(h, &good)], b),
            404,
        ),
        ("asterisk target", request("OPTIONS", "*", &[], b""), 404),
        (
            "query string does not bypass verification",
            request("POST", "/hooks/ck?verified=1", &[(h, b"sha256=00")], b),
            401,
        ),
        (
            "wrong method",
            request("PUT", "/hooks/ck", &[(h, &good)], b),
            405,
        ),
        ("GET", request("GET", "/hooks/ck", &[], b""), 405),
        // Static tokens.
        ("wrong bearer token", cc(&[b"Bearer wrong"]), 401),
        (
            "bearer token prefix only",
            cc(&[format!("Bearer {}", &TOKEN[..8]).as_bytes()]),
            401,
        ),
        (
            "lower-case scheme word",
            cc(&[format!("bearer {TOKEN}").as_bytes()]),
            401,
        ),
        (
            "two Authorization headers",
            cc(&[bearer.as_bytes(), bearer.as_bytes()]),
            401,
        ),
        ("no Authorization header", cc(&[]), 401),
    ]
}

fn status_of(reply: &str) -> Option<u16> {
    reply.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_corpus_gets_documented_answers_and_reaches_nothing() {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&config(), &upstream, &[]).await;
    let corpus = corpus();
    assert!(
        corpus.len() >= 50,
        "the corpus has {} requests",
        corpus.len()
    );
    let mut wrong = Vec::new();
    for (what, bytes, expected) in &corpus {
        let reply = raw(gateway.addr, bytes).await;
        let status = status_of(&reply);
        if status != Some(*expected) {
            wrong.push(format!(
                "{what}: expected {expected}, got {:?}",
                reply.lines().next()
            ));
        }
        // hookgate's own refusals are JSON with a code; protocol errors come from hyper.
        if status.is_some_and(|s| [401, 404, 405, 408, 413].contains(&s))
            && !reply.contains("\"error\"")
        {
            wrong.push(format!("{what}: refusal without a JSON error body"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        corpus.len(),
        wrong.join("\n")
    );
    assert_eq!(
        upstream.count(),
        0,
        "nothing unverified reached the upstream"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed() {
    let upstream = Upstream::start().await;
    let text = config().replace("[limits]", "[limits]\nheader_read_timeout = \"300ms\"");
    let gateway = TestGateway::start(&text, &upstream, &[]).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Slow-loris: a head that never completes.
    let mut slow = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    slow.write_all(b"POST /hooks/ck HTTP/1.1\r\nHost: g\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "a slow head is cut off");

    // Idle keep-alive: one request, then silence.
    let mut idle = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 404");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle keep-alive connection is closed");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrency_limit_requests_are_shed_with_503() {
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::delayed(200, Duration::from_millis(600)));
    let text = config().replace("[limits]", "[limits]\nmax_concurrent_requests = 2");
    let gateway = TestGateway::start(&text, &upstream, &[]).await;
    let addr = gateway.addr;
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let body = ck_body(&iso(now_secs())).replace("evt_hostile", &format!("evt_slow_{i}"));
            let h = sign::cloudkeep_headers(SECRET, body.as_bytes());
            tokio::spawn(async move { send(addr, "POST", "/hooks/ck", &h, body.as_bytes()).await })
        })
        .collect();
    // Both slots are taken once both requests are at the (slow) upstream.
    upstream.wait_for_requests(2, LIMIT).await;
    let shed = send(addr, "POST", "/hooks/ck", &[], b"{}").await;
    assert_eq!(
        (shed.status.as_u16(), shed.error_code().as_str()),
        (503, "overloaded")
    );
    assert_eq!(shed.headers["retry-after"], "1");
    for task in slow {
        assert_eq!(task.await.unwrap().status, 200);
    }
    // Capacity is back once they finish.
    assert_eq!(send(addr, "POST", "/nowhere", &[], b"{}").await.status, 404);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_secrets_signatures_or_bodies() {
    let dir = temp_dir("no-leak");
    std::fs::write(dir.join("ck.secret"), "leak-check-secret-value").unwrap();
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(500)]);
    let config = format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{}/ck\"\n\
         secrets = [{{ file = \"ck.secret\" }}]\n\
         [[source]]\nname = \"cc\"\npath = \"/hooks/cc\"\npreset = \"certifyclouds\"\nupstream = \"{0}/cc\"\n\
         path_token = {{ env = \"LEAK_PATH_TOKEN\" }}\n\
         token = {{ prefix = \"Bearer \", secrets = [{{ env = \"LEAK_BEARER\" }}] }}\n",
        upstream.url()
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let env = [
        ("RUST_LOG", "trace"),
        ("LEAK_PATH_TOKEN", "leak-check-path-token-value"),
        ("LEAK_BEARER", "leak-check-bearer-value"),
    ];
    let server = Server::start(&dir, &["--config", "gw.toml"], &env);
    let addr = server.addr;

    let mut markers = vec![
        "leak-check-secret-value".to_string(),
        "leak-check-path-token-value".to_string(),
        "leak-check-bearer-value".to_string(),
        "BODY-MARKER".to_string(),
    ];
    for (i, secret) in [
        "leak-check-secret-value",
        "wrong-secret",
        "leak-check-secret-value",
    ]
    .into_iter()
    .enumerate()
    {
        let age = if i == 2 { 40 * 3600 } else { 0 };
        let body = format!(
            r#"{{"id":"evt_leak_{i}","timestamp":"{}","note":"BODY-MARKER"}}"#,
            iso(now_secs() - age)
        );
        markers.push(hex_sig(secret, body.as_bytes()));
        markers.push(hex_sig("leak-check-secret-value", body.as_bytes()));
        let h = sign::cloudkeep_headers(secret, body.as_bytes());
        let answer = send(addr, "POST", "/hooks/ck", &h, body.as_bytes()).await;
        assert_ne!(answer.status, 0);
    }
    // Wrong and right path tokens and bearer tokens.
    let alert = br#"{"title":"BODY-MARKER"}"#;
    let bearer = headers(&[("Authorization", "Bearer leak-check-bearer-value")]);
    send(
        addr,
        "POST",
        "/hooks/cc/leak-check-path-token-value",
        &bearer,
        alert,
    )
    .await;
    send(
        addr,
        "POST",
        "/hooks/cc/leak-check-path-token-valuX",
        &bearer,
        alert,
    )
    .await;
    let wrong_bearer = headers(&[("Authorization", "Bearer leak-check-bearer-valuX")]);
    send(
        addr,
        "POST",
        "/hooks/cc/leak-check-path-token-value",
        &wrong_bearer,
        alert,
    )
    .await;
    markers.push("leak-check-path-token-valuX".into());
    markers.push("leak-check-bearer-valuX".into());

    let (code, log) = server.stop();
    assert_eq!(code, Some(0));
    assert!(log.lines().count() > 10, "trace logging was on");
    assert!(log.contains("outcome=bad_signature") && log.contains("outcome=stale_timestamp"));
    for marker in &markers {
        assert!(!log.contains(marker.as_str()), "the log contains {marker}");
    }
}
