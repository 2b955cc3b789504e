//! Shared integration-test helpers: a real upstream server on 127.0.0.1:0 that records every
//! request and answers from a script, the real gateway started in-process on 127.0.0.1:0, a
//! minimal HTTP client, and (in [`sign`]) one independent signing formula per preset, written
//! out as the providers document them (not the crate's signer). Waits are on events (arrivals
//! at the upstream, log lines) and always bounded.
#![allow(dead_code)]

pub(crate) mod delivery;
pub(crate) mod keyserver;
pub(crate) mod ops;
pub(crate) mod sign;

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

// ---------------------------------------------------------------- upstream

/// What the upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: &'static str,
    pub delay: Duration,
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Reply {
            status,
            body: "",
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub(crate) fn delayed(status: u16, delay: Duration) -> Self {
        Reply {
            delay,
            ..Reply::status(status)
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

#[derive(Default)]
struct UpstreamState {
    received: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<Option<Reply>>,
    /// How many requests have arrived (head and body received), published on every arrival.
    arrived: watch::Sender<usize>,
    /// How many requests the upstream has answered (after any scripted delay).
    answered: watch::Sender<usize>,
}

/// A recording upstream on an ephemeral loopback port.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub addr: SocketAddr,
    state: Arc<UpstreamState>,
}

/// How long a test waits for an event (an arrival, an answer) before failing: far beyond
/// what any of them takes, so only a hang reaches it.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// The body and headers of the upstream's default answer.
pub(crate) const UPSTREAM_BODY: &str = "accepted-by-upstream";

impl Upstream {
    pub(crate) async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A recording upstream on `addr` (a port a test reserved earlier, to bring it up late).
    pub(crate) async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(UpstreamState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, state }
    }

    /// `http://127.0.0.1:<port>` of this upstream.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues answers for the next requests (then the default answer again).
    pub(crate) fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Sets the answer used when the script is empty.
    pub(crate) fn set_default(&self, reply: Reply) {
        *self.state.default_reply.lock().unwrap() = Some(reply);
    }

    pub(crate) fn received(&self) -> Vec<Recorded> {
        self.state.received.lock().unwrap().clone()
    }

    /// How many requests have arrived so far.
    pub(crate) fn count(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }

    /// How many requests the upstream has answered so far (scripted delays included).
    pub(crate) fn answered(&self) -> usize {
        *self.state.answered.borrow()
    }

    /// Waits (at most `limit`) until `n` requests have arrived (head and body received, the
    /// answer possibly still pending) and returns everything received by then; panics naming
    /// what it waited for and what it saw.
    pub(crate) async fn wait_for_requests(&self, n: usize, limit: Duration) -> Vec<Recorded> {
        self.wait_on(&self.state.arrived, n, limit, "requests to arrive")
            .await;
        self.received()
    }

    /// Waits (at most `limit`) until the upstream has answered `n` requests; panics naming what
    /// it waited for and what it saw.
    pub(crate) async fn wait_for_answers(&self, n: usize, limit: Duration) {
        self.wait_on(&self.state.answered, n, limit, "answers from the upstream")
            .await;
    }

    async fn wait_on(&self, counter: &watch::Sender<usize>, n: usize, limit: Duration, what: &str) {
        let mut seen = counter.subscribe();
        if tokio::time::timeout(limit, seen.wait_for(|got| *got >= n))
            .await
            .is_err()
        {
            let paths: Vec<String> = self
                .received()
                .into_iter()
                .map(|r| r.path_and_query)
                .collect();
            panic!(
                "waited {limit:?} for {n} {what}; saw {} (arrived: {paths:?}, answered: {})",
                *counter.borrow(),
                self.answered()
            );
        }
    }
}

async fn answer(state: Arc<UpstreamState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    state.received.lock().unwrap().push(Recorded {
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    });
    state.arrived.send_modify(|n| *n += 1);
    let scripted = state.script.lock().unwrap().pop_front();
    let reply = scripted
        .or_else(|| state.default_reply.lock().unwrap().clone())
        .unwrap_or(Reply {
            body: UPSTREAM_BODY,
            ..Reply::status(202)
        });
    if !reply.delay.is_zero() {
        // A scripted slow upstream: the delay is the behaviour under test.
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder()
        .status(reply.status)
        .header("x-upstream", "yes");
    for (name, value) in &reply.headers {
        response = response.header(*name, *value);
    }
    let response = response
        .body(Full::new(Bytes::from_static(reply.body.as_bytes())))
        .unwrap();
    state.answered.send_modify(|n| *n += 1);
    response
}

// ---------------------------------------------------------------- gateway

/// `config` with `{upstream}` replaced by the upstream's URL, parsed with `env`.
fn test_config(config: &str, upstream: &Upstream, env: &[(&str, &str)]) -> hookgate::Config {
    let text = config.replace("{upstream}", &upstream.url());
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    hookgate::config::parse(&text, std::path::Path::new("."), &env)
        .unwrap_or_else(|e| panic!("test config invalid: {e}"))
}

/// The real gateway, in-process, on an ephemeral loopback port.
pub(crate) struct TestGateway {
    pub addr: SocketAddr,
    pub gateway: hookgate::Gateway,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    /// Starts a gateway on `config` where `{upstream}` is replaced by the upstream's URL.
    pub(crate) async fn start(config: &str, upstream: &Upstream, env: &[(&str, &str)]) -> Self {
        Self::from_config(&test_config(config, upstream, env)).await
    }

    pub(crate) async fn from_config(config: &hookgate::Config) -> Self {
        Self::serve(hookgate::Gateway::new(config)).await
    }

    /// Starts a gateway like [`TestGateway::start`] whose freshness and in-memory dedup read
    /// time off `clock`.
    pub(crate) async fn start_with_clock(
        config: &str,
        upstream: &Upstream,
        env: &[(&str, &str)],
        clock: hookgate::clock::SharedClock,
    ) -> Self {
        let config = test_config(config, upstream, env);
        Self::serve(hookgate::Gateway::with_clock(
            &config,
            Arc::new(hookgate::metrics::Metrics::default()),
            clock,
        ))
        .await
    }

    async fn serve(gateway: hookgate::Gateway) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hookgate::serve(listener, gateway.clone(), async move {
            let _ = stopped.await;
        }));
        TestGateway {
            addr,
            gateway,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting and waits for open requests to finish.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        send(self.addr, "POST", path, headers, body).await
    }
}

// ---------------------------------------------------------------- client

/// A response as the sender sees it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The `error` code of a JSON error answer.
    pub(crate) fn error_code(&self) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", self.body));
        json["error"].as_str().unwrap_or_default().to_string()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts this answers a repeat of an event already delivered: 200 with
    /// `X-Hookgate-Duplicate: delivered`.
    #[track_caller]
    pub(crate) fn assert_delivered_duplicate(&self) {
        assert_eq!(self.status, 200, "{}", self.text());
        let duplicate = self.headers.get("x-hookgate-duplicate");
        assert_eq!(
            duplicate.and_then(|v| v.to_str().ok()),
            Some("delivered"),
            "{}",
            self.text()
        );
    }
}

