//! Structured logs on stderr with `tracing`, with a ceiling on their volume:
//!
//! - pretty on a terminal, JSON for aggregation; the level comes from `RUST_LOG` (default
//!   `info` for `serve`, `warn` for the one-shot commands, whose stderr is for errors);
//!   warp's, sqlx's and hyper's own lines are off unless named;
//! - lines go through a buffered, non-blocking writer ([`batches`]): each thread gathers
//!   its lines in a buffer of its own, and one thread writes them out in batches, so a
//!   slow or blocked stderr never holds a request up and no line wakes a thread; when the
//!   lines pending reach the bound, new ones are dropped rather than queued without bound;
//! - the access log (one line per request, target [`ACCESS_TARGET`]) is on, off, or
//!   sampled (one request in N);
//! - identical warnings and errors (same place in the code, same fields apart from
//!   latencies) are written once per window; the repeats are counted and reported in one
//!   summary line per window. A database outage therefore writes a few lines, not two per
//!   request.

mod access_line;
mod batches;

use crate::cli::{AccessLog, LogFormat, LogOptions};
use minitwit_cli::serve::ACCESS_TARGET;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the summary of suppressed repeats (never itself suppressed).
const SUMMARY_TARGET: &str = "minitwit::log";

/// Dependencies kept quiet unless `RUST_LOG` names them, with their level: warp's own
/// per-request lines would double the request log, and the certificate verifier's errors
/// are the ones the command itself reports.
const DEPENDENCIES: [(&str, &str); 4] =
    [("warp", "warn"), ("sqlx", "warn"), ("hyper", "warn"), ("rustls_platform_verifier", "off")];

/// Lines pending (formatted, not yet written) before new ones are dropped.
const BUFFERED_LINES: usize = 16_384;

/// Distinct repeated lines tracked per window; further distinct ones are counted
/// together.
const MAX_TRACKED: usize = 1024;

/// Fields that differ between otherwise identical lines.
const VARYING_FIELDS: [&str; 2] = ["latency_ms", "request_id"];

/// Keeps the writer and the repeat counter alive; dropping it reports the repeats not
/// reported yet and flushes the buffered lines.
pub struct LogGuard {
    repeats: Arc<Repeats>,
    _writer: batches::BatchGuard,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.repeats.report();
    }
}

/// Installs the global subscriber. Logs go to stderr, so command output on stdout stays
/// clean for scripts. Keep the guard until the process ends.
pub fn init(options: &LogOptions, default_level: &str) -> LogGuard {
    let filter = EnvFilter::builder().parse_lossy(directives(
        std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()).as_deref(),
        default_level,
    ));
    let json = match options.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (writer, guard) = batches::spawn(std::io::stderr(), BUFFERED_LINES);
    let window = Duration::from_secs(options.log_repeat_window_secs.max(1));
    let repeats = Arc::new(Repeats::new(window));
    let ceiling = Ceiling::new(options.access_log, Arc::clone(&repeats));
    let output = tracing_subscriber::fmt::layer().with_writer(writer);
    let output = if json {
        let stock = output.json().with_current_span(true).with_span_list(false);
        stock.map_event_format(access_line::AccessJson::new).boxed()
    } else {
        output.with_target(false).boxed()
    };
    // A second initialisation (never in the binary) would only be refused; ignore it.
    let _ = tracing_subscriber::registry().with(filter).with(ceiling).with(output).try_init();
    spawn_reporter(Arc::clone(&repeats), window);
    LogGuard { repeats, _writer: guard }
}

/// The filter: `RUST_LOG` (or the default level), with the dependencies it does not name
/// turned down.
fn directives(rust_log: Option<&str>, default_level: &str) -> String {
    let base = rust_log.unwrap_or(default_level);
    let quiet = DEPENDENCIES
        .iter()
        .filter(|(dep, _)| !base.contains(dep))
        .map(|(dep, level)| format!("{dep}={level}"));
    std::iter::once(base.to_owned()).chain(quiet).collect::<Vec<_>>().join(",")
}

