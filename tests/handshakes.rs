//! Handshakes through the real gateway: each answered as the provider's documentation says
//! (Slack, Zoom, Twitch, Discord, Meta, Dropbox), never forwarded, counted; the unsigned,
//! forged, stale, oversized and odd variants refused; ordinary deliveries still forwarded.

mod common;

use common::*;
use ring::signature::{Ed25519KeyPair, KeyPair};

const SECRET: &str = "handshake-secret-0123456789";
const OTHER: &str = "handshake-other-secret-9876";

fn source(preset: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{preset}\"\npath = \"/hooks/{preset}\"\npreset = \"{preset}\"\n\
         upstream = \"{{upstream}}/{preset}\"\n{extra}\n"
    )
}

fn secrets() -> &'static str {
    "secrets = [{ env = \"S1\" }, { env = \"S2\" }]"
}

const ENV: [(&str, &str); 2] = [("S1", OTHER), ("S2", SECRET)];

fn handshakes_counted(gateway: &TestGateway, source: &str, kind: &str) -> f64 {
    let text = gateway.gateway.metrics().render();
    metric(
        &text,
        &format!("hookgate_handshakes_total{{source=\"{source}\",kind=\"{kind}\"}}"),
    )
}

#[track_caller]
fn assert_plain(answer: &Answer, expected: &str) {
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), expected);
    assert_eq!(answer.headers["content-type"], "text/plain");
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");
}

/// Slack: `v0=hex(HMAC-SHA256(secret, "v0:" + ts + ":" + body))`
/// (https://api.slack.com/authentication/verifying-requests-from-slack).
fn slack(secret: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let sig = format!(
        "v0={}",
        hex_sig(secret, format!("v0:{ts}:{body}").as_bytes())
    );
    headers(&[
        ("X-Slack-Request-Timestamp", &ts.to_string()),
        ("X-Slack-Signature", &sig),
        ("Content-Type", "application/json"),
    ])
}

#[tokio::test]
async fn slack_url_verification_is_answered_with_the_challenge() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&source("slack", secrets()), &upstream, &ENV).await;
    // The payload of https://api.slack.com/events/url_verification.
    let body = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let now = now_secs();
    let answer = gw
        .post("/hooks/slack", &slack(SECRET, now, body), body.as_bytes())
        .await;
    assert_plain(
        &answer,
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    );
    assert_eq!(handshakes_counted(&gw, "slack", "slack"), 1.0);

    // Forged, unsigned and stale copies are refused like any delivery.
    let forged = gw
        .post("/hooks/slack", &slack("wrong", now, body), body.as_bytes())
        .await;
    assert_eq!(forged.status, 401);
    let unsigned = headers(&[("X-Slack-Request-Timestamp", &now.to_string())]);
    assert_eq!(
        gw.post("/hooks/slack", &unsigned, body.as_bytes())
            .await
            .status,
        401
    );
    let stale = gw
        .post(
            "/hooks/slack",
            &slack(SECRET, now - 3600, body),
            body.as_bytes(),
        )
        .await;
    assert_eq!(stale.status, 401);

    // Odd and oversized challenges are not reflected.
    for challenge in ["<script>alert(1)</script>", &"a".repeat(257), "", "a\\nb"] {
        let body = format!(r#"{{"type":"url_verification","challenge":"{challenge}"}}"#);
        let answer = gw
            .post("/hooks/slack", &slack(SECRET, now, &body), body.as_bytes())
            .await;
        assert_eq!(answer.status, 400, "{challenge:?}");
        assert_eq!(answer.error_code(), "bad_handshake");
    }
    assert_eq!(upstream.count(), 0, "no handshake reaches the upstream");

    // An ordinary event goes through.
    let event = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message"}}"#;
    let answer = gw
        .post("/hooks/slack", &slack(SECRET, now, event), event.as_bytes())
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.received()[0].body, event.as_bytes());
    assert_eq!(handshakes_counted(&gw, "slack", "slack"), 1.0);
    gw.shutdown().await;
}

/// Zoom: `v0=hex(HMAC-SHA256(secret, "v0:" + ts + ":" + body))`
/// (https://developers.zoom.us/docs/api/webhooks/#verify-with-zooms-header).
fn zoom(secret: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let sig = format!(
        "v0={}",
        hex_sig(secret, format!("v0:{ts}:{body}").as_bytes())
    );
    headers(&[
        ("x-zm-request-timestamp", &ts.to_string()),
        ("x-zm-signature", &sig),
    ])
}

