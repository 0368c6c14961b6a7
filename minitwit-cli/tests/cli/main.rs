//! Tests of the `minitwit` binary, run as a real process (`CARGO_BIN_EXE_minitwit`) on
//! scratch sled stores and a throwaway PostgreSQL. One test binary, one module per area:
//!
//! - `admin`: `user …`, `message …`, `stats`, `migrate`, store URL errors.
//! - `caches`: hot pages fresh after every write, on sled and across two processes over
//!   one PostgreSQL.
//! - `generate`: synthetic data sets into sled and PostgreSQL.
//! - `data`: `export`, `import`, `copy` between sled stores, bad files.
//! - `dispatch`: each route label's own filter answers as the whole front end does (in
//!   process, over the core's in-memory store).
//! - `import_undo`: imports failing midway on both stores leave the target as it was.
//! - `serve`: listeners, `/health` `/ready` `/metrics`, request ids, the sled lock,
//!   graceful shutdown.
//! - `postgres`: unreachable databases, admin on PostgreSQL, and the full scenario
//!   copied sled → PostgreSQL → sled.
//! - `replay`: `replay` against a running server, and its failures.
//! - `faults`: sled sync failures (injected, and a real full disk) and a dead flusher
//!   under a running server; `/health` fails until a restart.
//! - `hardening`: security headers everywhere, closed metric labels, aborted bodies,
//!   slow and flooding clients, cross-site requests, sessions that end.
//! - `exactly_once`: one idempotency key sent to two replicas at once applies once;
//!   receipts expire with their window.
//! - `replicas`: two `serve` processes over one PostgreSQL, one stopped mid-traffic.
//! - `read_replicas`: `--replica-store` over a real primary and streaming standby (delayed,
//!   stopped standby; stopped primary).
//! - `health`: `health` against ready, stopped and not-ready servers.
//! - `drain`: the drain delay on SIGTERM (not ready, still serving), none on SIGINT.
//! - `logs`: the log ceiling during a PostgreSQL outage, access log sampling.
//! - `monitoring`: promtool on the alert rules; Prometheus runs every dashboard query.
//! - `operations`: OPERATIONS.md's commands run; the Kubernetes manifests checked.
//! - `operator`: empty variables, `--json`, `verify`, gzip and stdout exports,
//!   `migrate --check`, `--yes`.
//! - `tls`: PostgreSQL over TLS (require, verify-full), HTTPS through the nginx example.
//! - `common`: running the binary, scratch stores, the fixture.

mod admin;
mod caches;
mod common;
mod data;
mod dispatch;
mod drain;
mod exactly_once;
mod faults;
mod generate;
mod hardening;
mod health;
mod import_undo;
mod logs;
mod monitoring;
mod operations;
mod operator;
mod postgres;
mod read_replicas;
mod replay;
mod replicas;
mod serve;
mod tls;
