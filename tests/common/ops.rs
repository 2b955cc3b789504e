//! The operator's side of an in-process gateway: its admin listener on 127.0.0.1:0 with a
//! chosen [`AdminAuth`], and the calls an operator's tool makes to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookgate::access::{AdminAuth, TokenSet};
use hookgate::admin::Admin;
use hookgate::delivery::Engine;
use hookgate::reload::{ConfigOrigin, Reloader};
use hookgate::secret::Secret;

use super::{headers, now_secs, send, sign, Answer, TestGateway};

/// A gateway with its admin listener.
pub(crate) struct Ops {
    pub gateway: TestGateway,
    pub admin: SocketAddr,
    pub dir: PathBuf,
}

/// The admin token of [`start_ops`]'s listener.
pub(crate) const ADMIN_TOKEN: &str = "ops-admin-token-0123456789";

/// A token set holding one token.
pub(crate) fn token(value: &str) -> Option<TokenSet> {
    Some(TokenSet::new(&[Secret::new(value)]))
}

/// A state-changing admin call as an operator's tool makes it: bearer token, JSON.
pub(crate) async fn admin_post(admin: SocketAddr, path: &str, body: &[u8]) -> Answer {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let h = headers(&[
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ]);
    send(admin, "POST", path, &h, body).await
}

/// Writes `config` to `dir/hookgate.toml`, starts the gateway on it and an admin listener
/// whose state-changing calls take [`ADMIN_TOKEN`].
pub(crate) async fn start_ops(dir: &Path, config: &str) -> Ops {
    let auth = AdminAuth {
        token: token(ADMIN_TOKEN),
        metrics_token: None,
    };
    start_ops_with(dir, config, auth).await
}

/// [`start_ops`] with the given admin authentication.
pub(crate) async fn start_ops_with(dir: &Path, config: &str, auth: AdminAuth) -> Ops {
    start_ops_full(dir, config, auth, None).await
}

/// [`start_ops`] whose admin also serves `engine`'s endpoints.
pub(crate) async fn start_ops_with_engine(dir: &Path, config: &str, engine: Engine) -> Ops {
    let auth = AdminAuth {
        token: token(ADMIN_TOKEN),
        metrics_token: None,
    };
    start_ops_full(dir, config, auth, Some(engine)).await
}

async fn start_ops_full(dir: &Path, config: &str, auth: AdminAuth, engine: Option<Engine>) -> Ops {
    std::fs::write(dir.join("hookgate.toml"), config).unwrap();
    let origin = ConfigOrigin::File(dir.join("hookgate.toml"));
    let loaded = origin.load().unwrap();
    let gateway = TestGateway::from_config(&loaded).await;
    let reloader = Arc::new(Reloader::new(
        origin,
        gateway.gateway.clone(),
        &loaded,
        None,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    let service = Arc::new(Admin {
        gateway: gateway.gateway.clone(),
        reloader,
        engine,
        listeners: vec![("gateway", gateway.addr), ("admin", admin)],
        auth,
    })
    .service();
    tokio::spawn(hookgate::server::run(
        listener,
        service,
        std::future::pending(),
    ));
    Ops {
        gateway,
        admin,
        dir: dir.to_path_buf(),
    }
}

/// A CloudKeep source whose secrets are the files `secrets` (relative to the config file).
pub(crate) fn source_config(upstream: &str, secrets: &[&str]) -> String {
    let list: Vec<String> = secrets
        .iter()
        .map(|f| format!("{{ file = \"{f}\" }}"))
        .collect();
    format!(
        "[[source]]\nname = \"ck\"\npath = \"/hooks/ck\"\npreset = \"cloudkeep\"\nupstream = \"{upstream}/ck\"\n\
         max_body_bytes = 1024\nsecrets = [{}]\n",
        list.join(", ")
    )
}

/// A CloudKeep delivery of event `id`, stamped `age_secs` ago and signed with `secret`.
pub(crate) fn cloudkeep(secret: &str, id: &str, age_secs: i64) -> (Vec<(String, String)>, Vec<u8>) {
    sign::cloudkeep_event(secret, id, now_secs() - age_secs)
}
