//! The subcommands besides `serve`, one module each; `main.rs` parses arguments and
//! dispatches here.

pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod events;
pub(crate) mod presets;

use std::path::Path;

use hookgate::app::ConfigOrigin;

/// A run that worked but whose outcome was a failure (exit 1; usage errors exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SendFailed(pub(crate) String);

/// The named file, else `config/hookgate.toml` if it exists, else the embedded default.
pub(crate) fn config_origin(path: Option<&Path>) -> ConfigOrigin {
    let default = hookgate::config::default_path();
    match path {
        Some(p) => ConfigOrigin::File(p.to_path_buf()),
        None if default.exists() => ConfigOrigin::File(default),
        None => ConfigOrigin::Embedded,
    }
}
