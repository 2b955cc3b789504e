//! The deployment examples (`deploy/`, `config/examples/`) are product: each one must work as
//! written. These tests read every example and check it against the configuration it uses, so
//! the names cannot drift apart again:
//! - every `{ env = "NAME" }` in a configuration is provided by its deployment;
//! - every file a configuration reads (`{ file = … }`, TLS certificate and key) is provided by
//!   its deployment (Kubernetes volume + Secret key, systemd install line, Docker mount);
//! - the listen ports match the container ports, probes, scrape port, NetworkPolicy, `EXPOSE`
//!   and `docker run -p`, and a non-loopback admin listener has a token;
//! - the configuration the Docker run example mounts exists where the example says;
//! - each configuration parses with exactly what its deployment provides;
//! - every metric the Grafana dashboard and the alert rules use exists in hookgate.
//!
//! YAML is read by a small parser for the subset the examples use (block and flow collections,
//! plain and quoted scalars, `|` and `>` blocks), so no YAML dependency is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ------------------------------------------------------------------ what a configuration reads

/// The names and files a configuration reads, and its listeners.
#[derive(Debug, Default)]
struct Needs {
    /// Environment variable → where in the configuration.
    env: BTreeMap<String, String>,
    /// File path → where in the configuration.
    files: BTreeMap<String, String>,
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    admin_token: bool,
}

/// Walks the TOML value tree: any table that is exactly `{ env = "…" }`, `{ file = "…" }` or
/// `{ value = "…" }` is a secret reference, wherever it sits.
fn walk(value: &toml::Value, at: &str, needs: &mut Needs) {
    match value {
        toml::Value::Table(table) => {
            if table.len() == 1 {
                if let Some(toml::Value::String(name)) = table.get("env") {
                    needs.env.insert(name.clone(), at.to_string());
                    return;
                }
                if let Some(toml::Value::String(path)) = table.get("file") {
                    needs.files.insert(path.clone(), at.to_string());
                    return;
                }
            }
            for (key, value) in table {
                if key == "url_env" {
                    if let toml::Value::String(name) = value {
                        needs.env.insert(name.clone(), format!("{at}.url_env"));
                    }
                }
                walk(value, &format!("{at}.{key}"), needs);
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), needs);
            }
        }
        _ => {}
    }
}

fn needs(text: &str, what: &str) -> Needs {
    let doc: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut needs = Needs::default();
    walk(&doc, "", &mut needs);
    let addr = |v: Option<&toml::Value>| {
        v.and_then(toml::Value::as_str)
            .map(|s| s.parse::<SocketAddr>().unwrap())
    };
    let server = doc.get("server");
    needs.listen = Some(
        addr(server.and_then(|s| s.get("listen")))
            .unwrap_or_else(|| "127.0.0.1:8080".parse().unwrap()),
    );
    if let Some(tls) = server.and_then(|s| s.get("tls")) {
        for key in ["cert", "key"] {
            let path = tls[key].as_str().unwrap().to_string();
            needs.files.insert(path, format!("server.tls.{key}"));
        }
    }
    if let Some(ca) = doc.get("upstream_tls").and_then(|t| t.get("ca")) {
        needs
            .files
            .insert(ca.as_str().unwrap().to_string(), "upstream_tls.ca".into());
    }
    if let Some(admin) = doc.get("admin") {
        needs.admin =
            Some(addr(admin.get("listen")).unwrap_or_else(|| "127.0.0.1:9090".parse().unwrap()));
        needs.admin_token = admin.get("token").is_some();
    }
    needs
}

/// Checks that hold for every example configuration.
fn check_common(needs: &Needs, what: &str) {
    if let Some(admin) = needs.admin {
        assert!(
            admin.ip().is_loopback() || needs.admin_token,
            "{what}: admin listens on {admin}, not loopback, without [admin] token (a start-up error)"
        );
    }
}

// ------------------------------------------------------------------ a small YAML reader

#[derive(Clone, Debug)]
struct Line {
    indent: usize,
    /// Without indentation and comment.
    text: String,
    /// As written, for block scalars.
    raw: String,
}

fn strip_comment(s: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in s.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return &s[..i],
            _ => {}
        }
        prev_space = c == ' ' || c == '\t';
    }
    s
}

/// Parses a multi-document YAML file into JSON values.
fn yaml_documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    for raw in text.lines().chain(std::iter::once("---")) {
        if raw.trim_end() == "---" {
            if current.iter().any(|l| !l.text.is_empty()) {
                let mut i = 0;
                docs.push(yaml_node(&mut current, &mut i, 0));
            }
            current.clear();
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let text = strip_comment(raw.trim_start()).trim_end().to_string();
        current.push(Line {
            indent,
            text,
            raw: raw.to_string(),
        });
    }
    docs
}