/// Sends one request over a fresh connection.
pub(crate) async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = client.request(request).await.expect("gateway answered");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends a delivery to `first`, then, once it is at the upstream and before the upstream has
/// answered it, the sender's retry of it to `retry` (the same gateway or another replica), as if
/// the sender's own attempt had failed on the network. The retry must be answered within
/// `sender_timeout`. Returns both answers.
pub(crate) async fn first_and_retry_while_in_flight(
    upstream: &Upstream,
    (first, retry): (SocketAddr, SocketAddr),
    path: &str,
    (headers, body): (Vec<(String, String)>, Vec<u8>),
    sender_timeout: Duration,
) -> (Answer, Answer) {
    let (h1, b1, p1) = (headers.clone(), body.clone(), path.to_string());
    let first = tokio::spawn(async move { send(first, "POST", &p1, &h1, &b1).await });
    upstream.wait_for_requests(1, LIMIT).await;
    assert_eq!(upstream.answered(), 0, "the first is in flight");
    let retry = tokio::time::timeout(sender_timeout, send(retry, "POST", path, &headers, &body))
        .await
        .unwrap_or_else(|_| {
            panic!("the retry was answered within the sender's {sender_timeout:?}")
        });
    (first.await.unwrap(), retry)
}

/// Header list from string pairs.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------- time

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// RFC 3339 UTC (`2025-06-11T10:30:00Z`) for unix seconds.
pub(crate) fn iso(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// CertifyClouds' zoneless form (`2024-12-14T12:00:00.000000`).
pub(crate) fn iso_zoneless(secs: i64) -> String {
    let with_zone = iso(secs);
    format!("{}.000000", &with_zone[..with_zone.len() - 1])
}

// ---------------------------------------------------------------- every preset at once

/// One source per preset at `/hooks/<preset>`, each accepting two secrets (rotation).
pub(crate) const OLD: &str = "old-secret-value";
pub(crate) const NEW: &str = "new-secret-value";
pub(crate) const WRONG: &str = "wrong-secret-value";
/// Standard Webhooks secrets are `whsec_` + base64 of the key bytes.
pub(crate) const OLD_WH: &str = "whsec_b2xkLWtleS1ieXRlcy0wMTIzNDU2Nzg5";
pub(crate) const NEW_WH: &str = "whsec_bmV3LWtleS1ieXRlcy0wMTIzNDU2Nzg5";
pub(crate) const WRONG_WH: &str = "whsec_d3Jvbmcta2V5LWJ5dGVzLTAxMjM0NTY3";

pub(crate) const PRESETS: [&str; 10] = [
    "cloudkeep",
    "policycortex",
    "corgea",
    "vaas",
    "certifyclouds",
    "standard-webhooks",
    "github",
    "stripe",
    "slack",
    "shopify",
];

pub(crate) fn all_presets_config() -> String {
    let mut text = String::new();
    for preset in PRESETS {
        let auth = match preset {
            "certifyclouds" => {
                "token = { prefix = \"Bearer \", secrets = [{ env = \"OLD\" }, { env = \"NEW\" }] }"
                    .to_string()
            }
            "standard-webhooks" => "secrets = [{ env = \"OLD_WH\" }, { env = \"NEW_WH\" }]".into(),
            _ => "secrets = [{ env = \"OLD\" }, { env = \"NEW\" }]".into(),
        };
        text += &format!(
            "[[source]]\nname = \"{preset}\"\npath = \"/hooks/{preset}\"\npreset = \"{preset}\"\n\
             upstream = \"{{upstream}}/{preset}\"\n{auth}\n\n"
        );
    }
    text
}

pub(crate) const ENV: [(&str, &str); 4] = [
    ("OLD", OLD),
    ("NEW", NEW),
    ("OLD_WH", OLD_WH),
    ("NEW_WH", NEW_WH),
];

// ---------------------------------------------------------------- independent signing

pub(crate) fn hmac_sha256(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn hex_sig(secret: &str, data: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), data))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

