//! The `hookgate` command line: `serve` runs the gateway (and the outbound listener when
//! configured), `check-config` validates a configuration, `send`/`sign`/`sample` simulate a
//! provider, and `demo` shows the whole thing working in a minute.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookgate::admin::Admin;
use hookgate::config;
use hookgate::metrics::Metrics;
use hookgate::reload::{ConfigOrigin, Reloader};
use hookgate::telemetry::LogFormat;
use hookgate::tls::TlsReloader;
use std::io::Read;

use hookgate::secret::{ProcessEnv, SecretRef};
use hookgate::sender::deliver::{DeliveryOutcome, Sender, TokioSleeper};
use hookgate::sender::outbound::Outbound;
use hookgate::sender::retry::RetryPolicy;
use hookgate::sender::{now_secs, sample, OutboundEvent, Signer};
use hookgate::{telemetry, Gateway};
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "hookgate", version, about = "Webhook verification gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (and the outbound and admin listeners when configured).
    Serve(ServeArgs),
    /// Ask a running hookgate to reload its configuration (same as SIGHUP).
    Reload {
        /// Admin listener address. Default: `admin.listen` of the configuration.
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// Configuration file to read the admin address from.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration and print the resolved sources (without secrets).
    CheckConfig {
        /// Configuration file. Default: config/hookgate.toml, or the embedded default.
        path: Option<PathBuf>,
    },
    /// Sign an event as a provider does and deliver it with the provider's retries.
    Send {
        #[command(flatten)]
        event: EventArgs,
        /// Where to deliver (http://).
        #[arg(long)]
        url: String,
        /// Retry policy: a name, custom:<d>,<d>… or exponential:… (default: the preset's).
        #[arg(long)]
        retry: Option<String>,
        /// Randomise retry delays by up to ± this fraction.
        #[arg(long, default_value_t = 0.0)]
        jitter: f64,
    },
    /// Print the headers a provider would send with an event (for curl).
    Sign {
        #[command(flatten)]
        event: EventArgs,
        /// Unix time to stamp (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
    },
    /// Print a sample event body for a preset.
    Sample {
        #[arg(long)]
        preset: String,
        #[arg(long)]
        event_id: Option<String>,
        #[arg(long)]
        event_type: Option<String>,
    },
    /// Start the gateway on the embedded default with an echo upstream, send signed,
    /// duplicate, tampered and stale events for every preset, and print the outcomes.
    Demo,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file. Default: config/hookgate.toml, or the embedded default when that
    /// file does not exist.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listener address, overriding (or enabling) `admin.listen`.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(clap::Args)]
struct EventArgs {
    /// Provider preset whose scheme and headers to use.
    #[arg(long)]
    preset: String,
    /// Environment variable holding the secret.
    #[arg(long, conflicts_with = "secret_file")]
    secret_env: Option<String>,
    /// File holding the secret (trailing newline dropped).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Body file, or - for standard input (default: a sample event for the preset).
    #[arg(long)]
    body: Option<String>,
    /// Event id (default: the id found in a sample, or a new one).
    #[arg(long)]
    event_id: Option<String>,
    /// Event type, for providers that send one in a header.
    #[arg(long)]
    event_type: Option<String>,
}

impl EventArgs {
    fn secret(&self) -> anyhow::Result<Option<String>> {
        let source = match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => SecretRef::Env(var.clone()),
            (None, Some(path)) => SecretRef::File(path.clone()),
            (None, None) => return Ok(None),
        };
        Ok(Some(
            source
                .load(&ProcessEnv, Path::new("."))
                .map_err(anyhow::Error::msg)?,
        ))
    }

    fn signer(&self) -> anyhow::Result<Signer> {
        check_preset(&self.preset)?;
        Ok(Signer::for_preset(&self.preset, self.secret()?.as_deref())?)
    }

    fn event(&self, at: i64) -> anyhow::Result<OutboundEvent> {
        let id = self
            .event_id
            .clone()
            .unwrap_or_else(|| sample::new_id("evt_"));
        let mut event = sample::event(&self.preset, &id, at, self.event_type.as_deref());
        match self.body.as_deref() {
            None => {}
            Some("-") => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("cannot read the body from stdin")?;
                event.body = buf.into();
            }
            Some(path) => {
                event.body = std::fs::read(path)
                    .with_context(|| format!("cannot read the body file {path}"))?
                    .into();
            }
        }
        Ok(event)
    }
}

