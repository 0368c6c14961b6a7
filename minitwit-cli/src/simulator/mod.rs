//! The simulator as a library (`minitwit replay`): reads a scenario (CONTRACT.md §4.4),
//! sends each action as the course's simulator does, and reports errors by kind,
//! throughput and latency percentiles.
//!
//! - [`scenario`]: the scenario file and its actions.
//! - `schedule`: which action may go out next under concurrency (each user's actions in
//!   order, follows after both users exist).
//! - `send`: one action as an HTTP request, and its outcome.
//! - [`report`]: [`ReplayReport`] and its rendering.

pub mod report;
pub mod scenario;
mod schedule;
mod send;

pub use report::{ErrorKind, Latency, ReplayReport};
pub use scenario::{Action, ActionKind, ActionRequest};

use indicatif::{ProgressBar, ProgressStyle};
use report::Recorder;
use schedule::Schedule;
use send::Sender;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How to replay.
#[derive(Clone)]
pub struct ReplayOptions {
    /// The API's base URL, e.g. `http://127.0.0.1:5001`.
    pub base_url: String,
    /// The simulator's user name.
    pub username: String,
    /// The simulator's password. Never printed.
    pub password: String,
    /// Replay only the first this many actions.
    pub limit: Option<usize>,
    /// Send at most this many actions per second; as fast as possible when absent.
    pub rate: Option<f64>,
    /// How many requests may be in flight at once (at least 1). Each user's actions still
    /// go out in order, and a follow only after both users' registrations completed.
    pub concurrency: usize,
    /// How long each request may take (the simulator gives 0.3 s).
    pub timeout: Duration,
    /// Send `Connection: close` with every request as the course's simulator does (a new
    /// connection per request); by default connections are reused.
    pub close_connections: bool,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
    /// Send each action with an `Idempotency-Key` of its own (this run's random prefix
    /// and the action's id), so that a retry, by this client or a proxy, applies once.
    pub idempotency_keys: bool,
    /// Send an action again (with the same key) this many times at most when it gets
    /// a 502, 503, 504 or no answer; the simulator itself never retries.
    pub retries: u32,
}

impl Default for ReplayOptions {
    /// The local API with the course credentials, one request at a time, 0.3 s timeout.
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:5001".to_owned(),
            username: "simulator".to_owned(),
            password: "super_safe!".to_owned(),
            limit: None,
            rate: None,
            concurrency: 1,
            timeout: Duration::from_millis(300),
            close_connections: false,
            progress: true,
            idempotency_keys: true,
            retries: 0,
        }
    }
}

impl std::fmt::Debug for ReplayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayOptions")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("limit", &self.limit)
            .field("rate", &self.rate)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("close_connections", &self.close_connections)
            .field("progress", &self.progress)
            .field("idempotency_keys", &self.idempotency_keys)
            .field("retries", &self.retries)
            .finish()
    }
}

/// Why a replay could not run. Failed requests are not errors of the replay: they are
/// counted in the [`ReplayReport`].
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The scenario could not be read.
    #[error("cannot read the scenario: {0}")]
    Io(#[from] std::io::Error),
    /// A scenario line is malformed.
    #[error("scenario line {line}: {reason}")]
    Scenario {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The base URL is not an http(s) URL that can take paths.
    #[error("invalid base URL {0:?}: expected something like http://127.0.0.1:5001")]
    BaseUrl(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The rate is not a positive number of actions per second.
    #[error("invalid rate {0}: expected a positive number of actions per second")]
    Rate(f64),
}

/// Replays the scenario file at `path` (gzipped when its name ends in `.gz`); see [`run`].
pub async fn run_file(path: &Path, options: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    run(open(path)?, options).await
}

/// The scenario file at `path`, for [`run`] or [`scenario::parse`], decompressed on the
/// fly when its name ends in `.gz`.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, ReplayError> {
    let file = std::fs::File::open(path)?;
    Ok(if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    })
}

/// Replays the scenario read from `scenario` against `options.base_url` and reports how it
/// went. Returns an error only when the replay cannot run at all.
pub async fn run(
    scenario: impl BufRead,
    options: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let pace = pace(options.rate)?;
    let actions: Arc<[Action]> = scenario::parse(scenario, options.limit)?.into();
    let sender = Sender::new(options)?;
    let progress = progress_bar(actions.len(), options.progress);
    let mut schedule = Schedule::new(&actions);
    let mut recorder = Recorder::new();
    let mut pacer = pace.map(tokio::time::interval);
    let mut in_flight = JoinSet::new();
    let concurrency = options.concurrency.max(1);
    let started = Instant::now();
    while !schedule.is_done() {
        while in_flight.len() < concurrency {
            let Some(index) = schedule.next_ready(in_flight.len()) else { break };
            if let Some(pacer) = pacer.as_mut() {
                pacer.tick().await;
            }
            let (sender, actions) = (sender.clone(), Arc::clone(&actions));
            in_flight.spawn(async move { (index, sender.send(&actions[index]).await) });
        }
        // Nothing out and nothing ready cannot happen (the smallest pending action is
        // always ready); stop rather than spin if it ever did.
        let Some(joined) = in_flight.join_next().await else { break };
        let Ok((index, outcome)) = joined else { continue };
        schedule.complete(index);
        let kind = actions[index].kind();
        recorder.record(kind, send::expected_status(kind), outcome);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(recorder.finish(started.elapsed()))
}

/// The interval between actions for a rate, if any.
fn pace(rate: Option<f64>) -> Result<Option<Duration>, ReplayError> {
    match rate {
        None => Ok(None),
        Some(rate) if rate.is_finite() && rate > 0.0 => {
            Ok(Some(Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1))))
        }
        Some(rate) => Err(ReplayError::Rate(rate)),
    }
}

/// A progress bar over `len` actions; hidden when not asked for (and indicatif draws
/// nothing when standard error is not a terminal).
fn progress_bar(len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} actions ({per_sec}, eta {eta})",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(pace(None).expect("no rate"), None);
        assert_eq!(pace(Some(4.0)).expect("valid"), Some(Duration::from_millis(250)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(pace(Some(bad)), Err(ReplayError::Rate(_))), "{bad}");
        }
    }
}
