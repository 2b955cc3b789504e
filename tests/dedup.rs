//! Deduplication through the real gateway: a delivered event is answered 2xx and not forwarded
//! again; a failed attempt never marks an event seen; concurrent copies reach the upstream
//! once; keys are scoped per source; an unsigned id cannot be used to slip a replay through;
//! replay protection holds at any uptime (injected clock, past 497 days) and for as long as a
//! delivery stamped ahead of the gateway's clock stays fresh.

mod common;

use std::time::Duration;

use common::*;
use hookgate::clock::{Clock, ManualClock};

const SECRET: &str = "dedup-test-secret";

const CONFIG: &str = r#"
[[source]]
name = "ck-a"
path = "/hooks/a"
preset = "cloudkeep"
upstream = "{upstream}/a"
upstream_timeout = "1s"
secrets = [{ env = "S" }]

[[source]]
name = "ck-b"
path = "/hooks/b"
preset = "cloudkeep"
upstream = "{upstream}/b"
secrets = [{ env = "S" }]

[[source]]
name = "gh"
path = "/hooks/gh"
preset = "github"
upstream = "{upstream}/gh"
secrets = [{ env = "S" }]
"#;

async fn start() -> (Upstream, TestGateway) {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(CONFIG, &upstream, &[("S", SECRET)]).await;
    (upstream, gateway)
}

/// A CloudKeep delivery of event `id`, signed as the seed documents.
fn cloudkeep(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    sign::cloudkeep_event(SECRET, id, now_secs())
}

#[tokio::test]
async fn duplicate_after_delivery_is_acknowledged_and_not_forwarded() {
    let (upstream, gateway) = start().await;
    let (h, body) = cloudkeep("evt_dup");
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 202);
    let again = gateway.post("/hooks/a", &h, &body).await;
    again.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn failed_delivery_is_not_marked_seen() {
    let (upstream, gateway) = start().await;
    upstream.script([Reply::status(500), Reply::status(503)]);
    let (h, body) = cloudkeep("evt_retry");
    // The upstream's failures go back to the sender, so its retry logic runs.
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 500);
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 503);
    // The third attempt is delivered, and only then does a repeat count as a duplicate.
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 202);
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 200);
    assert_eq!(upstream.count(), 3);
    gateway.shutdown().await;
}