fn skip_blank(lines: &[Line], i: &mut usize) {
    while *i < lines.len() && lines[*i].text.is_empty() {
        *i += 1;
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn yaml_node(lines: &mut Vec<Line>, i: &mut usize, min_indent: usize) -> Value {
    skip_blank(lines, i);
    if *i >= lines.len() || lines[*i].indent < min_indent {
        return Value::Null;
    }
    let indent = lines[*i].indent;
    if is_item(&lines[*i].text) {
        let mut items = Vec::new();
        loop {
            skip_blank(lines, i);
            if *i >= lines.len() || lines[*i].indent != indent || !is_item(&lines[*i].text) {
                break;
            }
            let rest = lines[*i].text[1..].trim_start().to_string();
            if rest.is_empty() {
                *i += 1;
                items.push(yaml_node(lines, i, indent + 1));
            } else if map_key(&rest).is_some() {
                // `- key: value` starts a mapping indented to where `key` is.
                let offset = lines[*i].text.len() - rest.len();
                lines[*i].indent += offset;
                lines[*i].text = rest;
                items.push(yaml_node(lines, i, indent + 1));
            } else {
                items.push(flow_value(&rest));
                *i += 1;
            }
        }
        return Value::Array(items);
    }
    if map_key(&lines[*i].text).is_none() {
        let value = flow_value(&lines[*i].text);
        *i += 1;
        return value;
    }
    let mut map = Map::new();
    loop {
        skip_blank(lines, i);
        if *i >= lines.len() || lines[*i].indent != indent || is_item(&lines[*i].text) {
            break;
        }
        let text = lines[*i].text.clone();
        let (key, rest) = map_key(&text).unwrap_or_else(|| panic!("not a mapping entry: {text}"));
        *i += 1;
        let value = if rest.is_empty() {
            skip_blank(lines, i);
            if *i < lines.len()
                && (lines[*i].indent > indent
                    || (lines[*i].indent == indent && is_item(&lines[*i].text)))
            {
                let min = lines[*i].indent;
                yaml_node(lines, i, min)
            } else {
                Value::Null
            }
        } else if rest.starts_with('|') || rest.starts_with('>') {
            block_scalar(lines, i, indent, &rest)
        } else {
            flow_value(&rest)
        };
        map.insert(key, value);
    }
    Value::Object(map)
}

/// `key: rest` (or `key:`) outside quotes and brackets.
fn map_key(text: &str) -> Option<(String, String)> {
    if text.starts_with('{') || text.starts_with('[') {
        return None;
    }
    if text.starts_with('"') || text.starts_with('\'') {
        let quote = text.chars().next().unwrap();
        let end = text[1..].find(quote)? + 1;
        let after = &text[end + 1..];
        let rest = after.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        return Some((text[1..end].to_string(), rest.trim().to_string()));
    }
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some((
                text[..i].trim().to_string(),
                text[i + 1..].trim().to_string(),
            ));
        }
    }
    None
}

fn block_scalar(lines: &[Line], i: &mut usize, parent: usize, header: &str) -> Value {
    let mut body: Vec<&str> = Vec::new();
    let mut content_indent = None;
    while *i < lines.len() {
        let line = &lines[*i];
        if line.raw.trim().is_empty() {
            body.push("");
            *i += 1;
            continue;
        }
        if line.indent <= parent {
            break;
        }
        let ci = *content_indent.get_or_insert(line.indent);
        body.push(&line.raw[ci.min(line.indent)..]);
        *i += 1;
    }
    while body.last() == Some(&"") {
        body.pop();
    }
    let text = if header.starts_with('>') {
        body.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
    } else {
        body.join("\n")
    };
    let keep_newline = !header.contains('-');
    Value::String(if keep_newline { text + "\n" } else { text })
}

/// A flow value: `{ a: b }`, `[a, b]`, a quoted or plain scalar.
fn flow_value(text: &str) -> Value {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let value = flow(&chars, &mut pos, false);
    let rest: String = chars[pos..].iter().collect();
    assert!(rest.trim().is_empty(), "unparsed YAML: {text}");
    value
}

fn flow(c: &[char], pos: &mut usize, inside: bool) -> Value {
    while *pos < c.len() && c[*pos] == ' ' {
        *pos += 1;
    }
    match c.get(*pos) {
        Some('{') => {
            *pos += 1;
            let mut map = Map::new();
            loop {
                while *pos < c.len() && (c[*pos] == ' ' || c[*pos] == ',') {
                    *pos += 1;
                }
                if c.get(*pos) == Some(&'}') {
                    *pos += 1;
                    return Value::Object(map);
                }
                let key = match flow(c, pos, true) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                assert_eq!(c.get(*pos), Some(&':'), "flow mapping without `:`");
                *pos += 1;
                let value = flow(c, pos, true);
                map.insert(key, value);
            }
        }
        Some('[') => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                while *pos < c.len() && (c[*pos] == ' ' || c[*pos] == ',') {
                    *pos += 1;
                }
                if c.get(*pos) == Some(&']') {
                    *pos += 1;
                    return Value::Array(items);
                }
                items.push(flow(c, pos, true));
            }
        }
        Some(&q) if q == '"' || q == '\'' => {
            *pos += 1;
            let mut s = String::new();
            while *pos < c.len() && c[*pos] != q {
                if q == '"' && c[*pos] == '\\' {
                    *pos += 1;
                }
                s.push(c[*pos]);
                *pos += 1;
            }
            *pos += 1;
            while *pos < c.len() && c[*pos] == ' ' {
                *pos += 1;
            }
            Value::String(s)
        }
        _ => {
            let start = *pos;
            while *pos < c.len() {
                let ch = c[*pos];
                let colon = ch == ':' && (*pos + 1 == c.len() || c[*pos + 1] == ' ');
                if inside && (ch == ',' || ch == '}' || ch == ']' || colon) {
                    break;
                }
                *pos += 1;
            }
            let s: String = c[start..*pos].iter().collect::<String>().trim().to_string();
            match s.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" | "~" => Value::Null,
                _ => s
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(s)),
            }
        }
    }
}

