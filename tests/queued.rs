//! The inbound queued mode (`delivery = "queue"`) through the real interface: the binary
//! SIGKILLed with an event stored and its upstream down, `app::run` with the admin plane and
//! hot reload, and a store that fails under a running gateway.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hookgate::delivery::*;
use tokio::net::TcpListener;

/// The Standard Webhooks key of the queued sources, and its `whsec_` form.
const KEY: &[u8] = b"queued-mode-test-key-0123456789!";

fn secret() -> String {
    format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, KEY)
    )
}

/// A Standard Webhooks delivery of event `id` (the id is signed), stamped now.
fn signed(id: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut h = sign::standard_webhooks_headers(KEY, id, now_secs(), body);
    h.push(("Content-Type".into(), "application/json".into()));
    h
}

/// A queued Standard Webhooks source at `/hooks/q` delivering to `{upstream}/in`.
fn queued_source(upstream: &str, retry: &str) -> String {
    format!(
        "[[source]]\nname = \"q\"\npath = \"/hooks/q\"\npreset = \"standard-webhooks\"\n\
         upstream = \"{upstream}/in\"\nsecrets = [{{ value = \"{}\" }}]\n\
         delivery = \"queue\"\nretry = \"{retry}\"\n",
        secret()
    )
}

/// A loopback port nothing listens on (yet).
fn reserved_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_slice(&answer.body).unwrap_or_else(|_| panic!("not JSON: {}", answer.text()))
}

// ---------------------------------------------------------------- the binary, SIGKILLed

#[tokio::test(flavor = "multi_thread")]
async fn upstream_down_then_sigkill_then_delivered_once_byte_exact_after_restart() {
    let dir = temp_dir("queued-sigkill");
    let down = reserved_port();
    let config = format!(
        "{}[delivery]\ndata_dir = \"store\"\n",
        queued_source(
            &format!("http://{down}"),
            "custom:1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"
        )
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let body = br#"{"type":"invoice.paid","data":{"amount":12, "note":"spaces kept"}}"#;
    let id = "msg_queued_sigkill_1";

    let server = Server::start(&dir, &["--config", "gw.toml"], &[]);
    let answer = send(server.addr, "POST", "/hooks/q", &signed(id, body), body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let accepted = json(&answer);
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["event_id"], id);
    assert!(accepted["delivery_id"]
        .as_str()
        .unwrap()
        .starts_with("dlv_"));
    // The sender's retry of the same event after the 202: a duplicate, not stored again.
    let retry = send(server.addr, "POST", "/hooks/q", &signed(id, body), body).await;
    retry.assert_delivered_duplicate();
    server.kill(); // SIGKILL, the upstream never reached

    let upstream = Upstream::start_on(down).await;
    let server = Server::start(&dir, &["--config", "gw.toml"], &[]);
    let got = upstream.wait_for_requests(1, LIMIT).await;
    // After the restart the dedup memory is empty; the store still knows the event.
    let again = send(server.addr, "POST", "/hooks/q", &signed(id, body), body).await;
    again.assert_delivered_duplicate();
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("spaces kept"), "bodies never reach the log");

    assert_eq!(upstream.count(), 1, "delivered exactly once");
    let got = &got[0];
    assert_eq!(got.body.as_ref(), body, "byte-exact");
    assert_eq!(got.path_and_query, "/in");
    assert_eq!(got.headers["x-hookgate-event-id"], id);
    assert_eq!(got.headers["x-hookgate-source"], "q");
    assert_eq!(got.headers["webhook-id"], id, "the sender's headers pass");
    assert!(got.headers.contains_key("webhook-signature"));
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
    let store = SqliteStore::open(dir.join("store")).unwrap();
    let all = store.list(ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, DeliveryState::Delivered);
    assert_eq!(all[0].target, "source:q");
    assert_eq!(all[0].event_id, id);
}

// ---------------------------------------------------------------- app::run, admin and reload