/// Reports the counted repeats once per window, on a thread of its own (logging starts
/// before the runtime and outlives it).
fn spawn_reporter(repeats: Arc<Repeats>, window: Duration) {
    let spawned =
        std::thread::Builder::new().name("minitwit-log-repeats".into()).spawn(move || {
            loop {
                std::thread::sleep(window);
                repeats.report();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot count repeated log lines; they are written");
    }
}

/// The layer deciding which events reach the output: access log sampling and repeat
/// suppression.
struct Ceiling {
    access: AccessLog,
    access_seen: AtomicU64,
    repeats: Arc<Repeats>,
}

impl Ceiling {
    fn new(access: AccessLog, repeats: Arc<Repeats>) -> Self {
        Self { access, access_seen: AtomicU64::new(0), repeats }
    }

    /// Whether this access line is written: all, none, or the first of every N.
    fn sample_access(&self) -> bool {
        match self.access {
            AccessLog::On => true,
            AccessLog::Off => false,
            AccessLog::Sample(every) => {
                self.access_seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(every.get())
            }
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Ceiling {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if meta.target() == SUMMARY_TARGET {
            return true;
        }
        if *meta.level() <= Level::WARN {
            return self.repeats.admit(repeat_key(event));
        }
        meta.target() != ACCESS_TARGET || self.sample_access()
    }
}

/// What makes two events identical: where they come from and their fields, except the
/// ones that always differ.
fn repeat_key(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut key =
        KeyVisitor(format!("{} {}:{}", meta.level(), meta.target(), meta.line().unwrap_or(0)));
    event.record(&mut key);
    key.0
}

/// Renders an event's fields into a key.
struct KeyVisitor(String);

impl Visit for KeyVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !VARYING_FIELDS.contains(&field.name()) {
            // Writing into a String cannot fail.
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Counts of identical lines within the current window.
struct Repeats {
    window: Duration,
    state: Mutex<HashMap<String, Seen>>,
}

/// One distinct line: when its window started and how often it was held back since.
struct Seen {
    since: Instant,
    suppressed: u64,
}

/// The key under which lines beyond [`MAX_TRACKED`] distinct ones are counted.
const OTHERS: &str = "(other lines)";

impl Repeats {
    fn new(window: Duration) -> Self {
        Self { window, state: Mutex::new(HashMap::new()) }
    }

    /// Whether a line with `key` is written now: the first in its window is, the others
    /// are counted.
    fn admit(&self, key: String) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.len() >= MAX_TRACKED && !state.contains_key(&key) {
            state
                .entry(OTHERS.to_owned())
                .or_insert(Seen { since: now, suppressed: 0 })
                .suppressed += 1;
            return false;
        }
        match state.get_mut(&key) {
            Some(seen) if now.duration_since(seen.since) < self.window => {
                seen.suppressed += 1;
                false
            }
            Some(seen) => {
                // A new window: this line is written, and whatever was counted so far
                // stays to be reported.
                seen.since = now;
                true
            }
            None => {
                state.insert(key, Seen { since: now, suppressed: 0 });
                true
            }
        }
    }

    /// Takes the counted repeats (forgetting lines whose window is over) and writes them
    /// as one summary line.
    fn report(&self) {
        let counted = self.take();
        if counted.is_empty() {
            return;
        }
        let total: u64 = counted.iter().map(|(_, n)| n).sum();
        let lines: Vec<String> =
            counted.into_iter().map(|(key, n)| format!("{n}x {key}")).collect();
        tracing::warn!(
            target: SUMMARY_TARGET,
            suppressed = total,
            lines = %lines.join(" | "),
            "identical log lines were counted instead of written"
        );
    }

    fn take(&self) -> Vec<(String, u64)> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counted = Vec::new();
        state.retain(|key, seen| {
            if seen.suppressed > 0 {
                counted.push((key.clone(), std::mem::take(&mut seen.suppressed)));
            }
            now.duration_since(seen.since) < self.window
        });
        counted.sort();
        counted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_stay_quiet_unless_named() {
        let verifier = "rustls_platform_verifier=off";
        assert_eq!(
            directives(None, "info"),
            format!("info,warp=warn,sqlx=warn,hyper=warn,{verifier}")
        );
        assert_eq!(
            directives(Some("debug,warp=trace"), "info"),
            format!("debug,warp=trace,sqlx=warn,hyper=warn,{verifier}")
        );
    }

    #[test]
    fn repeats_within_a_window_are_counted_not_admitted() {
        let repeats = Repeats::new(Duration::from_secs(3600));
        assert!(repeats.admit("a".into()));
        assert!(!repeats.admit("a".into()));
        assert!(!repeats.admit("a".into()));
        assert!(repeats.admit("b".into()));
        assert_eq!(repeats.take(), vec![("a".to_owned(), 2)]);
        assert!(repeats.take().is_empty(), "counts are reported once");
        assert!(!repeats.admit("a".into()), "the window still runs");
    }

    #[test]
    fn a_new_window_admits_again() {
        let repeats = Repeats::new(Duration::ZERO);
        assert!(repeats.admit("a".into()));
        assert!(repeats.admit("a".into()));
    }

    #[test]
    fn distinct_lines_are_bounded() {
        let repeats = Repeats::new(Duration::from_secs(3600));
        for i in 0..MAX_TRACKED {
            assert!(repeats.admit(i.to_string()));
        }
        assert!(!repeats.admit("one more".into()));
        let counted = repeats.take();
        assert_eq!(counted, vec![(OTHERS.to_owned(), 1)]);
    }

    #[test]
    fn sampling_keeps_one_in_n() {
        let repeats = Arc::new(Repeats::new(Duration::from_secs(1)));
        let every = std::num::NonZeroU64::new(4).unwrap_or(std::num::NonZeroU64::MIN);
        let ceiling = Ceiling::new(AccessLog::Sample(every), repeats);
        let kept = (0..100).filter(|_| ceiling.sample_access()).count();
        assert_eq!(kept, 25);
        let off = Ceiling::new(AccessLog::Off, Arc::new(Repeats::new(Duration::from_secs(1))));
        assert!(!off.sample_access());
    }
}