fn port_of(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn arr(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn s(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[test]
fn the_yaml_reader_reads_the_subset_the_examples_use() {
    let docs = yaml_documents(
        "a: 1 # c\nb:\n  - { x: \"y\", z: [1, 'two'] }\n  - k: v\n    m: |\n      line # kept\n\n      two\n  - plain: a/b.c\nc: >-\n  folded\n  text\n---\nd: []\n",
    );
    assert_eq!(
        docs[0],
        serde_json::json!({
            "a": 1,
            "b": [{"x": "y", "z": [1, "two"]}, {"k": "v", "m": "line # kept\n\ntwo\n"}, {"plain": "a/b.c"}],
            "c": "folded text",
        })
    );
    assert_eq!(docs[1], serde_json::json!({"d": []}));
}

// ------------------------------------------------------------------ a test configuration

/// Parses `text` with `hookgate::config::parse`, given exactly the environment names and files
/// the deployment provides: every provided absolute path is created under a temporary folder
/// (a certificate and key for the TLS paths) and the configuration is pointed there.
fn parse_with(text: &str, env_names: &BTreeSet<String>, files: &BTreeSet<String>, what: &str) {
    let dir = std::env::temp_dir().join(format!(
        "hookgate-deploy-{}-{}",
        std::process::id(),
        what.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let doc: toml::Value = toml::from_str(text).unwrap();
    let tls = doc.get("server").and_then(|s| s.get("tls"));
    let (cert_path, key_path) = (
        tls.and_then(|t| t.get("cert"))
            .and_then(toml::Value::as_str),
        tls.and_then(|t| t.get("key")).and_then(toml::Value::as_str),
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut text = text.to_string();
    for file in files {
        let target: PathBuf = dir.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let content = if Some(file.as_str()) == cert_path {
            cert.pem()
        } else if Some(file.as_str()) == key_path {
            key.serialize_pem()
        } else {
            // Valid as raw text, base64 and whsec_, and longer than a path token's minimum.
            "c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==\n".to_string()
        };
        std::fs::write(&target, content).unwrap();
        text = text.replace(
            &format!("\"{file}\""),
            &format!("\"{}\"", target.to_str().unwrap()),
        );
    }
    let env: std::collections::HashMap<String, String> = env_names
        .iter()
        .map(|name| (name.clone(), "c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==".to_string()))
        .collect();
    let result = hookgate::config::parse(&text, &dir, &env);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        panic!("{what}: does not start with what the deployment provides: {e}");
    }
}

// ------------------------------------------------------------------ Kubernetes

struct K8s {
    docs: Vec<Value>,
    comments: String,
}

impl K8s {
    fn load() -> K8s {
        let text = read("deploy/kubernetes/hookgate-sidecar.yaml");
        let comments = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('#'))
            .collect::<Vec<_>>()
            .join("\n");
        K8s {
            docs: yaml_documents(&text),
            comments,
        }
    }

    fn kind(&self, kind: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("the manifest has no {kind}"))
    }

    fn pod(&self) -> &Value {
        &self.kind("Deployment")["spec"]["template"]
    }

    fn hookgate(&self) -> &Value {
        arr(&self.pod()["spec"]["containers"])
            .iter()
            .find(|c| c["name"] == "hookgate")
            .expect("a container named hookgate")
    }

    fn volume(&self, name: &str) -> &Value {
        arr(&self.pod()["spec"]["volumes"])
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    }

    /// Keys each Secret gets from the `kubectl create secret` commands in the comments.
    fn created_secret_keys(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut secrets = BTreeMap::new();
        for line in self.comments.lines() {
            let Some(at) = line.find("kubectl create secret ") else {
                continue;
            };
            let words: Vec<&str> = line[at..].split_whitespace().collect();
            let (kind, name) = (words[3], words[4]);
            let mut keys = BTreeSet::new();
            if kind == "tls" {
                keys.extend(["tls.crt".to_string(), "tls.key".to_string()]);
            }
            for word in &words[5..] {
                for flag in ["--from-file=", "--from-literal="] {
                    if let Some(arg) = word.strip_prefix(flag) {
                        let key = match arg.split_once('=') {
                            Some((key, _)) => key,
                            None => arg.rsplit('/').next().unwrap(),
                        };
                        keys.insert(key.to_string());
                    }
                }
            }
            secrets.insert(name.to_string(), keys);
        }
        secrets
    }

    /// Files the hookgate container sees: mount path + item path → (volume kind, source, key).
    fn mounted_files(&self) -> BTreeMap<String, (String, String, String)> {
        let mut files = BTreeMap::new();
        for mount in arr(&self.hookgate()["volumeMounts"]) {
            let volume = self.volume(s(&mount["name"]));
            let (kind, source) = if volume["secret"].is_object() {
                ("secret", &volume["secret"]["secretName"])
            } else if volume["configMap"].is_object() {
                ("configMap", &volume["configMap"]["name"])
            } else {
                panic!(
                    "volume {} is neither a Secret nor a ConfigMap",
                    mount["name"]
                );
            };
            let items = arr(&volume[kind]["items"]);
            assert!(
                !items.is_empty(),
                "volume {} lists no items: list the keys hookgate needs, so a missing key stops the pod",
                mount["name"]
            );
            for item in items {
                files.insert(
                    format!("{}/{}", s(&mount["mountPath"]), s(&item["path"])),
                    (
                        kind.to_string(),
                        s(source).to_string(),
                        s(&item["key"]).to_string(),
                    ),
                );
            }
        }
        files
    }

    /// Environment variables of the hookgate container, and the Secret keys they come from.
    fn env(&self) -> BTreeMap<String, Option<(String, String)>> {
        arr(&self.hookgate()["env"])
            .iter()
            .map(|e| {
                let from = &e["valueFrom"]["secretKeyRef"];
                let source = from
                    .is_object()
                    .then(|| (s(&from["name"]).to_string(), s(&from["key"]).to_string()));
                (s(&e["name"]).to_string(), source)
            })
            .collect()
    }

    fn container_port(&self, name_or_number: &Value) -> u16 {
        if let Some(port) = port_of(name_or_number) {
            return port;
        }
        arr(&self.hookgate()["ports"])
            .iter()
            .find(|p| p["name"] == *name_or_number)
            .and_then(|p| port_of(&p["containerPort"]))
            .unwrap_or_else(|| panic!("no container port named {name_or_number}"))
    }
}

#[test]
fn kubernetes_sidecar_configmap_is_the_example_configuration() {
    let k8s = K8s::load();
    let embedded = s(&k8s.kind("ConfigMap")["data"]["hookgate.toml"]);
    assert_eq!(
        embedded,
        read("config/examples/sidecar.toml"),
        "the ConfigMap in deploy/kubernetes/hookgate-sidecar.yaml must be config/examples/sidecar.toml"
    );
    // The container reads it where the ConfigMap volume puts it.
    let args: Vec<&str> = arr(&k8s.hookgate()["args"]).iter().map(s).collect();
    let config = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let files = k8s.mounted_files();
    let (kind, name, key) = files
        .get(config)
        .unwrap_or_else(|| panic!("--config {config} is not a mounted file"));
    assert_eq!(
        (kind.as_str(), key.as_str()),
        ("configMap", "hookgate.toml")
    );
    assert_eq!(k8s.kind("ConfigMap")["metadata"]["name"], *name.as_str());
}

#[test]
fn kubernetes_sidecar_provides_every_secret_the_configuration_reads() {
    let k8s = K8s::load();
    let text = read("config/examples/sidecar.toml");
    let needs = needs(&text, "sidecar.toml");
    check_common(&needs, "config/examples/sidecar.toml");
    let created = k8s.created_secret_keys();
    let env = k8s.env();
    for (name, at) in &needs.env {
        let source = env.get(name).unwrap_or_else(|| {
            panic!("sidecar.toml {at} reads ${name}; the hookgate container's env lacks it")
        });
        if let Some((secret, key)) = source {
            assert!(
                created.get(secret).is_some_and(|k| k.contains(key)),
                "${name} comes from Secret {secret} key {key}, which the kubectl commands in the header do not create"
            );
        }
    }
    let files = k8s.mounted_files();
    for (path, at) in &needs.files {
        let (kind, source, key) = files.get(path).unwrap_or_else(|| {
            panic!("sidecar.toml {at} reads {path}; no volume item of the hookgate container puts a file there")
        });
        assert_eq!(kind, "secret", "{path} should come from a Secret");
        assert!(
            created.get(source).is_some_and(|k| k.contains(key)),
            "{path} is Secret {source} key {key}, which the kubectl commands in the header do not create"
        );
    }
    // Every Secret the pod uses is created in the header.
    for (_, source, _) in files.values().filter(|(kind, ..)| kind == "secret") {
        assert!(
            created.contains_key(source),
            "Secret {source} is not created in the header"
        );
    }
    parse_with(
        &text,
        &env.keys().cloned().collect(),
        &files.keys().cloned().collect(),
        "sidecar",
    );
}

#[test]
fn kubernetes_sidecar_ports_probes_scrape_and_network_policy_match_the_configuration() {
    let k8s = K8s::load();
    let needs = needs(&read("config/examples/sidecar.toml"), "sidecar.toml");
    let listen = needs.listen.unwrap().port();
    let admin = needs
        .admin
        .expect("the sidecar needs the admin listener for its probes");
    let container = k8s.hookgate();
    let ports: BTreeSet<u16> = arr(&container["ports"])
        .iter()
        .map(|p| port_of(&p["containerPort"]).unwrap())
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([listen, admin.port()]),
        "containerPorts vs [server].listen and [admin].listen"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(
            k8s.container_port(&get["port"]),
            admin.port(),
            "{probe} port"
        );
    }
    assert!(
        !admin.ip().is_loopback(),
        "the kubelet probes the pod IP: a loopback admin listener fails the probes"
    );
    let annotations = &k8s.pod()["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(
        port_of(&annotations["prometheus.io/port"]),
        Some(admin.port())
    );
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    for port in arr(&k8s.kind("Service")["spec"]["ports"]) {
        assert_eq!(
            k8s.container_port(&port["targetPort"]),
            listen,
            "Service targetPort"
        );
    }
    // NetworkPolicy: the gateway port from anywhere, the admin port only from monitoring.
    let mut open = BTreeSet::new();
    let mut monitoring = BTreeSet::new();
    for rule in arr(&k8s.kind("NetworkPolicy")["spec"]["ingress"]) {
        let rule_ports = arr(&rule["ports"])
            .iter()
            .map(|p| port_of(&p["port"]).unwrap());
        if rule["from"].is_null() {
            open.extend(rule_ports);
        } else {
            for peer in arr(&rule["from"]) {
                assert_eq!(
                    peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                    "monitoring",
                    "admin peers: the monitoring namespace only"
                );
                assert!(peer["ipBlock"].is_null(), "no ipBlock peers");
            }
            monitoring.extend(rule_ports);
        }
    }
    assert_eq!(open, BTreeSet::from([listen]), "ports open to every pod");
    assert_eq!(
        monitoring,
        BTreeSet::from([admin.port()]),
        "ports open to monitoring"
    );
    assert!(
        needs.admin_token,
        "the admin port is reachable from the pod network: set [admin] token"
    );
}

// ------------------------------------------------------------------ systemd

/// An `install` line: (options, source, destination).
type Install = (Vec<String>, String, String);
/// An `install -d` line: (options, folders).
type InstallDir = (Vec<String>, Vec<String>);

struct Unit {
    entries: Vec<(String, String, String)>,
    header: Vec<String>,
}

impl Unit {
    fn load() -> Unit {
        let text = read("deploy/systemd/hookgate.service");
        let mut section = String::new();
        let mut entries = Vec::new();
        let mut header = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                if section.is_empty() {
                    header.push(comment.trim().to_string());
                }
            } else if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_string();
            } else if let Some((key, value)) = line.split_once('=') {
                entries.push((section.clone(), key.to_string(), value.to_string()));
            }
        }
        Unit { entries, header }
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(section, k, _)| section == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    fn one(&self, key: &str) -> &str {
        let all = self.all(key);
        assert_eq!(all.len(), 1, "{key}= should be set once");
        all[0]
    }

    /// `install` lines of the header: (options, source, destination), and `install -d` folders.
    fn installs(&self) -> (Vec<Install>, Vec<InstallDir>) {
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for line in &self.header {
            let Some(at) = line.find("install ") else {
                continue;
            };
            let words: Vec<String> = line[at..]
                .split("&&")
                .next()
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if words[0] != "install" {
                continue;
            }
            let mut options = Vec::new();
            let mut operands = Vec::new();
            let mut i = 1;
            while i < words.len() {
                if words[i] == "-d" || words[i] == "-D" {
                    options.push(words[i].clone());
                } else if words[i].starts_with('-') {
                    options.push(format!("{} {}", words[i], words[i + 1]));
                    i += 1;
                } else {
                    operands.push(words[i].clone());
                }
                i += 1;
            }
            if options.iter().any(|o| o == "-d") {
                dirs.push((options, operands));
            } else {
                let destination = operands.pop().unwrap();
                files.push((options, operands.pop().unwrap(), destination));
            }
        }
        (files, dirs)
    }
}