/// `app::run` on `dir/gw.toml` with an admin listener; returns (gateway, admin, stop).
async fn run_app(dir: &Path) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let origin = hookgate::app::ConfigOrigin::File(dir.join("gw.toml"));
    let config = origin.load().unwrap();
    let listeners = hookgate::app::Listeners::bind(
        &config,
        Some("127.0.0.1:0".parse().unwrap()),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let gateway = listeners.gateway.local_addr().unwrap();
    let admin = listeners.admin.as_ref().unwrap().0.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hookgate::app::run(
        origin,
        config,
        listeners,
        hookgate::app::Options::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (gateway, admin, stop)
}

const ADMIN: &str = "queued-admin-token-0123456789";

async fn admin_get(admin: SocketAddr, path: &str) -> Answer {
    let auth = format!("Bearer {ADMIN}");
    send(
        admin,
        "GET",
        path,
        &headers(&[("Authorization", &auth)]),
        b"",
    )
    .await
}

async fn admin_reload(admin: SocketAddr) -> Answer {
    let auth = format!("Bearer {ADMIN}");
    let h = headers(&[
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ]);
    send(admin, "POST", "/reload", &h, b"{}").await
}

/// The queued source beside a sync one, with the admin plane.
fn side_by_side(upstream: &str, queued_path: &str) -> String {
    format!(
        "{}[[source]]\nname = \"s\"\npath = \"/hooks/s\"\npreset = \"standard-webhooks\"\n\
         upstream = \"{upstream}/sync\"\nsecrets = [{{ value = \"{}\" }}]\n\
         [delivery]\ndata_dir = \"store\"\n[admin]\ntoken = {{ value = \"{ADMIN}\" }}\n",
        queued_source(upstream, "custom:1s").replace("/in\"", &format!("{queued_path}\"")),
        secret()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_beside_sync_listed_by_admin_and_following_a_reload() {
    let dir = temp_dir("queued-app");
    let upstream = Upstream::start().await;
    std::fs::write(dir.join("gw.toml"), side_by_side(&upstream.url(), "/in")).unwrap();
    let (gateway, admin, stop) = run_app(&dir).await;

    // Sync: the upstream's own answer comes back, as before.
    upstream.script([Reply::status(418)]);
    let body = br#"{"n":"sync"}"#;
    let answer = send(gateway, "POST", "/hooks/s", &signed("msg_s1", body), body).await;
    assert_eq!(answer.status, 418, "{}", answer.text());

    // Queued: 202 from hookgate, and the upstream's refusal is the engine's to retry.
    upstream.script([Reply::status(500)]);
    let body = br#"{"n":"queued"}"#;
    let answer = send(gateway, "POST", "/hooks/q", &signed("msg_q1", body), body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let delivery = json(&answer)["delivery_id"].as_str().unwrap().to_string();
    let got = upstream.wait_for_requests(3, LIMIT).await;
    assert_eq!(got[1].body.as_ref(), body);
    assert_eq!(got[2].body.as_ref(), body, "retried after the 500");
    assert_eq!(got[2].headers["x-hookgate-event-id"], "msg_q1");

    // The admin plane lists it like an outbound delivery, with both attempts.
    let mut detail = serde_json::Value::Null;
    for _ in 0..200 {
        detail = json(&admin_get(admin, &format!("/deliveries/{delivery}")).await);
        if detail["delivery"]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
    assert_eq!(detail["delivery"]["target"], "source:q");
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 2);
    let targets = json(&admin_get(admin, "/targets").await);
    assert_eq!(targets["targets"][0]["name"], "source:q");
    let metrics = admin_get(admin, "/metrics").await.text();
    for line in [
        r#"hookgate_delivery_target_attempts_total{target="source:q",result="success"} 1"#,
        r#"hookgate_delivery_target_attempts_total{target="source:q",result="retry"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }

    // A reload moves the queued source's upstream; the next event goes there.
    std::fs::write(dir.join("gw.toml"), side_by_side(&upstream.url(), "/moved")).unwrap();
    let reloaded = admin_reload(admin).await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    let body = br#"{"n":"after reload"}"#;
    let answer = send(gateway, "POST", "/hooks/q", &signed("msg_q2", body), body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let got = upstream.wait_for_requests(4, LIMIT).await;
    assert_eq!(got[3].path_and_query, "/moved");
    assert_eq!(got[3].body.as_ref(), body);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_queues_without_a_store_open_is_refused() {
    let dir = temp_dir("queued-reload-refused");
    let upstream = Upstream::start().await;
    let sync_only = format!(
        "[[source]]\nname = \"q\"\npath = \"/hooks/q\"\npreset = \"standard-webhooks\"\n\
         upstream = \"{}/in\"\nsecrets = [{{ value = \"{}\" }}]\n\
         [admin]\ntoken = {{ value = \"{ADMIN}\" }}\n",
        upstream.url(),
        secret()
    );
    std::fs::write(dir.join("gw.toml"), &sync_only).unwrap();
    let (gateway, admin, stop) = run_app(&dir).await;
    let queued = format!(
        "{}[delivery]\ndata_dir = \"store\"\n[admin]\ntoken = {{ value = \"{ADMIN}\" }}\n",
        queued_source(&upstream.url(), "custom:1s")
    );
    std::fs::write(dir.join("gw.toml"), queued).unwrap();
    let refused = admin_reload(admin).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.text().contains("restart"), "{}", refused.text());
    // Still serving the previous (sync) configuration.
    let body = br#"{"n":1}"#;
    let answer = send(gateway, "POST", "/hooks/q", &signed("msg_r1", body), body).await;
    assert_eq!(answer.text(), UPSTREAM_BODY, "the upstream's own answer");
    assert_eq!(upstream.count(), 1);
    assert!(!dir.join("store").exists(), "no store was opened");
    let _ = stop.send(());
}

// ---------------------------------------------------------------- a store that fails

/// A SQLite store whose enqueues fail while `broken` is set (a full or failing disk).
struct Failing {
    inner: SqliteStore,
    broken: Arc<AtomicBool>,
}

impl DeliveryStore for Failing {
    fn enqueue(&self, delivery: NewDelivery, now_ms: i64) -> StoreFuture<'_, Enqueued> {
        if self.broken.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::Backend("disk I/O error".into())) });
        }
        self.inner.enqueue(delivery, now_ms)
    }
    fn recover(&self) -> StoreFuture<'_, u64> {
        self.inner.recover()
    }
    fn claim_due(
        &self,
        target: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Claimed>> {
        self.inner.claim_due(target, now_ms, lease_until_ms, limit)
    }
    fn next_due(&self, targets: Vec<String>) -> StoreFuture<'_, Option<i64>> {
        self.inner.next_due(targets)
    }
    fn record_attempt(
        &self,
        id: DeliveryId,
        attempt: AttemptRecord,
        outcome: AttemptOutcome,
        health: TargetHealth,
        history: u32,
    ) -> StoreFuture<'_, ()> {
        self.inner
            .record_attempt(id, attempt, outcome, health, history)
    }
    fn redeliver(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, DeliverySummary> {
        self.inner.redeliver(id, now_ms)
    }
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<DeliverySummary>> {
        self.inner.list(filter)
    }
    fn get(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryDetail>> {
        self.inner.get(id)
    }
    fn targets(&self) -> StoreFuture<'_, Vec<TargetHealth>> {
        self.inner.targets()
    }
    fn set_target(&self, health: TargetHealth) -> StoreFuture<'_, ()> {
        self.inner.set_target(health)
    }
    fn queue_stats(&self) -> StoreFuture<'_, QueueStats> {
        self.inner.queue_stats()
    }
    fn purge_finished(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        self.inner.purge_finished(before_ms)
    }
    fn commit_stats(&self) -> CommitStats {
        self.inner.commit_stats()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_cannot_commit_answers_503_and_releases_the_claim() {
    let dir = temp_dir("queued-failing");
    let upstream = Upstream::start().await;
    let text = format!(
        "{}[delivery]\ndata_dir = \"{}\"\n",
        queued_source(&upstream.url(), "custom:1s"),
        dir.join("store").display()
    );
    let config = hookgate::config::parse(&text, &dir, &std::collections::HashMap::new()).unwrap();
    let broken = Arc::new(AtomicBool::new(true));
    let store = Failing {
        inner: SqliteStore::open(dir.join("store")).unwrap(),
        broken: broken.clone(),
    };
    let client = hookgate::sender::deliver::Sender::default();
    let engine = Engine::start(
        Arc::new(store),
        hookgate::gateway::queue_targets(&config.sources, &client),
        EngineOptions::default(),
        EngineIo::real(),
    )
    .await
    .unwrap();
    let gateway = hookgate::Gateway::new(&config);
    gateway.set_engine(engine.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hookgate::serve(listener, gateway, std::future::pending()));

    let body = br#"{"n":"must not be lost"}"#;
    let h = signed("msg_fail_1", body);
    let refused = send(addr, "POST", "/hooks/q", &h, body).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_code(), "queue_unavailable");
    assert!(refused.headers.contains_key("retry-after"));
    assert!(!refused.text().contains("must not be lost"));
    assert_eq!(upstream.count(), 0);

    // The disk recovers; the sender's retry of the same event is not taken for a duplicate.
    broken.store(false, Ordering::SeqCst);
    let accepted = send(addr, "POST", "/hooks/q", &h, body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let got = upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(got[0].body.as_ref(), body);
    let again = send(addr, "POST", "/hooks/q", &h, body).await;
    again.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    engine.shutdown().await;
}

// ---------------------------------------------------------------- abuse

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_unverified_deliveries_never_reach_the_store() {
    let dir = temp_dir("queued-abuse");
    let upstream = Upstream::start().await;
    let text = format!(
        "{}[delivery]\ndata_dir = \"{}\"\n",
        queued_source(&upstream.url(), "custom:1s"),
        dir.join("store").display()
    );
    let config = hookgate::config::parse(&text, &dir, &std::collections::HashMap::new()).unwrap();
    let client = hookgate::sender::deliver::Sender::default();
    let engine = Engine::start(
        Arc::new(SqliteStore::open(dir.join("store")).unwrap()),
        hookgate::gateway::queue_targets(&config.sources, &client),
        EngineOptions::default(),
        EngineIo::real(),
    )
    .await
    .unwrap();
    let gateway = hookgate::Gateway::new(&config);
    gateway.set_engine(engine.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hookgate::serve(listener, gateway, std::future::pending()));

    let body = br#"{"n":1}"#;
    // A bad signature, a tampered body, a stale timestamp: refused, nothing stored.
    let mut bad = signed("msg_a1", body);
    bad[2].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    assert_eq!(send(addr, "POST", "/hooks/q", &bad, body).await.status, 401);
    let tampered = send(
        addr,
        "POST",
        "/hooks/q",
        &signed("msg_a2", body),
        b"{\"n\":2}",
    )
    .await;
    assert_eq!(tampered.status, 401);
    let old = (now_secs() - 3600).to_string();
    let stale = headers(&[
        ("webhook-id", "msg_a3"),
        ("webhook-timestamp", &old),
        (
            "webhook-signature",
            &sign::standard_webhooks(KEY, "msg_a3", &old, body),
        ),
    ]);
    assert_eq!(
        send(addr, "POST", "/hooks/q", &stale, body).await.status,
        401
    );
    let listed = engine.list(ListFilter::default()).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    // Forged hookgate headers are dropped: the upstream sees hookgate's own.
    let mut forged = signed("msg_a4", body);
    forged.push(("X-Hookgate-Event-Id".into(), "evt_forged".into()));
    forged.push(("X-Hookgate-Source".into(), "admin".into()));
    forged.push(("X-Forwarded-For".into(), "10.0.0.1".into()));
    let answer = send(addr, "POST", "/hooks/q", &forged, body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let got = upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(got[0].headers["x-hookgate-event-id"], "msg_a4");
    assert_eq!(got[0].headers["x-hookgate-source"], "q");
    assert_eq!(got[0].headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        got[0].headers.get_all("x-hookgate-event-id").iter().count(),
        1
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_queued_source_still_stores_and_delivers_on_resume() {
    let dir = temp_dir("queued-paused");
    let upstream = Upstream::start().await;
    std::fs::write(dir.join("gw.toml"), side_by_side(&upstream.url(), "/in")).unwrap();
    let (gateway, admin, stop) = run_app(&dir).await;
    let auth = format!("Bearer {ADMIN}");
    let h = headers(&[
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ]);
    let paused = send(admin, "POST", "/targets/source:q/pause", &h, b"{}").await;
    assert_eq!(paused.status, 200, "{}", paused.text());

    let body = br#"{"n":"while paused"}"#;
    let answer = send(gateway, "POST", "/hooks/q", &signed("msg_p1", body), body).await;
    assert_eq!(
        answer.status,
        202,
        "stored, not turned away: {}",
        answer.text()
    );
    let delivery = json(&answer)["delivery_id"].as_str().unwrap().to_string();
    let detail = json(&admin_get(admin, &format!("/deliveries/{delivery}")).await);
    assert_eq!(detail["delivery"]["state"], "pending", "{detail}");
    assert_eq!(detail["delivery"]["attempts"], 0, "{detail}");

    let resumed = send(admin, "POST", "/targets/source:q/resume", &h, b"{}").await;
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    let got = upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(got[0].body.as_ref(), body);
    assert_eq!(upstream.count(), 1);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_with_retry_after_and_drops_nothing() {
    let dir = temp_dir("queued-full");
    let down = reserved_port();
    let config = format!(
        "{}[delivery]\ndata_dir = \"store\"\nmax_pending = 2\n[admin]\ntoken = {{ value = \"{ADMIN}\" }}\n",
        queued_source(&format!("http://{down}"), "custom:1h")
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let (gateway, admin, stop) = run_app(&dir).await;
    for n in 1..=2 {
        let id = format!("msg_full_{n}");
        let answer = send(gateway, "POST", "/hooks/q", &signed(&id, b"{}"), b"{}").await;
        assert_eq!(answer.status, 202, "{}", answer.text());
    }
    let third = signed("msg_full_3", b"{}");
    let refused = send(gateway, "POST", "/hooks/q", &third, b"{}").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_code(), "queue_full");
    assert_eq!(refused.headers["retry-after"], "30");
    // Refused, not swallowed: the claim was released, so the same event is refused again
    // (not answered as a duplicate) until there is room.
    let again = send(gateway, "POST", "/hooks/q", &third, b"{}").await;
    assert_eq!(again.error_code(), "queue_full");
    let listed = json(&admin_get(admin, "/deliveries?state=pending").await);
    let pending = listed["deliveries"].as_array().unwrap();
    assert_eq!(pending.len(), 2, "{listed}");
    let _ = stop.send(());
}
