//! Prometheus metrics: the recorder (installed once per process), the metric names, and
//! the business gauges refreshed from the store's cheap counts.

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use minitwit_core::MiniTwit;
use std::sync::{Mutex, PoisonError};
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

/// Refreshes the gauges and runs the recorder's upkeep every `every`, forever (the task
/// is aborted at shutdown).
pub async fn maintain(service: MiniTwit, handle: PrometheusHandle, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        ticks.tick().await;
        refresh_gauges(&service).await;
        handle.run_upkeep();
    }
}