#[tokio::test]
async fn upstream_timeout_releases_the_claim() {
    let (upstream, gateway) = start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(1500))]);
    let (h, body) = cloudkeep("evt_slow");
    let answer = gateway.post("/hooks/a", &h, &body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (504, "upstream_timeout")
    );
    // The retry is forwarded again rather than refused as in flight or duplicate.
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 202);
    assert_eq!(upstream.count(), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_releases_the_claim() {
    let upstream = Upstream::start().await;
    // Reserve a port and close it so nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = CONFIG.replace("{upstream}/a", &format!("http://{closed}/a"));
    let gateway = TestGateway::start(&config, &upstream, &[("S", SECRET)]).await;
    let (h, body) = cloudkeep("evt_down");
    for _ in 0..2 {
        let answer = gateway.post("/hooks/a", &h, &body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code().as_str()),
            (502, "upstream_unavailable")
        );
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn fifty_concurrent_copies_are_forwarded_once() {
    let (upstream, gateway) = start().await;
    upstream.set_default(Reply::delayed(200, Duration::from_millis(300)));
    let (h, body) = cloudkeep("evt_storm");
    let addr = gateway.addr;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (h, body) = (h.clone(), body.clone());
            tokio::spawn(async move { send(addr, "POST", "/hooks/a", &h, &body).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(upstream.count(), 1, "exactly one copy reaches the upstream");
    let delivered = statuses
        .iter()
        .filter(|a| a.status == 200 && !a.headers.contains_key("x-hookgate-duplicate"))
        .count();
    assert_eq!(delivered, 1);
    // The copies that arrived while the first was in flight waited for its outcome and are
    // answered as duplicates (this was 409 in_flight before in-flight waits).
    for answer in &statuses {
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let duplicates = statuses
        .iter()
        .filter(|a| {
            a.headers
                .get("x-hookgate-duplicate")
                .is_some_and(|v| v == "delivered")
        })
        .count();
    assert_eq!(duplicates, 49);
    gateway.shutdown().await;
}

#[tokio::test]
async fn same_id_on_two_sources_is_forwarded_to_both() {
    let (upstream, gateway) = start().await;
    let (h, body) = cloudkeep("evt_shared");
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 202);
    assert_eq!(gateway.post("/hooks/b", &h, &body).await.status, 202);
    let paths: Vec<String> = upstream
        .received()
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(paths, ["/a", "/b"]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn unsigned_delivery_id_cannot_smuggle_a_replay() {
    let (upstream, gateway) = start().await;
    let body = br#"{"action":"opened","number":7}"#;
    let sig = sign::github(SECRET, body);
    let first = headers(&[("X-Hub-Signature-256", &sig), ("X-GitHub-Delivery", "d-1")]);
    assert_eq!(gateway.post("/hooks/gh", &first, body).await.status, 202);
    // A replayer rewrites the unsigned delivery id: the body digest still recognises it.
    let replay = headers(&[("X-Hub-Signature-256", &sig), ("X-GitHub-Delivery", "d-2")]);
    let answer = gateway.post("/hooks/gh", &replay, body).await;
    answer.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    // The event id goes upstream in a header hookgate owns.
    // The id is not signed: the upstream gets it under a name that says so, never as the
    // trustworthy X-Hookgate-Event-Id.
    let first = &upstream.received()[0].headers;
    assert!(first.get("x-hookgate-event-id").is_none());
    assert_eq!(first["x-hookgate-unsigned-event-id"], "d-1");
    gateway.shutdown().await;
}

#[tokio::test]
async fn sender_hanging_up_does_not_lose_the_outcome() {
    let (upstream, gateway) = start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(300))]);
    let (h, body) = cloudkeep("evt_hangup");
    let addr = gateway.addr;
    let (h2, body2) = (h.clone(), body.clone());
    let sender = tokio::spawn(async move { send(addr, "POST", "/hooks/a", &h2, &body2).await });
    // The sender hangs up once its request has reached the upstream, long before the upstream
    // answers (300 ms).
    upstream.wait_for_requests(1, LIMIT).await;
    sender.abort();
    assert!(
        sender.await.unwrap_err().is_cancelled(),
        "the sender hung up"
    );
    assert_eq!(
        upstream.answered(),
        0,
        "the sender hung up before the answer"
    );
    retry_after_the_answer_is_a_duplicate(upstream, gateway, &h, &body).await;
}

/// Once the upstream has answered a delivery whose sender hung up, the sender's retry is a
/// duplicate (the upstream did accept it), not a second delivery. A retry arriving before the
/// claim settled waits for its outcome.
async fn retry_after_the_answer_is_a_duplicate(
    upstream: Upstream,
    gateway: TestGateway,
    h: &[(String, String)],
    body: &[u8],
) {
    upstream.wait_for_answers(1, LIMIT).await;
    let retry = gateway.post("/hooks/a", h, body).await;
    retry.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

/// Over HTTP/2 a sender's hang-up drops its request's future (hyper resets the stream), so
/// the forward's end runs detached: the claim still settles as the upstream decided.
#[tokio::test]
async fn sender_hanging_up_over_http2_does_not_lose_the_outcome() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (upstream, gateway) = start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(300))]);
    let (h, body) = cloudkeep("evt_hangup_h2");
    let io = TokioIo::new(tokio::net::TcpStream::connect(gateway.addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<
        _,
        _,
        http_body_util::Full<bytes::Bytes>,
    >(TokioExecutor::new(), io)
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let mut request = http::Request::post(format!("http://{}/hooks/a", gateway.addr));
    for (name, value) in &h {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
        .unwrap();
    let answer = tokio::spawn(async move { sender.send_request(request).await });
    upstream.wait_for_requests(1, LIMIT).await;
    // The whole connection goes away before the upstream answers (300 ms).
    answer.abort();
    connection.abort();
    assert!(connection.await.unwrap_err().is_cancelled());
    assert_eq!(upstream.answered(), 0, "hung up before the answer");
    retry_after_the_answer_is_a_duplicate(upstream, gateway, &h, &body).await;
}

/// A sender that closes its side of the connection once its request is sent (a half-close,
/// as some HTTP/1 clients do) still gets the upstream's answer, and the delivery is forwarded
/// once.
#[tokio::test]
async fn sender_half_closing_after_its_request_still_gets_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (upstream, gateway) = start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(100))]);
    let (h, body) = cloudkeep("evt_half_close");
    let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(&raw_post("/hooks/a", &h, &body))
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut reply))
        .await
        .expect("the gateway answered and closed within the limit")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    assert_eq!(upstream.count(), 1);
    gateway
        .post("/hooks/a", &h, &body)
        .await
        .assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_the_claims_of_requests_that_did_not_finish() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_secs(3))]);
    let config = format!("[limits]\nshutdown_grace = \"200ms\"\n{CONFIG}");
    let gateway = TestGateway::start(&config, &upstream, &[("S", SECRET)]).await;
    let store = gateway.gateway.store().clone();
    let scope = gateway
        .gateway
        .sources()
        .into_iter()
        .find(|s| &*s.name == "ck-a")
        .unwrap()
        .dedup
        .as_ref()
        .unwrap()
        .scope;
    let (h, body) = cloudkeep("evt_unfinished");
    let addr = gateway.addr;
    let pending = tokio::spawn(async move { send(addr, "POST", "/hooks/a", &h, &body).await });
    upstream.wait_for_requests(1, LIMIT).await;
    let key = hookgate::dedup::DedupKey::for_id(&scope, b"evt_unfinished");
    use hookgate::dedup::{ClaimOutcome, DedupStore};
    assert_eq!(
        store.claim(key, Duration::from_secs(60)).await.unwrap(),
        ClaimOutcome::InFlight
    );
    // The grace period (200 ms) ends long before the upstream (3 s) answers.
    gateway.shutdown().await;
    assert!(
        matches!(
            store.claim(key, Duration::from_secs(60)).await.unwrap(),
            ClaimOutcome::Claimed(_)
        ),
        "the unfinished request's claim was released, so the sender's retry will go through"
    );
    pending.abort();
}

