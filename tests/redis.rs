//! Dedup shared by several gateway instances through a real `redis-server`: concurrent copies
//! spread over two instances reach the upstream once; a retry on the other instance is
//! recognised; a failure on one instance lets the retry through on the other; a claim whose
//! holder was killed lapses by itself; Redis going away is answered as documented (fail closed
//! by default, fail open by choice) and recovery is automatic.

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
    let body = format!(r#"{{"id":"{id}","timestamp":"{}"}}"#, iso(now_secs()));
    let sig = format!("sha256={}", hex_sig(SECRET, body.as_bytes()));
    (
        headers(&[("X-CloudKeep-Signature-256", &sig)]),
        body.into_bytes(),
    )
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
            200 | 409 => {}
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
    assert_eq!(again.status, 200);
    assert_eq!(again.headers["x-hookgate-duplicate"], "delivered");
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
    let (h, body) = cloudkeep("evt_r_killed");
    let holder_addr = holder.addr;
    let (h2, body2) = (h.clone(), body.clone());
    tokio::spawn(async move { send(holder_addr, "POST", "/hooks/ck", &h2, &body2).await });
    while upstream.count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.kill();

    let other = TestGateway::start(&config(&redis.url(), "fail_closed"), &upstream, &[]).await;
    let answer = other.post("/hooks/ck", &h, &body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (409, "in_flight")
    );
    // The claim lives for the upstream timeout (1 s) plus 5 s; then it lapses by itself.
    let mut status = 409;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = other.post("/hooks/ck", &h, &body).await.status.as_u16();
        if status != 409 {
            break;
        }
    }
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
    let mut status = 503;
    for _ in 0..40 {
        status = gateway.post("/hooks/ck", &h, &body).await.status.as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
