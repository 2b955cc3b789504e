//! Hot reload: re-read the configuration and its secret files, validate, and swap the served
//! sources atomically. Requests already routed finish on the configuration they started with;
//! the dedup store is kept (keys are scoped by source name, so they stay valid). An invalid new
//! configuration is refused with a logged reason and the previous one keeps serving. This is
//! how secrets rotate: add the new secret, reload, remove the old one later, reload again.
//!
//! The listen addresses, dedup capacity and outbound targets are read at start only; changing
//! them needs a restart (a reload logs a warning when they differ). Queued sources follow a
//! reload: their delivery targets get the new upstream and retry policy before the new sources
//! are served; deliveries already stored keep their bytes and headers. A reload that makes a
//! source queued when no delivery store was opened at start is refused (restart instead).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{self, Config, ConfigError, EMBEDDED_DEFAULT};
use crate::delivery::Engine;
use crate::secret::ProcessEnv;
use crate::sender::deliver::Sender;
use crate::source::DeliveryMode;
use crate::tls::TlsReloader;
use crate::Gateway;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigOrigin {
    File(PathBuf),
    Embedded,
}

impl ConfigOrigin {
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigOrigin::File(path) => config::load(path, &ProcessEnv),
            ConfigOrigin::Embedded => config::parse(EMBEDDED_DEFAULT, Path::new("."), &ProcessEnv),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ConfigOrigin::File(path) => path.display().to_string(),
            ConfigOrigin::Embedded => "embedded default".to_string(),
        }
    }
}

/// Reloads the gateway's configuration on demand (SIGHUP or the admin endpoint).
pub struct Reloader {
    origin: ConfigOrigin,
    gateway: Gateway,
    tls: Option<Arc<TlsReloader>>,
    generation: AtomicU64,
    /// What start-time-only settings were, to warn when a reload changes them.
    fixed: Mutex<(std::net::SocketAddr, Option<u64>)>,
    /// One reload at a time.
    running: Mutex<()>,
    /// The delivery engine and the client queued sources' upstreams are reached with.
    engine: Option<(Engine, Sender)>,
}

impl Reloader {
    pub fn new(
        origin: ConfigOrigin,
        gateway: Gateway,
        started_with: &Config,
        tls: Option<Arc<TlsReloader>>,
    ) -> Self {
        Reloader {
            origin,
            gateway,
            tls,
            generation: AtomicU64::new(1),
            fixed: Mutex::new((started_with.listen, started_with.dedup_backend.capacity())),
            running: Mutex::new(()),
            engine: None,
        }
    }

    /// Keeps the delivery targets of queued sources in step with reloads.
    pub fn with_engine(mut self, engine: Engine, client: Sender) -> Self {
        self.engine = Some((engine, client));
        self
    }

    /// Refuses a configuration that queues without an engine.
    fn check_queue(&self, config: &Config) -> Result<(), ConfigError> {
        match &self.engine {
            Some(_) => Ok(()),
            None => match config
                .sources
                .iter()
                .find(|s| s.delivery != DeliveryMode::Sync)
            {
                Some(source) => Err(ConfigError(format!(
                    "source[{}].delivery: \"queue\" needs the delivery store, which opens at start; restart hookgate to queue this source",
                    source.name
                ))),
                None => Ok(()),
            },
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Reloads now. Returns the new generation, or why the new configuration was refused.
    pub fn reload(&self) -> Result<u64, ConfigError> {
        let _one_at_a_time = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let metrics = self.gateway.metrics().clone();
        let outcome = self.origin.load().and_then(|config| {
            self.check_queue(&config)?;
            if let Some(tls) = &self.tls {
                tls.reload(config.tls.as_ref())?;
            }
            if let Some((engine, client)) = &self.engine {
                // Before the swap, so a newly queued source finds its target.
                engine.update_targets(crate::gateway::queue_targets(&config.sources, client));
            }
            Ok(config)
        });
        match outcome {
            Ok(config) => {
                self.gateway.swap_sources(&config);
                let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                metrics.reload(true, generation);
                let fixed = self.fixed.lock().unwrap_or_else(|e| e.into_inner());
                if fixed.0 != config.listen || fixed.1 != config.dedup_backend.capacity() {
                    tracing::warn!(
                        "server.listen and dedup.capacity changes take effect at the next restart"
                    );
                }
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                }
                tracing::info!(
                    generation,
                    sources = config.sources.len(),
                    config = %self.origin.describe(),
                    "configuration reloaded"
                );
                Ok(generation)
            }
            Err(error) => {
                metrics.reload(false, self.generation());
                tracing::error!(
                    reason = %error,
                    "configuration reload refused; still serving the previous configuration"
                );
                Err(error)
            }
        }
    }
}
