//! The real `hookgate` binary: `check-config` output and errors, and `serve` on the embedded
//! default and on a file, stopped by SIGTERM with exit code 0.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hookgate.toml")
}

#[test]
fn check_config_describes_sources_without_secrets() {
    let out = hookgate()
        .arg("check-config")
        .arg(repo_config())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for name in PRESETS {
        assert!(
            text.contains(&format!("source {name}\n")),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("body:timestamp [signed]"));
    assert!(text.contains("header:vaas-timestamp [unsigned]"));
    assert!(text.contains("header:x-github-delivery [unsigned] + body digest"));
    assert!(text.contains("header:webhook-id [signed]"));
    assert!(text.contains("warning: source[cloudkeep].secrets[0]: literal secret"));
    for secret in [
        "demo-cloudkeep-secret",
        "demo-vaas-bearer",
        "demo-certifyclouds-path-token",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ] {
        assert!(!text.contains(secret), "secret {secret} printed");
    }
}

#[test]
fn check_config_errors_name_the_key_and_exit_2() {
    let dir = temp_dir("bad");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[source]]\nname = \"x\"\npath = \"/x\"\npreset = \"cloudkeep\"\nupstream = \"http://127.0.0.1:1/\"\nsecrets = [{ env = \"HOOKGATE_TEST_UNSET_VARIABLE\" }]\n",
    )
    .unwrap();
    let out = hookgate().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("source[x].secrets[0]"), "{err}");
    assert!(err.contains("HOOKGATE_TEST_UNSET_VARIABLE"), "{err}");

    let out = hookgate()
        .arg("check-config")
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_on_the_embedded_default_and_stops_cleanly() {
    // An empty folder: no config/hookgate.toml, so the embedded default is used.
    let dir = temp_dir("embedded");
    let mut server = Server::start(&dir, &["--admin-listen", "127.0.0.1:0"], &[]);
    let admin = listening_address(&server.wait_for("admin listener ready")).unwrap();
    assert_eq!(send(admin, "GET", "/healthz", &[], b"").await.status, 200);
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("config=embedded default")),
        "{:#?}",
        server.log
    );

    let answer = send(server.addr, "POST", "/nowhere", &[], b"{}").await;
    assert_eq!(answer.status, 404);
    let forged = headers(&[("X-CloudKeep-Signature-256", "sha256=00")]);
    let answer = send(server.addr, "POST", "/hooks/cloudkeep", &forged, b"{}").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error_code(), "bad_signature");

    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("literal secret"),
        "demo secrets must warn loudly"
    );
    assert!(log.contains("outcome=bad_signature"), "{log}");
    assert!(!log.contains("demo-cloudkeep-secret"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_forwards_with_a_config_file_and_env_secrets() {
    let upstream = Upstream::start().await;
    let dir = temp_dir("file");
    std::fs::write(dir.join("rotated.secret"), "file-secret\n").unwrap();
    let config = format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{0}/ck\"\n\
         secrets = [{{ env = \"CK_SECRET\" }}, {{ file = \"rotated.secret\" }}]\n\
         [outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.target]]\nname = \"out\"\nurl = \"{0}/out\"\n\
         preset = \"stripe\"\nsecret = {{ env = \"CK_SECRET\" }}\nretry = \"none\"\n",
        upstream.url()
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let mut server = Server::start(
        &dir,
        &["--config", "gw.toml"],
        &[("CK_SECRET", "env-secret")],
    );

    // The outbound listener runs beside the gateway and delivers signed events.
    let outbound = listening_address(&server.wait_for("outbound listener ready")).unwrap();
    let answer = send(
        outbound,
        "POST",
        "/outbound/out",
        &[],
        br#"{"id":"evt_out"}"#,
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let got = &upstream.wait_for_requests(1, LIMIT).await[0];
    assert_eq!(got.path_and_query, "/out");
    assert!(got.headers["stripe-signature"]
        .to_str()
        .unwrap()
        .starts_with("t="));

    for (i, secret) in ["env-secret", "file-secret"].into_iter().enumerate() {
        let body = format!(r#"{{"id":"evt_{i}","timestamp":"{}"}}"#, iso(now_secs()));
        let h = sign::cloudkeep_headers(secret, body.as_bytes());
        let answer = send(server.addr, "POST", "/hooks/ck", &h, body.as_bytes()).await;
        assert_eq!(answer.status, 202, "{}", answer.text());
    }
    let paths: Vec<String> = upstream
        .received()
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(paths, ["/out", "/ck", "/ck"]);

    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("outcome=forwarded"), "{log}");
    for secret in ["env-secret", "file-secret"] {
        assert!(!log.contains(secret), "secret in log:\n{log}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn demo_shows_every_outcome_as_expected() {
    let out = hookgate().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("every outcome is as expected"), "{text}");
    assert_eq!(text.matches("forwarded 200 ok").count(), 10, "{text}");
    assert!(!text.contains("UNEXPECTED"));
}

#[test]
fn sign_prints_headers_that_verify_independently() {
    let dir = temp_dir("sign");
    std::fs::write(dir.join("secret"), "sign-secret\n").unwrap();
    std::fs::write(dir.join("body.json"), br#"{"type":"charge.succeeded"}"#).unwrap();
    let out = hookgate()
        .current_dir(&dir)
        .args([
            "sign",
            "--preset",
            "stripe",
            "--secret-file",
            "secret",
            "--body",
            "body.json",
            "--timestamp",
            "1700000000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = sign::stripe("sign-secret", 1700000000, br#"{"type":"charge.succeeded"}"#);
    assert!(
        text.contains(&format!("stripe-signature: {expected}")),
        "{text}"
    );
    assert!(!text.contains("sign-secret"));

    let out = hookgate()
        .args(["sign", "--preset", "nope", "--secret-env", "X"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown preset"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `hookgate send` as Corgea to `url` with `extra` arguments, off the async runtime.
async fn corgea_send(url: String, extra: &'static [&'static str]) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        hookgate()
            .args([
                "send",
                "--preset",
                "corgea",
                "--secret-env",
                "SEND_SECRET",
                "--url",
                &url,
            ])
            .args(extra)
            .env("SEND_SECRET", "send-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn send_delivers_and_reports_each_attempt() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(503)]);
    let out = corgea_send(
        format!("{}/in", upstream.url()),
        &["--retry", "custom:10ms"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("attempt 1 after 0s: HTTP 503"), "{text}");
    assert!(text.contains("attempt 2 after 10ms: HTTP 202"), "{text}");
    assert!(text.contains("delivered after 2 attempt(s)"));
    let got = upstream.received();
    assert_eq!(
        got[1].headers["x-corgea-signature"],
        sign::corgea("send-secret", &got[1].body)
    );

    upstream.set_default(Reply::status(400));
    let out = corgea_send(format!("{}/in", upstream.url()), &[]).await;
    assert_eq!(out.status.code(), Some(1), "a rejected delivery exits 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected with HTTP 400"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish_and_exits_0() {
    let upstream = Upstream::start().await;
    upstream.script([Reply::delayed(202, Duration::from_millis(800))]);
    let dir = temp_dir("sigterm");
    std::fs::write(
        dir.join("gw.toml"),
        format!(
            "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{}/ck\"\nsecrets = [{{ value = \"term-secret\" }}]\n",
            upstream.url()
        ),
    )
    .unwrap();
    let server = Server::start(&dir, &["--config", "gw.toml"], &[]);
    let body = format!(r#"{{"id":"evt_term","timestamp":"{}"}}"#, iso(now_secs()));
    let h = sign::cloudkeep_headers("term-secret", body.as_bytes());
    let addr = server.addr;
    let in_flight =
        tokio::spawn(async move { send(addr, "POST", "/hooks/ck", &h, body.as_bytes()).await });
    upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(
        upstream.answered(),
        0,
        "SIGTERM comes while the request is in flight"
    );
    let (code, log) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(
        in_flight.await.unwrap().status,
        202,
        "the request in flight completed"
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("stopped"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sample_renders_certifyclouds_for_each_destination() {
    let render = |kind: &str| {
        let out = hookgate()
            .args(["sample", "--preset", "certifyclouds", "--event-type", kind])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert!(render("slack")["attachments"][0]["title"].is_string());
    assert_eq!(render("teams")["@type"], "MessageCard");
    assert!(render("secret_expiring").get("attachments").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn send_prints_the_id_the_receiver_reads_and_says_when_it_was_a_duplicate() {
    let upstream = Upstream::start().await;
    let dir = temp_dir("send-receiver-id");
    std::fs::write(
        dir.join("gw.toml"),
        format!(
            "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{}/ck\"\nsecrets = [{{ value = \"dup-secret\" }}]\n",
            upstream.url()
        ),
    )
    .unwrap();
    // CloudKeep takes the event id from the body: the file's, not `--event-id`'s.
    let body = format!(
        r#"{{"id":"evt_in_the_body","event":"secret.created","timestamp":"{}"}}"#,
        iso(now_secs())
    );
    std::fs::write(dir.join("event.json"), &body).unwrap();
    let server = Server::start(&dir, &["--config", "gw.toml"], &[]);
    let url = format!("http://{}/hooks/ck", server.addr);
    let run = |url: String, dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            hookgate()
                .current_dir(&dir)
                .args(["send", "--preset", "cloudkeep", "--secret-env", "DUP"])
                .args(["--url", &url, "--body", "event.json"])
                .args(["--event-id", "evt_generated_elsewhere", "--retry", "none"])
                .env("DUP", "dup-secret")
                .output()
                .unwrap()
        })
    };
    let first = run(url.clone(), dir.clone()).await.unwrap();
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}");
    assert!(
        text.contains("sending event evt_in_the_body (from the body at `id`)"),
        "{text}"
    );
    assert!(!text.contains("evt_generated_elsewhere"), "{text}");
    assert!(text.contains("delivered after 1 attempt(s)"), "{text}");
    assert!(!text.contains("duplicate"), "{text}");

    let second = run(url, dir.clone()).await.unwrap();
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{text}");
    assert!(
        text.contains("the receiver answered that this event was a duplicate"),
        "{text}"
    );
    assert_eq!(upstream.count(), 1, "passed on once");
    let _ = tokio::task::spawn_blocking(move || server.stop()).await;

    // A body without the preset's id field: said so, no invented id.
    std::fs::write(dir.join("event.json"), r#"{"event":"x"}"#).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        hookgate()
            .current_dir(&dir)
            .args(["send", "--preset", "cloudkeep", "--secret-env", "DUP"])
            .args(["--url", "http://127.0.0.1:9/", "--body", "event.json"])
            .args(["--retry", "none"])
            .env("DUP", "dup-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sending event without an id (the body has no `id`)"),
        "{text}"
    );
}
