//! The `hookgate` command line: argument parsing and dispatch. `serve` runs
//! [`hookgate::app::run`]; the other subcommands live in [`cli`].

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookgate::app;
use hookgate::telemetry::{self, LogFormat};

use cli::config::{run_check, run_reload};
use cli::demo::run_demo;
use cli::events::{run_sample, run_send, run_sign, EventArgs};
use cli::presets::run_presets;
use cli::{config_origin, SendFailed};

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
        /// Where to deliver (http:// or https://; redirects are not followed).
        #[arg(long)]
        url: String,
        /// A PEM file of CA certificates trusted for https:// besides the system's roots.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
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
        /// The URL the event would be sent to (for presets that sign it: Square, HubSpot,
        /// Twilio).
        #[arg(long)]
        url: Option<String>,
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
    /// List the provider presets, or show one with a configuration snippet.
    Presets {
        /// A preset name: show it in full.
        name: Option<String>,
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
    let listeners = app::Listeners::bind(&config, args.listen, args.admin_listen).await?;
    app::run(
        origin,
        config,
        listeners,
        app::Options::default(),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// A compact, fast allocator: under load the gateway allocates per request, and glibc's
/// allocator showed up at the top of the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Sign {
            event,
            timestamp,
            url,
        } => run_sign(event, timestamp, url),
        Command::Sample {
            preset,
            event_id,
            event_type,
        } => run_sample(&preset, event_id, event_type),
        Command::Send {
            event,
            url,
            ca,
            retry,
            jitter,
        } => runtime().and_then(|rt| rt.block_on(run_send(event, url, ca, retry, jitter))),
        Command::Presets { name } => run_presets(name),
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
