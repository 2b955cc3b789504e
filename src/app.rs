//! The whole process, as a library call: [`run`] serves a validated configuration on bound
//! listeners — the gateway, and when configured the admin plane and the outbound sidecar —
//! with hot reload (SIGHUP and the admin endpoint), until `shutdown` completes; then it stops
//! accepting, lets open requests finish within the grace period, and releases the dedup claims
//! of requests that did not. `hookgate serve` is argument parsing around this function, and
//! the integration tests run the same function in-process.
//!
//! With `[outbound]` or a queued source (`delivery = "queue"`), the durable delivery store
//! (`[delivery] data_dir`) is opened before any listener is served (a corrupt or locked store
//! stops the start with its path), and the delivery engine resumes the deliveries a previous
//! process left.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::Admin;
use crate::clock::SharedClock;
use crate::config::{check_admin_exposure, AdminConfig, Config, ConfigError};
use crate::delivery::{
    Engine, EngineIo, EngineOptions, SqliteStore, StoreError, TargetSpec as EngineTarget,
};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::sender::deliver::Sender;
use crate::server;
use crate::sidecar::Sidecar;
use crate::source::DeliveryMode;
use crate::tls::TlsReloader;

pub use crate::reload::ConfigOrigin;

/// Why the process could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration (or its TLS files) cannot be used.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The listener's TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The delivery store cannot be opened (corrupt, locked, unreadable): names its file.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A listener could not be bound or failed.
    #[error("{what}: {source}")]
    Io {
        /// Which listener.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppError {
    let what = what.into();
    move |source| AppError::Io { what, source }
}

/// The bound listeners [`run`] serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The public gateway listener.
    pub gateway: TcpListener,
    /// The admin listener with who may call it, when enabled.
    pub admin: Option<(TcpListener, AdminConfig)>,
    /// The outbound sidecar listener, when `[outbound]` is configured.
    pub outbound: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses of `config`; `listen` and `admin_listen` override the configured
    /// ones (an admin address off loopback still needs `admin.token`).
    pub async fn bind(
        config: &Config,
        listen: Option<SocketAddr>,
        admin_listen: Option<SocketAddr>,
    ) -> Result<Listeners, AppError> {
        let address = listen.unwrap_or(config.listen);
        let gateway = TcpListener::bind(address)
            .await
            .map_err(io(format!("cannot listen on {address}")))?;
        let admin = match (admin_listen, &config.admin) {
            (Some(listen), admin) => Some(AdminConfig {
                listen,
                auth: admin.as_ref().map(|a| a.auth.clone()).unwrap_or_default(),
            }),
            (None, admin) => admin.clone(),
        };
        let admin = match admin {
            Some(admin) => {
                check_admin_exposure(admin.listen, &admin.auth)?;
                let listener = TcpListener::bind(admin.listen)
                    .await
                    .map_err(io(format!("cannot listen on {} (admin)", admin.listen)))?;
                Some((listener, admin))
            }
            None => None,
        };
        let outbound = match &config.outbound {
            Some(outbound) => Some(TcpListener::bind(outbound.listen).await.map_err(io(
                format!("cannot listen on {} (outbound)", outbound.listen),
            ))?),
            None => None,
        };
        Ok(Listeners {
            gateway,
            admin,
            outbound,
        })
    }
}

/// What a caller may inject (tests); the defaults are the real process's.
#[derive(Clone, Default)]
pub struct Options {
    /// The clock of the dedup store and the freshness check.
    pub clock: Option<SharedClock>,
}