// ---------------------------------------------------------------- the real binary

/// The hookgate binary under test: the one cargo built for these tests, or another build named
/// by `HOOKGATE_TEST_BINARY` (`scripts/pgo-build.sh` runs these tests against its optimised
/// build that way).
pub(crate) fn hookgate() -> Command {
    match std::env::var_os("HOOKGATE_TEST_BINARY") {
        Some(binary) => Command::new(binary),
        None => Command::new(env!("CARGO_BIN_EXE_hookgate")),
    }
}

/// A fresh scratch folder for one test.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookgate-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The address in a log line, in text (`address=…`) or JSON (`"address":"…"`) format.
pub(crate) fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = line
        .split("address=")
        .nth(1)
        .or_else(|| line.split("\"address\":\"").nth(1))?;
    rest.split(|c: char| c.is_whitespace() || c == '"')
        .next()?
        .parse()
        .ok()
}

/// A child process's output as lines, read on a thread until the process closes it (so the
/// pipe never fills, whether or not anyone still listens).
fn line_by_line(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

/// A running `hookgate serve` whose stderr is collected line by line.
pub(crate) struct Server {
    pub addr: SocketAddr,
    child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Server {
    pub(crate) fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = hookgate()
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_by_line(child.stderr.take().unwrap());
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no listening line; log so far: {log:#?}"));
            log.push(line.clone());
            if let Some(addr) = listening_address(&line) {
                break addr;
            }
        };
        Server {
            child,
            addr,
            lines,
            log,
        }
    }

    /// The process id (to read its memory figures from /proc).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a log line containing `needle` and returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line with {needle}; log: {:#?}", self.log));
            self.log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the process.
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Kills the process outright (SIGKILL): nothing is released or finished.
    pub(crate) fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, waits for exit, returns the exit code and the whole log.
    pub(crate) fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        (status.code(), self.log.join("\n"))
    }
}

