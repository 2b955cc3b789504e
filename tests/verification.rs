//! Onboarding and rotation aids through the real gateway: shadow mode (`enforce = false`:
//! every check runs and is counted, the delivery is forwarded anyway and marked
//! `X-Hookgate-Verification`) and the metric of which configured secret or key verified each
//! accepted delivery.

mod common;

use common::ops::start_ops;
use common::*;
use ring::signature::{Ed25519KeyPair, KeyPair};

const SECRET: &str = "shadow-secret-0123456789";
const OLD: &str = "rotation-old-secret-0123";
const NEW: &str = "rotation-new-secret-4567";

fn shadow_config(enforce: bool) -> String {
    format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\n\
         upstream = \"{{upstream}}/ck\"\nsecrets = [{{ env = \"S\" }}]\nenforce = {enforce}\n"
    )
}

fn verification(recorded: &Recorded) -> Vec<String> {
    recorded
        .headers
        .get_all("x-hookgate-verification")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn shadow_failures(gw: &TestGateway, reason: &str) -> f64 {
    let text = gw.gateway.metrics().render();
    metric(
        &text,
        &format!("hookgate_shadow_failures_total{{source=\"ck\",reason=\"{reason}\"}}"),
    )
}

#[tokio::test]
async fn shadow_mode_forwards_everything_and_says_what_failed() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&shadow_config(false), &upstream, &[("S", SECRET)]).await;
    let now = now_secs();
    let mut expected = Vec::new();

    // Passes every check.
    let (h, body) = sign::cloudkeep_event(SECRET, "evt_ok", now);
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    expected.push("passed");
    // The same event again: a duplicate, forwarded in shadow mode, marked.
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    expected.push("failed; reason=duplicate");
    // Forged signature, with a client-sent verdict that must not survive.
    let (mut h, body) = sign::cloudkeep_event("wrong", "evt_forged", now);
    h.push(("X-Hookgate-Verification".into(), "passed".into()));
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    expected.push("failed; reason=bad_signature");
    // No signature at all.
    let (_, body) = sign::cloudkeep_event(SECRET, "evt_unsigned", now);
    assert_eq!(gw.post("/hooks/ck", &[], &body).await.status, 202);
    expected.push("failed; reason=missing_signature");
    // Signed but stale: the first failure is freshness.
    let (h, body) = sign::cloudkeep_event(SECRET, "evt_stale", now - 40 * 3600);
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    expected.push("failed; reason=stale_timestamp");

    let received = upstream.wait_for_requests(expected.len(), LIMIT).await;
    for (recorded, expected) in received.iter().zip(&expected) {
        assert_eq!(verification(recorded), vec![expected.to_string()]);
    }
    assert_eq!(shadow_failures(&gw, "duplicate"), 1.0);
    assert_eq!(shadow_failures(&gw, "bad_signature"), 1.0);
    assert_eq!(shadow_failures(&gw, "missing_signature"), 1.0);
    assert_eq!(shadow_failures(&gw, "stale_timestamp"), 1.0);

    // A forgery claims no dedup key: the real event with the same id still passes.
    let (h, body) = sign::cloudkeep_event("wrong", "evt_later", now);
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    let (h, body) = sign::cloudkeep_event(SECRET, "evt_later", now);
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    let received = upstream.wait_for_requests(expected.len() + 2, LIMIT).await;
    assert_eq!(verification(&received[expected.len() + 1]), vec!["passed"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn enforcing_sources_refuse_and_strip_a_client_sent_verdict() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&shadow_config(true), &upstream, &[("S", SECRET)]).await;
    let (mut h, body) = sign::cloudkeep_event(SECRET, "evt_1", now_secs());
    h.push(("X-Hookgate-Verification".into(), "passed".into()));
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    let (mut h, body) = sign::cloudkeep_event("wrong", "evt_2", now_secs());
    h.push(("X-Hookgate-Verification".into(), "passed".into()));
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 401);
    let received = upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(upstream.count(), 1);
    assert!(verification(&received[0]).is_empty());
    assert_eq!(shadow_failures(&gw, "bad_signature"), 0.0);
    gw.shutdown().await;
}

