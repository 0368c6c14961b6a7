//! The library half of the `minitwit` package: what `minitwit` runs and the end-to-end
//! tests drive directly, so that they test what ships.
//!
//! - [`serve`]: the server assembly (listeners, layers, metrics, store wrappers,
//!   shutdown) that `minitwit serve` starts.
//! - [`simulator`]: reads a scenario, replays it against the API, reports. It lives beside
//!   the binary rather than in the API crate, so the server's API carries no HTTP client.

#![deny(rustdoc::broken_intra_doc_links)]

pub mod serve;
pub mod simulator;
