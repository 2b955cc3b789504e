//! The HMAC and token vectors of `tests/vectors/hmac/` through the real gateway. Each was made
//! by `scripts/vectors/hmac_vectors.{py,mjs}`: signed by the provider's official SDK or accepted
//! by the SDK's own verifier (`evidence = "sdk"`), copied from a worked example in the
//! provider's docs (`evidence = "doc-example"`), or, where the provider has neither, signed with
//! its documented formula (`evidence = "formula"`, the page named in `generated_by`). Nothing
//! here signs but the Box retry test, which re-stamps a delivery: the signatures are the files'.
//!
//! For each vector, with the gateway's clock at the vector's `now`: the delivery is accepted
//! and forwarded byte-exact; one body byte changed is refused with 401 (for a token, one token
//! byte); the same delivery to a source configured with another secret is refused with 401;
//! nothing refused reaches the upstream.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// One committed vector.
struct Vector {
    file: String,
    preset: String,
    kind: String,
    secrets: Vec<String>,
    wrong_secret: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    public_url: Option<String>,
    /// The source's path, where the provider posts.
    path: String,
    /// The request target: the path and, where the provider's URL has one, its query.
    target: String,
    now: i64,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/hmac")
}

fn text(v: &Value, key: &str, file: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{file}: no {key}"))
        .to_string()
}

fn load(file: &str) -> Vector {
    let raw = std::fs::read_to_string(dir().join(file)).unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
    let preset = text(&v, "provider", file);
    let secrets = match v.get("secrets") {
        Some(list) => list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect(),
        None => vec![text(&v, "secret", file)],
    };
    let headers = v["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("{file}: no headers"))
        .iter()
        .map(|(k, val)| (k.clone(), val.as_str().unwrap().to_string()))
        .collect();
    let path = v["path"]
        .as_str()
        .map_or_else(|| format!("/hooks/{preset}"), str::to_string);
    let target = match v["query"].as_str() {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    };
    Vector {
        file: file.to_string(),
        kind: text(&v, "kind", file),
        secrets,
        wrong_secret: text(&v, "wrong_secret", file),
        headers,
        body: text(&v, "body", file).into_bytes(),
        public_url: v["public_url"].as_str().map(str::to_string),
        path,
        target,
        now: v["now"]
            .as_i64()
            .unwrap_or_else(|| panic!("{file}: no now")),
        preset,
    }
}

fn all() -> Vec<Vector> {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    files.iter().map(|f| load(f)).collect()
}

/// A TOML basic string (JSON's escapes are valid TOML).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One source for `v`'s preset, keyed with `secrets`.
fn config(v: &Vector, secrets: &[String]) -> String {
    let list = secrets
        .iter()
        .map(|s| format!("{{ value = {} }}", toml_str(s)))
        .collect::<Vec<_>>()
        .join(", ");
    let auth = match hookgate::presets::find(&v.preset)
        .unwrap_or_else(|| panic!("{}: no preset {}", v.file, v.preset))
        .token_header
    {
        Some(header) => format!("token = {{ header = \"{header}\", secrets = [{list}] }}"),
        None => format!("secrets = [{list}]"),
    };
    let url = v
        .public_url
        .as_ref()
        .map_or(String::new(), |u| format!("public_url = {}\n", toml_str(u)));
    format!(
        "[[source]]\nname = \"vector\"\npath = {}\npreset = {}\nupstream = \"{{upstream}}/in\"\n\
         {url}{auth}\n",
        toml_str(&v.path),
        toml_str(&v.preset)
    )
}

async fn gateway(v: &Vector, secrets: &[String], upstream: &Upstream) -> TestGateway {
    let clock = hookgate::clock::ManualClock::new(v.now * 1000, Duration::from_secs(60));
    TestGateway::start_with_clock(&config(v, secrets), upstream, &[], clock).await
}

/// `headers` with one byte of the value of `name` changed.
fn with_changed_header(headers: &[(String, String)], name: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, val)| {
            if k.eq_ignore_ascii_case(name) {
                let mut b = val.clone().into_bytes();
                let last = b.len() - 1;
                b[last] = if b[last] == b'x' { b'y' } else { b'x' };
                (k.clone(), String::from_utf8(b).unwrap())
            } else {
                (k.clone(), val.clone())
            }
        })
        .collect()
}

