//! Structured logs on stderr with `tracing`: pretty on a terminal, JSON for aggregation.
//! The level comes from `RUST_LOG` (default `info` for `serve`, `warn` for the one-shot
//! commands, whose stderr is for errors); warp's own per-request lines are off, since the
//! request layer writes one line per request itself.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Quiet dependencies, whatever the level.
const DEPENDENCIES: &str = "warp=warn,sqlx=warn,hyper=warn";

/// Installs the global subscriber. Logs go to stderr, so command output on stdout stays
/// clean for scripts.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},{DEPENDENCIES}")));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (never in the binary) would only be refused; ignore it.
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
