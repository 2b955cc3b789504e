//! Presets whose keys come from the network (AWS SNS certificates, Google's JWKS) and the
//! other non-header signatures (Plaid's token, Mailgun's body signature), through the real
//! gateway and a real upstream. A local HTTPS key server with a test CA plays AWS and Google;
//! the committed vectors of `tests/vectors/` are replayed. Deliveries are forwarded
//! byte-exact; a changed byte, an off-pin certificate URL (never fetched), a key server that is
//! down, slow to nothing, redirecting, oversized or answering garbage are all refused, the
//! latter with `503` + `Retry-After` so the provider retries. Time is a manual clock.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::keyserver::{KeyServer, Route};
use common::*;
use serde_json::Value;
use tokio::net::TcpListener;

use hookgate::clock::{ManualClock, SharedClock};

fn vector(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("tests/vectors/{name}.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap()
}

fn vector_headers(v: &Value) -> Vec<(String, String)> {
    v["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

const SNS_CERT: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem";
const SNS_HEADERS: [(&str, &str); 1] = [("x-amz-sns-message-type", "Notification")];

/// An SNS source (`name`, at `/hooks/<name>`) fetching certificates from `server`'s pattern.
fn sns_source(name: &str, pattern: &str, ca: &std::path::Path, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\npath = \"/hooks/{name}\"\npreset = \"sns\"\n\
         upstream = \"{{upstream}}/{name}\"\n\
         signature = {{ key_host_pattern = \"{pattern}\", key_server_ca = \"{}\"{extra} }}\n\n",
        ca.display()
    )
}

/// The SNS vector's cases with their (unsigned) `SigningCertURL` pointed at `cert_url`.
fn sns_bodies(cert_url: &str) -> Vec<Vec<u8>> {
    let v = vector("sns");
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text(c, "body").replace(SNS_CERT, cert_url).into_bytes())
        .collect()
}

/// 2026-01-01T00:00:30Z, just after the vectors were stamped.
fn clock_at(unix_secs: i64) -> Arc<ManualClock> {
    ManualClock::new(unix_secs * 1000, Duration::from_secs(3600))
}

const VECTOR_TIME: i64 = 1767225630;

#[tokio::test]
async fn sns_vectors_are_verified_with_the_fetched_certificate_and_forwarded_byte_exact() {
    let keys = KeyServer::start("keyfetch-sns").await;
    let v = vector("sns");
    keys.route(
        "/SimpleNotificationService-test.pem",
        Route::ok(text(&v, "public_key"), 300),
    );
    let config = sns_source("sns", &keys.pattern(), &keys.ca, "");
    let upstream = Upstream::start().await;
    let clock = clock_at(VECTOR_TIME);
    let shared: SharedClock = clock.clone();
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], shared).await;
    let bodies = sns_bodies(&keys.url("/SimpleNotificationService-test.pem"));
    assert_eq!(
        bodies.len(),
        3,
        "SignatureVersion 1 and 2, a SubscriptionConfirmation"
    );
    let headers = headers(&SNS_HEADERS);
    for (i, body) in bodies.iter().enumerate() {
        let answer = gateway.post("/hooks/sns", &headers, body).await;
        assert_eq!(answer.status, 202, "case {i}: {}", answer.text());
        assert_eq!(&upstream.received()[i].body[..], &body[..], "byte-exact");
        // One byte of the signed Message changed.
        let at = String::from_utf8_lossy(body)
            .find("\"Message\": \"")
            .unwrap()
            + 12;
        let mut tampered = body.clone();
        tampered[at] ^= 0x01;
        let answer = gateway.post("/hooks/sns", &headers, &tampered).await;
        assert_eq!(answer.status, 401, "case {i} tampered: {}", answer.text());
        assert_eq!(answer.error_code(), "bad_signature");
    }
    assert_eq!(upstream.count(), 3);
    // The subscription confirmation reached the upstream only once verified.
    let confirmation = &upstream.received()[2].body;
    assert!(String::from_utf8_lossy(confirmation).contains("\"SubscriptionConfirmation\""));
    // Six deliveries, one certificate URL: one fetch.
    assert_eq!(keys.requests(), 1);

    // The certificate was cached for its max-age (300 s): still cached at 299 s ...
    clock.advance(Duration::from_secs(299));
    let answer = gateway.post("/hooks/sns", &headers, &bodies[0]).await;
    answer.assert_delivered_duplicate();
    assert_eq!(keys.requests(), 1);
    // ... fetched again once it has expired (the repeat is still verified, then a duplicate).
    clock.advance(Duration::from_secs(2));
    let answer = gateway.post("/hooks/sns", &headers, &bodies[0]).await;
    answer.assert_delivered_duplicate();
    assert_eq!(keys.requests(), 2);
    assert_eq!(upstream.count(), 3);
    gateway.shutdown().await;
}

