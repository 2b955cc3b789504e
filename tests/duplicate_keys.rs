//! The attacker's JSON: a body that names a field the gateway reads twice (`id`, `event_id`,
//! `created`, `timestamp`, or a nested path) is refused with `400 bad_json` for every preset
//! that reads it, whether the field is required or optional, and the upstream sees nothing.
//! A receiver might read the other copy (parser differential), so hookgate never guesses.
//! Also: a 64 KiB string with escapes on every 32-byte edge is read to its end, and a control
//! byte inside it is refused; an unpadded `whsec_` secret verifies a Standard Webhooks message,
//! as the reference libraries accept it. Deliveries are signed with the providers' documented
//! formulas.

mod common;

use std::time::Duration;

use common::*;

/// Signs `body` as `preset` does (with `OLD`), stamped `ts` where the scheme signs a time.
fn signed(preset: &str, body: &str, ts: i64) -> Vec<(String, String)> {
    let body = body.as_bytes();
    match preset {
        "cloudkeep" => sign::cloudkeep_headers(OLD, body),
        "policycortex" => headers(&[("X-PolicyCortex-Signature", &sign::policycortex(OLD, body))]),
        "corgea" => headers(&[("X-Corgea-Signature", &sign::corgea(OLD, body))]),
        "certifyclouds" => headers(&[("Authorization", &format!("Bearer {OLD}"))]),
        "stripe" => headers(&[("Stripe-Signature", &sign::stripe(OLD, ts, body))]),
        "slack" => headers(&[
            ("X-Slack-Signature", &sign::slack(OLD, ts, body)),
            ("X-Slack-Request-Timestamp", &ts.to_string()),
        ]),
        other => panic!("no signer for {other}"),
    }
}

#[tokio::test]
async fn a_field_the_gateway_reads_given_twice_is_refused_for_every_preset() {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&all_presets_config(), &upstream, &ENV).await;
    let now = now_secs();
    let fresh = iso(now);
    let stale = iso(now - 3 * 3600);
    let zoneless = iso_zoneless(now);
    let cases: Vec<(&str, String)> = vec![
        // Event ids (required or with a digest fallback: refused either way).
        (
            "cloudkeep",
            format!(r#"{{"id":"a","id":"b","timestamp":"{fresh}"}}"#),
        ),
        (
            "policycortex",
            format!(r#"{{"id":"a","created":"{fresh}","id":"b"}}"#),
        ),
        (
            "corgea",
            format!(r#"{{"event_id":"a","event_id":"b","timestamp":"{fresh}"}}"#),
        ),
        (
            "stripe",
            r#"{"id":"evt_1","type":"x","id":"evt_2"}"#.to_string(),
        ),
        (
            "slack",
            r#"{"event_id":"Ev1","event_id":"Ev2","type":"event_callback"}"#.into(),
        ),
        // Timestamps, required ...
        (
            "cloudkeep",
            format!(r#"{{"id":"t1","timestamp":"{fresh}","timestamp":"{fresh}"}}"#),
        ),
        (
            "policycortex",
            format!(r#"{{"id":"t2","created":"{stale}","created":"{fresh}"}}"#),
        ),
        // ... and optional: Corgea's, both copies stale, was forwarded as "no timestamp".
        (
            "corgea",
            format!(r#"{{"event_id":"t3","timestamp":"{stale}","timestamp":"{stale}"}}"#),
        ),
        (
            "certifyclouds",
            format!(r#"{{"title":"x","timestamp":"{zoneless}","timestamp":"{zoneless}"}}"#),
        ),
        // A nested configured path (CertifyClouds' Teams cards) with a duplicated parent.
        (
            "certifyclouds",
            format!(r#"{{"attachments":[{{"ts":{now}}}],"attachments":[{{"ts":{now}}}]}}"#),
        ),
    ];
    for (preset, body) in &cases {
        let answer = gateway
            .post(
                &format!("/hooks/{preset}"),
                &signed(preset, body, now),
                body.as_bytes(),
            )
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code().as_str()),
            (400, "bad_json"),
            "{preset}: {body} → {}",
            answer.text()
        );
        assert!(
            answer.text().contains("appears more than once"),
            "{}",
            answer.text()
        );
    }
    assert_eq!(
        upstream.count(),
        0,
        "nothing ambiguous reached the upstream"
    );

    // The same bodies without the repeat are accepted (the refusal is about the repeat).
    let single = format!(r#"{{"id":"ok","timestamp":"{fresh}"}}"#);
    let answer = gateway
        .post(
            "/hooks/cloudkeep",
            &signed("cloudkeep", &single, now),
            single.as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_unpadded_whsec_secret_verifies_a_standard_webhooks_message() {
    let upstream = Upstream::start().await;
    // 25 key bytes: padded base64 ends in "==", which the standardwebhooks and svix
    // libraries let senders leave out.
    let key = b"key-bytes-with-padding-01";
    let padded = format!("whsec_{}", b64(key));
    assert!(padded.ends_with("=="));
    let unpadded = padded.trim_end_matches('=').to_string();
    let config = r#"
[[source]]
name = "wh"
path = "/hooks/wh"
preset = "standard-webhooks"
upstream = "{upstream}/wh"
secrets = [{ env = "WH" }]
freshness = { enabled = false }
"#;
    let gateway = TestGateway::start(config, &upstream, &[("WH", &unpadded)]).await;
    // The Standard Webhooks specification's example message, signed with this key:
    // v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
    let (id, ts, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        r#"{"test": 2432232314}"#,
    );
    let sig = sign::standard_webhooks(key, id, ts, body.as_bytes());
    let h = headers(&[
        ("webhook-id", id),
        ("webhook-timestamp", ts),
        ("webhook-signature", &sig),
    ]);
    let answer = gateway.post("/hooks/wh", &h, body.as_bytes()).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}

/// The JSON walk finds a string's end 32 bytes at a time: an id read after 64 KiB of string
/// whose escapes straddle every 32-byte edge, the body forwarded byte for byte; and a raw
/// control byte deep inside such a string (invalid JSON) refused before the upstream sees it.
#[tokio::test]
async fn a_long_string_is_read_to_its_end_and_a_control_byte_inside_it_is_refused() {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&all_presets_config(), &upstream, &ENV).await;
    let now = now_secs();
    let fresh = iso(now);
    // 30 letters, then `\"`: each escape's backslash and quote on either side of an edge.
    let pad = format!("{}\\\"", "a".repeat(30)).repeat(2048);
    let body = format!(r#"{{"pad":"{pad}","id":"long-1","timestamp":"{fresh}"}}"#);
    let answer = gateway
        .post(
            "/hooks/cloudkeep",
            &signed("cloudkeep", &body, now),
            body.as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let received = upstream.wait_for_requests(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].body, body.as_bytes(), "forwarded byte for byte");

    let mut bad = format!(r#"{{"pad":"{pad}","id":"long-2","timestamp":"{fresh}"}}"#).into_bytes();
    bad[40_000] = 0x1f;
    let bad_text = String::from_utf8(bad.clone()).unwrap();
    let answer = gateway
        .post(
            "/hooks/cloudkeep",
            &signed("cloudkeep", &bad_text, now),
            &bad,
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (400, "bad_json"),
        "{}",
        answer.text()
    );
    assert_eq!(
        upstream.count(),
        1,
        "the invalid body never reached the upstream"
    );
    gateway.shutdown().await;
}
