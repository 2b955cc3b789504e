//! The admin listener (loopback by default): `GET /metrics` (Prometheus text), `GET /healthz`
//! (the process is alive), `GET /readyz` (configuration loaded, listeners bound, upstreams
//! reachable — as JSON; 503 when any upstream is down), `POST /reload` (same as SIGHUP) and
//! `POST /dedup/forget` (forget an event so an operator can redeliver it on purpose), and
//! the delivery engine's endpoints (`deliveries`: `/deliveries…`, `/targets…`).
//!
//! The endpoints that change state answer only a caller that presents the admin token
//! (`Authorization: Bearer …`, compared in constant time), never one that carries an `Origin`
//! or `Sec-Fetch-*` header (a web page, including one that rebinds its DNS name to the admin
//! address), and only a JSON content type (so a form or `text/plain` cross-site request
//! cannot reach them). Without a configured token they are off. The read-only endpoints take
//! `metrics_token` when one is configured.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::access::AdminAuth;
use crate::dedup::{DedupKey, DedupStore, Store};
use crate::delivery::Engine;
use crate::reload::Reloader;
use crate::Gateway;

mod deliveries;

/// How long a readiness probe waits for each upstream's TCP handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything the admin endpoints look at.
pub struct Admin {
    pub gateway: Gateway,
    pub reloader: Arc<Reloader>,
    /// The durable delivery engine, when something delivers through it.
    pub engine: Option<Engine>,
    /// The listeners that are bound, by role.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// Who may call what.
    pub auth: AdminAuth,
}

use crate::answer::{error, json, Answer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Forget {
    source: String,
    /// The event id to forget.
    id: Option<String>,
    /// The exact body of the delivery, to forget its digest key too.
    body: Option<String>,
}

/// Whether a TCP connection to `authority` (host:port) opens in time.
async fn reachable(authority: &str) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(authority)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 1s".to_string()),
    }
}

/// Why a call that would change state is refused, checked in this order: a browser's marks
/// first (so a cross-site request never gets as far as a token comparison), then the content
/// type, then the token.
fn refuse_change(auth: &AdminAuth, headers: &http::HeaderMap) -> Option<Answer> {
    let from_browser = headers.contains_key(header::ORIGIN)
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("sec-fetch-"));
    if from_browser {
        return Some(error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "admin calls from web pages are refused",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ));
    }
    if auth.token.is_none() {
        return Some(error(
            StatusCode::FORBIDDEN,
            "admin_token_required",
            "endpoints that change state are off until admin.token is configured",
        ));
    }
    if !auth.allows_changes(headers) {
        return Some(unauthorized());
    }
    None
}

fn unauthorized() -> Answer {
    let mut answer = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid Authorization: Bearer token is required",
    );
    answer
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    answer
}

