//! The durable delivery engine across crashes: this test binary re-runs itself as a child
//! process (`child_entry`) that accepts events and is SIGKILLed; the parent reopens the same
//! file and checks that nothing acknowledged is lost and that deliveries resume at their
//! stored times (virtual time: a manual clock moved by a recording sleeper). The inbound
//! queued mode gets the same loop through the real binary: every event answered `202` is in
//! the store exactly once after each SIGKILL.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use hookgate::clock::{Clock, SystemClock};
use hookgate::delivery::*;
use hookgate::sender::deliver::Sender;

use common::delivery::{event, open_store, settled, spec, Never, Virtual};
use common::{temp_dir, Reply, Upstream};

// ---------------------------------------------------------------- the child process

/// Not a test on its own: the body of the child processes the crash tests start (it returns
/// at once unless `HOOKGATE_DELIVERY_CHILD` is set).
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var("HOOKGATE_DELIVERY_CHILD") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = Arc::new(SqliteStore::open(var("HOOKGATE_DELIVERY_DIR")).unwrap());
        let target = spec(&var("HOOKGATE_DELIVERY_URL"), "custom:1h,1h", "corgea");
        let engine = Engine::start(
            store,
            vec![target],
            EngineOptions::default(),
            EngineIo::real(),
        )
        .await
        .unwrap();
        let ack = |id: &str| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "ACK {id}").unwrap();
            out.flush().unwrap();
        };
        if mode == "one" {
            let at = var("HOOKGATE_DELIVERY_AT").parse().unwrap();
            engine.enqueue(event("evt_crash", Some(at))).await.unwrap();
            ack("evt_crash");
        } else {
            let cycle = var("HOOKGATE_DELIVERY_CYCLE");
            for task in 0..8 {
                let (engine, cycle) = (engine.clone(), cycle.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        let id = format!("c{cycle}-t{task}-{n}");
                        engine.enqueue(event(&id, None)).await.unwrap();
                        ack(&id);
                    }
                });
            }
        }
        std::future::pending::<()>().await;
    });
}

/// Starts this test binary as a child running `child_entry`; its acknowledgements arrive
/// on the channel.
fn spawn_child(mode: &str, dir: &Path, env: &[(&str, String)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_entry",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("HOOKGATE_DELIVERY_CHILD", mode)
        .env("HOOKGATE_DELIVERY_DIR", dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print its own words before ours on the first line.
            if let Some(id) = line.split("ACK ").nth(1) {
                let _ = tx.send(id.trim().to_string());
            }
        }
    });
    (child, rx)
}

