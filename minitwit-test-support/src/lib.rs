//! MiniTwit's test support, written once for every crate's tests, the benchmarks and the
//! scripts: nothing here ships. It depends on no MiniTwit crate, so any of them can use
//! it (the PostgreSQL store's `testkit` feature builds its fresh databases on
//! [`TestCluster`]).
//!
//! Layout:
//! - [`free_port`] (`ports`): a loopback port for a server a test starts.
//! - [`simulator`]: the course simulator's credentials, as the simulator sends them.
//! - [`scenario_path`] (`scenario`): the simulator's scenario file in `data/`.
//! - [`TestCluster`] (`cluster`): a throwaway PostgreSQL server in a temporary directory,
//!   with a streaming standby on request, stopped and deleted when dropped or when the
//!   process dies.
//! - `src/bin/pg-cluster.rs`: the `pg-cluster` program, [`TestCluster`] for the scripts
//!   (`scripts/load-bench`, `scripts/replica-bench`): it prints the connection URLs and
//!   keeps the servers up until its standard input closes.
//!
//! ```no_run
//! let cluster = minitwit_test_support::TestCluster::start().expect("PostgreSQL is installed");
//! let url = cluster.url("postgres");
//! let header = minitwit_test_support::simulator::AUTHORIZATION;
//! # let _ = (url, header, minitwit_test_support::free_port());
//! ```

#![deny(rustdoc::broken_intra_doc_links)]

mod cluster;
mod ports;
mod scenario;
pub mod simulator;

pub use cluster::{ClusterError, ServerCertificate, TestCluster};
pub use ports::{free_port, try_free_port};
pub use scenario::scenario_path;