impl Admin {
    pub async fn handle(&self, req: http::Request<Incoming>) -> Answer {
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let method = req.method().clone();
        if method == Method::POST {
            if let Some(refusal) = refuse_change(&self.auth, req.headers()) {
                tracing::warn!(path = %path, "admin call refused");
                return refusal;
            }
        } else if !self.auth.allows_reads(req.headers()) {
            return unauthorized();
        }
        if deliveries::owns(&path) {
            return self.deliveries(&method, &path, query.as_deref()).await;
        }
        match (method, path.as_str()) {
            (Method::GET, "/metrics") => self.metrics().await,
            (Method::GET, "/healthz") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
            (Method::GET, "/readyz") => self.readyz().await,
            (Method::POST, "/reload") => match self.reloader.reload() {
                Ok(generation) => json(
                    StatusCode::OK,
                    &serde_json::json!({"reloaded": true, "generation": generation}),
                ),
                Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "reload_refused", &e.0),
            },
            (Method::POST, "/dedup/forget") => self.forget(req).await,
            (_, "/metrics" | "/healthz" | "/readyz" | "/reload" | "/dedup/forget") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "wrong method",
            ),
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
        }
    }

    async fn metrics(&self) -> Answer {
        let metrics = self.gateway.metrics();
        if let Some(engine) = &self.engine {
            match engine.stats().await {
                Ok(stats) => {
                    metrics.delivery(&stats);
                    metrics.delivery_targets(&engine.target_attempts());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "delivery figures unavailable for this scrape")
                }
            }
        }
        if let Some((entries, early)) = self.gateway.store().local_stats() {
            metrics.dedup(entries, early);
        }
        let (pending, budget) = self.gateway.pending_bodies();
        metrics.pending_bodies(pending, budget);
        let mut response = http::Response::new(Full::new(Bytes::from(metrics.render())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    async fn readyz(&self) -> Answer {
        let sources = self.gateway.sources();
        let mut authorities: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for source in &sources {
            let u = &source.upstream;
            let port = u
                .authority
                .port_u16()
                .unwrap_or(if u.scheme == http::uri::Scheme::HTTPS {
                    443
                } else {
                    80
                });
            let target = format!("{}:{port}", u.authority.host());
            authorities
                .entry(target)
                .or_default()
                .push(source.name.to_string());
        }
        let checks = futures_util::future::join_all(authorities.keys().map(|a| reachable(a))).await;
        let store = self.gateway.store();
        let mut dedup = serde_json::json!({"backend": store.backend()});
        let mut all_up = true;
        if let Store::Redis(redis) = store {
            let ping = redis.ping().await;
            // Failing closed, deliveries are refused while Redis is down: not ready.
            all_up &= ping.is_ok() || redis.fails_open();
            dedup["reachable"] = ping.is_ok().into();
            if let Err(e) = ping {
                dedup["error"] = e.to_string().into();
            }
        }
        let upstreams: Vec<serde_json::Value> = authorities
            .iter()
            .zip(checks)
            .map(|((authority, names), check)| {
                all_up &= check.is_ok();
                let mut entry = serde_json::json!({
                    "upstream": authority,
                    "sources": names,
                    "reachable": check.is_ok(),
                });
                if let Err(reason) = check {
                    entry["error"] = reason.into();
                }
                entry
            })
            .collect();
        let listeners: serde_json::Map<String, serde_json::Value> = self
            .listeners
            .iter()
            .map(|(role, addr)| (role.to_string(), addr.to_string().into()))
            .collect();
        let body = serde_json::json!({
            "ready": all_up,
            "config": {"loaded": true, "generation": self.reloader.generation(), "sources": sources.len()},
            "listeners": listeners,
            "upstreams": upstreams,
            "dedup": dedup,
        });
        let status = if all_up {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(status, &body)
    }

    async fn forget(&self, req: http::Request<Incoming>) -> Answer {
        let Ok(body) = Limited::new(req.into_body(), 1024 * 1024).collect().await else {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "limit is 1 MiB",
            );
        };
        let forget: Forget = match serde_json::from_slice(&body.to_bytes()) {
            Ok(f) => f,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("expected {{\"source\", \"id\"?, \"body\"?}}: {e}"),
                )
            }
        };
        let Some(source) = self
            .gateway
            .sources()
            .into_iter()
            .find(|s| *s.name == *forget.source)
        else {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_source",
                "no source with this name",
            );
        };
        let Some(policy) = &source.dedup else {
            return error(
                StatusCode::CONFLICT,
                "dedup_off",
                "this source does not deduplicate",
            );
        };
        let mut keys = Vec::new();
        if let Some(id) = &forget.id {
            keys.push(DedupKey::for_id(&policy.scope, id.as_bytes()));
        }
        if let Some(body) = &forget.body {
            keys.push(DedupKey::for_body(&policy.scope, body.as_bytes()));
        }
        if keys.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give an id, a body or both",
            );
        }
        for key in &keys {
            if let Err(e) = self.gateway.store().forget(*key).await {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dedup_unavailable",
                    &e.to_string(),
                );
            }
        }
        tracing::info!(source = %source.name, keys = keys.len(), "dedup keys forgotten by operator");
        json(
            StatusCode::OK,
            &serde_json::json!({"forgotten": keys.len()}),
        )
    }

    /// A tower service for [`crate::server::run`].
    pub fn service(
        self: Arc<Self>,
    ) -> impl tower::Service<
        http::Request<Incoming>,
        Response = Answer,
        Error = Infallible,
        Future = impl std::future::Future<Output = Result<Answer, Infallible>> + Send,
    > + Clone
           + Send
           + 'static {
        tower::service_fn(move |req| {
            let admin = self.clone();
            async move { Ok::<_, Infallible>(admin.handle(req).await) }
        })
    }
}
