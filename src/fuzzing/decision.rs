//! The `decision` target: verify → freshness → dedup keys on arbitrary requests against every
//! preset's source, and the keys behave in a real store.

use super::*;

/// One source per preset (`'0'` … `'9'` in this order), literal secrets, an unreachable upstream.
pub(super) const DECISION_CONFIG: &str = r#"
[dedup]
capacity = 4096

[[source]]
name = "cloudkeep"
path = "/fuzz/cloudkeep"
preset = "cloudkeep"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "policycortex"
path = "/fuzz/policycortex"
preset = "policycortex"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "corgea"
path = "/fuzz/corgea"
preset = "corgea"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "vaas"
path = "/fuzz/vaas"
preset = "vaas"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "certifyclouds"
path = "/fuzz/certifyclouds"
preset = "certifyclouds"
upstream = "http://127.0.0.1:9/x"
token = { prefix = "Bearer ", secrets = [{ value = "fuzz-token-0123456789" }] }
allow_ips = ["127.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]
trusted_proxies = ["127.0.0.1/32"]

[[source]]
name = "standard-webhooks"
path = "/fuzz/standard-webhooks"
preset = "standard-webhooks"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }]

[[source]]
name = "github"
path = "/fuzz/github"
preset = "github"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "stripe"
path = "/fuzz/stripe"
preset = "stripe"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "slack"
path = "/fuzz/slack"
preset = "slack"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]

[[source]]
name = "shopify"
path = "/fuzz/shopify"
preset = "shopify"
upstream = "http://127.0.0.1:9/x"
secrets = [{ value = "fuzz-secret" }]
"#;

struct DecisionRig {
    sources: Vec<Arc<Source>>,
    store: MemoryStore,
}

fn rig() -> &'static DecisionRig {
    static RIG: OnceLock<DecisionRig> = OnceLock::new();
    RIG.get_or_init(|| {
        let config = config::parse(
            DECISION_CONFIG,
            Path::new("."),
            &HashMap::<String, String>::new(),
        )
        .expect("the decision configuration is valid");
        DecisionRig {
            store: MemoryStore::new(
                config
                    .dedup_backend
                    .capacity()
                    .unwrap_or(crate::config::defaults::DEDUP_CAPACITY),
            ),
            sources: config.sources,
        }
    })
}

/// Builds the request an input describes (see the module docs for the framing).
fn request(data: &[u8], source: &Arc<Source>) -> http::Request<Bytes> {
    let (_, mut rest) = line(data);
    let mut headers = Vec::new();
    while let (Some(raw), after) = line(rest) {
        rest = after;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            break;
        }
        if headers.len() < MAX_HEADERS {
            headers.push(raw);
        }
    }
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(source.path.as_str())
        .body(Bytes::copy_from_slice(rest))
        .expect("a valid request");
    for raw in headers {
        let (name, value) = match raw.iter().position(|&b| b == b':') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &b""[..]),
        };
        let value = value.trim_ascii_start();
        if let (Ok(name), Some(value)) = (HeaderName::from_bytes(name), header_value(value)) {
            req.headers_mut().append(name, value);
        }
    }
    req.extensions_mut().insert(source.clone());
    req.extensions_mut()
        .insert(PeerAddr("127.0.0.1:1".parse().expect("an address")));
    req
}

/// Runs the gateway's decision (authenticate → freshness → dedup keys) on a delivery built
/// from the input; an accepted delivery must re-verify and claim its keys in the store.
pub fn decision(data: &[u8]) {
    let rig = rig();
    let selector = data.first().copied().unwrap_or(b'0');
    let index = usize::from(selector.wrapping_sub(b'0')) % rig.sources.len();
    let source = &rig.sources[index];
    let req = request(data, source);

    let decided = decide(source, &req, NOW_MS);
    assert_eq!(
        decide(source, &req, NOW_MS),
        decided,
        "the decision is not deterministic"
    );
    let keys = match decided {
        Ok(keys) => keys,
        Err(rejection) => {
            let response = rejection.clone().into_response();
            assert_eq!(response.status(), rejection.status());
            return;
        }
    };

    // Accepted: every configured check holds on its own.
    if let Some(check) = source
        .signature
        .as_ref()
        .filter(|c| matches!(c.method, crate::source::method::Method::Header))
    {
        assert_eq!(
            check.scheme.verify(&check.keys, req.headers(), req.body()),
            Ok(()),
            "{}: decide accepted a delivery whose signature does not verify",
            source.name
        );
    }
    if let Some(token) = &source.token {
        assert!(token.check(req.headers()), "{}: token", source.name);
    }
    let Some(policy) = &source.dedup else {
        assert!(keys.is_empty(), "keys without a dedup policy");
        return;
    };
    assert!(
        (1..=2).contains(&keys.len()),
        "{}: {} dedup keys",
        source.name,
        keys.len()
    );

    // The keys go through the store's whole life cycle; the in-memory store never suspends.
    let store = &rig.store;
    let ttl = Duration::from_secs(60);
    for key in keys {
        let outcome = store
            .claim(key, ttl)
            .now_or_never()
            .expect("the memory store never suspends")
            .expect("the memory store never fails");
        let ClaimOutcome::Claimed(token) = outcome else {
            continue; // delivered or in flight from an earlier input
        };
        store
            .release(key, token)
            .now_or_never()
            .expect("release completes")
            .expect("release succeeds");
        // A released claim lets the retry through.
        let retry = store
            .claim(key, ttl)
            .now_or_never()
            .expect("claim completes")
            .expect("claim succeeds");
        let ClaimOutcome::Claimed(token) = retry else {
            panic!("a released key is claimed again: {retry:?}");
        };
        store
            .complete(key, token, policy.ttl)
            .now_or_never()
            .expect("complete completes")
            .expect("complete succeeds");
        // A delivered key stays delivered: the replay is caught.
        let replay = store
            .claim(key, ttl)
            .now_or_never()
            .expect("claim completes")
            .expect("claim succeeds");
        assert_eq!(replay, ClaimOutcome::Delivered, "a completed key");
    }
}
