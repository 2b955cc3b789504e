//! `hookgate demo`: the newcomer's first minute. Starts the gateway on the embedded default
//! configuration (upstreams pointed at an in-process echo server), then sends through it, for
//! every source: a correctly signed event, a duplicate of it, a tampered copy and a stale one.
//! Prints a table of outcomes and succeeds only if every outcome is the expected one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;

use super::SendFailed;

use hookgate::config::schema::SourceSpec;
use hookgate::config::{self, FileConfig, EMBEDDED_DEFAULT};
use hookgate::secret::{ProcessEnv, SecretRef};
use hookgate::sender::deliver::Sender;
use hookgate::sender::{now_secs, sample, Signer};
use hookgate::{serve, Gateway};

/// What a step should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Forwarded,
    Duplicate,
    Rejected(u16),
    NotApplicable,
}

/// One cell of the table.
struct Step {
    expect: Expect,
    status: Option<StatusCode>,
    duplicate: bool,
    reached_upstream: bool,
}

impl Step {
    fn observed(&self) -> Expect {
        match self.status {
            None => Expect::NotApplicable,
            Some(s) if self.duplicate && s.is_success() && !self.reached_upstream => {
                Expect::Duplicate
            }
            Some(s) if s.is_success() && self.reached_upstream => Expect::Forwarded,
            Some(s) => Expect::Rejected(s.as_u16()),
        }
    }

    fn ok(&self) -> bool {
        self.observed() == self.expect
    }

    fn cell(&self) -> String {
        let mark = if self.ok() { "ok" } else { "UNEXPECTED" };
        match (self.observed(), self.status) {
            (Expect::NotApplicable, _) => "n/a (no timestamp)".to_string(),
            (Expect::Forwarded, Some(s)) => format!("forwarded {} {mark}", s.as_u16()),
            (Expect::Duplicate, Some(s)) => format!("duplicate {} {mark}", s.as_u16()),
            (Expect::Rejected(code), _) => format!("rejected {code} {mark}"),
            _ => format!("? {mark}"),
        }
    }
}

/// An in-process upstream that answers 200 and counts what it received.
async fn echo_upstream() -> std::io::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let service = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        async move {
            let bytes = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes().len())
                .unwrap_or(0);
            seen.fetch_add(1, Ordering::SeqCst);
            let body = format!(r#"{{"echo":true,"bytes":{bytes}}}"#);
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
        }
    });
    tokio::spawn(hookgate::server::run(
        listener,
        service,
        std::future::pending(),
    ));
    Ok((addr, count))
}

fn literal(r: &SecretRef) -> Option<&str> {
    match r {
        SecretRef::Value(v) => Some(v),
        _ => None,
    }
}

/// The path and extra headers a sender needs for `spec` besides the signature.
fn access(spec: &SourceSpec) -> (String, HeaderMap) {
    let mut path = spec.path.clone();
    if let Some(token) = spec.path_token.as_ref().and_then(literal) {
        path = format!("{path}/{token}");
    }
    let mut headers = HeaderMap::new();
    if let Some(token) = &spec.token {
        if let (Ok(name), Some(secret)) = (
            HeaderName::from_bytes(token.header.as_bytes()),
            token.secrets.first().and_then(literal),
        ) {
            if let Ok(value) = HeaderValue::from_str(&format!("{}{secret}", token.prefix)) {
                headers.insert(name, value);
            }
        }
    }
    (path, headers)
}

/// Flips the case of the body's last letter: still valid JSON, different bytes.
fn tamper(body: &Bytes) -> Bytes {
    let mut bytes = body.to_vec();
    if let Some(b) = bytes.iter_mut().rev().find(|b| b.is_ascii_alphabetic()) {
        *b ^= 0x20;
    }
    Bytes::from(bytes)
}