/// 2^32 ticks of 10 ms, where the old `u32` expiry clock ran out.
const U32_TICKS_OF_10MS: Duration = Duration::from_millis((1 << 32) * 10);

#[tokio::test]
async fn a_repeat_past_497_days_of_uptime_is_still_a_duplicate() {
    let upstream = Upstream::start().await;
    // One minute before the old clock ran out; the repeats come after it.
    let clock = ManualClock::starting_now(U32_TICKS_OF_10MS - Duration::from_secs(60));
    let gateway =
        TestGateway::start_with_clock(CONFIG, &upstream, &[("S", SECRET)], clock.clone()).await;
    let (h, body) = sign::cloudkeep_event(SECRET, "evt_uptime", clock.wall_ms() / 1000);
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 202);
    for later in [Duration::from_secs(120), Duration::from_secs(17 * 3600)] {
        clock.advance(later);
        let again = gateway.post("/hooks/a", &h, &body).await;
        again.assert_delivered_duplicate();
    }
    assert_eq!(upstream.count(), 1, "the repeats were not forwarded");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_delivery_stamped_future_skew_ahead_is_caught_until_the_end_of_its_freshness() {
    let upstream = Upstream::start().await;
    let clock = ManualClock::starting_now(Duration::from_secs(3600));
    let gateway =
        TestGateway::start_with_clock(CONFIG, &upstream, &[("S", SECRET)], clock.clone()).await;
    // Stamped 5 minutes ahead (CloudKeep's future skew): fresh for 18 h + 5 m from now.
    let (h, body) = sign::cloudkeep_event(SECRET, "evt_ahead", clock.wall_ms() / 1000 + 300);
    assert_eq!(gateway.post("/hooks/a", &h, &body).await.status, 202);
    // One second before it goes stale, a replay is still a duplicate (the old rule kept the
    // key for 18 h only, so this replay was forwarded).
    clock.advance(Duration::from_secs(18 * 3600 + 300 - 1));
    let replay = gateway.post("/hooks/a", &h, &body).await;
    replay.assert_delivered_duplicate();
    // Then freshness takes over.
    clock.advance(Duration::from_secs(2));
    let stale = gateway.post("/hooks/a", &h, &body).await;
    assert_eq!(
        (stale.status.as_u16(), stale.error_code().as_str()),
        (401, "stale_timestamp")
    );
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[test]
fn a_dedup_memory_shorter_than_window_plus_skew_is_refused_with_the_arithmetic() {
    let dir = temp_dir("ttl-rule");
    let config = r#"
[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "http://127.0.0.1:9000/in"
secrets = [{ value = "s" }]
dedup = { ttl = "18h" }
"#;
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let out = hookgate()
        .current_dir(&dir)
        .args(["check-config", "gw.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("source[ck].dedup.ttl"), "{stderr}");
    assert!(
        stderr.contains(
            "18h is shorter than freshness.window 18h + freshness.future_skew 5m = 18h 5m"
        ),
        "{stderr}"
    );
    // The same for an unsigned timestamp (VaaS), and the preset default passes.
    let vaas = config
        .replace("cloudkeep", "vaas")
        .replace("ttl = \"18h\"", "ttl = \"25h\"");
    std::fs::write(dir.join("gw.toml"), vaas).unwrap();
    let out = hookgate()
        .current_dir(&dir)
        .args(["check-config", "gw.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("= 1day 1h 5m"));
    std::fs::write(
        dir.join("gw.toml"),
        config.replace("dedup = { ttl = \"18h\" }\n", ""),
    )
    .unwrap();
    let out = hookgate()
        .current_dir(&dir)
        .args(["check-config", "gw.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("kept 18h 5m"), "{stdout}");
}

#[test]
fn check_config_shows_the_upstream_timeout_under_the_senders_with_its_reason() {
    let dir = temp_dir("timeouts");
    let mut config = String::new();
    for (preset, auth) in [
        ("certifyclouds", "token = { secrets = [{ value = \"t\" }] }"),
        ("slack", "secrets = [{ value = \"s\" }]"),
        ("shopify", "secrets = [{ value = \"s\" }]"),
        ("github", "secrets = [{ value = \"s\" }]"),
        ("policycortex", "secrets = [{ value = \"s\" }]"),
    ] {
        config += &format!(
            "[[source]]\nname = \"{preset}\"\npath = \"/hooks/{preset}\"\npreset = \"{preset}\"\n\
             upstream = \"http://127.0.0.1:9000/in\"\n{auth}\n\n"
        );
    }
    std::fs::write(dir.join("gw.toml"), &config).unwrap();
    let out = hookgate()
        .current_dir(&dir)
        .args(["check-config", "gw.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for expected in [
        "(timeout 9s)\n               why: CertifyClouds waits 10 s per request",
        "(timeout 2s 700ms)\n               why: Slack expects an answer within 3 s",
        "(timeout 4s 500ms)\n               why: Shopify waits 5 s",
        "(timeout 9s)\n               why: GitHub expects a 2xx within 10 s",
        "(timeout 27s)\n               why: PolicyCortex times out after 30 s",
        "in-flight duplicates wait up to 9s",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in {stdout}");
    }
}
