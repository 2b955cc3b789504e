//! The admin plane as an attacker meets it: state-changing calls without the token, with a
//! wrong one, from a web page (`Origin`, `Sec-Fetch-*`) or as a form or `text/plain` are
//! refused and change nothing; without a configured token those calls are off; a metrics token
//! guards the reads; an admin listener off loopback without a token does not start; and no
//! secret value reaches a configuration error, `check-config`'s report or a reload answer.

mod common;

use common::ops::*;
use common::*;
use hookgate::access::AdminAuth;

fn source_config(upstream: &str) -> String {
    format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{upstream}/ck\"\n\
         secrets = [{{ file = \"ck.secret\" }}]\n"
    )
}

fn cloudkeep(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    sign::cloudkeep_event("admin-secret", id, now_secs())
}

/// (what, request headers, expected status, expected error code)
type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

async fn generation(ops: &Ops) -> u64 {
    let answer = send(ops.admin, "GET", "/readyz", &[], b"").await;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    json["config"]["generation"].as_u64().unwrap()
}

#[tokio::test]
async fn state_changes_need_the_token_and_are_refused_to_web_pages() {
    let dir = temp_dir("admin-refusals");
    std::fs::write(dir.join("ck.secret"), "admin-secret").unwrap();
    let upstream = Upstream::start().await;
    let ops = start_ops(&dir, &source_config(&upstream.url())).await;
    let (h, b) = cloudkeep("evt_admin_1");
    assert_eq!(ops.gateway.post("/hooks/ck", &h, &b).await.status, 202);
    let before = generation(&ops).await;

    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let json = ("Content-Type", "application/json");
    let attempts: Vec<Attempt> = vec![
        ("no token", vec![json], 401, "unauthorized"),
        (
            "wrong token",
            vec![json, ("Authorization", "Bearer ops-admin-token-0123456788")],
            401,
            "unauthorized",
        ),
        (
            "token under another scheme",
            vec![json, ("Authorization", "Basic ops-admin-token-0123456789")],
            401,
            "unauthorized",
        ),
        (
            "a page on another origin",
            vec![
                json,
                ("Authorization", &bearer),
                ("Origin", "https://evil.example"),
            ],
            403,
            "cross_origin",
        ),
        (
            "a page after DNS rebinding (same-origin fetch)",
            vec![
                json,
                ("Authorization", &bearer),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            403,
            "cross_origin",
        ),
        (
            "a text/plain simple request",
            vec![("Content-Type", "text/plain"), ("Authorization", &bearer)],
            415,
            "unsupported_media_type",
        ),
        (
            "a form post",
            vec![
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &bearer),
            ],
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            vec![("Authorization", &bearer)],
            415,
            "unsupported_media_type",
        ),
    ];
    let forget = br#"{"source":"ck","id":"evt_admin_1"}"#;
    for (what, pairs, status, code) in &attempts {
        let h = headers(pairs);
        for (path, body) in [("/dedup/forget", &forget[..]), ("/reload", b"{}")] {
            let answer = send(ops.admin, "POST", path, &h, body).await;
            assert_eq!(
                (answer.status.as_u16(), answer.error_code().as_str()),
                (*status, *code),
                "{what} on {path}"
            );
        }
    }
    // Nothing was forgotten and nothing reloaded.
    assert_eq!(ops.gateway.post("/hooks/ck", &h, &b).await.status, 200);
    assert_eq!(upstream.count(), 1);
    assert_eq!(generation(&ops).await, before);

    // The operator's own call goes through.
    assert_eq!(
        admin_post(ops.admin, "/dedup/forget", forget).await.status,
        200
    );
    assert_eq!(admin_post(ops.admin, "/reload", b"{}").await.status, 200);
    assert_eq!(generation(&ops).await, before + 1);
}

#[tokio::test]
async fn without_a_token_changes_are_off_and_a_metrics_token_guards_reads() {
    let dir = temp_dir("admin-no-token");
    std::fs::write(dir.join("ck.secret"), "admin-secret").unwrap();
    let upstream = Upstream::start().await;
    let auth = AdminAuth {
        token: None,
        metrics_token: token("metrics-token-0123456789"),
    };
    let ops = start_ops_with(&dir, &source_config(&upstream.url()), auth).await;
    let answer = admin_post(ops.admin, "/reload", b"{}").await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code().as_str()),
        (403, "admin_token_required")
    );
    for path in ["/metrics", "/healthz", "/readyz"] {
        let open = send(ops.admin, "GET", path, &[], b"").await;
        assert_eq!(open.status, 401, "{path} without the metrics token");
        assert_eq!(open.headers["www-authenticate"], "Bearer");
        let h = headers(&[("Authorization", "Bearer metrics-token-0123456789")]);
        let read = send(ops.admin, "GET", path, &h, b"").await;
        assert_eq!(read.status, 200, "{path} with the metrics token");
    }
}