#[test]
fn systemd_unit_provides_every_secret_standalone_reads() {
    let unit = Unit::load();
    let exec = unit.one("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    let config = words[words.iter().position(|w| *w == "--config").unwrap() + 1];
    let (files, dirs) = unit.installs();
    let (options, source, _) = files
        .iter()
        .find(|(_, _, destination)| destination == config)
        .unwrap_or_else(|| panic!("no install line puts the configuration at {config}"));
    assert_eq!(source, "config/examples/standalone.toml");
    assert!(root().join(source).is_file());
    let user = unit.one("User");
    let group = unit.one("Group");
    let readable = |options: &[String], what: &str, mode: &str| {
        assert!(
            options.iter().any(|o| o == "-o root"),
            "{what}: must be owned by root (-o root), so the service cannot change it"
        );
        assert!(
            options.iter().any(|o| *o == format!("-g {group}")),
            "{what}: must have group {group} (-g {group}), so the service (User={user}) can read it"
        );
        assert!(
            options.iter().any(|o| *o == format!("-m {mode}")),
            "{what}: must have mode {mode} (-m {mode})"
        );
    };
    readable(options, config, "0640");

    let text = read(source);
    let needs = needs(&text, source);
    check_common(&needs, source);
    // Environment variables: only what Environment= sets (EnvironmentFile= would be unchecked).
    assert!(
        unit.all("EnvironmentFile").is_empty(),
        "list variables with Environment="
    );
    let env: BTreeSet<String> = unit
        .all("Environment")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|kv| kv.trim_matches('"').split('=').next().unwrap().to_string())
        .collect();
    for (name, at) in &needs.env {
        assert!(
            env.contains(name),
            "{source} {at} reads ${name}; the unit does not set it"
        );
    }
    // Files: installed by the header (readable by the service), or a LoadCredential.
    let credentials: BTreeSet<String> = unit
        .all("LoadCredential")
        .iter()
        .map(|v| v.split(':').next().unwrap().to_string())
        .collect();
    let mut provided = BTreeSet::new();
    for (path, at) in &needs.files {
        if let Some(name) = path.strip_prefix("/run/credentials/hookgate.service/") {
            assert!(
                credentials.contains(name),
                "{source} {at} reads credential {name}; no LoadCredential={name}:"
            );
        } else {
            let (options, ..) = files
                .iter()
                .find(|(_, _, destination)| destination == path)
                .unwrap_or_else(|| panic!("{source} {at} reads {path}; no install line in the unit's header creates it"));
            readable(options, path, "0640");
        }
        provided.insert(path.clone());
    }
    // Every folder on the way is created so that the service's group can traverse it.
    for (_, _, destination) in &files {
        let mut folder = Path::new(destination).parent();
        while let Some(dir) = folder.filter(|d| d.starts_with("/etc/hookgate")) {
            let (options, _) = dirs
                .iter()
                .find(|(_, operands)| operands.iter().any(|o| Path::new(o) == dir))
                .unwrap_or_else(|| panic!("no `install -d` creates {}", dir.display()));
            readable(options, &dir.display().to_string(), "0750");
            folder = dir.parent();
        }
    }
    if needs.listen.unwrap().port() < 1024 {
        assert!(unit
            .one("AmbientCapabilities")
            .contains("CAP_NET_BIND_SERVICE"));
    }
    parse_with(&text, &env, &provided, "systemd");
}

