//! What the criterion benchmarks (`store.rs`, `home.rs`) share: the runtime they drive the
//! stores on, criterion's settings, and the choice of backends by
//! `MINITWIT_BENCH_BACKENDS`.

use criterion::Criterion;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A runtime with a worker per core of the benchmark machine (2).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Short measurements (10 samples, 0.5 s of warm-up, 2 s of measurement), then the
/// command line's options (a name filter, say).
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// `all` (backends, each named by `name`), or those that `MINITWIT_BENCH_BACKENDS` lists
/// (comma-separated names) when it is set.
pub fn chosen<T>(all: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
    match std::env::var("MINITWIT_BENCH_BACKENDS") {
        Ok(only) => all.into_iter().filter(|b| only.split(',').any(|n| n == name(b))).collect(),
        Err(_) => all,
    }
}
