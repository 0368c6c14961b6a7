//! The library half of the `minitwit` package: the traffic simulator's client, which
//! `minitwit replay` runs and the end-to-end tests drive directly. It lives beside the
//! binary rather than in the API crate, so the server's API carries no HTTP client.
//!
//! - [`simulator`]: reads a scenario, replays it against the API, reports.

pub mod simulator;