// ------------------------------------------------------------------ Docker

struct Docker {
    expose: BTreeSet<u16>,
    cmd_config: String,
    copies: Vec<String>,
    run: Vec<String>,
}

impl Docker {
    fn load() -> Docker {
        let text = read("deploy/Dockerfile");
        let mut expose = BTreeSet::new();
        let mut cmd_config = String::new();
        let mut copies = Vec::new();
        let mut run = Vec::new();
        for line in text.lines() {
            if let Some(ports) = line.strip_prefix("EXPOSE ") {
                expose.extend(ports.split_whitespace().map(|p| p.parse::<u16>().unwrap()));
            } else if let Some(cmd) = line.strip_prefix("CMD ") {
                let args: Vec<String> = serde_json::from_str(cmd).unwrap();
                let i = args.iter().position(|a| a == "--config").unwrap();
                cmd_config = args[i + 1].clone();
            } else if let Some(copy) = line.strip_prefix("COPY ") {
                if !copy.starts_with("--from") {
                    let mut words: Vec<&str> = copy.split_whitespace().collect();
                    words.pop();
                    copies.extend(words.into_iter().map(str::to_string));
                }
            } else if let Some(at) = line.find("docker run ") {
                assert!(run.is_empty(), "one docker run example");
                run = line[at..]
                    .split_whitespace()
                    .map(|w| w.trim_matches('"').to_string())
                    .collect();
            }
        }
        assert!(
            !run.is_empty(),
            "the Dockerfile's header has a `docker run` example"
        );
        Docker {
            expose,
            cmd_config,
            copies,
            run,
        }
    }