#[tokio::test]
async fn zoom_url_validation_is_answered_with_the_hmac_of_the_secret_that_verified_it() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&source("zoom", secrets()), &upstream, &ENV).await;
    // The payload of https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint.
    let body = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let now = now_secs();
    for secret in [SECRET, OTHER] {
        let answer = gw
            .post("/hooks/zoom", &zoom(secret, now, body), body.as_bytes())
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.headers["content-type"], "application/json");
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(json["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(
            json["encryptedToken"],
            hex_sig(secret, b"qgg8vlvZRS6UYooatFL8Aw"),
            "signed with the secret that verified the request"
        );
    }
    let forged = gw
        .post("/hooks/zoom", &zoom("wrong", now, body), body.as_bytes())
        .await;
    assert_eq!(forged.status, 401);
    let odd = r#"{"payload":{"plainToken":"<img src=x>"},"event":"endpoint.url_validation"}"#;
    let answer = gw
        .post("/hooks/zoom", &zoom(SECRET, now, odd), odd.as_bytes())
        .await;
    assert_eq!(answer.status, 400);
    let missing = r#"{"payload":{},"event":"endpoint.url_validation"}"#;
    let answer = gw
        .post(
            "/hooks/zoom",
            &zoom(SECRET, now, missing),
            missing.as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(upstream.count(), 0);
    assert_eq!(handshakes_counted(&gw, "zoom", "zoom"), 2.0);

    let event = r#"{"event":"meeting.started","payload":{"object":{"id":"1"}}}"#;
    let answer = gw
        .post("/hooks/zoom", &zoom(SECRET, now, event), event.as_bytes())
        .await;
    assert_eq!(answer.status, 202);
    assert_eq!(upstream.received()[0].body, event.as_bytes());
    gw.shutdown().await;
}

/// Twitch: `sha256=hex(HMAC-SHA256(secret, message id + timestamp + body))`
/// (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message).
fn twitch(secret: &str, id: &str, ts: &str, kind: &str, body: &str) -> Vec<(String, String)> {
    let sig = format!(
        "sha256={}",
        hex_sig(secret, format!("{id}{ts}{body}").as_bytes())
    );
    headers(&[
        ("Twitch-Eventsub-Message-Id", id),
        ("Twitch-Eventsub-Message-Timestamp", ts),
        ("Twitch-Eventsub-Message-Signature", &sig),
        ("Twitch-Eventsub-Message-Type", kind),
        ("Content-Type", "application/json"),
    ])
}

/// Twitch's RFC 3339 timestamps carry nanoseconds.
fn twitch_time(secs: i64) -> String {
    iso(secs).replace('Z', ".123456789Z")
}

#[tokio::test]
async fn twitch_callback_verification_is_answered_with_the_raw_challenge() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&source("twitch", secrets()), &upstream, &ENV).await;
    let body = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"1"}}"#;
    let ts = twitch_time(now_secs());
    let verification = "webhook_callback_verification";
    let h = twitch(
        SECRET,
        "e76c6bd4-55c9-4987-8304-da1588d8988b",
        &ts,
        verification,
        body,
    );
    let answer = gw.post("/hooks/twitch", &h, body.as_bytes()).await;
    assert_plain(&answer, "pogchamp-kappa-360noscope-vohiyo");

    let forged = twitch("wrong", "m2", &ts, verification, body);
    assert_eq!(
        gw.post("/hooks/twitch", &forged, body.as_bytes())
            .await
            .status,
        401
    );
    let stale = twitch(
        SECRET,
        "m3",
        &twitch_time(now_secs() - 3600),
        verification,
        body,
    );
    assert_eq!(
        gw.post("/hooks/twitch", &stale, body.as_bytes())
            .await
            .status,
        401
    );
    let long = format!(r#"{{"challenge":"{}"}}"#, "x".repeat(300));
    let h = twitch(SECRET, "m4", &ts, verification, &long);
    assert_eq!(
        gw.post("/hooks/twitch", &h, long.as_bytes()).await.status,
        400
    );
    assert_eq!(upstream.count(), 0);
    assert_eq!(handshakes_counted(&gw, "twitch", "twitch"), 1.0);

    let event = r#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1"}}"#;
    let h = twitch(SECRET, "m5", &ts, "notification", event);
    let answer = gw.post("/hooks/twitch", &h, event.as_bytes()).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(upstream.received()[0].body, event.as_bytes());
    gw.shutdown().await;
}

