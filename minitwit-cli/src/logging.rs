//! Structured logs on stderr with `tracing`: pretty on a terminal, JSON for aggregation.
//! The level comes from `RUST_LOG` (default `info` for `serve`, `warn` for the one-shot
//! commands, whose stderr is for errors); warp's own per-request lines are off, since the
//! request layer writes one line per request itself.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Dependencies kept quiet unless `RUST_LOG` names them (warp's own per-request lines
/// would double the request log).
const DEPENDENCIES: [&str; 3] = ["warp", "sqlx", "hyper"];

/// Installs the global subscriber. Logs go to stderr, so command output on stdout stays
/// clean for scripts.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::builder().parse_lossy(directives(
        std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()).as_deref(),
        default_level,
    ));
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

/// The filter: `RUST_LOG` (or the default level), with the dependencies it does not name
/// turned down to `warn`.
fn directives(rust_log: Option<&str>, default_level: &str) -> String {
    let base = rust_log.unwrap_or(default_level);
    let quiet =
        DEPENDENCIES.iter().filter(|dep| !base.contains(*dep)).map(|dep| format!("{dep}=warn"));
    std::iter::once(base.to_owned()).chain(quiet).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn dependencies_stay_quiet_unless_named() {
        assert_eq!(directives(None, "info"), "info,warp=warn,sqlx=warn,hyper=warn");
        assert_eq!(
            directives(Some("debug,warp=trace"), "info"),
            "debug,warp=trace,sqlx=warn,hyper=warn"
        );
    }
}
