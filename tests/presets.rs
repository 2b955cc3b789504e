//! Every preset through the real gateway and a real upstream: valid deliveries are forwarded
//! byte-exact and the upstream's answer comes back; tampered, wrongly keyed, unsigned, stale
//! and future deliveries are refused and the upstream sees nothing. Deliveries are signed with
//! the formulas the providers document, written out here — not with hookgate's own signer.

mod common;

use common::*;

/// A delivery as the provider would send it.
struct Delivery {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The header that authenticates it.
    auth_header: &'static str,
}

/// Signs like the provider's documentation says, for `secret`, event `id` and time `ts`.
fn deliver(preset: &str, secret: &str, id: &str, ts: i64) -> Delivery {
    let path = format!("/hooks/{preset}");
    let (body, auth_header, mut headers): (String, &'static str, Vec<(&str, String)>) = match preset
    {
        // Seed 001: X-CloudKeep-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>.
        "cloudkeep" => {
            let body = format!(
                r#"{{"id":"{id}","event":"secret.created","timestamp":"{}","data":{{"vaultName":"Production","note":"hello"}}}}"#,
                iso(ts)
            );
            let sig = sign::cloudkeep(secret, body.as_bytes());
            (
                body,
                "x-cloudkeep-signature-256",
                vec![("X-CloudKeep-Signature-256", sig)],
            )
        }
        // Seed 003: X-PolicyCortex-Signature: 'sha256=' + hex HMAC-SHA256 of the payload.
        "policycortex" => {
            let body = format!(
                r#"{{"id":"{id}","type":"policy.violation.created","created":"{}","data":{{"note":"hello","score":5.0}}}}"#,
                iso(ts)
            );
            let sig = sign::policycortex(secret, body.as_bytes());
            (
                body,
                "x-policycortex-signature",
                vec![("X-PolicyCortex-Signature", sig)],
            )
        }
        // Seed 004: X-Corgea-Signature: hex HMAC-SHA256 of the payload, plus its other headers.
        "corgea" => {
            let body = format!(
                r#"{{"event_id":"{id}","event_type":"scan.completed","timestamp":"{}","data":{{"note":"hello"}}}}"#,
                iso(ts)
            );
            let sig = sign::corgea(secret, body.as_bytes());
            (
                body,
                "x-corgea-signature",
                vec![
                    ("X-Corgea-Signature", sig),
                    ("X-Corgea-Event", "scan.completed".into()),
                    ("X-Corgea-Delivery", format!("dlv-{id}-{ts}")),
                    ("X-Corgea-Timestamp", ts.to_string()),
                    ("User-Agent", "Corgea-Webhooks/1.0".into()),
                ],
            )
        }
        // Seed 002: VaaS-Signature: <base64url HMAC>, VaaS-Timestamp: <unix seconds>.
        // Signed bytes assumed to be the raw body (the docs do not say).
        "vaas" => {
            let body = format!(
                r#"{{"events":[{{"eventType":"CertificateExpiration","eventName":"Certificate Expiration","message":"hello {id}","criticality":1,"createdAt":"{}"}}]}}"#,
                iso(ts)
            );
            let sig = sign::vaas(secret, body.as_bytes());
            (
                body,
                "vaas-signature",
                vec![("VaaS-Signature", sig), ("VaaS-Timestamp", ts.to_string())],
            )
        }
        // Seed 000: no signature; the generic format, authenticated here by a bearer token.
        "certifyclouds" => {
            let body = format!(
                r##"{{"title":"Secrets Expiring Soon","message":"hello {id}","color":"#F97316","timestamp":"{}","source":"CertifyClouds","fields":[]}}"##,
                iso_zoneless(ts)
            );
            (
                body,
                "authorization",
                vec![("Authorization", format!("Bearer {secret}"))],
            )
        }
        // Standard Webhooks: v1,base64(HMAC-SHA256(base64-decoded key, "{id}.{ts}.{body}")).
        "standard-webhooks" => {
            let body = r#"{"type":"invoice.paid","data":{"note":"hello"}}"#.to_string();
            let sig = sign::standard_webhooks(&sign::whsec_key(secret), id, ts, body.as_bytes());
            (
                body,
                "webhook-signature",
                vec![
                    ("webhook-id", id.to_string()),
                    ("webhook-timestamp", ts.to_string()),
                    ("webhook-signature", sig),
                ],
            )
        }
        // GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>.
        "github" => {
            let body = format!(r#"{{"action":"opened","number":1,"note":"hello {id}"}}"#);
            let sig = sign::github(secret, body.as_bytes());
            (
                body,
                "x-hub-signature-256",
                vec![
                    ("X-Hub-Signature-256", sig),
                    ("X-GitHub-Delivery", id.to_string()),
                    ("X-GitHub-Event", "pull_request".into()),
                ],
            )
        }
        // Stripe: Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "{ts}.{body}">.
        "stripe" => {
            let body =
                format!(r#"{{"id":"{id}","type":"charge.succeeded","data":{{"note":"hello"}}}}"#);
            let sig = sign::stripe(secret, ts, body.as_bytes());
            (body, "stripe-signature", vec![("Stripe-Signature", sig)])
        }
        // Slack: X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">.
        "slack" => {
            let body = format!(
                r#"{{"type":"event_callback","event_id":"{id}","event":{{"text":"hello"}}}}"#
            );
            let sig = sign::slack(secret, ts, body.as_bytes());
            (
                body,
                "x-slack-signature",
                vec![
                    ("X-Slack-Signature", sig),
                    ("X-Slack-Request-Timestamp", ts.to_string()),
                ],
            )
        }
        // Shopify: X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body.
        "shopify" => {
            let body = format!(r#"{{"id":820982911946154508,"note":"hello {id}"}}"#);
            let sig = sign::shopify(secret, body.as_bytes());
            (
                body,
                "x-shopify-hmac-sha256",
                vec![
                    ("X-Shopify-Hmac-Sha256", sig),
                    ("X-Shopify-Webhook-Id", id.to_string()),
                    ("X-Shopify-Triggered-At", iso(ts)),
                    ("X-Shopify-Topic", "orders/create".into()),
                ],
            )
        }
        other => panic!("no delivery for {other}"),
    };
    headers.push(("Content-Type", "application/json".into()));
    Delivery {
        path,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        body: body.into_bytes(),
        auth_header,
    }
}

fn secrets(preset: &str) -> (&'static str, &'static str, &'static str) {
    match preset {
        "standard-webhooks" => (OLD_WH, NEW_WH, WRONG_WH),
        _ => (OLD, NEW, WRONG),
    }
}

/// How far back a timestamp is stale for each preset (past its window), or `None` without one.
fn stale_age(preset: &str) -> Option<i64> {
    let hour = 3600;
    match preset {
        "cloudkeep" => Some(19 * hour),
        "policycortex" | "vaas" => Some(26 * hour),
        "corgea" => Some(2 * hour),
        "certifyclouds" => Some(hour),
        "standard-webhooks" | "stripe" | "slack" => Some(10 * 60),
        "shopify" => Some(6 * hour),
        _ => None,
    }
}

fn tamper_body(d: &mut Delivery) {
    let text = String::from_utf8(d.body.clone()).unwrap();
    assert!(text.contains("hello"));
    d.body = text.replacen("hello", "hellp", 1).into_bytes();
}

fn tamper_signature(d: &mut Delivery) {
    let (_, value) = d
        .headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(d.auth_header))
        .unwrap();
    let mut chars: Vec<char> = value.chars().collect();
    let at = chars.len() - 3;
    chars[at] = if chars[at] == '0' { '1' } else { '0' };
    *value = chars.into_iter().collect();
}

fn drop_auth_header(d: &mut Delivery) {
    let auth = d.auth_header;
    d.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(auth));
}

async fn exercise(preset: &str) {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&all_presets_config(), &upstream, &ENV).await;
    let now = now_secs();
    let (old, new, wrong) = secrets(preset);

    // Valid with the newer secret: forwarded byte-exact, the upstream's answer comes back.
    let d = deliver(preset, new, "evt_new_1", now);
    let answer = gateway.post(&d.path, &d.headers, &d.body).await;
    assert_eq!(answer.status, 202, "{preset}: {}", answer.text());
    assert_eq!(answer.body, UPSTREAM_BODY);
    assert_eq!(answer.headers["x-upstream"], "yes");
    let got = upstream.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, d.body, "{preset}: body must be byte-exact");
    assert_eq!(got[0].path_and_query, format!("/{preset}"));
    assert_eq!(got[0].headers["x-hookgate-source"], preset);
    let auth_value = &d
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(d.auth_header))
        .unwrap()
        .1;
    assert_eq!(got[0].headers[d.auth_header], auth_value.as_str());

    // The older secret still works during rotation.
    let d = deliver(preset, old, "evt_old_2", now);
    let answer = gateway.post(&d.path, &d.headers, &d.body).await;
    assert_eq!(answer.status, 202, "{preset} rotated: {}", answer.text());
    assert_eq!(upstream.count(), 2);

    let signed = preset != "certifyclouds";
    let bad_auth_code = if signed { "bad_signature" } else { "bad_token" };
    let missing_code = if signed {
        "missing_signature"
    } else {
        "bad_token"
    };

    if signed {
        let mut d = deliver(preset, new, "evt_3", now);
        tamper_body(&mut d);
        let answer = gateway.post(&d.path, &d.headers, &d.body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code().as_str()),
            (401, "bad_signature"),
            "{preset} tampered body"
        );
    }

    let mut d = deliver(preset, new, "evt_4", now);
    tamper_signature(&mut d);
    let answer = gateway.post(&d.path, &d.headers, &d.body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (401, bad_auth_code),
        "{preset} tampered signature"
    );

    let d = deliver(preset, wrong, "evt_5", now);
    let answer = gateway.post(&d.path, &d.headers, &d.body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (401, bad_auth_code),
        "{preset} wrong secret"
    );
    assert!(
        !answer.text().contains(&hex_sig(new, &d.body)),
        "expected signature must not be echoed"
    );

    let mut d = deliver(preset, new, "evt_6", now);
    drop_auth_header(&mut d);
    let answer = gateway.post(&d.path, &d.headers, &d.body).await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (401, missing_code),
        "{preset} missing header"
    );

    if let Some(age) = stale_age(preset) {
        let d = deliver(preset, new, "evt_7", now - age);
        let answer = gateway.post(&d.path, &d.headers, &d.body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code().as_str()),
            (401, "stale_timestamp"),
            "{preset} stale"
        );

        let d = deliver(preset, new, "evt_8", now + 3600);
        let answer = gateway.post(&d.path, &d.headers, &d.body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code().as_str()),
            (401, "future_timestamp"),
            "{preset} future"
        );
    }

    assert_eq!(
        upstream.count(),
        2,
        "{preset}: nothing unverified reached the upstream"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn cloudkeep() {
    exercise("cloudkeep").await;
}

#[tokio::test]
async fn policycortex() {
    exercise("policycortex").await;
}

#[tokio::test]
async fn corgea() {
    exercise("corgea").await;
}

#[tokio::test]
async fn vaas() {
    exercise("vaas").await;
}

#[tokio::test]
async fn certifyclouds() {
    exercise("certifyclouds").await;
}

#[tokio::test]
async fn standard_webhooks() {
    exercise("standard-webhooks").await;
}

#[tokio::test]
async fn github() {
    exercise("github").await;
}

#[tokio::test]
async fn stripe() {
    exercise("stripe").await;
}

#[tokio::test]
async fn slack() {
    exercise("slack").await;
}

#[tokio::test]
async fn shopify() {
    exercise("shopify").await;
}

/// A retry hours after the event keeps the event's own (signed) time: it must still pass.
#[tokio::test]
async fn late_retries_within_the_provider_horizon_are_accepted() {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&all_presets_config(), &upstream, &ENV).await;
    let now = now_secs();
    // CloudKeep's 4th retry comes ~2 h 36 m after the event; its 5th ~14.6 h after.
    for (i, age) in [2 * 3600, 2 * 3600 + 36 * 60, 14 * 3600 + 36 * 60]
        .into_iter()
        .enumerate()
    {
        let d = deliver("cloudkeep", NEW, &format!("evt_late_{i}"), now - age);
        let answer = gateway.post(&d.path, &d.headers, &d.body).await;
        assert_eq!(
            answer.status,
            202,
            "cloudkeep retry {age}s after the event: {}",
            answer.text()
        );
    }
    // PolicyCortex retries for 24 h.
    let d = deliver("policycortex", NEW, "evt_late_pc", now - 23 * 3600);
    assert_eq!(gateway.post(&d.path, &d.headers, &d.body).await.status, 202);
    // Corgea's custom templates may omit the body timestamp: still delivered (dedup protects).
    let body = br#"{"event_id":"evt_custom","text":"custom template"}"#;
    let sig = sign::corgea(NEW, body);
    let answer = gateway
        .post(
            "/hooks/corgea",
            &headers(&[("X-Corgea-Signature", &sig)]),
            body,
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.count(), 5);
    gateway.shutdown().await;
}

