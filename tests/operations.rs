//! Operating hookgate: metrics that move with each outcome, readiness that reflects upstreams,
//! hot reload (admin call and SIGHUP) that swaps secrets while requests in flight complete and
//! refuses a broken configuration, TLS on the listener (HTTP/1.1 and HTTP/2) and https
//! upstreams.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::ops::*;
use common::*;
use hookgate::tls::TlsReloader;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A gateway and its admin listener, in-process, on a configuration file in `dir`.
#[tokio::test]
async fn metrics_count_every_outcome() {
    let dir = temp_dir("ops-metrics");
    std::fs::write(dir.join("ck.secret"), "metrics-secret").unwrap();
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(500)]);
    let ops = start_ops(&dir, &source_config(&upstream.url(), &["ck.secret"])).await;
    let gw = &ops.gateway;

    let (h, body) = cloudkeep("metrics-secret", "evt_m1", 0);
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 500); // forwarded, upstream 5xx
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 202); // forwarded
    assert_eq!(gw.post("/hooks/ck", &h, &body).await.status, 200); // duplicate
    let (h2, body2) = cloudkeep("wrong", "evt_m2", 0);
    assert_eq!(gw.post("/hooks/ck", &h2, &body2).await.status, 401); // bad signature
    let (h3, body3) = cloudkeep("metrics-secret", "evt_m3", 40 * 3600);
    assert_eq!(gw.post("/hooks/ck", &h3, &body3).await.status, 401); // stale
    let sig_only = headers(&[("X-CloudKeep-Signature-256", "sha256=00")]);
    assert_eq!(
        gw.post("/hooks/ck", &sig_only, &[b'x'; 2048]).await.status,
        413
    ); // too large
    assert_eq!(gw.post("/nowhere", &[], b"{}").await.status, 404);

    let answer = send(ops.admin, "GET", "/metrics", &[], b"").await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = answer.text();
    let count = |outcome: &str, source: &str| {
        metric(
            &text,
            &format!("hookgate_requests_total{{source=\"{source}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(count("forwarded", "ck"), 2.0, "{text}");
    assert_eq!(count("duplicate", "ck"), 1.0);
    assert_eq!(count("bad_signature", "ck"), 1.0);
    assert_eq!(count("stale_timestamp", "ck"), 1.0);
    assert_eq!(count("payload_too_large", "ck"), 1.0);
    assert_eq!(count("unknown_source", "-"), 1.0);
    assert_eq!(
        metric(
            &text,
            "hookgate_upstream_responses_total{source=\"ck\",class=\"5xx\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "hookgate_upstream_responses_total{source=\"ck\",class=\"2xx\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "hookgate_upstream_duration_seconds_count{source=\"ck\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "hookgate_request_duration_seconds_count{source=\"ck\"}"
        ),
        6.0
    );
    assert_eq!(metric(&text, "hookgate_dedup_entries"), 1.0);
    assert!(text.contains("hookgate_dedup_early_evictions_total 0"));

    // Every answer carries a request id, which also reached the upstream.
    let (h4, body4) = cloudkeep("metrics-secret", "evt_m4", 0);
    let answer = gw.post("/hooks/ck", &h4, &body4).await;
    let id = answer.headers["x-hookgate-request-id"].clone();
    assert_eq!(
        upstream.received().last().unwrap().headers["x-hookgate-request-id"],
        id
    );

    assert_eq!(
        send(ops.admin, "GET", "/healthz", &[], b"").await.status,
        200
    );
    assert_eq!(send(ops.admin, "GET", "/nope", &[], b"").await.status, 404);
}

#[tokio::test]
async fn readiness_reflects_a_down_upstream() {
    let dir = temp_dir("ops-ready");
    std::fs::write(dir.join("ck.secret"), "ready-secret").unwrap();
    let upstream = Upstream::start().await;
    let ops = start_ops(&dir, &source_config(&upstream.url(), &["ck.secret"])).await;
    let answer = send(ops.admin, "GET", "/readyz", &[], b"").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["ready"], true);
    assert_eq!(json["upstreams"][0]["reachable"], true);
    assert_eq!(json["listeners"]["gateway"], ops.gateway.addr.to_string());

    // Point the source at a port where nothing listens, and reload.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        ops.dir.join("hookgate.toml"),
        source_config(&format!("http://{closed}"), &["ck.secret"]),
    )
    .unwrap();
    assert_eq!(admin_post(ops.admin, "/reload", b"").await.status, 200);
    let answer = send(ops.admin, "GET", "/readyz", &[], b"").await;
    assert_eq!(answer.status, 503);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["upstreams"][0]["reachable"], false);
    assert_eq!(json["config"]["generation"], 2);
}

#[tokio::test]
async fn admin_reload_rotates_secrets_and_refuses_broken_configs() {
    let dir = temp_dir("ops-reload");
    std::fs::write(dir.join("old.secret"), "old-secret").unwrap();
    std::fs::write(dir.join("new.secret"), "new-secret").unwrap();
    let upstream = Upstream::start().await;
    let ops = start_ops(&dir, &source_config(&upstream.url(), &["old.secret"])).await;
    let gw = &ops.gateway;
    let (h, b) = cloudkeep("new-secret", "evt_r1", 0);
    assert_eq!(gw.post("/hooks/ck", &h, &b).await.status, 401);

    // Step 1: add the new secret.
    std::fs::write(
        dir.join("hookgate.toml"),
        source_config(&upstream.url(), &["old.secret", "new.secret"]),
    )
    .unwrap();
    let answer = admin_post(ops.admin, "/reload", b"").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(gw.post("/hooks/ck", &h, &b).await.status, 202);
    let (h, b) = cloudkeep("old-secret", "evt_r2", 0);
    assert_eq!(gw.post("/hooks/ck", &h, &b).await.status, 202);

    // Step 2: remove the old one.
    std::fs::write(
        dir.join("hookgate.toml"),
        source_config(&upstream.url(), &["new.secret"]),
    )
    .unwrap();
    assert_eq!(admin_post(ops.admin, "/reload", b"").await.status, 200);
    let (h, b) = cloudkeep("old-secret", "evt_r3", 0);
    assert_eq!(gw.post("/hooks/ck", &h, &b).await.status, 401);

    // The dedup state survived both reloads.
    let (h, b) = cloudkeep("new-secret", "evt_r1", 0);
    assert_eq!(
        gw.post("/hooks/ck", &h, &b).await.headers["x-hookgate-duplicate"],
        "delivered"
    );

    // A broken configuration is refused with its reason; the last good one keeps serving.
    std::fs::write(
        dir.join("hookgate.toml"),
        source_config(&upstream.url(), &["missing.secret"]),
    )
    .unwrap();
    let answer = admin_post(ops.admin, "/reload", b"").await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.error_code(), "reload_refused");
    assert!(
        answer.text().contains("source[ck].secrets[0]"),
        "{}",
        answer.text()
    );
    assert!(!answer.text().contains("new-secret"));
    let (h, b) = cloudkeep("new-secret", "evt_r4", 0);
    assert_eq!(gw.post("/hooks/ck", &h, &b).await.status, 202);
    let metrics = send(ops.admin, "GET", "/metrics", &[], b"").await.text();
    assert_eq!(
        metric(&metrics, "hookgate_config_reloads_total{result=\"ok\"}"),
        2.0
    );
    assert_eq!(
        metric(&metrics, "hookgate_config_reloads_total{result=\"error\"}"),
        1.0
    );
}

#[tokio::test]
async fn operator_can_forget_a_key_for_deliberate_redelivery() {
    let dir = temp_dir("ops-forget");
    std::fs::write(dir.join("ck.secret"), "forget-secret").unwrap();
    let upstream = Upstream::start().await;
    let ops = start_ops(&dir, &source_config(&upstream.url(), &["ck.secret"])).await;
    let (h, b) = cloudkeep("forget-secret", "evt_f1", 0);
    assert_eq!(ops.gateway.post("/hooks/ck", &h, &b).await.status, 202);
    assert_eq!(ops.gateway.post("/hooks/ck", &h, &b).await.status, 200);
    let forget = br#"{"source":"ck","id":"evt_f1"}"#;
    let answer = admin_post(ops.admin, "/dedup/forget", forget).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(ops.gateway.post("/hooks/ck", &h, &b).await.status, 202);
    assert_eq!(upstream.count(), 2);
    let answer = admin_post(ops.admin, "/dedup/forget", br#"{"source":"nope","id":"x"}"#).await;
    assert_eq!(answer.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_secrets_while_a_request_in_flight_completes() {
    let dir = temp_dir("ops-sighup");
    std::fs::write(dir.join("old.secret"), "hup-old").unwrap();
    std::fs::write(dir.join("new.secret"), "hup-new").unwrap();
    let upstream = Upstream::start().await;
    std::fs::write(
        dir.join("gw.toml"),
        source_config(&upstream.url(), &["old.secret"]),
    )
    .unwrap();
    let mut server = Server::start(&dir, &["--config", "gw.toml"], &[]);

    // A delivery signed with the old secret is in flight when the reload happens.
    upstream.script([Reply::delayed(202, Duration::from_millis(1500))]);
    let (h, b) = cloudkeep("hup-old", "evt_h1", 0);
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { send(addr, "POST", "/hooks/ck", &h, &b).await });
    upstream.wait_for_requests(1, LIMIT).await;
    std::fs::write(
        dir.join("gw.toml"),
        source_config(&upstream.url(), &["new.secret"]),
    )
    .unwrap();
    server.signal("HUP");
    server.wait_for("configuration reloaded");
    assert_eq!(
        upstream.answered(),
        0,
        "the reload came while the request was in flight"
    );
    let (h, b) = cloudkeep("hup-new", "evt_h2", 0);
    assert_eq!(send(addr, "POST", "/hooks/ck", &h, &b).await.status, 202);
    let (h, b) = cloudkeep("hup-old", "evt_h3", 0);
    assert_eq!(
        send(addr, "POST", "/hooks/ck", &h, &b).await.status,
        401,
        "the old secret is gone"
    );
    assert_eq!(
        in_flight.await.unwrap().status,
        202,
        "the in-flight request completed"
    );

    // A broken configuration on SIGHUP is refused; serving continues.
    std::fs::write(dir.join("gw.toml"), "[[source]]\nname = 1\n").unwrap();
    server.signal("HUP");
    let refused = server.wait_for("reload refused");
    assert!(
        refused.contains("line 2, column 8") && refused.contains("expected a string"),
        "{refused}"
    );
    let (h, b) = cloudkeep("hup-new", "evt_h4", 0);
    assert_eq!(send(addr, "POST", "/hooks/ck", &h, &b).await.status, 202);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("hup-new") && !log.contains("hup-old"),
        "secrets in the log"
    );
}

fn tls_client_config(ca: &Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn tls_listener_serves_http1_and_http2() {
    let dir = temp_dir("ops-tls");
    let pki = TestPki::create(&dir);
    std::fs::write(dir.join("ck.secret"), "tls-secret").unwrap();
    let upstream = Upstream::start().await;
    let config = format!(
        "[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n{}",
        source_config(&upstream.url(), &["ck.secret"])
    );
    std::fs::write(dir.join("hookgate.toml"), &config).unwrap();
    let loaded =
        hookgate::config::load(&dir.join("hookgate.toml"), &hookgate::secret::ProcessEnv).unwrap();
    let gateway = hookgate::Gateway::new(&loaded);
    let acceptor = TlsReloader::new(loaded.tls.as_ref().unwrap())
        .unwrap()
        .acceptor()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hookgate::server::serve(
        listener,
        hookgate::server::Listener {
            tls: Some(acceptor),
            ..Default::default()
        },
        gateway.stack(),
        std::future::pending(),
    ));

    for (i, version) in [http::Version::HTTP_11, http::Version::HTTP_2]
        .into_iter()
        .enumerate()
    {
        // ALPN offers exactly one protocol, so the server's choice is tested.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_client_config(&pki.ca))
            .https_only();
        let https = if version == http::Version::HTTP_2 {
            https.enable_http2().build()
        } else {
            https.enable_http1().build()
        };
        let mut builder = Client::builder(TokioExecutor::new());
        builder.http2_only(version == http::Version::HTTP_2);
        let client: Client<_, Full<Bytes>> = builder.build(https);
        let (h, body) = cloudkeep("tls-secret", &format!("evt_tls_{i}"), 0);
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("https://127.0.0.1:{}/hooks/ck", addr.port()));
        for (k, v) in &h {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = client
            .request(request.body(Full::new(Bytes::from(body.clone()))).unwrap())
            .await
            .unwrap();
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), 202);
        let got = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, UPSTREAM_BODY);
        assert_eq!(upstream.received().last().unwrap().body, body);
    }
}

