//! The outbound sender through real sockets: what it signs, the gateway verifies (every
//! preset); retry schedules against a scripted local server, checked without real waiting; and
//! the sidecar endpoint (on the durable engine): acceptance, duplicates, pause and templates.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hookgate::delivery::{Engine, EngineIo, EngineOptions, SqliteStore, TargetSpec};
use hookgate::sender::deliver::{AttemptResult, DeliveryOutcome, Sender, Sleeper};
use hookgate::sender::retry::RetryPolicy;
use hookgate::sender::{now_secs, sample, Signer};
use hookgate::sidecar::Sidecar;

/// Records requested delays and returns at once.
#[derive(Default, Clone)]
struct RecordingSleeper(Arc<Mutex<Vec<Duration>>>);

impl Sleeper for RecordingSleeper {
    fn sleep(
        &self,
        delay: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(delay);
        Box::pin(async {})
    }
}

impl RecordingSleeper {
    fn delays(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

fn mins(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|m| Duration::from_secs(m * 60)).collect()
}

#[tokio::test]
async fn what_the_sender_signs_the_gateway_accepts_for_every_preset() {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&all_presets_config(), &upstream, &ENV).await;
    let mut forwarded = 0;
    for preset in PRESETS {
        let secret = if preset == "standard-webhooks" {
            NEW_WH
        } else {
            NEW
        };
        let signer = Signer::for_preset(preset, Some(secret)).unwrap();
        let now = now_secs();
        let event = sample::event(preset, &sample::new_id("evt_rt_"), now, None);
        let headers: Vec<(String, String)> = signer
            .headers(&event, now, 1)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let path = format!("/hooks/{preset}");
        let answer = gateway.post(&path, &headers, &event.body).await;
        assert_eq!(answer.status, 202, "{preset}: {}", answer.text());
        forwarded += 1;
        assert_eq!(
            upstream.received().last().unwrap().body,
            event.body,
            "{preset}"
        );

        if preset != "certifyclouds" {
            // A one-byte change to the body breaks every signature.
            let mut body = event.body.to_vec();
            let last = body
                .iter()
                .rposition(|b| b.is_ascii_alphanumeric())
                .unwrap();
            body[last] = if body[last] == b'0' { b'1' } else { b'0' };
            let answer = gateway.post(&path, &headers, &body).await;
            assert_eq!(
                answer.status,
                401,
                "{preset} one-byte change: {}",
                answer.text()
            );
        }
    }
    assert_eq!(upstream.count(), forwarded);
    gateway.shutdown().await;
}

async fn deliver(
    upstream: &Upstream,
    preset: &str,
    policy: &RetryPolicy,
    sleeper: &RecordingSleeper,
) -> hookgate::sender::deliver::Report {
    let signer = Signer::for_preset(preset, Some(NEW)).unwrap();
    let event = sample::event(preset, "evt_retry", now_secs(), None);
    let url = format!("{}/in", upstream.url()).parse().unwrap();
    Sender::default()
        .deliver(&url, &signer, &event, policy, sleeper, |_| {})
        .await
}

#[tokio::test]
async fn server_errors_are_retried_on_the_providers_schedule() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(500), Reply::status(502), Reply::status(503)]);
    let sleeper = RecordingSleeper::default();
    let policy = RetryPolicy::parse("cloudkeep").unwrap();
    let report = deliver(&upstream, "cloudkeep", &policy, &sleeper).await;
    assert_eq!(report.outcome, DeliveryOutcome::Delivered);
    assert_eq!(report.attempts.len(), 4, "delivered on the 4th attempt");
    assert_eq!(sleeper.delays(), mins(&[1, 5, 30]));
    assert_eq!(report.attempts[3].waited, Duration::from_secs(30 * 60));
    assert_eq!(report.attempts[0].result, AttemptResult::Status(500));
    assert_eq!(upstream.count(), 4);
}