/// The Standard Webhooks specification's published example, through the gateway.
#[tokio::test]
async fn standard_webhooks_published_example() {
    let upstream = Upstream::start().await;
    // The example's timestamp is from 2021, so freshness is off for this one source.
    let config = r#"
[[source]]
name = "spec"
path = "/hooks/spec"
preset = "standard-webhooks"
upstream = "{upstream}/spec"
secrets = [{ env = "WH" }]
freshness = { enabled = false }
"#;
    let gateway = TestGateway::start(
        config,
        &upstream,
        &[("WH", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
    )
    .await;
    let body = br#"{"test": 2432232314}"#;
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ]);
    let answer = gateway.post("/hooks/spec", &h, body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.received()[0].body.as_ref(), body);
    assert_eq!(
        upstream.received()[0].headers["x-hookgate-event-id"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek"
    );

    // Several signatures in the header: any valid one passes (here: a repeat of the delivered
    // message, so it is answered as a duplicate rather than refused).
    let signature = "v1,Zm9v v2,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", signature),
    ]);
    let answer = gateway.post("/hooks/spec", &h, body).await;
    answer.assert_delivered_duplicate();

    // The timestamp is signed: moving it breaks the signature.
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265331"),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ]);
    let answer = gateway.post("/hooks/spec", &h, body).await;
    assert_eq!(answer.status, 401);
    assert_eq!(upstream.count(), 1);
    gateway.shutdown().await;
}