#[tokio::test]
async fn sns_certificate_urls_off_the_pinned_host_are_refused_and_never_fetched() {
    let keys = KeyServer::start("keyfetch-sns-pin").await;
    let v = vector("sns");
    for path in ["/c.pem", "/c.txt"] {
        keys.route(path, Route::ok(text(&v, "public_key"), 300));
    }
    let config = sns_source("sns", &keys.pattern(), &keys.ca, "");
    let upstream = Upstream::start().await;
    let gateway =
        TestGateway::start_with_clock(&config, &upstream, &[], clock_at(VECTOR_TIME)).await;
    let port = keys.addr.port();
    for url in [
        // The same server by address: not the pinned host name.
        format!("https://127.0.0.1:{port}/c.pem"),
        // Not https.
        format!("http://localhost:{port}/c.pem"),
        // Not a certificate path, a query, credentials, another port.
        format!("https://localhost:{port}/c.txt"),
        format!("https://localhost:{port}/c.pem?x=1"),
        format!("https://user@localhost:{port}/c.pem"),
        format!("https://localhost:{}/c.pem", port.wrapping_add(1)),
        // Look-alikes of AWS's own hosts (the preset's pin is replaced by the test's).
        "https://sns.us-east-1.amazonaws.com.evil.test/c.pem".to_string(),
        "https://evil.test/sns.us-east-1.amazonaws.com/c.pem".to_string(),
        "not a url".to_string(),
    ] {
        let body = &sns_bodies(&url)[1];
        let answer = gateway
            .post("/hooks/sns", &headers(&SNS_HEADERS), body)
            .await;
        assert_eq!(answer.status, 401, "{url}: {}", answer.text());
        assert_eq!(answer.error_code(), "bad_signature", "{url}");
    }
    assert_eq!(keys.requests(), 0, "nothing was fetched");
    assert_eq!(upstream.count(), 0);
    // No type header: refused before the body is read.
    let body = &sns_bodies(&keys.url("/c.pem"))[1];
    let answer = gateway.post("/hooks/sns", &[], body).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error_code(), "missing_signature");
    gateway.shutdown().await;
}