async fn replay(v: &Vector) {
    let upstream = Upstream::start().await;
    let gw = gateway(v, &v.secrets, &upstream).await;
    let answer = gw.post(&v.target, &v.headers, &v.body).await;
    assert_eq!(answer.status, 202, "{}: {}", v.file, answer.text());
    let got = upstream.received();
    assert_eq!(got.len(), 1, "{}", v.file);
    assert_eq!(got[0].body, v.body, "{}: forwarded byte-exact", v.file);

    let answer = if v.kind == "token" {
        let header = hookgate::presets::find(&v.preset)
            .unwrap()
            .token_header
            .unwrap();
        gw.post(&v.target, &with_changed_header(&v.headers, header), &v.body)
            .await
    } else {
        let mut tampered = v.body.clone();
        let at = tampered.len() / 2;
        tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
        gw.post(&v.target, &v.headers, &tampered).await
    };
    assert_eq!(answer.status, 401, "{}: one byte changed", v.file);
    if let Some(query) = v.target.strip_prefix(&format!("{}?", v.path)) {
        // A URL-signed delivery replayed to another query string.
        let other = format!("{}?{}x", v.path, query);
        let answer = gw.post(&other, &v.headers, &v.body).await;
        assert_eq!(answer.status, 401, "{}: query changed", v.file);
    }
    assert_eq!(
        upstream.count(),
        1,
        "{}: nothing tampered forwarded",
        v.file
    );
    gw.shutdown().await;

    let other = Upstream::start().await;
    let gw = gateway(v, std::slice::from_ref(&v.wrong_secret), &other).await;
    let answer = gw.post(&v.target, &v.headers, &v.body).await;
    assert_eq!(answer.status, 401, "{}: another secret", v.file);
    assert_eq!(other.count(), 0, "{}: nothing forwarded", v.file);
    gw.shutdown().await;
}

#[tokio::test]
async fn every_vector_passes_the_gateway_and_nothing_altered_does() {
    let vectors = all();
    assert!(vectors.len() >= 30, "{} vectors", vectors.len());
    for v in &vectors {
        replay(v).await;
    }
}

/// Every symmetric preset (header HMAC or static token) has a vector, and every vector says
/// honestly where it came from. Presets with their own verification method (`sns`,
/// `google-pubsub`, `plaid`, `mailgun`) replay their vectors in `tests/keyfetch.rs`, `paypal`
/// in `tests/paypal.rs`.
#[test]
fn every_symmetric_preset_has_a_vector_with_its_evidence() {
    let vectors = all();
    for p in hookgate::presets::all() {
        let symmetric = match &p.signature {
            Some(sig) => sig.kind.is_none() && sig.method.is_none(),
            None => p.token_header.is_some(),
        };
        if symmetric {
            assert!(
                vectors.iter().any(|v| v.preset == p.name),
                "{}: no vector in tests/vectors/hmac/",
                p.name
            );
        }
    }
    for v in &vectors {
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(dir().join(&v.file)).unwrap()).unwrap();
        let evidence = raw["evidence"].as_str().unwrap();
        let by = raw["generated_by"].as_str().unwrap();
        match evidence {
            "sdk" => assert!(
                !raw["source"].as_str().unwrap_or("").is_empty(),
                "{}: an SDK vector names its SDK and version",
                v.file
            ),
            "formula" => assert!(by.starts_with("formula from "), "{}: {by}", v.file),
            "doc-example" => assert!(by.contains("https://"), "{}: {by}", v.file),
            other => panic!("{}: unknown evidence {other}", v.file),
        }
        assert!(by.contains("scripts/vectors/hmac_vectors."), "{}", v.file);
    }
}

/// The README's catalogue says, per preset, what kind of vector backs it.
#[test]
fn the_readme_states_each_vectors_evidence() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for v in all() {
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(dir().join(&v.file)).unwrap()).unwrap();
        let evidence = raw["evidence"].as_str().unwrap();
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` | ", v.preset)) && l.contains("vector"))
            .unwrap_or_else(|| panic!("README: no catalogue row for {}", v.preset));
        assert!(
            row.contains(&format!("{evidence} vector")),
            "README row for {} should say \"{evidence} vector\": {row}",
            v.preset
        );
    }
}

/// Box changes `box-delivery-id` on every retry, stamps each attempt anew and keeps the
/// body's `id` (https://developer.box.com/guides/webhooks/v2/): a retry of a delivered event an
/// hour later, with a new delivery id and timestamp, is a duplicate and is not forwarded again.
#[tokio::test]
async fn a_box_retry_an_hour_later_with_a_new_delivery_id_is_a_duplicate() {
    let v = load("box.json");
    let upstream = Upstream::start().await;
    let clock = hookgate::clock::ManualClock::new(v.now * 1000, Duration::from_secs(60));
    let config = config(&v, &v.secrets);
    let gw = TestGateway::start_with_clock(&config, &upstream, &[], clock.clone()).await;
    let answer = gw.post(&v.target, &v.headers, &v.body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());

    // The retry, as Box sends it an hour later: new delivery id, new timestamp, re-signed
    // (base64 HMAC-SHA256 of body + timestamp with the primary key, as Box documents).
    clock.advance(Duration::from_secs(3600));
    let stamp = iso(v.now + 3600);
    let mut signed = v.body.clone();
    signed.extend_from_slice(stamp.as_bytes());
    let signature = b64(&hmac_sha256(v.secrets[0].as_bytes(), &signed));
    let retry: Vec<(String, String)> = with_changed_header(&v.headers, "box-delivery-id")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("box-signature-") && k != "box-delivery-timestamp")
        .chain([
            ("box-delivery-timestamp".to_string(), stamp),
            ("box-signature-primary".to_string(), signature),
        ])
        .collect();
    let answer = gw.post(&v.target, &retry, &v.body).await;
    answer.assert_delivered_duplicate();
    assert_eq!(upstream.count(), 1, "the retry is not forwarded again");
    gw.shutdown().await;
}