#[test]
fn shadow_sources_are_warned_about_at_start() {
    let env = std::collections::HashMap::from([("S".to_string(), SECRET.to_string())]);
    let parse = |enforce| {
        let text = shadow_config(enforce).replace("{upstream}", "http://127.0.0.1:9");
        hookgate::config::parse(&text, std::path::Path::new("."), &env).unwrap()
    };
    let shadow = parse(false);
    assert!(
        shadow.warnings.iter().any(|w| w.contains("shadow mode")),
        "{:?}",
        shadow.warnings
    );
    assert!(!parse(true).warnings.iter().any(|w| w.contains("shadow")));
}

#[tokio::test]
async fn the_metrics_say_which_secret_or_key_verified_each_delivery() {
    let dir = temp_dir("secret-positions");
    std::fs::write(dir.join("old.secret"), OLD).unwrap();
    std::fs::write(dir.join("new.secret"), NEW).unwrap();
    let key0 = Ed25519KeyPair::from_seed_unchecked(&[1u8; 32]).unwrap();
    let key1 = Ed25519KeyPair::from_seed_unchecked(&[2u8; 32]).unwrap();
    let upstream = Upstream::start().await;
    let config = format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\n\
         upstream = \"{up}/ck\"\nsecrets = [{{ file = \"old.secret\" }}, {{ file = \"new.secret\" }}]\n\n\
         [[source]]\nname = \"dc\"\npath = \"/hooks/dc\"\npreset = \"discord\"\nupstream = \"{up}/dc\"\n\
         signature = {{ public_keys = [{{ value = \"{k0}\" }}, {{ value = \"{k1}\" }}] }}\n",
        up = upstream.url(),
        k0 = hex::encode(key0.public_key().as_ref()),
        k1 = hex::encode(key1.public_key().as_ref()),
    );
    let ops = start_ops(&dir, &config).await;
    let gw = &ops.gateway;
    let now = now_secs();
    for (i, secret) in [OLD, NEW, NEW, NEW].iter().enumerate() {
        let (h, body) = sign::cloudkeep_event(secret, &format!("evt_{i}"), now);
        assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202);
    }
    let (h, body) = sign::cloudkeep_event("neither", "evt_x", now);
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 401);
    for (i, key) in [&key1, &key0, &key1].iter().enumerate() {
        let body = format!(r#"{{"id":"dc_{i}","type":2}}"#);
        let ts = now.to_string();
        let sig = key.sign(format!("{ts}{body}").as_bytes());
        let h = headers(&[
            ("X-Signature-Ed25519", &hex::encode(sig.as_ref())),
            ("X-Signature-Timestamp", &ts),
        ]);
        assert_eq!(gw.post("/hooks/dc", &h, body.as_bytes()).await.status, 202);
    }

    let text = send(ops.admin, "GET", "/metrics", &[], b"").await.text();
    let position = |source: &str, position: u32| {
        metric(
            &text,
            &format!(
                "hookgate_secret_matches_total{{source=\"{source}\",position=\"{position}\"}}"
            ),
        )
    };
    assert_eq!(position("ck", 0), 1.0, "{text}");
    assert_eq!(position("ck", 1), 3.0);
    assert_eq!(position("dc", 0), 1.0);
    assert_eq!(position("dc", 1), 2.0);
}

#[tokio::test]
async fn a_hex_signature_with_a_0x_prefix_is_refused_though_its_digits_match() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&shadow_config(true), &upstream, &[("S", SECRET)]).await;
    let (headers, body) = sign::cloudkeep_event(SECRET, "evt_0x", now_secs());
    let prefixed: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| match value.strip_prefix("sha256=") {
            Some(digits) => (name.clone(), format!("sha256=0x{digits}")),
            None => (name.clone(), value.clone()),
        })
        .collect();
    assert_ne!(prefixed, headers, "the signature header was rewritten");
    let refused = gw.post("/hooks/ck", &prefixed, &body).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error_code(), "bad_signature");
    assert_eq!(gw.post("/hooks/ck", &headers, &body).await.status, 202);
    upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(
        upstream.count(),
        1,
        "only the unprefixed delivery got through"
    );
    gw.shutdown().await;
}
