//! Log setup: human-readable lines (default) or one JSON object per line, on stderr, filtered
//! by `RUST_LOG` (default `info`). Request lines come from the gateway's trace layer and never
//! carry secrets or bodies. Lines go through the batching writer of [`batch`]; text lines for
//! a file or pipe are formatted by [`text`], and with colours by the library's formatter when
//! stderr is a terminal. The request line, written on every request, is [`request_line`]'s.

mod batch;
mod request_line;
mod text;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub use batch::{BatchWriter, LineWriter, LogGuard, FLUSH_AT, FLUSH_EVERY, MAX_PENDING};
pub use request_line::RequestLine;
pub use text::TextFormat;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. Keep the guard alive until the process ends.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = BatchWriter::spawn(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone());
    let _ = match format {
        LogFormat::Text if std::io::stderr().is_terminal() => builder.with_ansi(true).try_init(),
        LogFormat::Text => {
            let installed = builder.with_ansi(false).event_format(TextFormat).try_init();
            if installed.is_ok() {
                request_line::write_directly_to(writer);
            }
            installed
        }
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}
