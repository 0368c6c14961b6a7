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
//! - `replicas`: `--replica-store` over a real primary and streaming standby.
//! - `health`: `health` against ready, stopped and not-ready servers.
//! - `common`: running the binary, scratch stores, the fixture.

mod admin;
mod common;
mod data;
mod health;
mod postgres;
mod replay;
mod replicas;
mod serve;
