//! Prometheus metrics: the recorder (installed once per process), the metric names, the
//! handles of labelled metrics registered once per label set ([`Handles`]), and the
//! business gauges refreshed from the store's cheap counts.

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use minitwit_core::MiniTwit;
use rustc_hash::FxBuildHasher;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Requests served, by front end, route, method and status.
pub const REQUESTS: &str = "minitwit_http_requests_total";
/// Request latency, by the same labels.
pub const REQUEST_SECONDS: &str = "minitwit_http_request_duration_seconds";
/// Store operation latency, by backend, operation and outcome.
pub const STORE_SECONDS: &str = "minitwit_store_operation_duration_seconds";

/// Latency buckets, in seconds: from sub-millisecond reads to the simulator's 0.3 s limit
/// and beyond.
const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0];

/// The most label sets whose handles a [`Handles`] keeps (the label sets in use are far
/// fewer; beyond it, handles are registered per use).
const MAX_LABEL_SETS: usize = 1024;

/// Metric handles by label set, each registered on first use: afterwards a use costs a
/// read lock and a quick hash of the labels (static names and numbers, never from a
/// client), not hashing and formatting them in the recorder.
pub struct Handles<K, H> {
    map: RwLock<HashMap<K, H, FxBuildHasher>>,
}

impl<K, H> Default for Handles<K, H> {
    fn default() -> Self {
        Self { map: RwLock::new(HashMap::default()) }
    }
}

impl<K: Hash + Eq + Copy, H> Handles<K, H> {
    /// Uses the handle of `labels`, made by `register` the first time (kept while there is
    /// room), in place: no handle is cloned and dropped per use.
    pub fn with<R>(
        &self,
        labels: K,
        register: impl FnOnce(&K) -> H,
        use_handle: impl FnOnce(&H) -> R,
    ) -> R {
        // The map only ever holds complete entries: a poisoned lock is still good.
        if let Some(handle) = self.map.read().unwrap_or_else(PoisonError::into_inner).get(&labels) {
            return use_handle(handle);
        }
        let handle = register(&labels);
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() < MAX_LABEL_SETS {
            return use_handle(map.entry(labels).or_insert(handle));
        }
        drop(map);
        use_handle(&handle)
    }
}

/// The process's recorder, once installed; locked while it is, so that servers started
/// at once in one process (the end-to-end tests) install it once.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// The process's recorder, installed on first use: a second call returns the same handle.
pub fn handle() -> Result<PrometheusHandle> {
    // Only ever holds a complete handle: a poisoned lock is still good.
    let mut handle = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = handle.as_ref() {
        return Ok(handle.clone());
    }
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .and_then(|builder| builder.install_recorder())
        .context("installing the metrics recorder")?;
    Ok(handle.insert(installed).clone())
}

/// Registers the metrics' help texts.
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "HTTP requests, by front end, route, method and status");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request latency, by front end, route, method and status"
    );
    metrics::describe_histogram!(
        STORE_SECONDS,
        metrics::Unit::Seconds,
        "Store operation latency, by backend, operation and outcome"
    );
    metrics::describe_gauge!("minitwit_users", "Registered users");
    metrics::describe_gauge!("minitwit_messages", "Messages, flagged included");
    metrics::describe_gauge!("minitwit_follows", "Follow pairs");
    metrics::describe_gauge!("minitwit_flagged_messages", "Flagged messages");
    minitwit_web::describe_metrics();
}

/// Sets the business gauges from the store's counts now.
pub async fn refresh_gauges(service: &MiniTwit) {
    match service.stats().await {
        Ok(counts) => {
            metrics::gauge!("minitwit_users").set(counts.users as f64);
            metrics::gauge!("minitwit_messages").set(counts.messages as f64);
            metrics::gauge!("minitwit_follows").set(counts.follows as f64);
            metrics::gauge!("minitwit_flagged_messages").set(counts.flagged as f64);
        }
        Err(err) => tracing::warn!(error = %err, "cannot refresh the business gauges"),
    }
}

/// How often the recorder's upkeep folds the histograms' recorded samples into their
/// buckets: until it does, each sample is held in memory (at tens of thousands of
/// requests a second, megabytes a second).
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Runs the recorder's upkeep every second and refreshes the gauges every `every`,
/// forever (the task is aborted at shutdown).
pub async fn maintain(service: MiniTwit, handle: PrometheusHandle, every: Duration) {
    let mut ticks = tokio::time::interval(UPKEEP_EVERY);
    let mut gauges = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = ticks.tick() => handle.run_upkeep(),
            _ = gauges.tick() => refresh_gauges(&service).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_label_set_is_registered_once_and_its_handle_used_in_place() {
        let handles: Handles<(&str, u16), u32> = Handles::default();
        let registered = Cell::new(0);
        let register = |&(_, status): &(&str, u16)| {
            registered.set(registered.get() + 1);
            u32::from(status)
        };
        assert_eq!(handles.with(("/latest", 200), register, |h| *h), 200);
        assert_eq!(handles.with(("/latest", 200), register, |h| *h), 200);
        assert_eq!(handles.with(("/latest", 404), register, |h| *h), 404);
        assert_eq!(registered.get(), 2, "once per label set");
    }

    #[test]
    fn label_sets_beyond_the_bound_are_registered_per_use() {
        let handles: Handles<usize, usize> = Handles::default();
        for labels in 0..MAX_LABEL_SETS {
            handles.with(labels, |&n| n, |_| ());
        }
        let registered = Cell::new(0);
        let register = |&n: &usize| {
            registered.set(registered.get() + 1);
            n
        };
        assert_eq!(handles.with(MAX_LABEL_SETS, register, |h| *h), MAX_LABEL_SETS);
        assert_eq!(handles.with(MAX_LABEL_SETS, register, |h| *h), MAX_LABEL_SETS);
        assert_eq!(registered.get(), 2, "the map keeps no more than its bound");
        assert_eq!(handles.with(0, register, |h| *h), 0, "those it kept stay");
        assert_eq!(registered.get(), 2);
    }
}