#[test]
fn an_admin_listener_off_loopback_without_a_token_does_not_start() {
    let dir = temp_dir("admin-exposed");
    let out = hookgate()
        .current_dir(&dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.token"), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");

    std::fs::write(
        dir.join("gw.toml"),
        format!(
            "[admin]\nlisten = \"0.0.0.0:9999\"\n\n{}",
            source_config("http://127.0.0.1:1")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("ck.secret"), "admin-secret").unwrap();
    let out = hookgate()
        .arg("check-config")
        .arg(dir.join("gw.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.token"));
}

/// Configurations that are wrong in a secret-bearing field, each with a marker in the value.
fn leaky_configurations() -> Vec<(&'static str, String)> {
    let source = |extra: &str| {
        format!(
            "[[source]]\nname = \"s\"\npath = \"/s\"\npreset = \"cloudkeep\"\nupstream = \"http://127.0.0.1:1/\"\n{extra}\n"
        )
    };
    vec![
        (
            "path token as a bare string",
            source("secrets = [{ env = \"X_UNSET_1\" }]\npath_token = \"LEAKMARK-path-token-bare\""),
        ),
        (
            "path token too short",
            source("secrets = [{ value = \"s\" }]\npath_token = { value = \"LEAKMARK\" }"),
        ),
        (
            "secret as a bare string",
            source("secrets = [\"LEAKMARK-secret-bare\"]"),
        ),
        (
            "secret under a misspelt key",
            source("secrets = [{ valeu = \"LEAKMARK-secret-typo\" }]"),
        ),
        (
            "whsec secret that is not base64",
            source("secrets = [{ value = \"whsec_LEAKMARK!!\" }]\nsignature = { secret_encoding = \"whsec\" }"),
        ),
        (
            "admin token as a bare string",
            format!("[admin]\ntoken = \"LEAKMARK-admin-token\"\n{}", source("secrets = [{ value = \"s\" }]")),
        ),
        (
            "admin token too short",
            format!("[admin]\ntoken = {{ value = \"LEAKMARK\" }}\n{}", source("secrets = [{ value = \"s\" }]")),
        ),
        (
            "redis URL that does not parse",
            format!(
                "[dedup]\nbackend = \"redis\"\nredis = {{ url = \"redis://user:LEAKMARK-redis@[::1\" }}\n{}",
                source("secrets = [{ value = \"s\" }]")
            ),
        ),
        (
            "upstream with credentials",
            "[[source]]\nname = \"s\"\npath = \"/s\"\npreset = \"cloudkeep\"\nupstream = \"http://user:LEAKMARK-upstream@127.0.0.1:1/\"\nsecrets = [{ value = \"s\" }]\n".to_string(),
        ),
    ]
}

#[test]
fn configuration_errors_and_check_config_never_show_a_secret() {
    let dir = temp_dir("admin-leaks");
    for (what, text) in leaky_configurations() {
        let path = dir.join("leak.toml");
        std::fs::write(&path, &text).unwrap();
        let out = hookgate().arg("check-config").arg(&path).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{what}: {all}");
        assert!(!all.contains("LEAKMARK"), "{what} leaked: {all}");
    }

    // A valid configuration whose Redis URL carries a password: shown without it.
    let path = dir.join("redis.toml");
    std::fs::write(
        &path,
        "[dedup]\nbackend = \"redis\"\nredis = { url = \"redis://app:LEAKMARK-password@127.0.0.1:6390/0\" }\n\
         [[source]]\nname = \"s\"\npath = \"/s\"\npreset = \"cloudkeep\"\nupstream = \"http://127.0.0.1:1/\"\nsecrets = [{ value = \"s\" }]\n",
    )
    .unwrap();
    let out = hookgate().arg("check-config").arg(&path).output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("redis://app:***@127.0.0.1:6390/0"), "{all}");
    assert!(!all.contains("LEAKMARK"), "{all}");
}

#[tokio::test]
async fn a_refused_reload_answer_never_shows_a_secret() {
    let dir = temp_dir("admin-reload-leak");
    std::fs::write(dir.join("ck.secret"), "admin-secret").unwrap();
    let upstream = Upstream::start().await;
    let ops = start_ops(&dir, &source_config(&upstream.url())).await;
    for (what, text) in leaky_configurations() {
        std::fs::write(dir.join("hookgate.toml"), &text).unwrap();
        let answer = admin_post(ops.admin, "/reload", b"{}").await;
        assert_eq!(answer.status, 422, "{what}: {}", answer.text());
        assert_eq!(answer.error_code(), "reload_refused");
        assert!(
            !answer.text().contains("LEAKMARK"),
            "{what}: {}",
            answer.text()
        );
    }
}
