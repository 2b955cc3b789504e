//! The delivery engine's admin endpoints through the real admin listener, with a real engine
//! on a store in a temporary folder and a recording upstream: listing, one delivery's
//! attempts, redelivery, pausing and resuming a target, the refusals of the admin plane, the
//! engine's metrics, and `delivery_off` without an engine.

mod common;

use std::sync::Arc;

use common::delivery::{event, open_store, settled, spec};
use common::ops::*;
use common::*;
use hookgate::delivery::{Engine, EngineIo, EngineOptions, EnqueueError};

const CONFIG: &str = "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\n\
    upstream = \"http://127.0.0.1:9/ck\"\nsecrets = [{ value = \"admin-secret-value\" }]\n";

/// An engine delivering target `t` to `upstream` (no retries), and an admin serving it.
async fn setup(name: &str, upstream: &Upstream) -> (Ops, Engine) {
    let dir = temp_dir(name);
    let store = Arc::new(open_store(&dir.join("data")));
    let target = spec(&format!("{}/t", upstream.url()), "none", "stripe");
    let engine = Engine::start(
        store,
        vec![target],
        EngineOptions::default(),
        EngineIo::real(),
    )
    .await
    .unwrap();
    let ops = start_ops_with_engine(&dir, CONFIG, engine.clone()).await;
    (ops, engine)
}

async fn get(ops: &Ops, path: &str) -> (u16, serde_json::Value) {
    let answer = send(ops.admin, "GET", path, &[], b"").await;
    let json = serde_json::from_slice(&answer.body).unwrap_or_default();
    (answer.status.as_u16(), json)
}

/// Enqueues `id` and waits until it is delivered or failed; returns its id.
async fn deliver(engine: &Engine, id: &str) -> i64 {
    let accepted = engine.enqueue(event(id, None)).await.unwrap();
    settled(engine, accepted.id).await;
    accepted.id
}

#[tokio::test]
async fn deliveries_are_listed_inspected_and_a_failed_one_redelivered() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(400)]);
    let (ops, engine) = setup("dadmin-list", &upstream).await;
    let failed = deliver(&engine, "evt_a").await;
    let delivered = deliver(&engine, "evt_b").await;

    let (status, all) = get(&ops, "/deliveries").await;
    assert_eq!(status, 200, "{all}");
    let ids: Vec<&str> = all["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evt_b", "evt_a"], "newest first");
    let (_, only_failed) = get(&ops, "/deliveries?state=failed&limit=10").await;
    let only_failed = only_failed["deliveries"].as_array().unwrap();
    assert_eq!(only_failed.len(), 1);
    assert_eq!(only_failed[0]["id"], format!("dlv_{failed}"));
    assert_eq!(only_failed[0]["state"], "failed");
    let (_, paged) = get(&ops, "/deliveries?limit=1").await;
    assert_eq!(paged["next_before"], format!("dlv_{delivered}"));

    let answer = send(
        ops.admin,
        "GET",
        &format!("/deliveries/dlv_{failed}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(!answer.text().contains("evt_a\\\"}"), "never the body");
    let detail: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(detail["delivery"]["event_id"], "evt_a");
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], 400);
    assert!(attempts[0]["latency_ms"].is_u64());
    assert!(detail["delivery"].get("body").is_none());

    for (path, code) in [
        ("/deliveries/dlv_999999", "unknown_delivery"),
        ("/deliveries/nonsense", "unknown_delivery"),
    ] {
        let answer = send(ops.admin, "GET", path, &[], b"").await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (404, code.into())
        );
    }
    for query in ["state=lost", "limit=501", "limit=0", "colour=red"] {
        let (status, _) = get(&ops, &format!("/deliveries?{query}")).await;
        assert_eq!(status, 400, "{query}");
    }

    // Refused without the token or from a web page; nothing is attempted.
    let path = format!("/deliveries/dlv_{failed}/redeliver");
    let json = ("Content-Type", "application/json");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for (h, expected) in [
        (vec![json], 401),
        (
            vec![
                json,
                ("Authorization", bearer.as_str()),
                ("Origin", "https://evil.example"),
            ],
            403,
        ),
    ] {
        let answer = send(ops.admin, "POST", &path, &headers(&h), b"{}").await;
        assert_eq!(answer.status, expected, "{}", answer.text());
    }
    assert_eq!(upstream.count(), 2);

    let answer = admin_post(ops.admin, &path, b"{}").await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let got = upstream.wait_for_requests(3, LIMIT).await;
    assert_eq!(got[2].body.as_ref(), br#"{"event":"evt_a"}"#);
    let detail = settled(&engine, failed).await;
    assert_eq!(
        detail.delivery.state,
        hookgate::delivery::DeliveryState::Delivered
    );
    assert_eq!(detail.attempts.len(), 2);

    let answer = admin_post(ops.admin, "/deliveries/dlv_424242/redeliver", b"{}").await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code()),
        (404, "unknown_delivery".into())
    );
    let answer = send(ops.admin, "GET", &path, &[], b"").await;
    assert_eq!(answer.status, 405);
}

