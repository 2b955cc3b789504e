//! Dedup shared by several gateway instances through a real `redis-server`: concurrent copies
//! spread over two instances reach the upstream once; a retry on the other instance is
//! recognised; a failure on one instance lets the retry through on the other; a claim whose
//! holder was killed lapses by itself; Redis going away is answered as documented (fail closed
//! by default, fail open by choice) and recovery is automatic; a copy arriving on one replica
//! while the other delivers waits for that outcome (woken through pub/sub); a promote Redis
//! refuses after a 2xx never opens a replay.

mod common;

use std::time::Duration;

use common::*;

const SECRET: &str = "redis-secret";

fn config(redis: &str, policy: &str) -> String {
    format!(
        r#"
[dedup]
backend = "redis"
redis = {{ url = "{redis}", timeout = "300ms", on_unavailable = "{policy}" }}

[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "{{upstream}}/ck"
upstream_timeout = "1s"
secrets = [{{ value = "{SECRET}" }}]
"#
    )
}

fn cloudkeep(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    sign::cloudkeep_event(SECRET, id, now_secs())
}

async fn two_instances(redis: &RedisServer, upstream: &Upstream) -> (TestGateway, TestGateway) {
    let text = config(&redis.url(), "fail_closed");
    (
        TestGateway::start(&text, upstream, &[]).await,
        TestGateway::start(&text, upstream, &[]).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_copies_over_two_instances_are_forwarded_once() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::delayed(200, Duration::from_millis(300)));
    let (a, b) = two_instances(&redis, &upstream).await;
    let (h, body) = cloudkeep("evt_r_storm");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            let (h, body) = (h.clone(), body.clone());
            tokio::spawn(async move { send(addr, "POST", "/hooks/ck", &h, &body).await })
        })
        .collect();
    let mut forwarded = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status.as_u16() {
            200 if !answer.headers.contains_key("x-hookgate-duplicate") => forwarded += 1,
            // Copies that arrived in flight waited for the outcome (409 in_flight before).
            200 => {}
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    }
    assert_eq!(forwarded, 1);
    assert_eq!(upstream.count(), 1, "exactly one copy reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_on_one_instance_is_a_duplicate_on_the_other() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let (a, b) = two_instances(&redis, &upstream).await;
    let (h, body) = cloudkeep("evt_r_dup");
    assert_eq!(a.post("/hooks/ck", &h, &body).await.status, 202);
    let again = b.post("/hooks/ck", &h, &body).await;
    again.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_on_one_instance_lets_the_retry_through_on_the_other() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(503)]);
    let (a, b) = two_instances(&redis, &upstream).await;
    let (h, body) = cloudkeep("evt_r_retry");
    assert_eq!(a.post("/hooks/ck", &h, &body).await.status, 503);
    assert_eq!(b.post("/hooks/ck", &h, &body).await.status, 202);
    assert_eq!(
        a.post("/hooks/ck", &h, &body).await.status,
        200,
        "now a duplicate"
    );
    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_claim_lapses_and_the_retry_goes_through() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    // The first delivery hangs in the upstream while its holder is killed.
    upstream.script([Reply::delayed(200, Duration::from_secs(30))]);
    let dir = temp_dir("redis-kill");
    std::fs::write(
        dir.join("gw.toml"),
        config(&redis.url(), "fail_closed").replace("{upstream}", &upstream.url()),
    )
    .unwrap();
    let holder = Server::start(&dir, &["--config", "gw.toml"], &[]);
    let short_wait = |text: String| {
        text.replace(
            "upstream_timeout = \"1s\"",
            "upstream_timeout = \"1s\"\ndedup = { inflight_wait = \"1s\" }",
        )
    };
    let (h, body) = cloudkeep("evt_r_killed");
    let holder_addr = holder.addr;
    let (h2, body2) = (h.clone(), body.clone());
    tokio::spawn(async move { send(holder_addr, "POST", "/hooks/ck", &h2, &body2).await });
    upstream.wait_for_requests(1, LIMIT).await;
    holder.kill();

    let other = TestGateway::start(
        &short_wait(config(&redis.url(), "fail_closed")),
        &upstream,
        &[],
    )
    .await;
    // It waits 1 s for the dead holder's outcome, then answers a status senders retry (was 409).
    let answer = other.post("/hooks/ck", &h, &body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (503, "in_flight")
    );
    assert!(answer.headers.contains_key("retry-after"));
    // The claim lives for the upstream timeout (1 s) plus 5 s; then it lapses by itself. No
    // event says so: each retry asks, and is held up to 1 s by the in-flight wait.
    let status = retry_until(
        "the dead holder's claim lapsed",
        Duration::from_secs(20),
        Duration::ZERO,
        || async {
            match other.post("/hooks/ck", &h, &body).await.status.as_u16() {
                503 => Err("503 in_flight".to_string()),
                status => Ok(status),
            }
        },
    )
    .await;
    assert_eq!(
        status, 202,
        "after the dead holder's claim lapsed, the retry was forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_and_recovers() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&config(&redis.url(), "fail_closed"), &upstream, &[]).await;
    let (h, body) = cloudkeep("evt_r_before");
    assert_eq!(gateway.post("/hooks/ck", &h, &body).await.status, 202);

    let port = redis.stop();
    let (h, body) = cloudkeep("evt_r_outage");
    let answer = gateway.post("/hooks/ck", &h, &body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (503, "dedup_unavailable")
    );
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(
        upstream.count(),
        1,
        "nothing is forwarded while dedup cannot be checked"
    );

    let _redis = RedisServer::start_on(port);
    // Redis is back (it logged so); the gateway's reconnect has no event of its own, so the
    // sender's retries ask until one goes through.
    let status = retry_until(
        "the gateway reconnected to Redis",
        LIMIT,
        Duration::from_millis(20),
        || async {
            match gateway.post("/hooks/ck", &h, &body).await.status.as_u16() {
                503 => Err("503 dedup_unavailable".to_string()),
                status => Ok(status),
            }
        },
    )
    .await;
    assert_eq!(status, 202, "recovered when Redis came back");
    assert_eq!(
        gateway.post("/hooks/ck", &h, &body).await.status,
        200,
        "and dedup works again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_by_choice() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&config(&redis.url(), "fail_open"), &upstream, &[]).await;
    drop(redis);
    let (h, body) = cloudkeep("evt_r_open");
    assert_eq!(gateway.post("/hooks/ck", &h, &body).await.status, 202);
    assert_eq!(
        gateway.post("/hooks/ck", &h, &body).await.status,
        202,
        "no dedup while Redis is down"
    );
    assert_eq!(upstream.count(), 2);
    let metrics = gateway.gateway.metrics().render();
    assert!(
        metrics.contains(r#"hookgate_dedup_fail_open_total{source="ck"} 2"#),
        "{metrics}"
    );
}

const TOKEN: &str = "cc-token";

fn certifyclouds(redis: &str) -> String {
    format!(
        r#"
[dedup]
backend = "redis"
redis = {{ url = "{redis}", timeout = "300ms" }}

[[source]]
name = "cc"
path = "/hooks/cc"
preset = "certifyclouds"
upstream = "{{upstream}}/cc"
token = {{ prefix = "Bearer ", secrets = [{{ value = "{TOKEN}" }}] }}
"#
    )
}

fn alert(note: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(
        r#"{{"title":"Secrets Expiring Soon","message":"{note}","timestamp":"{}","source":"CertifyClouds","fields":[]}}"#,
        iso_zoneless(now_secs())
    );
    (
        headers(&[("Authorization", &format!("Bearer {TOKEN}"))]),
        body.into_bytes(),
    )
}

/// The first attempt on replica `a` (upstream takes 3 s), the sender's retry on replica `b`
/// while the first is in flight, answered before CertifyClouds' own 10 s timeout.
async fn across_replicas(
    a: &TestGateway,
    b: &TestGateway,
    upstream: &Upstream,
    note: &str,
) -> (Answer, Answer) {
    let timeout = Duration::from_secs(10);
    first_and_retry_while_in_flight(
        upstream,
        (a.addr, b.addr),
        "/hooks/cc",
        alert(note),
        timeout,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_replica_waits_for_the_first_and_is_a_duplicate() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_secs(3))]);
    let text = certifyclouds(&redis.url());
    let a = TestGateway::start(&text, &upstream, &[]).await;
    let b = TestGateway::start(&text, &upstream, &[]).await;
    let started = std::time::Instant::now();
    let (first, retry) = across_replicas(&a, &b, &upstream, "ok").await;
    assert_eq!(first.status, 200);
    retry.assert_delivered_duplicate();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "woken by the settlement, not by the end of the wait"
    );
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_replica_is_forwarded_once_the_first_fails() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    upstream.script([
        Reply::delayed(502, Duration::from_secs(3)),
        Reply::status(200),
    ]);
    let text = certifyclouds(&redis.url());
    let a = TestGateway::start(&text, &upstream, &[]).await;
    let b = TestGateway::start(&text, &upstream, &[]).await;
    let (first, retry) = across_replicas(&a, &b, &upstream, "fails").await;
    assert_eq!(first.status, 502);
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert!(!retry.headers.contains_key("x-hookgate-duplicate"));
    assert_eq!(
        upstream.count(),
        2,
        "one failed attempt, then exactly one 2xx"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_redis_refuses_after_a_2xx_still_answers_the_replay_as_a_duplicate() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_millis(300))]);
    let text = config(&redis.url(), "fail_closed");
    let gateway = TestGateway::start(&text, &upstream, &[]).await;
    let (h, body) = cloudkeep("evt_r_promote");
    let addr = gateway.addr;
    let (h1, b1) = (h.clone(), body.clone());
    let first = tokio::spawn(async move { send(addr, "POST", "/hooks/ck", &h1, &b1).await });
    upstream.wait_for_requests(1, LIMIT).await;
    // Redis stops taking writes while the upstream is answering 2xx: the promote fails.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        first.await.unwrap().status,
        200,
        "the sender gets the upstream's answer"
    );
    let replay = gateway.post("/hooks/ck", &h, &body).await;
    replay.assert_delivered_duplicate();
    let metrics = gateway.gateway.metrics().render();
    assert!(
        metrics.contains(r#"hookgate_dedup_promote_deferred_total{source="ck"} 1"#),
        "{metrics}"
    );
    // Once Redis takes writes again, the background retry promotes it: another replica sees a
    // duplicate too.
    // No event says the background promote is done: the other replica's copies ask (each held
    // by the in-flight wait until the promote wakes it).
    let other = TestGateway::start(&text, &upstream, &[]).await;
    let answer = retry_until(
        "the background retry promoted the key",
        Duration::from_secs(20),
        Duration::ZERO,
        || async {
            let answer = other.post("/hooks/ck", &h, &body).await;
            match answer.status.as_u16() {
                200 => Ok(answer),
                status => Err(format!("{status} {}", answer.text())),
            }
        },
    )
    .await;
    answer.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1, "never delivered twice");
}