#[tokio::test]
async fn client_errors_are_final_except_408_and_429() {
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::status(400));
    let sleeper = RecordingSleeper::default();
    let policy = RetryPolicy::parse("certifyclouds").unwrap();
    let report = deliver(&upstream, "certifyclouds", &policy, &sleeper).await;
    assert_eq!(report.outcome, DeliveryOutcome::Rejected(400));
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(upstream.count(), 1);

    let upstream = Upstream::start().await;
    upstream.script([
        Reply::status(429).with_header("retry-after", "7"),
        Reply::status(408),
    ]);
    let sleeper = RecordingSleeper::default();
    let report = deliver(&upstream, "certifyclouds", &policy, &sleeper).await;
    assert_eq!(report.outcome, DeliveryOutcome::Delivered);
    // Retry-After (7 s) replaces the scheduled 2 s; then the schedule's 5 s.
    assert_eq!(
        sleeper.delays(),
        [Duration::from_secs(7), Duration::from_secs(5)]
    );
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried_and_each_attempt_is_resigned() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(600))]);
    let sleeper = RecordingSleeper::default();
    let mut policy = RetryPolicy::parse("corgea").unwrap();
    policy.timeout = Duration::from_millis(200);
    let report = deliver(&upstream, "corgea", &policy, &sleeper).await;
    assert_eq!(report.outcome, DeliveryOutcome::Delivered);
    assert_eq!(report.attempts[0].result, AttemptResult::Timeout);
    assert_eq!(sleeper.delays(), [Duration::from_secs(2)]);
    // Corgea sends a new delivery id on every attempt, each correctly signed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = upstream.received();
    assert_eq!(got.len(), 2);
    assert_ne!(
        got[0].headers["x-corgea-delivery"],
        got[1].headers["x-corgea-delivery"]
    );
    for r in &got {
        assert_eq!(r.headers["x-corgea-signature"], hex_sig(NEW, &r.body));
        assert_eq!(r.headers["user-agent"], "Corgea-Webhooks/1.0");
    }

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let signer = Signer::for_preset("corgea", Some(NEW)).unwrap();
    let event = sample::event("corgea", "evt_refused", now_secs(), None);
    let url = format!("http://{closed}/in").parse().unwrap();
    let sleeper = RecordingSleeper::default();
    let report = Sender::default()
        .deliver(
            &url,
            &signer,
            &event,
            &RetryPolicy::parse("corgea").unwrap(),
            &sleeper,
            |_| {},
        )
        .await;
    assert_eq!(report.outcome, DeliveryOutcome::Exhausted);
    assert_eq!(report.attempts.len(), 3, "Corgea makes 3 attempts");
    assert!(matches!(report.attempts[0].result, AttemptResult::Error(_)));
    assert_eq!(
        sleeper.delays(),
        [Duration::from_secs(2), Duration::from_secs(4)]
    );
}

