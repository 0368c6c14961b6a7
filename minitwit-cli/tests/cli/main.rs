//! Tests of the `minitwit` binary, run as a real process (`CARGO_BIN_EXE_minitwit`) on
//! scratch sled stores and a throwaway PostgreSQL. One test binary, one module per area:
//!
//! - `admin`: `user …`, `message …`, `stats`, `migrate`, store URL errors.
//! - `data`: `export`, `import`, `copy` between sled stores, bad files.
//! - `serve`: listeners, `/health` `/ready` `/metrics`, request ids, the sled lock,
//!   graceful shutdown.
//! - `postgres`: unreachable databases, admin on PostgreSQL, and the full scenario
//!   copied sled → PostgreSQL → sled.
//! - `replay`: `replay` against a running server, and its failures.
//! - `faults`: sled sync failures and a dead flusher under a running server.
//! - `hardening`: security headers everywhere, closed metric labels, aborted bodies,
//!   slow and flooding clients, cross-site requests, sessions that end.
//! - `health`: `health` against ready, stopped and not-ready servers.
//! - `common`: running the binary, scratch stores, the fixture.

mod admin;
mod common;
mod data;
mod faults;
mod hardening;
mod health;
mod postgres;
mod replay;
mod serve;
