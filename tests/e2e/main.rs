//! MiniTwit end to end: the real site and API, served as `minitwit serve` serves them, over
//! real stores (sled and a throwaway PostgreSQL), driven over real HTTP, by the simulator's
//! client, by schemathesis and by headless Chromium. One test binary, one harness ([`support`]).
//!
//! - [`web_http`]: the site's routes, texts, statuses, sessions and protections.
//! - [`web_browser`]: a new user's journey in Chromium, local times.
//! - [`sim_api`]: every request of the simulator API, in success and failure.
//! - [`sim_replay`]: the simulator's scenario replayed, errors counted by kind.
//! - [`sim_fuzz`]: schemathesis against the served OpenAPI document.
//! - [`outage`]: a PostgreSQL outage seen from both front ends.
//! - [`live`]: live timelines' event streams: visibility, sessions, reconnection, caps,
//!   slow readers, shutdown, a PostgreSQL restart.
//! - [`live_browser`]: live timelines in two Chromium browsers, on sled and across two
//!   `minitwit serve` processes over PostgreSQL; the pages' landmarks under axe-core's default rules.
//! - [`idempotency`]: writes sent twice under one key apply once, on the API and the site.
//! - [`serving`]: the listener's timeouts, the security headers, request ids, `/metrics`.
//!
//! Run one part with a filter: `cargo test --test e2e web_http::`.

#[macro_use]
mod support;

mod idempotency;
mod live;
mod live_browser;
mod outage;
mod serving;
mod sim_api;
mod sim_fuzz;
mod sim_replay;
mod web_browser;
mod web_http;