/// Runs the demo, writing the table to `out`. Returns whether every outcome was expected.
pub(crate) async fn run(out: &mut String) -> anyhow::Result<bool> {
    let (upstream, received) = echo_upstream().await?;
    let text = EMBEDDED_DEFAULT.replace("http://127.0.0.1:9000", &format!("http://{upstream}"));
    let specs: FileConfig = toml::from_str(&text)?;
    let config = config::parse(&text, Path::new("."), &ProcessEnv)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let gateway_addr = listener.local_addr()?;
    tokio::spawn(serve(
        listener,
        Gateway::new(&config),
        std::future::pending(),
    ));
    let windows: HashMap<&str, i64> = config
        .sources
        .iter()
        .filter_map(|s| Some((&*s.name, s.freshness.as_ref()?.window.as_secs() as i64)))
        .collect();

    let sender = Sender::default();
    let now = now_secs();
    let _ = writeln!(
        out,
        "hookgate demo: gateway on {gateway_addr}, echo upstream on {upstream}\n"
    );
    let _ = writeln!(
        out,
        "{:<18} {:<20} {:<20} {:<20} {:<20}",
        "source", "signed event", "duplicate", "tampered copy", "stale copy"
    );
    let mut all_ok = true;
    for spec in &specs.sources {
        let preset = spec.preset.as_deref().unwrap_or_default();
        let secret = spec.secrets.first().and_then(literal);
        let signer = Signer::for_preset(preset, secret)?;
        let (path, extra) = access(spec);
        let url: Uri = format!("http://{gateway_addr}{path}").parse()?;
        let tampered_url: Uri = if spec.path_token.is_some() {
            format!("http://{gateway_addr}{path}x").parse()?
        } else {
            url.clone()
        };

        let send = |url: Uri, headers: HeaderMap, body: Bytes, expect: Expect| {
            let sender = sender.clone();
            let received = received.clone();
            async move {
                let before = received.load(Ordering::SeqCst);
                let answer = sender.post(&url, headers, body).await;
                let (status, duplicate) = match &answer {
                    Ok((status, headers, _)) => {
                        (Some(*status), headers.contains_key("x-hookgate-duplicate"))
                    }
                    Err(_) => (None, false),
                };
                Step {
                    expect,
                    status,
                    duplicate,
                    reached_upstream: received.load(Ordering::SeqCst) > before,
                }
            }
        };
        let headers_for = |event: &hookgate::sender::OutboundEvent, at: i64| {
            let mut headers = signer.headers(event, at, 1);
            headers.extend(extra.clone());
            headers
        };

        let event = sample::event(preset, &sample::new_id("evt_demo_"), now, None);
        let headers = headers_for(&event, now);
        let fresh = send(
            url.clone(),
            headers.clone(),
            event.body.clone(),
            Expect::Forwarded,
        )
        .await;
        let duplicate = send(url.clone(), headers, event.body.clone(), Expect::Duplicate).await;

        let event = sample::event(preset, &sample::new_id("evt_demo_"), now, None);
        let (body, expect) = if spec.path_token.is_some() {
            // No signature to break: a wrong path token is the forgery here.
            (event.body.clone(), Expect::Rejected(404))
        } else {
            (tamper(&event.body), Expect::Rejected(401))
        };
        let tampered = send(tampered_url, headers_for(&event, now), body, expect).await;

        let stale = match windows.get(spec.name.as_str()) {
            Some(window) => {
                let then = now - window - 3600;
                let event = sample::event(preset, &sample::new_id("evt_demo_"), then, None);
                send(
                    url.clone(),
                    headers_for(&event, then),
                    event.body.clone(),
                    Expect::Rejected(401),
                )
                .await
            }
            None => Step {
                expect: Expect::NotApplicable,
                status: None,
                duplicate: false,
                reached_upstream: false,
            },
        };
        let row = [fresh, duplicate, tampered, stale];
        all_ok &= row.iter().all(Step::ok);
        let _ = writeln!(
            out,
            "{:<18} {:<20} {:<20} {:<20} {:<20}",
            spec.name,
            row[0].cell(),
            row[1].cell(),
            row[2].cell(),
            row[3].cell()
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        if all_ok {
            "every outcome is as expected: authentic first deliveries forwarded, repeats and forgeries stopped"
        } else {
            "SOME OUTCOMES WERE NOT AS EXPECTED"
        }
    );
    Ok(all_ok)
}

pub(crate) async fn run_demo() -> anyhow::Result<()> {
    let mut table = String::new();
    let ok = run(&mut table).await?;
    print!("{table}");
    if ok {
        Ok(())
    } else {
        Err(SendFailed("the demo saw unexpected outcomes".into()).into())
    }
}
