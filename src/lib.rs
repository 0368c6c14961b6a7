//! Shared harness for the end-to-end tests in `tests/` and the benchmarks in `benches/`.
//!
//! - [`workload`]: benchmark data sets of a stated shape, loaded into any store.

pub mod workload;
