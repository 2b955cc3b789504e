//! The durable delivery engine wired into the process: the outbound sidecar answers `202`
//! only once an event is stored, deliveries survive a SIGKILL of the real binary, and the
//! sender speaks HTTPS with a configured CA.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hookgate::delivery::{DeliveryState, DeliveryStore, ListFilter, SqliteStore};
use hookgate::sender::deliver::Sender;
use http_body_util::{BodyExt, Full};

/// A loopback port nothing listens on (yet).
fn reserved_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn outbound_config(url: &str) -> String {
    format!(
        "[[source]]\nname = \"unused\"\npath = \"/unused\"\npreset = \"github\"\n\
         upstream = \"{url}/unused\"\nsecrets = [{{ value = \"unused-but-required\" }}]\n\
         [outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.target]]\nname = \"out\"\n\
         url = \"{url}/out\"\npreset = \"stripe\"\nsecret = {{ env = \"OUT_SECRET\" }}\n\
         retry = \"custom:1s,1s,1s,1s,1s,1s,1s,1s\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_accepted_outbound_event_survives_sigkill_and_is_delivered_once() {
    let dir = temp_dir("durable-outbound");
    let down = reserved_port();
    std::fs::write(
        dir.join("gw.toml"),
        outbound_config(&format!("http://{down}")),
    )
    .unwrap();
    let env = [("OUT_SECRET", "whsec_durable")];
    let mut server = Server::start(&dir, &["--config", "gw.toml"], &env);
    let outbound = listening_address(&server.wait_for("outbound listener ready")).unwrap();
    let h = headers(&[("X-Hookgate-Event-Id", "evt_durable")]);
    let answer = send(outbound, "POST", "/outbound/out", &h, br#"{"n":1}"#).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["event_id"], "evt_durable");
    assert!(json["delivery_id"].as_str().unwrap().starts_with("dlv_"));
    // The upstream is down: the first attempt cannot succeed. Killed outright.
    server.kill();

    let upstream = Upstream::start_on(down).await;
    let server = Server::start(&dir, &["--config", "gw.toml"], &env);
    upstream.wait_for_requests(1, Duration::from_secs(20)).await;
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("whsec_durable") && !log.contains(r#"{"n":1}"#));

    let got = &upstream.received()[0];
    assert_eq!(got.body.as_ref(), br#"{"n":1}"#);
    assert_eq!(got.path_and_query, "/out");
    assert!(got.headers.contains_key("stripe-signature"));
    // Recorded as delivered, nothing left to attempt: delivered exactly once.
    let store = SqliteStore::open(dir.join("data")).unwrap();
    let all = store.list(ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, DeliveryState::Delivered);
    assert_eq!(all[0].event_id, "evt_durable");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_store_is_a_clear_start_up_error() {
    let dir = temp_dir("durable-locked");
    std::fs::write(
        dir.join("gw.toml"),
        outbound_config(&format!("http://{}", reserved_port())),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/deliveries.sqlite3"),
        b"not a database at all",
    )
    .unwrap();
    let output = hookgate()
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config", "gw.toml"])
        .env("OUT_SECRET", "whsec_x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("deliveries.sqlite3"), "{stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
}

/// An HTTPS server (certificate from `pki`) that records what it receives.
async fn https_recorder(
    pki: &TestPki,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(http::HeaderMap, Bytes)>,
) {
    let acceptor = hookgate::tls::TlsReloader::new(&hookgate::tls::TlsFiles {
        cert: pki.cert.clone(),
        key: pki.key.clone(),
    })
    .unwrap()
    .acceptor()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let service = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let _ = tx.send((parts.headers, body));
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }
    });
    tokio::spawn(hookgate::server::serve(
        listener,
        hookgate::server::Listener {
            tls: Some(acceptor),
            ..Default::default()
        },
        service,
        std::future::pending(),
    ));
    (addr, rx)
}

#[tokio::test]
async fn the_sender_delivers_over_https_with_a_configured_ca_only() {
    let dir = temp_dir("durable-https");
    let pki = TestPki::create(&dir);
    let (addr, mut received) = https_recorder(&pki).await;
    let url: http::Uri = format!("https://127.0.0.1:{}/in", addr.port())
        .parse()
        .unwrap();
    let signer = hookgate::sender::Signer::for_preset("stripe", Some("whsec_tls")).unwrap();
    let event = hookgate::sender::OutboundEvent {
        body: Bytes::from_static(br#"{"tls":true}"#),
        id: "evt_tls".into(),
        event_type: None,
    };
    let headers = signer.headers(&event, hookgate::sender::now_secs(), 1);

    // Without the CA the certificate is not trusted: no delivery.
    let untrusted = Sender::default()
        .post(&url, headers.clone(), event.body.clone())
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");

    let sender = Sender::with_ca(Some(&pki.ca)).unwrap();
    let (status, _, _) = sender
        .post(&url, headers, event.body.clone())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (got, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, event.body);
    // Signed as the stripe preset signs: `t=<secs>,v1=<hex hmac of "t.body">`.
    let sig = got["stripe-signature"].to_str().unwrap();
    let t = sig.split(',').next().unwrap().strip_prefix("t=").unwrap();
    let signed = format!("{t}.{}", std::str::from_utf8(&body).unwrap());
    assert!(
        sig.contains(&format!("v1={}", hex_sig("whsec_tls", signed.as_bytes()))),
        "{sig}"
    );
}
