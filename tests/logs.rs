//! The log a running binary writes: one request line per request in the text format (written
//! directly, following the `RUST_LOG` filter) and in JSON, and warnings that name their
//! request.

mod common;

use common::ops::*;
use common::*;

/// The binary on a configuration in a fresh directory `name`: one CloudKeep source whose
/// secret `secret` is in a file, forwarding to `upstream`; `args` after `--config`.
fn serve(name: &str, secret: &str, upstream: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    let dir = temp_dir(name);
    std::fs::write(dir.join("ck.secret"), secret).unwrap();
    std::fs::write(dir.join("gw.toml"), source_config(upstream, &["ck.secret"])).unwrap();
    let args: Vec<&str> = ["--config", "gw.toml"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    Server::start(&dir, &args, env)
}

/// The request id hookgate answered with.
fn request_id(answer: &Answer) -> String {
    answer.headers["x-hookgate-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_have_one_structured_line_per_request() {
    let upstream = Upstream::start().await;
    let json = ["--log-format", "json"];
    let mut server = serve("ops-json", "json-secret", &upstream.url(), &json, &[]);
    let (h, b) = cloudkeep("json-secret", "evt_json", 0);
    let answer = send(server.addr, "POST", "/hooks/ck", &h, &b).await;
    let id = request_id(&answer);
    let line = server.wait_for("\"request_id\"");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["request_id"], id.as_str());
    assert_eq!(json["source"], "ck");
    assert_eq!(json["outcome"], "forwarded");
    assert_eq!(json["status"], 202);
    assert_eq!(json["level"], "INFO");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0));
    assert!(!log.contains("json-secret"));
}

/// Starts the binary with the text log format on a pipe and `RUST_LOG=rust_log`, sends one
/// delivery, and returns its request id and the whole log once the process has exited.
async fn text_log_of_one_request(name: &str, rust_log: &str) -> (String, String) {
    let upstream = Upstream::start().await;
    let env = [("RUST_LOG", rust_log)];
    let server = serve(name, "text-secret", &upstream.url(), &[], &env);
    let (h, b) = cloudkeep("text-secret", &format!("evt_{name}"), 0);
    let answer = send(server.addr, "POST", "/hooks/ck", &h, &b).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let id = request_id(&answer);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("text-secret"), "{log}");
    (id, log)
}

#[tokio::test(flavor = "multi_thread")]
async fn text_request_lines_follow_the_log_filter() {
    // The default: one line per request, in the text format's shape.
    let (id, log) = text_log_of_one_request("ops-text-info", "info").await;
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no line for {id}:\n{log}"));
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(humantime::parse_rfc3339(stamp).is_ok(), "{line}");
    let expected = format!(
        " INFO hookgate::request: request request_id=\"{id}\" source=\"ck\" \
         outcome=forwarded status=202 method=POST latency_ms="
    );
    assert!(rest.starts_with(&expected), "{line}");

    // Request lines switched off by the filter; the rest of the log stays.
    let (id, log) = text_log_of_one_request("ops-text-off", "info,hookgate::request=off").await;
    assert!(
        !log.contains(&id) && !log.contains("hookgate::request"),
        "{log}"
    );
    assert!(log.contains("listening"), "{log}");

    // At debug level the line is written inside the request's span.
    let (id, log) = text_log_of_one_request("ops-text-debug", "debug").await;
    let prefix = format!("request{{request_id=\"{id}\"}}: hookgate::request: request");
    assert!(log.lines().any(|l| l.contains(&prefix)), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warning_during_a_request_carries_its_request_id() {
    // An upstream port nobody listens on: the spawned forward logs "upstream unreachable".
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let json = ["--log-format", "json"];
    let mut server = serve(
        "ops-span",
        "span-secret",
        &format!("http://{closed}"),
        &json,
        &[],
    );
    let (h, b) = cloudkeep("span-secret", "evt_span", 0);
    let answer = send(server.addr, "POST", "/hooks/ck", &h, &b).await;
    assert_eq!(answer.status, 502);
    let id = request_id(&answer);
    let line = server.wait_for("upstream unreachable");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    // The warning names the request itself: there is no per-request span at the default level.
    assert_eq!(json["request_id"], id.as_str(), "{line}");
    assert_eq!(json["source"], "ck", "{line}");
    let (code, _) = server.stop();
    assert_eq!(code, Some(0));
}
