//! The `paypal` preset through the real gateway and a real upstream: deliveries of
//! `tests/vectors/paypal.json` (made by `scripts/vectors/paypal.py`) verified with the
//! certificate a local HTTPS key server with a test CA serves at `PAYPAL-CERT-URL`, and
//! forwarded byte-exact; a changed body byte, another webhook id, another certificate, an
//! unsupported `PAYPAL-AUTH-ALGO`, forged or repeated headers and a stale transmission time are
//! refused; a certificate URL off the pinned hosts (or over http) is refused without being
//! fetched; a key server that is down is answered `503` + `Retry-After` and nothing is
//! forwarded. Time is a manual clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::keyserver::{KeyServer, Route};
use common::*;
use serde_json::Value;
use tokio::net::TcpListener;

use hookgate::clock::{ManualClock, SharedClock};

const CERT_PATH: &str = "/v1/notifications/certs/CERT-test";

fn vector() -> Value {
    let text = std::fs::read_to_string("tests/vectors/paypal.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap()
}

/// A delivery's headers and body.
type Delivery = (Vec<(String, String)>, Vec<u8>);

/// Each case's headers (with `PAYPAL-CERT-URL`, which PayPal does not sign, pointed at
/// `cert_url`) and body.
fn cases(cert_url: &str) -> Vec<Delivery> {
    vector()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let headers = c["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().unwrap();
                    let v = if k == "PAYPAL-CERT-URL" { cert_url } else { v };
                    (k.clone(), v.to_string())
                })
                .collect();
            (headers, text(c, "body").as_bytes().to_vec())
        })
        .collect()
}

fn with(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), if k == name { value.into() } else { v.clone() }))
        .collect()
}

/// A PayPal source (`name`, at `/hooks/<name>`); `pattern` unset keeps PayPal's own hosts.
fn paypal_source(
    name: &str,
    webhook_id: &str,
    pattern: Option<&str>,
    ca: &std::path::Path,
) -> String {
    let pin = pattern
        .map(|p| format!("key_host_pattern = \"{p}\", "))
        .unwrap_or_default();
    format!(
        "[[source]]\nname = \"{name}\"\npath = \"/hooks/{name}\"\npreset = \"paypal\"\n\
         upstream = \"{{upstream}}/{name}\"\n\
         signature = {{ {pin}key_server_ca = \"{}\", webhook_id = \"{webhook_id}\" }}\n\n",
        ca.display()
    )
}

/// A key server serving the vector's certificate, an upstream, and a gateway with one
/// `paypal` source trusting that key server, on the manual clock.
async fn started(name: &str) -> (KeyServer, Upstream, TestGateway) {
    let keys = KeyServer::start(name).await;
    let v = vector();
    keys.route(CERT_PATH, Route::ok(text(&v, "public_key"), 300));
    let config = paypal_source(
        "paypal",
        text(&v, "webhook_id"),
        Some(&keys.pattern()),
        &keys.ca,
    );
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock()).await;
    (keys, upstream, gateway)
}

/// 2026-01-01T00:00:30Z, just after the vectors were stamped.
fn clock() -> Arc<ManualClock> {
    ManualClock::new(1767225630 * 1000, Duration::from_secs(3600))
}