    fn flag(&self, flag: &str) -> Vec<&str> {
        self.run
            .windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    /// The repository folder mounted at the folder holding the configuration, and that folder.
    fn config_mount(&self) -> (String, String) {
        for volume in self.flag("-v") {
            let parts: Vec<&str> = volume.split(':').collect();
            let (host, container) = (parts[0], parts[1]);
            if let Some(rest) = self.cmd_config.strip_prefix(&format!("{container}/")) {
                let host = host.strip_prefix("$PWD/").unwrap_or_else(|| {
                    panic!("mount a folder of the repository ($PWD/…), not {host}")
                });
                assert!(
                    parts.get(2) == Some(&"ro"),
                    "mount the configuration read-only"
                );
                return (format!("{host}/{rest}"), container.to_string());
            }
        }
        panic!("no -v mount holds {}", self.cmd_config);
    }
}

#[test]
fn docker_run_example_mounts_a_configuration_that_exists() {
    let docker = Docker::load();
    for copy in &docker.copies {
        assert!(
            root().join(copy).exists(),
            "COPY {copy}: not in the repository"
        );
    }
    let (config, _) = docker.config_mount();
    assert!(
        root().join(&config).is_file(),
        "the run example mounts {config} as {}, and it does not exist",
        docker.cmd_config
    );
}

#[test]
fn docker_run_example_provides_every_name_and_port_its_configuration_needs() {
    let docker = Docker::load();
    let (config, mount) = docker.config_mount();
    let text = read(&config);
    let needs = needs(&text, &config);
    check_common(&needs, &config);
    let listen = needs.listen.unwrap();
    assert!(
        !listen.ip().is_loopback(),
        "{config}: a loopback listener in a container is unreachable through -p"
    );
    let mut ports = BTreeSet::from([listen.port()]);
    if let Some(admin) = needs.admin {
        ports.insert(admin.port());
    }
    assert_eq!(docker.expose, ports, "EXPOSE vs the listeners of {config}");
    let published: Vec<(&str, u16)> = docker
        .flag("-p")
        .into_iter()
        .map(|p| {
            let (host, container) = p.rsplit_once(':').unwrap();
            (host, container.parse().unwrap())
        })
        .collect();
    assert!(
        published.iter().any(|(_, port)| *port == listen.port()),
        "the run example does not publish the gateway port {}",
        listen.port()
    );
    for (host, port) in &published {
        assert!(
            docker.expose.contains(port),
            "-p {host}:{port}: nothing listens on {port}"
        );
        if Some(*port) == needs.admin.map(|a| a.port()) {
            assert!(
                host.starts_with("127.0.0.1:"),
                "publish the admin port on the host's loopback only, not {host}"
            );
        }
    }
    let env: BTreeSet<String> = docker
        .flag("-e")
        .into_iter()
        .map(|e| e.split('=').next().unwrap().to_string())
        .collect();
    for (name, at) in &needs.env {
        assert!(
            env.contains(name),
            "{config} {at} reads ${name}; the run example has no -e {name}"
        );
    }
    for (path, at) in &needs.files {
        let inside = path.strip_prefix(&format!("{mount}/")).unwrap_or_else(|| {
            panic!("{config} {at} reads {path}, which no -v mount of the run example provides")
        });
        let host = Path::new(&config).parent().unwrap().join(inside);
        assert!(
            root().join(&host).is_file(),
            "{path} would be {}, which does not exist",
            host.display()
        );
    }
    parse_with(&text, &env, &BTreeSet::new(), "docker");
}

// ------------------------------------------------------------------ metrics

/// Sample names hookgate exposes (counters `_total`, histograms `_bucket/_sum/_count`), with the
/// label names seen on them after recording one of everything through the public API.
fn hookgate_samples() -> BTreeMap<String, BTreeSet<String>> {
    use std::sync::Arc;
    use std::time::Duration;
    let metrics = hookgate::metrics::Metrics::default();
    let name: Arc<str> = Arc::from("s");
    let handles = hookgate::metrics::SourceHandles::default();
    metrics.request(
        Some((&name, &handles)),
        "forwarded",
        Duration::from_millis(1),
    );
    metrics.upstream(&name, &handles, 503, Duration::from_millis(1));
    metrics.delivery(&hookgate::delivery::EngineStats::default());
    metrics.reload(false, 1);
    metrics.dedup_fail_open(&name);
    metrics.dedup(1, 1);
    metrics.connection_opened();
    metrics.connection_refused();
    metrics.connection_deadline("idle_timeout");
    metrics.connection_closed();
    metrics.refused_before_body(&name, "bad_token");
    metrics.pending_bodies(1, 2);
    let text = metrics.render();
    let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (family, kind) = (words.next().unwrap(), words.next().unwrap());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                samples.entry(format!("{family}{suffix}")).or_default();
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap();
            let labels = samples.entry(line[..end].to_string()).or_default();
            if line[end..].starts_with('{') {
                let inner = &line[end + 1..line.find('}').unwrap()];
                for pair in inner.split(',') {
                    labels.insert(pair.split('=').next().unwrap().to_string());
                }
            }
        }
    }
    samples
}

