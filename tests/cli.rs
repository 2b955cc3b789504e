//! The real `hookgate` binary: `check-config` output and errors, and `serve` on the embedded
//! default and on a file, stopped by SIGTERM with exit code 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn hookgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hookgate"))
}

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hookgate.toml")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookgate-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    for name in [
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
    ] {
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

/// A running `hookgate serve` whose stderr is collected line by line.
struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = hookgate()
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no listening line; log so far: {log:#?}"));
            log.push(line.clone());
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Server {
            child,
            addr,
            lines,
            log,
        }
    }

    /// Sends SIGTERM, waits for exit, returns the exit code and the whole log.
    fn stop(mut self) -> (Option<i32>, String) {
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

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_on_the_embedded_default_and_stops_cleanly() {
    // An empty folder: no config/hookgate.toml, so the embedded default is used.
    let dir = temp_dir("embedded");
    let server = Server::start(&dir, &[], &[]);
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
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{}/ck\"\n\
         secrets = [{{ env = \"CK_SECRET\" }}, {{ file = \"rotated.secret\" }}]\n",
        upstream.url()
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    let server = Server::start(
        &dir,
        &["--config", "gw.toml"],
        &[("CK_SECRET", "env-secret")],
    );

    for (i, secret) in ["env-secret", "file-secret"].into_iter().enumerate() {
        let body = format!(r#"{{"id":"evt_{i}","timestamp":"{}"}}"#, iso(now_secs()));
        let sig = format!("sha256={}", hex_sig(secret, body.as_bytes()));
        let h = headers(&[("X-CloudKeep-Signature-256", &sig)]);
        let answer = send(server.addr, "POST", "/hooks/ck", &h, body.as_bytes()).await;
        assert_eq!(answer.status, 202, "{}", answer.text());
    }
    assert_eq!(upstream.count(), 2);

    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("outcome=forwarded"), "{log}");
    for secret in ["env-secret", "file-secret"] {
        assert!(!log.contains(secret), "secret in log:\n{log}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
