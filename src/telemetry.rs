//! Log setup: human-readable lines (default) or one JSON object per line, on stderr, filtered
//! by `RUST_LOG` (default `info`). Request lines come from the gateway's trace layer and never
//! carry secrets or bodies.
//!
//! Lines are handed to a writer thread through a channel and written in batches (a buffered
//! stderr flushed whenever the channel runs empty), so a busy gateway does not pay one `write`
//! system call per request. Nothing is dropped: a full channel makes the logger wait. The
//! returned guard flushes what is left when it is dropped at exit.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. Keep the guard alive until the process ends.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) =
        NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::BufWriter::with_capacity(
                64 * 1024,
                std::io::stderr(),
            ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}