/// The named file, else `config/hookgate.toml` if it exists, else the embedded default.
fn config_origin(path: Option<&Path>) -> ConfigOrigin {
    let default = config::default_path();
    match path {
        Some(p) => ConfigOrigin::File(p.to_path_buf()),
        None if default.exists() => ConfigOrigin::File(default),
        None => ConfigOrigin::Embedded,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let origin = config_origin(args.config.as_deref());
    let config = origin.load()?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let metrics = Arc::new(Metrics::default());
    let gateway = Gateway::with_metrics(&config, metrics.clone());
    let tls = config.tls.as_ref().map(TlsReloader::new).transpose()?;
    let acceptor = tls.as_ref().map(|t| t.acceptor()).transpose()?;

    let address = args.listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let gateway_addr = listener.local_addr()?;
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
    let mut listeners = vec![("gateway", gateway_addr)];
    let reloader = Arc::new(Reloader::new(origin, gateway.clone(), &config, tls.clone()));

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut background = Vec::new();
    let outbound = match &config.outbound {
        Some(outbound) => {
            let listener = tokio::net::TcpListener::bind(outbound.listen)
                .await
                .with_context(|| format!("cannot listen on {} (outbound)", outbound.listen))?;
            let address = listener.local_addr()?;
            let service = Outbound::start(
                outbound,
                Sender::default(),
                Arc::new(TokioSleeper),
                metrics.clone(),
            );
            tracing::info!(
                %address,
                targets = outbound.targets.len(),
                "outbound listener ready (queued deliveries do not survive a restart)"
            );
            listeners.push(("outbound", address));
            background.push(tokio::spawn(hookgate::server::run(
                listener,
                service.service(),
                until_stopped(),
            )));
            Some(service)
        }
        None => None,
    };
    let admin_config = match (args.admin_listen, &config.admin) {
        (Some(listen), Some(admin)) => Some(config::AdminConfig {
            listen,
            auth: admin.auth.clone(),
        }),
        (Some(listen), None) => Some(config::AdminConfig {
            listen,
            auth: Default::default(),
        }),
        (None, admin) => admin.clone(),
    };
    if let Some(admin) = &admin_config {
        config::check_admin_exposure(admin.listen, &admin.auth)?;
    }
    if let Some(admin_config) = admin_config {
        let address = admin_config.listen;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (admin)"))?;
        let address = listener.local_addr()?;
        listeners.push(("admin", address));
        tracing::info!(%address, "admin listener ready");
        let admin = Arc::new(Admin {
            gateway: gateway.clone(),
            reloader: reloader.clone(),
            outbound,
            listeners: listeners.clone(),
            auth: admin_config.auth,
        });
        background.push(tokio::spawn(hookgate::server::run(
            listener,
            admin.service(),
            until_stopped(),
        )));
    }

    #[cfg(unix)]
    {
        let reloader = reloader.clone();
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
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
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    hookgate::gateway::serve_tls(listener, acceptor, gateway, until_stopped()).await?;
    for task in background {
        task.await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where `hookgate reload` reads the admin token from.
const ADMIN_TOKEN_ENV: &str = "HOOKGATE_ADMIN_TOKEN";

async fn run_reload(admin: Option<SocketAddr>, config: Option<PathBuf>) -> anyhow::Result<()> {
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

async fn run_send(
    event_args: EventArgs,
    url: String,
    retry: Option<String>,
    jitter: f64,
) -> anyhow::Result<()> {
    let signer = event_args.signer()?;
    let url: http::Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if url.scheme_str() != Some("http") {
        anyhow::bail!("only http:// URLs are supported");
    }
    let mut policy = RetryPolicy::parse(retry.as_deref().unwrap_or(signer.preset().sender.retry))
        .map_err(anyhow::Error::msg)?;
    if !(0.0..=1.0).contains(&jitter) {
        anyhow::bail!("--jitter must be between 0 and 1");
    }
    policy.jitter = jitter;
    let event = event_args.event(now_secs())?;
    println!(
        "sending event {} ({} bytes) to {url} as {} with retry policy {}",
        event.id,
        event.body.len(),
        signer.preset().name,
        policy.name
    );
    let report = Sender::default()
        .deliver(&url, &signer, &event, &policy, &TokioSleeper, |attempt| {
            println!("{attempt}");
        })
        .await;
    match report.outcome {
        DeliveryOutcome::Delivered => {
            println!("delivered after {} attempt(s)", report.attempts.len());
            Ok(())
        }
        DeliveryOutcome::Rejected(status) => Err(SendFailed(format!(
            "rejected with HTTP {status}; the provider would not retry"
        ))
        .into()),
        DeliveryOutcome::Exhausted => Err(SendFailed(format!(
            "not delivered after {} attempt(s)",
            report.attempts.len()
        ))
        .into()),
    }
}

fn run_sign(event_args: EventArgs, timestamp: Option<i64>) -> anyhow::Result<()> {
    let signer = event_args.signer()?;
    let at = timestamp.unwrap_or_else(now_secs);
    let event = event_args.event(at)?;
    for (name, value) in &signer.headers(&event, at, 1) {
        println!("{name}: {}", value.to_str().unwrap_or_default());
    }
    Ok(())
}

fn check_preset(preset: &str) -> anyhow::Result<()> {
    if hookgate::presets::find(preset).is_none() {
        anyhow::bail!(
            "unknown preset `{preset}` (known: {})",
            hookgate::presets::NAMES.join(", ")
        );
    }
    Ok(())
}

fn run_sample(
    preset: &str,
    event_id: Option<String>,
    event_type: Option<String>,
) -> anyhow::Result<()> {
    check_preset(preset)?;
    let id = event_id.unwrap_or_else(|| sample::new_id("evt_"));
    let event = sample::event(preset, &id, now_secs(), event_type.as_deref());
    println!("{}", String::from_utf8_lossy(&event.body));
    Ok(())
}

async fn run_demo() -> anyhow::Result<()> {
    let mut table = String::new();
    let ok = hookgate::demo::run(&mut table).await?;
    print!("{table}");
    if ok {
        Ok(())
    } else {
        Err(SendFailed("the demo saw unexpected outcomes".into()).into())
    }
}

fn run_check(path: Option<PathBuf>) -> anyhow::Result<()> {
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

/// A compact, fast allocator: under load the gateway allocates per request, and glibc's
/// allocator showed up at the top of the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A run that worked but whose outcome was a failure (exit 1; usage errors exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SendFailed(String);

/// One worker thread per CPU this process may run on. With a single CPU, tokio's
/// current-thread scheduler does the same work without cross-thread hand-offs.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(cpus);
        builder
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { path } => run_check(path),
        Command::Sign { event, timestamp } => run_sign(event, timestamp),
        Command::Sample {
            preset,
            event_id,
            event_type,
        } => run_sample(&preset, event_id, event_type),
        Command::Send {
            event,
            url,
            retry,
            jitter,
        } => runtime().and_then(|rt| rt.block_on(run_send(event, url, retry, jitter))),
        Command::Demo => runtime().and_then(|rt| rt.block_on(run_demo())),
        Command::Serve(args) => {
            let _logs = telemetry::init(args.log_format);
            runtime().and_then(|rt| rt.block_on(run_serve(args)))
        }
        Command::Reload { admin, config } => {
            runtime().and_then(|rt| rt.block_on(run_reload(admin, config)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<SendFailed>() => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