// ---------------------------------------------------------------- crashes and restarts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_before_the_first_attempt_then_exactly_one_attempt_at_its_time() {
    let dir = temp_dir("delivery-sigkill");
    let upstream = Upstream::start().await;
    let t0 = SystemClock::new().wall_ms();
    let at = t0 + 3_600_000;
    let (mut child, acks) = spawn_child(
        "one",
        &dir,
        &[
            ("HOOKGATE_DELIVERY_URL", upstream.url()),
            ("HOOKGATE_DELIVERY_AT", at.to_string()),
        ],
    );
    let acked = acks.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(acked, "evt_crash");
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush beyond what enqueue committed
    child.wait().unwrap();
    assert_eq!(upstream.count(), 0);

    let time = Virtual::at(t0);
    let engine = time
        .engine(&dir, spec(&upstream.url(), "custom:1h,1h", "corgea"))
        .await;
    upstream.wait_for_requests(1, Duration::from_secs(10)).await;
    let listed = engine.list(ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    let detail = settled(&engine, listed[0].id).await;
    assert_eq!(detail.delivery.state, DeliveryState::Delivered);
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(
        detail.attempts[0].started_ms, at,
        "attempted at its scheduled time"
    );
    assert_eq!(time.slept(), vec![Duration::from_secs(3600)]);
    engine.shutdown().await;
    let received = upstream.received();
    assert_eq!(received.len(), 1, "exactly once");
    assert_eq!(received[0].body, "{\"event\":\"evt_crash\"}");
    assert!(received[0].headers.contains_key("x-corgea-signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_engine_resumes_its_retry_at_the_stored_time() {
    let dir = temp_dir("delivery-drop");
    let upstream = Upstream::start().await;
    upstream.script([Reply::status(503)]);
    let time = Virtual::at(1_750_000_000_000);
    // The first run's sleeper never returns: the retry is only ever due in the second run.
    let frozen = Virtual::at(1_750_000_000_000);
    let engine = {
        let io = EngineIo {
            sender: Sender::default(),
            clock: frozen.clock.clone(),
            sleeper: Arc::new(Never),
        };
        let store = Arc::new(open_store(&dir));
        let target = spec(&upstream.url(), "cloudkeep", "cloudkeep");
        Engine::start(store, vec![target], EngineOptions::default(), io)
            .await
            .unwrap()
    };
    let id = engine.enqueue(event("evt_1", None)).await.unwrap().id;
    upstream.wait_for_requests(1, Duration::from_secs(10)).await;
    for _ in 0..2000 {
        if engine.get(id).await.unwrap().unwrap().delivery.attempts == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(engine); // no graceful shutdown

    let engine = time
        .engine(&dir, spec(&upstream.url(), "cloudkeep", "cloudkeep"))
        .await;
    let detail = settled(&engine, id).await;
    assert_eq!(detail.delivery.state, DeliveryState::Delivered);
    let starts: Vec<i64> = detail.attempts.iter().map(|a| a.started_ms).collect();
    assert_eq!(
        starts,
        vec![1_750_000_000_000, 1_750_000_060_000],
        "cloudkeep: 1 m later"
    );
    assert_eq!(upstream.count(), 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_loop_loses_no_acknowledged_event() {
    let dir = temp_dir("delivery-crash-loop");
    let mut acked_total: Vec<String> = Vec::new();
    for cycle in 0..10 {
        let (mut child, acks) = spawn_child(
            "flood",
            &dir,
            &[
                ("HOOKGATE_DELIVERY_URL", "http://127.0.0.1:9".to_string()),
                ("HOOKGATE_DELIVERY_CYCLE", cycle.to_string()),
            ],
        );
        let wanted = 20 + (cycle * 37) % 150;
        let mut acked = Vec::new();
        while acked.len() < wanted {
            acked.push(acks.recv_timeout(Duration::from_secs(30)).unwrap());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // What the child wrote before it died was acknowledged too.
        while let Ok(id) = acks.recv_timeout(Duration::from_secs(5)) {
            acked.push(id);
        }
        let store = open_store(&dir);
        let all = ListFilter {
            limit: 10_000,
            ..ListFilter::default()
        };
        let mut stored: HashMap<String, usize> = HashMap::new();
        for d in store.list(all).await.unwrap() {
            *stored.entry(d.event_id).or_default() += 1;
        }
        acked_total.extend(acked);
        for id in &acked_total {
            assert_eq!(
                stored.get(id),
                Some(&1),
                "cycle {cycle}: {id} acknowledged, not stored once"
            );
        }
        drop(store);
    }
    assert!(acked_total.len() >= 10 * 20);
}

// ---------------------------------------------------------------- the inbound queued mode

/// One POST on `client`; `None` when no answer came (the process died).
async fn try_post(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    addr: std::net::SocketAddr,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<u16> {
    let mut request = http::Request::post(format!("http://{addr}/hooks/q"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
            body,
        )))
        .unwrap();
    let answer = client.request(request).await.ok()?;
    Some(answer.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_loop_loses_no_queued_inbound_event() {
    const KEY: &[u8] = b"queued-crash-loop-key-0123456789";
    let dir = temp_dir("queued-crash-loop");
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, KEY)
    );
    // The upstream never answers (port 9, nothing listens): every event stays pending.
    let config = format!(
        "[[source]]\nname = \"q\"\npath = \"/hooks/q\"\npreset = \"standard-webhooks\"\n\
         upstream = \"http://127.0.0.1:9/in\"\nsecrets = [{{ value = \"{secret}\" }}]\n\
         delivery = \"queue\"\nretry = \"custom:1h\"\n[delivery]\ndata_dir = \"store\"\n"
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let mut acked_total: Vec<String> = Vec::new();
    for cycle in 0..6 {
        let server = common::Server::start(&dir, &["--config", "gw.toml"], &[]);
        let addr = server.addr;
        let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut senders = Vec::new();
        for task in 0..8 {
            let tx = tx.clone();
            senders.push(tokio::spawn(async move {
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http();
                for n in 0.. {
                    let id = format!("msg_c{cycle}_t{task}_{n}");
                    let body = format!(r#"{{"id":"{id}"}}"#);
                    let h = common::sign::standard_webhooks_headers(
                        KEY,
                        &id,
                        common::now_secs(),
                        body.as_bytes(),
                    );
                    match try_post(&client, addr, &h, body.as_bytes()).await {
                        Some(202) => {
                            let _ = tx.send(id);
                        }
                        Some(status) => panic!("{id}: answered {status}"),
                        None => return,
                    }
                }
            }));
        }
        drop(tx);
        let wanted = 20 + (cycle * 37) % 100;
        let mut acked = Vec::new();
        while acked.len() < wanted {
            let id = tokio::time::timeout(common::LIMIT, acks.recv()).await;
            acked.push(id.expect("202s keep coming").expect("senders run"));
        }
        server.kill();
        for sender in senders {
            tokio::time::timeout(common::LIMIT, sender)
                .await
                .expect("senders stop once the process is gone")
                .unwrap();
        }
        // Every 202 answered before the kill counts.
        while let Ok(id) = acks.try_recv() {
            acked.push(id);
        }
        acked_total.extend(acked);
        let store = open_store(&dir.join("store"));
        let all = ListFilter {
            limit: 100_000,
            ..ListFilter::default()
        };
        let mut stored: HashMap<String, usize> = HashMap::new();
        for d in store.list(all).await.unwrap() {
            assert_eq!(d.target, "source:q");
            *stored.entry(d.event_id).or_default() += 1;
        }
        for id in &acked_total {
            assert_eq!(
                stored.get(id),
                Some(&1),
                "cycle {cycle}: {id} answered 202, not stored once"
            );
        }
        drop(store);
    }
    assert!(acked_total.len() >= 6 * 20);
}