#[tokio::test]
async fn sns_key_server_failures_answer_503_with_retry_after_and_forward_nothing() {
    let keys = KeyServer::start("keyfetch-sns-fail").await;
    let v = vector("sns");
    let cert = text(&v, "public_key");
    keys.route("/garbage.pem", Route::ok("<html>gateway error</html>", 300));
    keys.route("/big.pem", Route::ok(&"A".repeat(200 * 1024), 300));
    keys.route(
        "/redirect.pem",
        Route {
            status: 302,
            body: Vec::new(),
            headers: vec![("location", keys.url("/good.pem"))],
        },
    );
    keys.route("/good.pem", Route::ok(cert, 300));
    keys.route(
        "/error.pem",
        Route {
            status: 500,
            body: cert.as_bytes().to_vec(),
            headers: Vec::new(),
        },
    );
    // A key server that is down: a port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = sns_source("sns", &keys.pattern(), &keys.ca, "")
        + &sns_source("down", &format!("localhost:{down_port}"), &keys.ca, "");
    let upstream = Upstream::start().await;
    let gateway =
        TestGateway::start_with_clock(&config, &upstream, &[], clock_at(VECTOR_TIME)).await;
    let mut cases: Vec<(String, String)> = [
        "/garbage.pem",
        "/big.pem",
        "/redirect.pem",
        "/missing.pem",
        "/error.pem",
    ]
    .iter()
    .map(|p| ("/hooks/sns".to_string(), keys.url(p)))
    .collect();
    cases.push((
        "/hooks/down".to_string(),
        format!("https://localhost:{down_port}/c.pem"),
    ));
    for (path, url) in &cases {
        let body = &sns_bodies(url)[0];
        let answer = gateway.post(path, &headers(&SNS_HEADERS), body).await;
        assert_eq!(answer.status, 503, "{url}: {}", answer.text());
        assert_eq!(answer.error_code(), "key_fetch_failed", "{url}");
        assert_eq!(answer.headers["retry-after"], "30", "{url}");
    }
    assert_eq!(upstream.count(), 0, "nothing unverified was forwarded");
    assert!(
        !keys.seen.lock().unwrap().contains(&"/good.pem".to_string()),
        "the redirect was not followed"
    );
    // Failures are not cached: the next delivery fetches again (and the server now answers).
    keys.route("/garbage.pem", Route::ok(cert, 300));
    let body = &sns_bodies(&keys.url("/garbage.pem"))[0];
    let answer = gateway
        .post("/hooks/sns", &headers(&SNS_HEADERS), body)
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn sns_topics_outside_the_configured_list_are_refused() {
    let keys = KeyServer::start("keyfetch-sns-topic").await;
    let v = vector("sns");
    keys.route("/c.pem", Route::ok(text(&v, "public_key"), 300));
    let only_other = ", topics = [\"arn:aws:sns:us-east-1:123456789012:Other\"]";
    let config = sns_source("sns", &keys.pattern(), &keys.ca, only_other);
    let upstream = Upstream::start().await;
    let gateway =
        TestGateway::start_with_clock(&config, &upstream, &[], clock_at(VECTOR_TIME)).await;
    let body = &sns_bodies(&keys.url("/c.pem"))[0];
    let answer = gateway
        .post("/hooks/sns", &headers(&SNS_HEADERS), body)
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(keys.requests(), 0, "refused before any fetch");
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

fn google_source(name: &str, keys: &KeyServer, v: &Value, email: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\npath = \"/hooks/{name}\"\npreset = \"google-pubsub\"\n\
         upstream = \"{{upstream}}/{name}\"\n\
         signature = {{ audience = \"{}\", email = \"{email}\", key_url = \"{}\", \
         key_host_pattern = \"{}\", key_server_ca = \"{}\" }}\n\n",
        text(v, "audience"),
        keys.url("/oauth2/v3/certs"),
        keys.pattern(),
        keys.ca.display()
    )
}

#[tokio::test]
async fn google_pubsub_token_is_verified_with_the_fetched_jwks() {
    let keys = KeyServer::start("keyfetch-google").await;
    let v = vector("jwt_google");
    keys.route("/oauth2/v3/certs", Route::ok(text(&v, "jwks"), 21600));
    let email = "push@my-project.iam.gserviceaccount.com";
    let config = google_source("pubsub", &keys, &v, email)
        + &google_source(
            "other-account",
            &keys,
            &v,
            "other@my-project.iam.gserviceaccount.com",
        );
    let upstream = Upstream::start().await;
    let now = v["now"].as_i64().unwrap();
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock_at(now)).await;
    let headers = vector_headers(&v);
    let body = text(&v, "body").as_bytes().to_vec();
    let answer = gateway.post("/hooks/pubsub", &headers, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let received = &upstream.received()[0];
    assert_eq!(received.body, body, "byte-exact");
    // The token does not sign the body: the message id is passed on as unsigned.
    assert_eq!(received.headers["x-hookgate-unsigned-event-id"], "1");

    let token = headers[0].1.clone();
    let mut refused = Vec::new();
    // One byte of the token's signature changed.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    refused.push(String::from_utf8(tampered).unwrap());
    for key in [
        "token_signed_by_other_key",
        "token_hs256_with_public_key",
        "token_alg_none",
    ] {
        refused.push(format!("Bearer {}", text(&v, key)));
    }
    for value in refused {
        let h = vec![("Authorization".to_string(), value)];
        let answer = gateway.post("/hooks/pubsub", &h, &body).await;
        assert_eq!(answer.status, 401, "{}", answer.text());
    }
    let answer = gateway.post("/hooks/pubsub", &[], &body).await;
    assert_eq!(answer.error_code(), "missing_signature");
    // Another service account configured: the same token is refused.
    let answer = gateway.post("/hooks/other-account", &headers, &body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(upstream.count(), 1);
    // Two sources with their own caches, many deliveries: two fetches.
    assert_eq!(keys.requests(), 2);
    // After the token's exp (1 h) it is refused.
    gateway.shutdown().await;
    let late =
        TestGateway::start_with_clock(&config, &upstream, &[], clock_at(now + 3600 + 61)).await;
    let answer = late.post("/hooks/pubsub", &headers, &body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    late.shutdown().await;
}

#[tokio::test]
async fn google_pubsub_jwks_unreachable_answers_503() {
    let keys = KeyServer::start("keyfetch-google-down").await;
    let v = vector("jwt_google");
    keys.route(
        "/oauth2/v3/certs",
        Route {
            status: 503,
            body: b"unavailable".to_vec(),
            headers: Vec::new(),
        },
    );
    let config = google_source(
        "pubsub",
        &keys,
        &v,
        "push@my-project.iam.gserviceaccount.com",
    );
    let upstream = Upstream::start().await;
    let now = v["now"].as_i64().unwrap();
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock_at(now)).await;
    let body = text(&v, "body").as_bytes().to_vec();
    let answer = gateway
        .post("/hooks/pubsub", &vector_headers(&v), &body)
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.error_code(), "key_fetch_failed");
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_for_one_url_share_one_fetch() {
    use hookgate::keyfetch::{pinned, KeyFetcher, KeyFormat};
    use hookgate::scheme::keys::KeyKind;
    let keys = KeyServer::start("keyfetch-coalesce").await;
    let v = vector("sns");
    keys.route("/c.pem", Route::ok(text(&v, "public_key"), 300));
    let fetcher = KeyFetcher::new(KeyFormat::Pem(KeyKind::Rsa), Some(keys.ca.clone()), None);
    let pattern = pinned::HostPattern::parse(&keys.pattern()).unwrap();
    let url = pinned::check(&keys.url("/c.pem"), &[pattern], Some(".pem")).unwrap();
    let clock: SharedClock = clock_at(VECTOR_TIME);
    let all = futures_util::future::join_all((0..16).map(|_| fetcher.keys(&url, &clock))).await;
    assert!(all.iter().all(|r| r.as_ref().is_ok_and(|k| k.len() == 1)));
    assert_eq!(fetcher.fetch_count(), 1);
    assert_eq!(keys.requests(), 1);
}

#[tokio::test]
async fn plaid_vector_with_the_configured_key() {
    let v = vector("jwt_plaid");
    let key = text(&v, "key").replace('"', "\\\"");
    let config = format!(
        "[[source]]\nname = \"plaid\"\npath = \"/hooks/plaid\"\npreset = \"plaid\"\n\
         upstream = \"{{upstream}}/plaid\"\nsignature = {{ public_keys = [{{ value = \"{key}\" }}] }}\n"
    );
    let upstream = Upstream::start().await;
    let now = v["now"].as_i64().unwrap();
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], clock_at(now)).await;
    let headers = vector_headers(&v);
    let body = text(&v, "body").as_bytes().to_vec();
    let answer = gateway.post("/hooks/plaid", &headers, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.received()[0].body, body, "byte-exact");
    // The token carries the body's SHA-256: one byte changed is refused.
    let mut tampered = body.clone();
    tampered[10] ^= 0x01;
    let answer = gateway.post("/hooks/plaid", &headers, &tampered).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    // An exact replay is a duplicate; after 5 minutes the token is too old.
    gateway
        .post("/hooks/plaid", &headers, &body)
        .await
        .assert_delivered_duplicate();
    gateway.shutdown().await;
    let late = TestGateway::start_with_clock(&config, &upstream, &[], clock_at(now + 6 * 60)).await;
    let answer = late.post("/hooks/plaid", &headers, &body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(upstream.count(), 1);
    late.shutdown().await;
}

#[tokio::test]
async fn mailgun_body_signature_vector() {
    let v = vector("mailgun");
    let config =
        "[[source]]\nname = \"mailgun\"\npath = \"/hooks/mailgun\"\npreset = \"mailgun\"\n\
         upstream = \"{upstream}/mailgun\"\nsecrets = [{ env = \"MAILGUN_KEY\" }]\n";
    let env = [("MAILGUN_KEY", text(&v, "signing_key"))];
    let upstream = Upstream::start().await;
    let now = v["now"].as_i64().unwrap();
    let gateway = TestGateway::start_with_clock(config, &upstream, &env, clock_at(now)).await;
    let headers = vector_headers(&v);
    let body = text(&v, "body").as_bytes().to_vec();
    let answer = gateway.post("/hooks/mailgun", &headers, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let received = &upstream.received()[0];
    assert_eq!(received.body, body, "byte-exact");
    let token = serde_json::from_slice::<Value>(&body).unwrap()["signature"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(received.headers["x-hookgate-event-id"], token.as_str());
    // A byte of the signed token or timestamp changed: refused.
    for field in ["\"token\": \"", "\"timestamp\": \""] {
        let at = String::from_utf8_lossy(&body).find(field).unwrap() + field.len();
        let mut tampered = body.clone();
        tampered[at] ^= 0x01;
        let answer = gateway.post("/hooks/mailgun", &headers, &tampered).await;
        assert_eq!(answer.status, 401, "{field}: {}", answer.text());
    }
    // A replay of the token is a duplicate; no signature object at all is refused.
    gateway
        .post("/hooks/mailgun", &headers, &body)
        .await
        .assert_delivered_duplicate();
    let answer = gateway
        .post("/hooks/mailgun", &headers, b"{\"event-data\":{}}")
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[test]
fn configuration_of_fetched_keys_is_checked_at_start() {
    let parse = |text: &str| {
        hookgate::config::parse(
            &text.replace("{upstream}", "http://127.0.0.1:9"),
            std::path::Path::new("."),
            &HashMap::new(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let source = |preset: &str, signature: &str| {
        format!(
            "[[source]]\nname = \"s\"\npath = \"/s\"\npreset = \"{preset}\"\n\
             upstream = \"{{upstream}}\"\nsignature = {{ {signature} }}\n"
        )
    };
    assert!(parse(&source("sns", "")).is_ok());
    let cases = [
        (source("google-pubsub", "email = \"a@b.c\""), "audience"),
        (
            source(
                "google-pubsub",
                "audience = \"x\", key_url = \"https://evil.test/certs\"",
            ),
            "key_url",
        ),
        (
            source(
                "google-pubsub",
                "audience = \"x\", key_url = \"http://www.googleapis.com/oauth2/v3/certs\"",
            ),
            "key_url",
        ),
        (
            source("sns", "key_host_pattern = \"*.com\""),
            "key_host_pattern",
        ),
        (source("sns", "audience = \"x\""), "audience"),
        (source("plaid", ""), "public_keys"),
        (
            source("stripe", "key_url = \"https://x.example/k\""),
            "key_url",
        ),
    ];
    for (text, key) in cases {
        let error = parse(&text).expect_err(&text);
        assert!(error.contains(key), "{error}");
    }
}

#[test]
fn preset_snippets_of_the_new_presets_are_valid_configuration() {
    for (preset, env) in [
        ("sns", vec![]),
        ("google-pubsub", vec![]),
        ("paypal", vec![]),
        (
            "plaid",
            vec![(
                "PLAID_PUBLIC_KEY",
                vector("jwt_plaid")["key"].as_str().unwrap().to_string(),
            )],
        ),
        (
            "mailgun",
            vec![("MAILGUN_SECRET", "key-0123456789".to_string())],
        ),
    ] {
        let output = hookgate().args(["presets", preset]).output().unwrap();
        assert!(output.status.success(), "{preset}");
        let text = String::from_utf8(output.stdout).unwrap();
        let snippet = &text[text.find("[[source]]").expect("a snippet")..];
        let env: HashMap<String, String> =
            env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        hookgate::config::parse(snippet, std::path::Path::new("."), &env)
            .unwrap_or_else(|e| panic!("{preset}: {e}\n{snippet}"));
    }
}

#[tokio::test]
async fn google_pubsub_refetches_the_jwks_for_an_unknown_key_id_at_most_every_five_minutes() {
    let keys = KeyServer::start("keyfetch-google-rotate").await;
    let v = vector("jwt_google");
    // The cached set predates the key the token names.
    let mut retired: Value = serde_json::from_str(text(&v, "jwks")).unwrap();
    for key in retired["keys"].as_array_mut().unwrap() {
        key["kid"] = "retired".into();
    }
    keys.route("/oauth2/v3/certs", Route::ok(&retired.to_string(), 21600));
    let config = google_source(
        "pubsub",
        &keys,
        &v,
        "push@my-project.iam.gserviceaccount.com",
    );
    let upstream = Upstream::start().await;
    let clock = clock_at(v["now"].as_i64().unwrap());
    let shared: SharedClock = clock.clone();
    let gateway = TestGateway::start_with_clock(&config, &upstream, &[], shared).await;
    let (headers, body) = (vector_headers(&v), text(&v, "body").as_bytes().to_vec());
    for _ in 0..3 {
        let answer = gateway.post("/hooks/pubsub", &headers, &body).await;
        assert_eq!(answer.status, 401, "{}", answer.text());
    }
    assert_eq!(
        keys.requests(),
        1,
        "unknown key ids refetch at most every 5 min"
    );
    keys.route("/oauth2/v3/certs", Route::ok(text(&v, "jwks"), 21600));
    clock.advance(Duration::from_secs(5 * 60));
    let answer = gateway.post("/hooks/pubsub", &headers, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(keys.requests(), 2);
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_key_server_that_never_answers_times_out() {
    use hookgate::keyfetch::{pinned, FetchError, KeyFetcher, KeyFormat, FETCH_TIMEOUT};
    // Connections are accepted by the kernel, and nothing is ever answered.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let fetcher = KeyFetcher::new(KeyFormat::Jwks, None, None);
    let pattern = pinned::HostPattern::parse(&format!("localhost:{port}")).unwrap();
    let url = pinned::check(&format!("https://localhost:{port}/certs"), &[pattern], None).unwrap();
    let clock: SharedClock = clock_at(VECTOR_TIME);
    let started = tokio::time::Instant::now();
    assert_eq!(
        fetcher.keys(&url, &clock).await.err(),
        Some(FetchError::Timeout)
    );
    assert!(started.elapsed() >= FETCH_TIMEOUT);
    drop(silent);
}

#[tokio::test]
async fn malformed_and_forged_messages_are_refused_without_fetching() {
    let keys = KeyServer::start("keyfetch-abuse").await;
    let v = vector("sns");
    keys.route("/c.pem", Route::ok(text(&v, "public_key"), 300));
    let g = vector("jwt_google");
    keys.route("/oauth2/v3/certs", Route::ok(text(&g, "jwks"), 300));
    let config = sns_source("sns", &keys.pattern(), &keys.ca, "")
        + &google_source(
            "pubsub",
            &keys,
            &g,
            "push@my-project.iam.gserviceaccount.com",
        );
    let upstream = Upstream::start().await;
    let gateway =
        TestGateway::start_with_clock(&config, &upstream, &[], clock_at(VECTOR_TIME)).await;
    let good = String::from_utf8(sns_bodies(&keys.url("/c.pem"))[1].clone()).unwrap();
    let evil_url = "https://evil.test/c.pem";
    let forged = [
        "not json".to_string(),
        "[]".to_string(),
        good.replace("\"SignatureVersion\": \"2\"", "\"SignatureVersion\": \"3\""),
        good.replace("\"Type\": \"Notification\"", "\"Type\": \"Ping\""),
        good.replace("\"Signature\": \"", "\"Signature\": \"!!"),
        good.replace("\"MessageId\"", "\"MessageID\""),
        // A second SigningCertURL after the pinned one: duplicate keys are refused, so no
        // parser can be made to read the other one.
        good.replacen(
            "{",
            &format!("{{\n  \"SigningCertURL\": \"{evil_url}\","),
            1,
        ),
    ];
    for body in &forged {
        let answer = gateway
            .post("/hooks/sns", &headers(&SNS_HEADERS), body.as_bytes())
            .await;
        assert_eq!(answer.status, 401, "{body}: {}", answer.text());
        assert_eq!(answer.error_code(), "bad_signature");
    }
    assert_eq!(keys.requests(), 0);
    // Google: a repeated Authorization header, a token that is not one, a huge one.
    let body = text(&g, "body").as_bytes();
    let token = vector_headers(&g)[0].1.clone();
    let cases = [
        vec![
            ("Authorization".to_string(), token.clone()),
            ("Authorization".to_string(), token.clone()),
        ],
        headers(&[("Authorization", "Bearer not.a.token")]),
        headers(&[("Authorization", &format!("Bearer {}", "a".repeat(20_000)))]),
    ];
    for h in &cases {
        let answer = gateway.post("/hooks/pubsub", h, body).await;
        assert!(
            answer.status == 401 || answer.status == 431,
            "{}: {}",
            answer.status,
            answer.text()
        );
    }
    assert_eq!(upstream.count(), 0);
    gateway.shutdown().await;
}