#[tokio::test]
async fn discord_ping_is_answered_with_a_pong_after_ed25519_verification() {
    let key = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
    let wrong = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
    let public = hex::encode(key.public_key().as_ref());
    let upstream = Upstream::start().await;
    let extra = format!("signature = {{ public_keys = [{{ value = \"{public}\" }}] }}");
    let gw = TestGateway::start(&source("discord", &extra), &upstream, &[]).await;
    // Discord signs timestamp + body with Ed25519
    // (https://discord.com/developers/docs/interactions/receiving-and-responding#security-and-authorization).
    let signed = |key: &Ed25519KeyPair, body: &str| {
        let ts = now_secs().to_string();
        let sig = key.sign(format!("{ts}{body}").as_bytes());
        headers(&[
            ("X-Signature-Ed25519", &hex::encode(sig.as_ref())),
            ("X-Signature-Timestamp", &ts),
        ])
    };
    let ping = r#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#;
    let answer = gw
        .post("/hooks/discord", &signed(&key, ping), ping.as_bytes())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.text(), r#"{"type":1}"#);
    let forged = gw
        .post("/hooks/discord", &signed(&wrong, ping), ping.as_bytes())
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(upstream.count(), 0);
    assert_eq!(handshakes_counted(&gw, "discord", "discord"), 1.0);

    let command = r#"{"id":"3","application_id":"2","type":2,"token":"t","version":1}"#;
    let answer = gw
        .post("/hooks/discord", &signed(&key, command), command.as_bytes())
        .await;
    assert_eq!(answer.status, 202);
    assert_eq!(upstream.received()[0].body, command.as_bytes());
    gw.shutdown().await;
}

#[tokio::test]
async fn meta_get_verification_needs_the_verify_token() {
    let upstream = Upstream::start().await;
    let extra = format!("{}\nverify_token = {{ env = \"VT\" }}", secrets());
    let env = [ENV[0], ENV[1], ("VT", "meta-verify-token-42")];
    let gw = TestGateway::start(&source("meta", &extra), &upstream, &env).await;
    let addr = gw.addr;
    let get = |query: &str| {
        let path = format!("/hooks/meta?{query}");
        async move { send(addr, "GET", &path, &[], b"").await }
    };
    let answer =
        get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meta-verify-token-42")
            .await;
    assert_plain(&answer, "1158201444");

    let wrong = get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=nope").await;
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.error_code(), "bad_verify_token");
    let none = get("hub.mode=subscribe&hub.challenge=1158201444").await;
    assert_eq!(none.status, 403);
    let mode =
        get("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meta-verify-token-42").await;
    assert_eq!(mode.status, 400);
    let odd =
        get("hub.mode=subscribe&hub.challenge=%3Cb%3E&hub.verify_token=meta-verify-token-42").await;
    assert_eq!(odd.status, 400);
    let twice = get(
        "hub.mode=subscribe&hub.challenge=1&hub.challenge=2&hub.verify_token=meta-verify-token-42",
    )
    .await;
    assert_eq!(twice.status, 400);
    assert_eq!(upstream.count(), 0);
    assert_eq!(handshakes_counted(&gw, "meta", "meta"), 1.0);

    // Deliveries are still POSTs signed with the app secret.
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let sig = format!("sha256={}", hex_sig(SECRET, body));
    let answer = gw
        .post(
            "/hooks/meta",
            &headers(&[("X-Hub-Signature-256", &sig)]),
            body,
        )
        .await;
    assert_eq!(answer.status, 202);
    assert_eq!(upstream.received()[0].body, &body[..]);
    gw.shutdown().await;
}

#[tokio::test]
async fn dropbox_get_challenge_is_echoed_and_notifications_are_verified() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&source("dropbox", secrets()), &upstream, &ENV).await;
    let addr = gw.addr;
    let get = |query: &str| {
        let path = format!("/hooks/dropbox?{query}");
        async move { send(addr, "GET", &path, &[], b"").await }
    };
    assert_plain(
        &get("challenge=Y2hhbGxlbmdlLTEyMw").await,
        "Y2hhbGxlbmdlLTEyMw",
    );
    assert_eq!(get("challenge=a%0D%0AX-Evil:%201").await.status, 400);
    assert_eq!(
        get(&format!("challenge={}", "z".repeat(300))).await.status,
        400
    );
    assert_eq!(get("other=1").await.status, 400);
    assert_eq!(upstream.count(), 0);
    assert_eq!(handshakes_counted(&gw, "dropbox", "dropbox"), 1.0);

    // https://www.dropbox.com/developers/reference/webhooks : hex HMAC-SHA256 of the body.
    let body = br#"{"list_folder":{"accounts":["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]},"delta":{"users":[12345]}}"#;
    let sig = hex_sig(SECRET, body);
    let h = headers(&[("X-Dropbox-Signature", &sig)]);
    assert_eq!(gw.post("/hooks/dropbox", &h, body).await.status, 202);
    let forged = headers(&[("X-Dropbox-Signature", &hex_sig("wrong", body))]);
    assert_eq!(gw.post("/hooks/dropbox", &forged, body).await.status, 401);
    assert_eq!(upstream.count(), 1);
    assert_eq!(upstream.received()[0].body, &body[..]);
    gw.shutdown().await;
}

