//! Unit tests of parsing and validation: presets, overrides, error keys, the examples.

use super::*;
use crate::extract::ValueSource;
use std::collections::HashMap;
use std::time::Duration;

fn env() -> HashMap<String, String> {
    [("S".to_string(), "secret".to_string())].into()
}

fn parse_ok(text: &str) -> Config {
    parse(text, Path::new("."), &env()).unwrap()
}

fn parse_err(text: &str) -> String {
    parse(text, Path::new("."), &env()).unwrap_err().0
}

const MINIMAL: &str = r#"
[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "http://127.0.0.1:9000/in"
secrets = [{ env = "S" }]
"#;

#[test]
fn embedded_default_is_valid() {
    let config = parse(EMBEDDED_DEFAULT, Path::new("config"), &HashMap::new()).unwrap();
    assert!(!config.sources.is_empty());
    assert!(!config.warnings.is_empty(), "demo secrets must warn");
}

#[test]
fn example_configurations_match_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for example in [
        "config/examples/standalone.toml",
        "config/examples/sidecar.toml",
    ] {
        let text = std::fs::read_to_string(root.join(example)).unwrap();
        let file: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert!(!file.sources.is_empty());
    }
    // The manifest embeds a configuration too.
    let manifest =
        std::fs::read_to_string(root.join("deploy/kubernetes/hookgate-sidecar.yaml")).unwrap();
    let start = manifest.find("hookgate.toml: |").unwrap();
    let embedded: String = manifest[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("---"))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let file: FileConfig = toml::from_str(&embedded).unwrap();
    assert_eq!(file.sources[0].preset.as_deref(), Some("github"));
}

#[test]
fn preset_fields_are_filled_and_overridable() {
    let config = parse_ok(MINIMAL);
    let source = &config.sources[0];
    assert_eq!(
        source.freshness.as_ref().unwrap().window,
        Duration::from_secs(18 * 3600)
    );
    assert!(source.dedup.as_ref().unwrap().id_signed);
    let text =
        MINIMAL.to_string() + "freshness = { window = \"20h\" }\ndedup = { ttl = \"20h 5m\" }\n";
    let config = parse_ok(&text);
    assert_eq!(
        config.sources[0].freshness.as_ref().unwrap().window,
        Duration::from_secs(20 * 3600)
    );
}

#[test]
fn errors_name_the_key() {
    assert!(parse_err(&MINIMAL.replace("preset", "presett")).contains("presett"));
    assert!(parse_err(&MINIMAL.replace("\"S\"", "\"NOPE\"")).contains("source[ck].secrets[0]"));
    assert!(parse_err(&MINIMAL.replace("cloudkeep", "cloudcreep")).contains("source[ck].preset"));
    assert!(
        parse_err(&MINIMAL.replace("http://127.0.0.1:9000/in", "not a url"))
            .contains("source[ck].upstream")
    );
    let twice = format!("{MINIMAL}{}", MINIMAL.replace("\"ck\"", "\"ck2\""));
    assert!(parse_err(&twice).contains("source[ck2].path"));
    assert!(parse_err(&MINIMAL.replace("/hooks/ck", "/hooks/../ck")).contains("path"));
    let short = MINIMAL.to_string() + "dedup = { ttl = \"1m\" }\n";
    assert!(parse_err(&short).contains("dedup.ttl"));
    let unknown = MINIMAL.to_string() + "signature = { algo = \"sha1\" }\n";
    assert!(parse_err(&unknown).contains("algo"));
}

#[test]
fn unauthenticated_sources_are_refused() {
    let text = r#"
[[source]]
name = "cc"
path = "/hooks/cc"
preset = "certifyclouds"
upstream = "http://127.0.0.1:9000/in"
"#;
    assert!(parse_err(text).contains("no way to authenticate"));
    let with_token =
        text.to_string() + "token = { prefix = \"Bearer \", secrets = [{ env = \"S\" }] }\n";
    let config = parse_ok(&with_token);
    assert!(config.sources[0].dedup.as_ref().unwrap().id.is_none());
}

#[test]
fn generic_scheme_is_built_from_fields() {
    let text = r#"
[[source]]
name = "gen"
path = "/g"
upstream = "http://127.0.0.1:1/"
secrets = [{ value = "demo" }]
signature = { header = "X-Sig", algorithm = "sha512", encoding = "base64url-nopad", signed = "{timestamp}:{body}", timestamp = "header:X-Ts" }
freshness = { from = "header:X-Ts", format = "unix_ms", window = "2m" }
"#;
    let config = parse_ok(text);
    let s = &config.sources[0];
    assert!(s.timestamp_signed(&ValueSource::parse("header:X-Ts").unwrap()));
    assert_eq!(config.warnings.len(), 1);
    let missing = text.replace(", timestamp = \"header:X-Ts\"", "");
    assert!(parse_err(&missing).contains("signature.timestamp"));
}

#[test]
fn a_queued_source_needs_a_data_dir_and_a_valid_policy() {
    let queued = format!("{MINIMAL}delivery = \"queue\"\n");
    let error = parse_err(&queued);
    assert!(
        error.contains("source[ck].delivery") && error.contains("[delivery] data_dir"),
        "{error}"
    );
    let config = parse_ok(&format!(
        "{queued}[delivery]\ndata_dir = \"/var/lib/hookgate\"\n"
    ));
    let expected = crate::source::DeliveryMode::Queue {
        retry: defaults::QUEUE_RETRY.to_string(),
    };
    assert_eq!(config.sources[0].delivery, expected);
    let bad = format!(
        "{MINIMAL}delivery = \"queue\"\nretry = \"custom:soon\"\n[delivery]\ndata_dir = \"d\"\n"
    );
    assert!(parse_err(&bad).contains("source[ck].retry"));
}

#[test]
fn delivery_mode_mistakes_are_named() {
    let unknown = parse_err(&format!("{MINIMAL}delivery = \"later\"\n"));
    assert!(unknown.contains("source[ck].delivery") && unknown.contains("sync or queue"));
    let retry_on_sync = parse_err(&format!("{MINIMAL}retry = \"corgea\"\n"));
    assert!(
        retry_on_sync.contains("source[ck].retry"),
        "{retry_on_sync}"
    );
    let query = parse_err(&format!(
        "{MINIMAL}delivery = \"queue\"\nforward_query = true\n[delivery]\ndata_dir = \"d\"\n"
    ));
    assert!(query.contains("forward_query"), "{query}");
    assert_eq!(
        parse_ok(MINIMAL).sources[0].delivery,
        crate::source::DeliveryMode::Sync
    );
}

#[test]
fn delivery_max_pending_is_at_least_one() {
    let text = format!("{MINIMAL}[delivery]\nmax_pending = 0\n");
    assert!(parse_err(&text).contains("delivery.max_pending"));
    let text = format!("{MINIMAL}[delivery]\nmax_pending = 5000\n");
    assert_eq!(parse_ok(&text).delivery.limits.max_pending, Some(5000));
}

#[test]
fn an_outbound_target_cannot_sign_inside_the_body() {
    let text = "[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\n\
        upstream = \"http://127.0.0.1:9/a\"\nsecrets = [{ env = \"S\" }]\n\
        [outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.target]]\nname = \"mg\"\n\
        url = \"https://hooks.example.com/mg\"\npreset = \"mailgun\"\n\
        secret = { value = \"mailgun-signing-key\" }\n";
    let error = parse_err(text);
    assert!(error.contains("outbound.target[mg].preset"), "{error}");
    assert!(error.contains("inside the body"), "{error}");
}