/// `hookgate_…` names in a PromQL expression, with the label names of their `{…}` selectors.
fn promql_metrics(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("hookgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let mut labels = Vec::new();
        if tail[end..].starts_with('{') {
            let close = tail[end..].find('}').unwrap();
            let mut inner = &tail[end + 1..end + close];
            // label op "value", …; values may hold commas, so step over quoted text.
            while let Some(op) = inner.find(['=', '!']) {
                labels.push(
                    inner[..op]
                        .trim()
                        .trim_start_matches(',')
                        .trim()
                        .to_string(),
                );
                let open = inner.find('"').unwrap();
                let close = inner[open + 1..].find('"').unwrap() + open + 1;
                inner = &inner[close + 1..];
            }
            rest = &tail[end + close..];
        } else {
            rest = &tail[end..];
        }
        found.push((name, labels));
    }
    found
}

fn check_metrics(exprs: &[(String, String)], what: &str) -> BTreeSet<String> {
    let samples = hookgate_samples();
    let mut unknown = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (place, expr) in exprs {
        for (name, labels) in promql_metrics(expr) {
            used.insert(name.clone());
            match samples.get(&name) {
                None => {
                    unknown.insert(format!("{name} ({place})"));
                }
                Some(known) if !known.is_empty() => {
                    for label in labels {
                        assert!(
                            known.contains(&label) || label == "instance" || label == "job",
                            "{what} {place}: {name} has no label `{label}` (it has {known:?})"
                        );
                    }
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{what} uses metrics hookgate does not expose: {unknown:#?}"
    );
    used
}

/// What the dashboard and the alerts must cover.
const COVERED: &[&str] = &[
    "hookgate_requests_total",
    "hookgate_upstream_responses_total",
    "hookgate_dedup_early_evictions_total",
    "hookgate_dedup_fail_open_total",
    "hookgate_config_reloads_total",
    "hookgate_connections_refused_total",
    "hookgate_connections_open",
    "hookgate_connections_max",
    "hookgate_pending_body_bytes",
    "hookgate_pending_body_budget_bytes",
];

#[test]
fn grafana_dashboard_uses_only_hookgate_metrics() {
    let text = read("deploy/grafana/hookgate-dashboard.json");
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut exprs = Vec::new();
    fn visit(value: &Value, at: &str, exprs: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                let datasource = map.get("datasource");
                if datasource.and_then(|d| d.get("type")) != Some(&Value::from("grafana")) {
                    if let Some(ds) = datasource {
                        assert_eq!(
                            ds["uid"], "${DS_PROMETHEUS}",
                            "{at}: use the DS_PROMETHEUS input"
                        );
                    }
                }
                let title = map.get("title").and_then(Value::as_str).unwrap_or(at);
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr" | "query" | "definition", Value::String(e)) => {
                            exprs.push((title.to_string(), e.clone()))
                        }
                        _ => visit(value, title, exprs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| visit(v, at, exprs)),
            _ => {}
        }
    }
    visit(&dashboard, "dashboard", &mut exprs);
    let used = check_metrics(&exprs, "deploy/grafana/hookgate-dashboard.json");
    let required = COVERED.iter().copied().chain([
        "hookgate_request_duration_seconds_bucket",
        "hookgate_upstream_duration_seconds_bucket",
        "hookgate_dedup_entries",
        "hookgate_delivery_queue",
        "hookgate_delivery_attempts_total",
        "hookgate_connections_closed_total",
        "hookgate_requests_refused_before_body_total",
    ]);
    for name in required {
        assert!(used.contains(name), "the dashboard has no panel for {name}");
    }
}

#[test]
fn prometheus_alerts_use_only_hookgate_metrics_and_explain_themselves() {
    let docs = yaml_documents(&read("deploy/prometheus/hookgate-alerts.yml"));
    let mut exprs = Vec::new();
    for group in arr(&docs[0]["groups"]) {
        for rule in arr(&group["rules"]) {
            let alert = s(&rule["alert"]);
            assert!(
                !alert.is_empty(),
                "a rule without a name in {}",
                group["name"]
            );
            for key in ["summary", "description"] {
                assert!(
                    s(&rule["annotations"][key]).len() > 20,
                    "{alert}: annotations.{key} should say what it means and what to do"
                );
            }
            assert!(
                !s(&rule["labels"]["severity"]).is_empty(),
                "{alert}: severity"
            );
            exprs.push((alert.to_string(), s(&rule["expr"]).to_string()));
        }
    }
    let used = check_metrics(&exprs, "deploy/prometheus/hookgate-alerts.yml");
    for name in COVERED {
        assert!(used.contains(*name), "no alert uses {name}");
    }
}

#[test]
fn promql_scanner_finds_names_and_labels() {
    assert_eq!(
        promql_metrics(
            r#"sum by (a) (rate(hookgate_x_total{class="5xx", s=~"a,b"}[5m])) / hookgate_y"#
        ),
        vec![
            (
                "hookgate_x_total".to_string(),
                vec!["class".to_string(), "s".to_string()]
            ),
            ("hookgate_y".to_string(), vec![]),
        ]
    );
}