/// Opens the delivery store of `config` and starts the engine with its outbound targets and
/// its queued sources' upstreams; `None` when nothing delivers through it. Also returns the
/// client queued sources' upstreams are reached with (it trusts `[upstream_tls] ca`).
async fn start_engine(config: &Config) -> Result<Option<(Engine, Sender)>, AppError> {
    let queued = config
        .sources
        .iter()
        .any(|s| s.delivery != DeliveryMode::Sync);
    if config.outbound.is_none() && !queued {
        return Ok(None);
    }
    let sender = Sender::with_ca(config.outbound.as_ref().and_then(|o| o.ca.as_deref()))?;
    let upstream_client = Sender::with_ca(config.upstream_ca.as_deref())?;
    let data_dir = config.delivery.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(data_dir))
        .await
        .map_err(|e| AppError::Store(StoreError::Backend(e.to_string())))??;
    tracing::info!(store = %store.path().display(), "delivery store open");
    let mut targets: Vec<EngineTarget> = config
        .outbound
        .iter()
        .flat_map(|o| o.targets.iter())
        .map(EngineTarget::from_outbound)
        .collect();
    targets.extend(crate::gateway::queue_targets(
        &config.sources,
        &upstream_client,
    ));
    let options = EngineOptions {
        limits: config.delivery.limits,
        ..EngineOptions::default()
    };
    let io = EngineIo {
        sender,
        ..EngineIo::real()
    };
    let engine = Engine::start(Arc::new(store), targets, options, io).await?;
    Ok(Some((engine, upstream_client)))
}

/// Serves `config` (loaded from `origin`, which reloads re-read) on `listeners` until
/// `shutdown` completes. Returns once every listener has stopped.
pub async fn run(
    origin: ConfigOrigin,
    config: Config,
    listeners: Listeners,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let metrics = Arc::new(Metrics::default());
    let gateway = match options.clock {
        Some(clock) => Gateway::with_clock(&config, metrics.clone(), clock),
        None => Gateway::with_metrics(&config, metrics.clone()),
    };
    let tls = config.tls.as_ref().map(TlsReloader::new).transpose()?;
    let acceptor = tls.as_ref().map(|t| t.acceptor()).transpose()?;
    let gateway_addr = listeners
        .gateway
        .local_addr()
        .map_err(io("gateway listener"))?;
    tracing::info!(
        config = %origin.describe(),
        address = %gateway_addr,
        tls = acceptor.is_some(),
        sources = config.sources.len(),
        "hookgate listening"
    );
    for source in &config.sources {
        tracing::info!(
            source = %source.name,
            path = %source.path,
            preset = %source.preset.unwrap_or("generic"),
            "source ready"
        );
    }
    let started = start_engine(&config).await?;
    let mut bound = vec![("gateway", gateway_addr)];
    let mut reloader = crate::reload::Reloader::new(origin, gateway.clone(), &config, tls.clone());
    if let Some((engine, client)) = &started {
        gateway.set_engine(engine.clone());
        reloader = reloader.with_engine(engine.clone(), client.clone());
    }
    let reloader = Arc::new(reloader);
    let engine = started.map(|(engine, _)| engine);

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut background = Vec::new();
    if let (Some(outbound), Some(engine), Some(listener)) =
        (&config.outbound, &engine, listeners.outbound)
    {
        let address = listener.local_addr().map_err(io("outbound listener"))?;
        let sidecar = Sidecar::new(outbound, engine.clone());
        tracing::info!(
            %address,
            targets = outbound.targets.len(),
            "outbound listener ready (accepted events are stored durably before the 202)"
        );
        bound.push(("outbound", address));
        background.push(tokio::spawn(server::run(
            listener,
            sidecar.service(),
            until_stopped(),
        )));
    }
    if let Some((listener, admin)) = listeners.admin {
        let address = listener.local_addr().map_err(io("admin listener"))?;
        bound.push(("admin", address));
        tracing::info!(%address, "admin listener ready");
        let admin = Arc::new(Admin {
            gateway: gateway.clone(),
            reloader: reloader.clone(),
            engine: engine.clone(),
            listeners: bound.clone(),
            auth: admin.auth,
        });
        background.push(tokio::spawn(server::run(
            listener,
            admin.service(),
            until_stopped(),
        )));
    }

    #[cfg(unix)]
    {
        let reloader = reloader.clone();
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(io("SIGHUP handler"))?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                let reloader = reloader.clone();
                // Reading files blocks; a refused reload is logged by the reloader.
                let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            }
        });
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    crate::gateway::serve_tls(listeners.gateway, acceptor, gateway, until_stopped())
        .await
        .map_err(io("gateway listener"))?;
    for task in background {
        match task.await {
            Ok(result) => result.map_err(io("listener"))?,
            Err(error) => tracing::error!(%error, "a listener task failed"),
        }
    }
    if let Some(engine) = engine {
        // Attempts in flight get the engine's grace; the ones cut short are retried later.
        engine.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}
