//! The `hookgate` command line: `serve` runs the gateway, `check-config` validates a
//! configuration and prints what each source verifies (never a secret).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookgate::config::{self, Config, EMBEDDED_DEFAULT};
use hookgate::secret::ProcessEnv;
use hookgate::{serve, telemetry, Gateway};

#[derive(Parser)]
#[command(name = "hookgate", version, about = "Webhook verification gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Configuration file. Default: config/hookgate.toml, or the embedded default when
        /// that file does not exist.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address, overriding `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a configuration and print the resolved sources (without secrets).
    CheckConfig {
        /// Configuration file. Default: config/hookgate.toml, or the embedded default.
        path: Option<PathBuf>,
    },
}

/// Loads the named file, else `config/hookgate.toml`, else the embedded default.
fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, String)> {
    let default = config::default_path();
    let (config, origin) = match path {
        Some(p) => (config::load(p, &ProcessEnv)?, p.display().to_string()),
        None if default.exists() => (
            config::load(&default, &ProcessEnv)?,
            default.display().to_string(),
        ),
        None => (
            config::parse(EMBEDDED_DEFAULT, Path::new("."), &ProcessEnv)?,
            "embedded default".to_string(),
        ),
    };
    Ok((config, origin))
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

async fn run_serve(path: Option<PathBuf>, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let (config, origin) = load_config(path.as_deref())?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let address = listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        config = %origin,
        address = %listener.local_addr()?,
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
    serve(listener, Gateway::new(&config), shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn run_check(path: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, origin) = load_config(path.as_deref())?;
    println!("configuration {origin} is valid");
    println!("listen {}", config.listen);
    println!("dedup capacity {} keys", config.dedup_capacity);
    for source in &config.sources {
        println!();
        print!("{}", source.describe());
    }
    for warning in &config.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { path } => run_check(path),
        Command::Serve { config, listen } => {
            telemetry::init();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")
                .and_then(|rt| rt.block_on(run_serve(config, listen)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