// ---------------------------------------------------------------- Redis

/// A real `redis-server` on a free loopback port, without persistence.
pub(crate) struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub(crate) fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Starts on `port` (to bring a stopped server back at the same address), and returns once
    /// it logs that it accepts connections.
    pub(crate) fn start_on(port: u16) -> RedisServer {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server not found: install the Debian package redis-server (.ci/run does)",
            );
        let lines = line_by_line(child.stdout.take().unwrap());
        let mut log = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains("Ready to accept connections") => {
                    return RedisServer { port, child };
                }
                Ok(line) => log.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server did not start on port {port}; its log: {log:#?}");
                }
            }
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server and waits until it is gone.
    pub(crate) fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- TLS

/// A test CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files.
pub(crate) struct TestPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    pub(crate) fn create(dir: &Path) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let pki = TestPki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.cert, leaf.pem()).unwrap();
        std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
        pki
    }
}

// ---------------------------------------------------------------- metrics and waiting

/// The value of the first series in a Prometheus text exposition that starts with `series`
/// (0 when absent).
pub(crate) fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `condition` holds, checking every few milliseconds, for at most `limit`;
/// panics with `what` when it never does. Only for states no event announces (metrics,
/// counters inside the gateway); wait on the upstream's or the server log's events otherwise.
pub(crate) async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        // Polling: the condition has no event of its own (see above); bounded by `limit`.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Repeats `attempt` until it returns `Ok`, for at most `limit`, pausing `pause` between tries
/// (zero where the attempt itself waits, such as a request held by an in-flight wait);
/// panics with `what` and the last `Err`. For outcomes only a new request can observe (a
/// lapsed claim, a reconnected store), where no event exists.
pub(crate) async fn retry_until<T, F, Fut>(
    what: &str,
    limit: Duration,
    pause: Duration,
    mut attempt: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = match attempt().await {
            Ok(done) => return done,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}; last attempt: {last}"
        );
        if !pause.is_zero() {
            // Spaces out retries that would otherwise be refused at once; bounded by `limit`.
            tokio::time::sleep(pause).await;
        }
    }
}

// ---------------------------------------------------------------- raw sockets

/// The bytes of an HTTP/1.1 `POST` of `body` to `path` with `headers`, for a raw socket.
pub(crate) fn raw_post(path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: hookgate\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Writes `request` as-is on a fresh connection and returns what came back until the server
/// closed the connection or stayed silent for a second.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything; that is not a test failure.
    let _ = stream.write_all(request).await;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => reply.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}