#[tokio::test]
async fn paypal_vectors_are_verified_with_the_fetched_certificate_and_forwarded_byte_exact() {
    let (keys, upstream, gateway) = started("paypal-ok").await;
    let cases = cases(&keys.url(CERT_PATH));
    assert_eq!(cases.len(), 2);
    for (i, (headers, body)) in cases.iter().enumerate() {
        let answer = gateway.post("/hooks/paypal", headers, body).await;
        assert_eq!(answer.status, 202, "case {i}: {}", answer.text());
        assert_eq!(&upstream.received()[i].body[..], &body[..], "byte-exact");
        // One byte of the body changed (a digit of the amount, or of the id).
        let at = String::from_utf8_lossy(body).find("\"id\": \"").unwrap() + 10;
        let mut tampered = body.clone();
        tampered[at] ^= 0x01;
        let answer = gateway.post("/hooks/paypal", headers, &tampered).await;
        assert_eq!(answer.status, 401, "case {i} tampered: {}", answer.text());
        assert_eq!(answer.error_code(), "bad_signature");
        // Each signed header changed by one character.
        for name in ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME"] {
            let value = &headers.iter().find(|(k, _)| k == name).unwrap().1;
            let changed = value.replacen('0', "1", 1);
            let answer = gateway
                .post("/hooks/paypal", &with(headers, name, &changed), body)
                .await;
            assert_eq!(answer.status, 401, "{name}: {}", answer.text());
        }
    }
    assert_eq!(upstream.count(), 2);
    assert_eq!(keys.requests(), 1, "one certificate URL, one fetch");
    // A replay of a delivered event is verified, then answered as a duplicate.
    let answer = gateway
        .post("/hooks/paypal", &cases[0].0, &cases[0].1)
        .await;
    answer.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn another_webhook_id_or_certificate_does_not_verify() {
    let keys = KeyServer::start("paypal-wrong").await;
    let v = vector();
    keys.route(CERT_PATH, Route::ok(text(&v, "public_key"), 300));
    keys.route("/other", Route::ok(text(&v, "wrong_public_key"), 300));
    let config = paypal_source(
        "other",
        "9XL90610J3647323C",
        Some(&keys.pattern()),
        &keys.ca,
    ) + &paypal_source(
        "paypal",
        text(&v, "webhook_id"),
        Some(&keys.pattern()),
        &keys.ca,
    );
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock()).await;
    let (headers, body) = &cases(&keys.url(CERT_PATH))[0];
    let answer = gateway.post("/hooks/other", headers, body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.error_code(), "bad_signature");
    let (headers, body) = &cases(&keys.url("/other"))[0];
    let answer = gateway.post("/hooks/paypal", headers, body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn certificate_urls_off_the_pinned_hosts_are_refused_and_never_fetched() {
    let keys = KeyServer::start("paypal-pin").await;
    let v = vector();
    keys.route(CERT_PATH, Route::ok(text(&v, "public_key"), 300));
    // `pinned` keeps PayPal's own hosts: the local key server is off them.
    let config = paypal_source("pinned", text(&v, "webhook_id"), None, &keys.ca)
        + &paypal_source(
            "paypal",
            text(&v, "webhook_id"),
            Some(&keys.pattern()),
            &keys.ca,
        );
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock()).await;
    let local = keys.url(CERT_PATH);
    let refused = [
        ("/hooks/paypal", local.replacen("https://", "http://", 1)),
        (
            "/hooks/paypal",
            "https://evil.test/v1/notifications/certs/CERT-1".into(),
        ),
        (
            "/hooks/paypal",
            local.replacen("https://", "https://user@", 1),
        ),
        ("/hooks/paypal", "not a url".into()),
        ("/hooks/pinned", local.clone()),
        (
            "/hooks/pinned",
            "https://api.paypal.com.evil.test/v1/notifications/certs/C".into(),
        ),
        (
            "/hooks/pinned",
            "https://evil.test/api.paypal.com/v1/notifications/certs/C".into(),
        ),
        (
            "/hooks/pinned",
            "http://api.paypal.com/v1/notifications/certs/CERT-1".into(),
        ),
        (
            "/hooks/pinned",
            "https://api.paypal.com:8443/v1/notifications/certs/C".into(),
        ),
    ];
    for (path, url) in &refused {
        let (headers, body) = &cases(url)[0];
        let answer = gateway.post(path, headers, body).await;
        assert_eq!(answer.status, 401, "{path} {url}: {}", answer.text());
        assert_eq!(answer.error_code(), "bad_signature");
    }
    assert_eq!(keys.requests(), 0, "nothing was fetched");
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_key_server_that_is_down_answers_503_with_retry_after_and_forwards_nothing() {
    let keys = KeyServer::start("paypal-down").await;
    let v = vector();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_port = closed.local_addr().unwrap().port();
    drop(closed);
    keys.route("/garbage", Route::ok("<html>gateway error</html>", 300));
    let config = paypal_source(
        "down",
        text(&v, "webhook_id"),
        Some(&format!("localhost:{down_port}")),
        &keys.ca,
    ) + &paypal_source(
        "paypal",
        text(&v, "webhook_id"),
        Some(&keys.pattern()),
        &keys.ca,
    );
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock()).await;
    let failing = [
        (
            "/hooks/down",
            format!("https://localhost:{down_port}{CERT_PATH}"),
        ),
        ("/hooks/paypal", keys.url("/garbage")),
        ("/hooks/paypal", keys.url("/missing")),
    ];
    for (path, url) in &failing {
        let (headers, body) = &cases(url)[0];
        let answer = gateway.post(path, headers, body).await;
        assert_eq!(answer.status, 503, "{url}: {}", answer.text());
        assert_eq!(answer.error_code(), "key_fetch_failed");
        assert_eq!(answer.headers["retry-after"], "30");
    }
    assert_eq!(upstream.count(), 0, "nothing unverified was forwarded");
    // The provider's retry, once the certificate is served, goes through.
    keys.route("/garbage", Route::ok(text(&v, "public_key"), 300));
    let (headers, body) = &cases(&keys.url("/garbage"))[0];
    let answer = gateway.post("/hooks/paypal", headers, body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn forged_headers_and_unsupported_algorithms_are_refused_without_fetching() {
    let (keys, upstream, gateway) = started("paypal-forged").await;
    let (good, body) = cases(&keys.url(CERT_PATH)).remove(0);
    let mut forged = Vec::new();
    for algo in [
        "SHA1withRSA",
        "sha256withrsa",
        "SHA256withECDSA",
        "none",
        "",
    ] {
        forged.push(with(&good, "PAYPAL-AUTH-ALGO", algo));
    }
    forged.push(with(&good, "PAYPAL-TRANSMISSION-SIG", "!!not base64!!"));
    // A `|` would let one signed field's text pass as the next one's.
    forged.push(with(&good, "PAYPAL-TRANSMISSION-ID", "a|b"));
    for name in [
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    ] {
        forged.push(good.iter().filter(|(k, _)| k != name).cloned().collect());
        let mut twice = good.clone();
        twice.push(good.iter().find(|(k, _)| k == name).unwrap().clone());
        forged.push(twice);
    }
    for headers in &forged {
        let answer = gateway.post("/hooks/paypal", headers, &body).await;
        assert_eq!(answer.status, 401, "{headers:?}: {}", answer.text());
    }
    // No signature header at all: refused before the body is read.
    let unsigned: Vec<_> = good
        .iter()
        .filter(|(k, _)| k != "PAYPAL-TRANSMISSION-SIG")
        .cloned()
        .collect();
    let answer = gateway.post("/hooks/paypal", &unsigned, &body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(
        keys.requests(),
        0,
        "nothing was fetched for a forged delivery"
    );
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_transmission_time_past_the_retry_horizon_is_stale() {
    let keys = KeyServer::start("paypal-stale").await;
    let v = vector();
    keys.route(CERT_PATH, Route::ok(text(&v, "public_key"), 3600 * 24 * 7));
    let config = paypal_source(
        "paypal",
        text(&v, "webhook_id"),
        Some(&keys.pattern()),
        &keys.ca,
    );
    let upstream = Upstream::start().await;
    let clock = clock();
    let shared: SharedClock = clock.clone();
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], shared).await;
    let cases = cases(&keys.url(CERT_PATH));
    // PayPal retries for 3 days: still fresh just inside 3 days 5 min ...
    clock.advance(Duration::from_secs(3 * 24 * 3600 + 4 * 60));
    let answer = gateway
        .post("/hooks/paypal", &cases[0].0, &cases[0].1)
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    // ... stale past it.
    clock.advance(Duration::from_secs(2 * 60));
    let answer = gateway
        .post("/hooks/paypal", &cases[1].0, &cases[1].1)
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.error_code(), "stale_timestamp");
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[test]
fn webhook_id_is_required_and_checked_and_only_for_paypal() {
    let parse = |text: &str| {
        hookgate::config::parse(
            text,
            std::path::Path::new("."),
            &std::collections::HashMap::<String, String>::new(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let source = |preset: &str, signature: &str| {
        format!(
            "[[source]]\nname = \"s\"\npath = \"/s\"\npreset = \"{preset}\"\n\
             upstream = \"http://127.0.0.1:1/\"\nsignature = {{ {signature} }}\n"
        )
    };
    for (text, key) in [
        (source("paypal", ""), "webhook_id"),
        (source("paypal", "webhook_id = \"\""), "webhook_id"),
        (source("paypal", "webhook_id = \"a|b\""), "webhook_id"),
        (
            source("paypal", &format!("webhook_id = \"{}\"", "A".repeat(51))),
            "webhook_id",
        ),
        (source("sns", "webhook_id = \"ABC\""), "webhook_id"),
    ] {
        let error = parse(&text).expect_err(&text);
        assert!(error.contains(key), "{error}");
    }
    parse(&source("paypal", "webhook_id = \"1JE4291016473214C\"")).unwrap();
}

/// The CRC-32 (IEEE, reflected) table.
fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *entry = c;
    }
    table
}

/// The register before `byte` given the register `after` it (CRC-32 run backwards).
fn crc_back(table: &[u32; 256], after: u32, byte: u8) -> u32 {
    let j = (0..256).find(|&j| table[j] >> 24 == after >> 24).unwrap();
    ((after ^ table[j]) << 8) | (j as u32 ^ byte as u32)
}

/// `prefix + 4 bytes + suffix` with the CRC-32 `target`: the attack PayPal's scheme allows
/// (the signature covers the body's CRC-32 only). The 4 bytes are returned for the caller to
/// check they are printable.
fn forge(prefix: &[u8], suffix: &[u8], target: u32) -> [u8; 4] {
    let table = crc_table();
    // The register wanted after the 4 bytes: run the target back over the suffix.
    let mut wanted = !target;
    for &b in suffix.iter().rev() {
        wanted = crc_back(&table, wanted, b);
    }
    // The 4 bytes that take the register after the prefix to `wanted`.
    let mut reg = !0u32;
    for &b in prefix {
        reg = (reg >> 8) ^ table[((reg ^ b as u32) & 0xFF) as usize];
    }
    let mut w = wanted;
    for _ in 0..4 {
        let j = (0..256).find(|&j| table[j] >> 24 == w >> 24).unwrap();
        w = ((w ^ table[j]) << 8) | j as u32;
    }
    (w ^ reg).to_le_bytes()
}

/// PayPal signs the body's CRC-32, not a hash of it: whoever captures one delivery can build
/// another body (another event id, another amount) with the same CRC-32 and resend it with
/// the captured signature while the transmission time is fresh. The transmission id is
/// signed and claimed in dedup besides the event id, so such a forgery is answered as a
/// duplicate and never reaches the upstream.
#[tokio::test]
async fn a_captured_signature_with_a_crc_forged_body_is_a_duplicate() {
    let (keys, upstream, gateway) = started("paypal-crc").await;
    let (headers, body) = cases(&keys.url(CERT_PATH)).remove(0);
    let target = crc32fast::hash(&body);
    let suffix = b"\"}";
    let forged = (0..10_000)
        .find_map(|n| {
            let prefix = format!(
                "{{\"id\":\"WH-FORGED-{n}\",\"event_type\":\"PAYMENT.SALE.COMPLETED\",\"pad\":\""
            );
            let four = forge(prefix.as_bytes(), suffix, target);
            let printable = four
                .iter()
                .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
            printable.then(|| [prefix.as_bytes(), &four, suffix].concat())
        })
        .expect("a printable forgery");
    assert_eq!(
        crc32fast::hash(&forged),
        target,
        "the forgery keeps the CRC-32"
    );
    assert_ne!(forged, body);

    let answer = gateway.post("/hooks/paypal", &headers, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let answer = gateway.post("/hooks/paypal", &headers, &forged).await;
    assert_eq!(answer.status, 200, "forgery: {}", answer.text());
    assert!(
        answer.headers.contains_key("x-hookgate-duplicate"),
        "{}",
        answer.text()
    );
    assert_eq!(
        upstream.received().len(),
        1,
        "only the genuine delivery is forwarded"
    );
    assert_eq!(&upstream.received()[0].body[..], &body[..]);
}