#[tokio::test]
async fn sources_without_a_get_handshake_still_refuse_get() {
    let upstream = Upstream::start().await;
    // Meta without a verify token: no handshake, GET refused as before.
    let config = format!(
        "{}{}",
        source("github", secrets()),
        source("meta", secrets())
    );
    let gw = TestGateway::start(&config, &upstream, &ENV).await;
    for path in [
        "/hooks/github?challenge=x",
        "/hooks/meta?hub.mode=subscribe&hub.challenge=1",
    ] {
        let answer = send(gw.addr, "GET", path, &[], b"").await;
        assert_eq!(answer.status, 405, "{path}");
    }
    // A handshake body sent to a source whose preset has none is an ordinary delivery.
    let body = br#"{"type":"url_verification","challenge":"abc"}"#;
    let sig = format!("sha256={}", hex_sig(SECRET, body));
    let h = headers(&[("X-Hub-Signature-256", &sig), ("X-GitHub-Delivery", "d1")]);
    assert_eq!(gw.post("/hooks/github", &h, body).await.status, 202);
    assert_eq!(upstream.count(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_source_can_turn_its_presets_handshake_off() {
    let upstream = Upstream::start().await;
    let extra = format!("{}\nhandshake = \"none\"", secrets());
    let gw = TestGateway::start(&source("slack", &extra), &upstream, &ENV).await;
    let body = r#"{"type":"url_verification","challenge":"abc"}"#;
    let answer = gw
        .post(
            "/hooks/slack",
            &slack(SECRET, now_secs(), body),
            body.as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 202, "forwarded: the upstream answers it");
    assert_eq!(upstream.count(), 1);
    gw.shutdown().await;
}

#[test]
fn handshake_settings_are_checked_at_start() {
    let parse = |text: &str| {
        let env = std::collections::HashMap::from([
            ("S1".to_string(), OTHER.to_string()),
            ("S2".to_string(), SECRET.to_string()),
        ]);
        let text = text.replace("{upstream}", "http://127.0.0.1:9");
        hookgate::config::parse(&text, std::path::Path::new("."), &env).map(|_| ())
    };
    // A signed handshake on a source that verifies no signature.
    let unsigned = "[[source]]\nname = \"x\"\npath = \"/x\"\nupstream = \"{upstream}\"\n\
                    token = { secrets = [{ env = \"S1\" }] }\nhandshake = \"zoom\"\n";
    assert!(parse(unsigned).is_err());
    let refused = [
        // The verify token belongs to Meta's handshake only.
        "verify_token = { env = \"S2\" }",
        // Meta's handshake chosen explicitly needs its verify token.
        "handshake = \"meta\"",
        "handshake = \"bogus\"",
    ];
    for extra in refused {
        let text = source("github", &format!("{}\n{extra}", secrets()));
        assert!(parse(&text).is_err(), "{extra}");
    }
    assert!(parse(&source("github", secrets())).is_ok());
    assert!(parse(&source(
        "github",
        &format!("{}\nhandshake = \"dropbox\"", secrets())
    ))
    .is_ok());
}

#[tokio::test]
async fn a_shadow_source_answers_only_handshakes_that_passed_every_check() {
    let upstream = Upstream::start().await;
    let extra = format!("{}\nenforce = false", secrets());
    let gw = TestGateway::start(&source("slack", &extra), &upstream, &ENV).await;
    let body = r#"{"type":"url_verification","challenge":"abc123"}"#;
    let now = now_secs();
    let answer = gw
        .post("/hooks/slack", &slack(SECRET, now, body), body.as_bytes())
        .await;
    assert_plain(&answer, "abc123");
    assert_eq!(upstream.count(), 0);

    // Forged: not answered (the challenge is not reflected), forwarded marked as failed.
    let answer = gw
        .post("/hooks/slack", &slack("wrong", now, body), body.as_bytes())
        .await;
    assert_eq!(answer.status, 202);
    let received = upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(
        received[0].headers["x-hookgate-verification"],
        "failed; reason=bad_signature"
    );
    assert_eq!(handshakes_counted(&gw, "slack", "slack"), 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn other_methods_on_a_get_handshake_source_are_refused() {
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&source("dropbox", secrets()), &upstream, &ENV).await;
    for method in ["PUT", "DELETE", "HEAD", "OPTIONS"] {
        let answer = send(gw.addr, method, "/hooks/dropbox?challenge=abc", &[], b"").await;
        assert_eq!(answer.status, 405, "{method}");
    }
    // A POST carrying a challenge query is an ordinary (here unsigned) delivery.
    let answer = gw.post("/hooks/dropbox?challenge=abc", &[], b"{}").await;
    assert_eq!(answer.status, 401);
    assert_eq!(upstream.count(), 0);
    gw.shutdown().await;
}