#[tokio::test]
async fn exponential_policy_stops_at_its_window() {
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::status(500));
    let sleeper = RecordingSleeper::default();
    let policy = RetryPolicy::parse("policycortex").unwrap();
    let report = deliver(&upstream, "policycortex", &policy, &sleeper).await;
    assert_eq!(report.outcome, DeliveryOutcome::Exhausted);
    // 1, 2, 4 … 512 minutes fit in 24 h (1023 min); the next (1024) would not.
    assert_eq!(
        sleeper.delays(),
        mins(&[1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
    );
    assert_eq!(report.attempts.len(), 11);
}

const OUTBOUND: &str = r#"
[[source]]
name = "unused"
path = "/unused"
preset = "github"
upstream = "{upstream}/unused"
secrets = [{ value = "unused-but-required" }]

[outbound]

[[outbound.target]]
name = "corgea"
url = "{upstream}/corgea"
preset = "corgea"
secret = { env = "S" }
retry = "none"
concurrency = 1
pause_after = 2

[[outbound.target]]
name = "templated"
url = "{upstream}/templated"
preset = "corgea"
secret = { env = "S" }
retry = "none"
template = '{"kind": "{{event_type}}", "id": "{{event_id}}", "at": {{time}}, "event": {{payload}}}'
"#;

async fn outbound(upstream: &Upstream) -> (std::net::SocketAddr, Sidecar) {
    let text = OUTBOUND.replace("{upstream}", &upstream.url());
    let env: std::collections::HashMap<String, String> =
        [("S".to_string(), NEW.to_string())].into();
    let config = hookgate::config::parse(&text, std::path::Path::new("."), &env).unwrap();
    let outbound = config.outbound.as_ref().unwrap();
    let dir = temp_dir(&format!("sidecar-{}", sample::new_id("")));
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let targets = outbound
        .targets
        .iter()
        .map(TargetSpec::from_outbound)
        .collect();
    let engine = Engine::start(store, targets, EngineOptions::default(), EngineIo::real())
        .await
        .unwrap();
    let sidecar = Sidecar::new(outbound, engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hookgate::server::run(
        listener,
        sidecar.service(),
        std::future::pending(),
    ));
    (addr, sidecar)
}

#[tokio::test]
async fn outbound_endpoint_accepts_queues_and_delivers_signed() {
    let upstream = Upstream::start().await;
    let (addr, _) = outbound(&upstream).await;
    let h = headers(&[
        ("X-Hookgate-Event-Type", "scan.completed"),
        ("X-Hookgate-Event-Id", "evt_side_1"),
    ]);
    let answer = send(
        addr,
        "POST",
        "/outbound/corgea",
        &h,
        br#"{"issues_found":3}"#,
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(json["delivery_id"].as_str().unwrap().starts_with("dlv_"));
    assert_eq!(json["event_id"], "evt_side_1");
    upstream.wait_for_requests(1, LIMIT).await;
    let got = &upstream.received()[0];
    assert_eq!(got.body.as_ref(), br#"{"issues_found":3}"#);
    assert_eq!(got.headers["x-corgea-signature"], hex_sig(NEW, &got.body));
    assert_eq!(got.headers["x-corgea-event"], "scan.completed");

    let answer = send(addr, "POST", "/outbound/nope", &[], b"{}").await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (404, "unknown_target")
    );
}

#[tokio::test]
async fn outbound_same_event_id_is_stored_and_delivered_once() {
    let upstream = Upstream::start().await;
    let (addr, sidecar) = outbound(&upstream).await;
    let h = headers(&[("X-Hookgate-Event-Id", "evt_twice")]);
    let first = send(addr, "POST", "/outbound/corgea", &h, b"{}").await;
    assert_eq!(first.status, 202, "{}", first.text());
    let first: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(first["duplicate"], false);
    let again = send(addr, "POST", "/outbound/corgea", &h, b"{}").await;
    assert_eq!(again.status, 200, "{}", again.text());
    let again: serde_json::Value = serde_json::from_slice(&again.body).unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["delivery_id"], first["delivery_id"]);
    upstream.wait_for_requests(1, LIMIT).await;
    let engine = sidecar.engine();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while engine.stats().await.unwrap().queue.delivered < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded as delivered"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn outbound_target_pauses_after_consecutive_failures_and_resumes() {
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::status(500));
    let (addr, _) = outbound(&upstream).await;
    for _ in 0..2 {
        assert_eq!(
            send(addr, "POST", "/outbound/corgea", &[], b"{}")
                .await
                .status,
            202
        );
    }
    upstream.wait_for_requests(2, LIMIT).await;
    let mut paused = false;
    for _ in 0..100 {
        let status = send(addr, "GET", "/outbound/corgea", &[], b"").await;
        let json: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
        if json["paused"] == true {
            assert_eq!(json["consecutive_failures"], 2);
            paused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(paused, "target paused after 2 failures");
    let refused = send(addr, "POST", "/outbound/corgea", &[], b"{}").await;
    assert_eq!(
        (refused.status.as_u16(), refused.error_code().as_str()),
        (503, "target_paused")
    );

    upstream.set_default(Reply::status(200));
    assert_eq!(
        send(addr, "POST", "/outbound/corgea/resume", &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(
        send(addr, "POST", "/outbound/corgea", &[], b"{}")
            .await
            .status,
        202
    );
    upstream.wait_for_requests(3, LIMIT).await;
}

#[tokio::test]
async fn outbound_templates_render_or_refuse() {
    let upstream = Upstream::start().await;
    let (addr, _) = outbound(&upstream).await;
    let h = headers(&[
        ("X-Hookgate-Event-Type", "issue.assigned"),
        ("X-Hookgate-Event-Id", "evt_t"),
    ]);
    let answer = send(addr, "POST", "/outbound/templated", &h, br#"{"a":[1,2]}"#).await;
    assert_eq!(answer.status, 202);
    upstream.wait_for_requests(1, LIMIT).await;
    let got = &upstream.received()[0];
    let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(json["kind"], "issue.assigned");
    assert_eq!(json["id"], "evt_t");
    assert_eq!(json["event"]["a"][1], 2);
    assert!(json["at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(got.headers["x-corgea-signature"], hex_sig(NEW, &got.body));

    // A payload that is not JSON cannot fill {{payload}}: refused, never sent.
    let answer = send(addr, "POST", "/outbound/templated", &h, b"not json").await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (400, "bad_event")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(upstream.count(), 1);
}
