//! In-flight duplicates through the real gateway (memory backend): a copy that arrives while
//! the first is still waiting on a slow upstream waits for the first one's outcome instead of
//! being bounced with a 4xx (final for senders such as CertifyClouds, whose docs say "4xx:
//! client error, no retry"). Delivered → 200 duplicate; failed → this copy is forwarded;
//! still pending after `inflight_wait` → 503 with Retry-After, which every seed provider
//! retries. The Redis variant (two replicas) is in `tests/redis.rs`.

mod common;

use std::time::Duration;

use common::*;

const TOKEN: &str = "certifyclouds-token";

fn config(extra: &str) -> String {
    format!(
        r#"
[[source]]
name = "cc"
path = "/hooks/cc"
preset = "certifyclouds"
upstream = "{{upstream}}/cc"
token = {{ prefix = "Bearer ", secrets = [{{ value = "{TOKEN}" }}] }}
{extra}
"#
    )
}

/// A CertifyClouds alert (generic format) as seed 000 shows it, deduplicated on its body.
fn alert(note: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(
        r##"{{"title":"Secrets Expiring Soon","message":"{note}","color":"#F97316","timestamp":"{}","source":"CertifyClouds","fields":[]}}"##,
        iso_zoneless(now_secs())
    );
    (
        headers(&[("Authorization", &format!("Bearer {TOKEN}"))]),
        body.into_bytes(),
    )
}

/// The first attempt and the sender's retry while the first is in flight, answered before
/// CertifyClouds' own 10 s timeout.
async fn first_and_retry(
    gateway: &TestGateway,
    upstream: &Upstream,
    note: &str,
) -> (Answer, Answer) {
    let addrs = (gateway.addr, gateway.addr);
    let timeout = Duration::from_secs(10);
    first_and_retry_while_in_flight(upstream, addrs, "/hooks/cc", alert(note), timeout).await
}

#[tokio::test]
async fn a_retry_during_a_slow_delivery_is_answered_200_duplicate_once_the_first_succeeds() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_secs(3))]);
    let gateway = TestGateway::start(&config(""), &upstream, &[]).await;
    let (first, retry) = first_and_retry(&gateway, &upstream, "ok").await;
    assert_eq!(first.status, 200);
    assert!(!first.headers.contains_key("x-hookgate-duplicate"));
    retry.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1, "the upstream saw exactly one delivery");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_retry_during_a_slow_delivery_is_forwarded_once_the_first_fails() {
    let upstream = Upstream::start().await;
    upstream.script([
        Reply::delayed(500, Duration::from_secs(3)),
        Reply::status(200),
    ]);
    let gateway = TestGateway::start(&config(""), &upstream, &[]).await;
    let (first, retry) = first_and_retry(&gateway, &upstream, "fails").await;
    assert_eq!(
        first.status, 500,
        "the upstream's failure goes back to the sender"
    );
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert!(
        !retry.headers.contains_key("x-hookgate-duplicate"),
        "the retry claimed the released key and was forwarded"
    );
    let statuses: Vec<_> = [&first, &retry].iter().map(|a| a.status.as_u16()).collect();
    assert!(
        statuses.iter().all(|s| !(400..500).contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        upstream.count(),
        2,
        "one failed attempt, then exactly one 2xx"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_copy_still_pending_after_inflight_wait_gets_503_with_retry_after() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(200, Duration::from_secs(2))]);
    let gateway = TestGateway::start(
        &config("dedup = { inflight_wait = \"300ms\" }"),
        &upstream,
        &[],
    )
    .await;
    let (h, body) = alert("pending");
    let addr = gateway.addr;
    let (h1, b1) = (h.clone(), body.clone());
    let first = tokio::spawn(async move { send(addr, "POST", "/hooks/cc", &h1, &b1).await });
    upstream.wait_for_requests(1, LIMIT).await;
    let started = std::time::Instant::now();
    let copy = gateway.post("/hooks/cc", &h, &body).await;
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited");
    assert_eq!(
        (copy.status.as_u16(), copy.error_code().as_str()),
        (503, "in_flight")
    );
    assert!(copy.headers.contains_key("retry-after"));
    assert_eq!(first.await.unwrap().status, 200);
    // The sender's next retry finds the event delivered.
    let later = gateway.post("/hooks/cc", &h, &body).await;
    later.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_attacker_flooding_copies_of_a_slow_event_gets_no_4xx_and_no_second_delivery() {
    let upstream = Upstream::start().await;
    upstream.set_default(Reply::delayed(200, Duration::from_millis(500)));
    let gateway = TestGateway::start(&config(""), &upstream, &[]).await;
    let (h, body) = alert("flood");
    let addr = gateway.addr;
    let flood = |copies: usize| -> Vec<_> {
        (0..copies)
            .map(|_| {
                let (h, body) = (h.clone(), body.clone());
                tokio::spawn(async move { send(addr, "POST", "/hooks/cc", &h, &body).await })
            })
            .collect()
    };
    // Ten copies race for the claim; twenty more come once one of them is at the upstream.
    let mut tasks = flood(10);
    upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(upstream.answered(), 0, "the first is in flight");
    tasks.extend(flood(20));
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}