#[tokio::test]
async fn https_upstream_with_a_configured_ca() {
    let dir = temp_dir("ops-https-up");
    let pki = TestPki::create(&dir);
    std::fs::write(dir.join("ck.secret"), "up-secret").unwrap();

    // An https upstream: hookgate's own TLS accept loop around a recording service.
    let recorder = Upstream::start().await;
    let upstream_acceptor = TlsReloader::new(&hookgate::tls::TlsFiles {
        cert: pki.cert.clone(),
        key: pki.key.clone(),
    })
    .unwrap()
    .acceptor()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_addr = listener.local_addr().unwrap();
    let forward_to = recorder.addr;
    let proxy = tower::service_fn(
        move |req: http::Request<hyper::body::Incoming>| async move {
            // Relay to the recording upstream over plain HTTP.
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .filter(|(k, _)| k != "host" && k != "content-length")
                .collect();
            let answer = send(forward_to, "POST", parts.uri.path(), &headers, &body).await;
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(answer.status)
                    .body(Full::new(answer.body))
                    .unwrap(),
            )
        },
    );
    tokio::spawn(hookgate::server::serve(
        listener,
        hookgate::server::Listener {
            tls: Some(upstream_acceptor),
            ..Default::default()
        },
        proxy,
        std::future::pending(),
    ));

    let config = format!(
        "[upstream_tls]\nca = \"ca.pem\"\n{}",
        source_config(
            &format!("https://127.0.0.1:{}", https_addr.port()),
            &["ck.secret"]
        )
    );
    std::fs::write(dir.join("hookgate.toml"), &config).unwrap();
    let loaded =
        hookgate::config::load(&dir.join("hookgate.toml"), &hookgate::secret::ProcessEnv).unwrap();
    let gateway = TestGateway::from_config(&loaded).await;
    let (h, body) = cloudkeep("up-secret", "evt_https", 0);
    let answer = gateway.post("/hooks/ck", &h, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(recorder.received()[0].body, body);

    // Without the CA the upstream's certificate is not trusted: 502, nothing delivered.
    let untrusted = source_config(
        &format!("https://127.0.0.1:{}", https_addr.port()),
        &["ck.secret"],
    );
    std::fs::write(dir.join("untrusted.toml"), &untrusted).unwrap();
    let loaded =
        hookgate::config::load(&dir.join("untrusted.toml"), &hookgate::secret::ProcessEnv).unwrap();
    let gateway = TestGateway::from_config(&loaded).await;
    let (h, body) = cloudkeep("up-secret", "evt_https_2", 0);
    assert_eq!(gateway.post("/hooks/ck", &h, &body).await.status, 502);
    assert_eq!(recorder.count(), 1);
}