#[tokio::test]
async fn targets_are_paused_and_resumed_by_the_operator_only() {
    let upstream = Upstream::start().await;
    let (ops, engine) = setup("dadmin-targets", &upstream).await;
    let (status, targets) = get(&ops, "/targets").await;
    assert_eq!(status, 200);
    assert_eq!(targets["targets"][0]["name"], "t");
    assert_eq!(targets["targets"][0]["mode"], "active");

    let json = ("Content-Type", "application/json");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for (h, expected) in [
        (vec![json], 401),
        (
            vec![json, ("Authorization", "Bearer wrong-token-0123456789")],
            401,
        ),
        (
            vec![
                json,
                ("Authorization", bearer.as_str()),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
        (vec![("Authorization", bearer.as_str())], 415),
    ] {
        let answer = send(ops.admin, "POST", "/targets/t/pause", &headers(&h), b"{}").await;
        assert_eq!(answer.status, expected, "{}", answer.text());
    }
    assert_eq!(
        engine.target("t").await.unwrap().health.mode,
        hookgate::delivery::TargetMode::Active
    );

    let answer = admin_post(ops.admin, "/targets/t/pause", b"{}").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["mode"], "paused");
    assert!(matches!(
        engine.enqueue(event("evt_p", None)).await,
        Err(EnqueueError::Paused(_))
    ));
    let (_, targets) = get(&ops, "/targets").await;
    assert_eq!(targets["targets"][0]["mode"], "paused");

    let answer = admin_post(ops.admin, "/targets/t/resume", b"{}").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["mode"], "active");
    deliver(&engine, "evt_after_resume").await;
    assert_eq!(upstream.count(), 1);

    for path in ["/targets/nope/pause", "/targets/nope/resume"] {
        let answer = admin_post(ops.admin, path, b"{}").await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (404, "unknown_target".into())
        );
    }
}

#[tokio::test]
async fn the_engines_figures_are_scraped_from_metrics() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(400)]);
    let (ops, engine) = setup("dadmin-metrics", &upstream).await;
    deliver(&engine, "evt_m1").await;
    deliver(&engine, "evt_m2").await;
    let text = send(ops.admin, "GET", "/metrics", &[], b"").await.text();
    for line in [
        r#"hookgate_delivery_queue{state="pending"} 0"#,
        r#"hookgate_delivery_queue{state="delivered"} 1"#,
        r#"hookgate_delivery_queue{state="failed"} 1"#,
        r#"hookgate_delivery_attempts_total{result="success"} 1"#,
        r#"hookgate_delivery_attempts_total{result="final"} 1"#,
        r#"hookgate_delivery_attempts_total{result="retry"} 0"#,
        "hookgate_delivery_oldest_pending_seconds 0",
        "hookgate_delivery_in_flight 0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    let commits = text
        .lines()
        .find_map(|l| l.strip_prefix("hookgate_delivery_commits_total "))
        .unwrap();
    assert!(commits.parse::<u64>().unwrap() >= 4, "{commits}");
    assert!(text.contains("hookgate_delivery_commit_seconds_total "));
    assert!(text.contains("hookgate_delivery_commit_max_seconds "));
    assert!(
        !text.contains("hookgate_outbound_"),
        "the stale families are gone"
    );
}

#[tokio::test]
async fn without_an_engine_the_endpoints_say_delivery_is_off() {
    let dir = temp_dir("dadmin-off");
    let ops = start_ops(&dir, CONFIG).await;
    for path in ["/deliveries", "/deliveries/dlv_1", "/targets"] {
        let answer = send(ops.admin, "GET", path, &[], b"").await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (404, "delivery_off".into())
        );
        assert!(answer.text().contains("[outbound]"));
    }
    for path in ["/deliveries/dlv_1/redeliver", "/targets/t/pause"] {
        let answer = admin_post(ops.admin, path, b"{}").await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (404, "delivery_off".into())
        );
    }
    // Still refused first without the token.
    let h = headers(&[("Content-Type", "application/json")]);
    let answer = send(ops.admin, "POST", "/targets/t/resume", &h, b"{}").await;
    assert_eq!(answer.status, 401);
}
