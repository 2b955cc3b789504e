//! `hookgate check-config` (validate and describe a configuration, secrets never shown) and
//! `hookgate reload` (ask a running hookgate to reload, with the admin token).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use hookgate::config;
use hookgate::sender::deliver::Sender;

use super::{config_origin, SendFailed};

/// Where `hookgate reload` reads the admin token from.
const ADMIN_TOKEN_ENV: &str = "HOOKGATE_ADMIN_TOKEN";

pub(crate) async fn run_reload(
    admin: Option<SocketAddr>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let address = match admin {
        Some(address) => address,
        None => {
            config_origin(config.as_deref())
                .load()?
                .admin
                .context("the configuration has no [admin] listener; pass --admin ADDR")?
                .listen
        }
    };
    let url: http::Uri = format!("http://{address}/reload").parse()?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(token) => {
            let value = http::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| anyhow::anyhow!("{ADMIN_TOKEN_ENV} is not a valid header value"))?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        Err(_) => {
            eprintln!("note: {ADMIN_TOKEN_ENV} is not set; the admin listener will refuse the call")
        }
    }
    let (status, _, body) = Sender::default()
        .post(&url, headers, bytes::Bytes::from_static(b"{}"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the admin listener at {address}: {e}"))?;
    println!("{}", String::from_utf8_lossy(&body));
    if status.is_success() {
        Ok(())
    } else {
        Err(SendFailed(format!("reload refused (HTTP {})", status.as_u16())).into())
    }
}

pub(crate) fn run_check(path: Option<PathBuf>) -> anyhow::Result<()> {
    let origin = config_origin(path.as_deref());
    let config = origin.load()?;
    println!("configuration {} is valid", origin.describe());
    println!("listen {}", config.listen);
    if let Some(admin) = &config.admin {
        println!(
            "admin {} (changes: {}; reads: {})",
            admin.listen,
            if admin.auth.token.is_some() {
                "bearer token"
            } else {
                "off, no admin.token"
            },
            if admin.auth.metrics_token.is_some() {
                "bearer token"
            } else {
                "open"
            }
        );
    }
    match &config.dedup_backend {
        config::DedupBackend::Memory { capacity } => {
            println!("dedup: in memory, up to {capacity} keys")
        }
        config::DedupBackend::Redis(redis) => println!(
            "dedup: redis at {} (prefix `{}`, timeout {}, {:?} when unavailable)",
            hookgate::redact::url(&redis.url),
            redis.key_prefix,
            humantime::format_duration(redis.timeout),
            redis.on_unavailable
        ),
    }
    for source in &config.sources {
        println!();
        print!("{}", source.describe());
    }
    for warning in &config.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}
