//! What a replay measured: actions sent, errors by kind, throughput and latency
//! percentiles (an HDR histogram of microseconds), and a readable rendering.

use super::scenario::ActionKind;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why an action counts as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The server answered with a status other than the one the simulator expects.
    UnexpectedStatus {
        /// The kind of action.
        action: ActionKind,
        /// The status received.
        status: u16,
    },
    /// No complete answer within the per-request timeout.
    Timeout,
    /// The connection could not be made.
    Connection,
    /// Any other transport failure (reset connection, malformed response, …).
    Transport,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnexpectedStatus { action, status } => write!(f, "{action}: status {status}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Connection => f.write_str("connection error"),
            Self::Transport => f.write_str("transport error"),
        }
    }
}

/// How one action went.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// An answer with this status after this long.
    Answered {
        /// The HTTP status.
        status: u16,
        /// From sending the request to reading the whole answer.
        latency: Duration,
    },
    /// A transport failure.
    Failed(ErrorKind),
}

/// Latency percentiles of the answered requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

/// The result of a replay.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Actions sent.
    pub sent: u64,
    /// Actions answered with the expected status.
    pub succeeded: u64,
    /// Failed actions, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Wall-clock time of the whole replay.
    pub elapsed: Duration,
    /// Latency percentiles of the answered requests.
    pub latency: Latency,
}

impl ReplayReport {
    /// Total failed actions.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Actions per second over the whole replay.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { self.sent as f64 / seconds } else { 0.0 }
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "actions sent:  {}", self.sent)?;
        writeln!(f, "succeeded:     {}", self.succeeded)?;
        writeln!(f, "errors:        {}", self.error_count())?;
        for (kind, count) in &self.errors {
            writeln!(f, "  {kind}: {count}")?;
        }
        writeln!(f, "elapsed:       {:.2} s", self.elapsed.as_secs_f64())?;
        writeln!(f, "throughput:    {:.1} actions/s", self.throughput())?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let Latency { p50, p90, p99, max } = self.latency;
        write!(
            f,
            "latency (ms):  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max)
        )
    }
}

/// Collects outcomes into a report.
pub(crate) struct Recorder {
    sent: u64,
    succeeded: u64,
    errors: BTreeMap<ErrorKind, u64>,
    micros: Histogram<u64>,
}

impl Recorder {
    /// An empty recorder.
    pub(crate) fn new() -> Self {
        // Auto-resizing with 3 significant digits: never refuses a value.
        let mut micros = Histogram::new(3).expect("3 significant digits is a valid precision");
        micros.auto(true);
        Self { sent: 0, succeeded: 0, errors: BTreeMap::new(), micros }
    }

    /// Records the outcome of an action of `kind` that expects `expected`.
    pub(crate) fn record(&mut self, kind: ActionKind, expected: u16, outcome: Outcome) {
        self.sent += 1;
        let error = match outcome {
            Outcome::Answered { status, latency } => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                // An auto-resizing histogram accepts any value.
                let _ = self.micros.record(micros);
                (status != expected).then_some(ErrorKind::UnexpectedStatus { action: kind, status })
            }
            Outcome::Failed(kind) => Some(kind),
        };
        match error {
            Some(error) => *self.errors.entry(error).or_default() += 1,
            None => self.succeeded += 1,
        }
    }

    /// The report, given the replay's duration.
    pub(crate) fn finish(self, elapsed: Duration) -> ReplayReport {
        let at = |quantile: f64| Duration::from_micros(self.micros.value_at_quantile(quantile));
        let latency = if self.micros.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                max: Duration::from_micros(self.micros.max()),
            }
        };
        ReplayReport {
            sent: self.sent,
            succeeded: self.succeeded,
            errors: self.errors,
            elapsed,
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_by_kind_and_percentiles() {
        let mut recorder = Recorder::new();
        for ms in 1..=100 {
            let latency = Duration::from_millis(ms);
            recorder.record(ActionKind::Tweet, 204, Outcome::Answered { status: 204, latency });
        }
        let latency = Duration::from_millis(5);
        recorder.record(ActionKind::Follow, 204, Outcome::Answered { status: 404, latency });
        recorder.record(ActionKind::Register, 204, Outcome::Failed(ErrorKind::Timeout));
        let report = recorder.finish(Duration::from_secs(2));
        assert_eq!((report.sent, report.succeeded, report.error_count()), (102, 100, 2));
        let not_found = ErrorKind::UnexpectedStatus { action: ActionKind::Follow, status: 404 };
        assert_eq!(report.errors.get(&not_found), Some(&1));
        assert_eq!(report.errors.get(&ErrorKind::Timeout), Some(&1));
        assert!((report.throughput() - 51.0).abs() < 1e-9);
        assert!(
            report.latency.p50 >= Duration::from_millis(49)
                && report.latency.p50 <= Duration::from_millis(51)
        );
        assert!(report.latency.max >= Duration::from_millis(100));
        let text = report.to_string();
        assert!(text.contains("follow: status 404: 1") && text.contains("timeout: 1"), "{text}");
    }
}
