//! MiniTwit's PostgreSQL store: [`PgStore`] implements [`minitwit_core::Store`] over a
//! sqlx connection pool, so several stateless `minitwit serve` replicas can share one
//! database.
//!
//! Layout:
//! - [`PgStore`] (`store`): connecting, migrating, and the [`minitwit_core::Store`]
//!   trait, each operation delegated to its concern: `users`, `messages`, `follows`,
//!   `timeline`, `state` (`latest`, settings, counts, the snapshot that names what reads
//!   see) and `import`. Every statement is a runtime-checked query (building needs no
//!   database) with bound parameters, prepared once per connection; a statement is one
//!   round trip (no ping before each).
//! - `coalesce`: identical hot reads made at the same time (`latest`, timeline pages,
//!   users, follow lists, session generations, the snapshot) share one statement that
//!   started after each of them arrived: never an answer older than a write
//!   acknowledged before the read, whichever process wrote it.
//! - [`TimelinePlans`] (`timeline`): the three timeline queries, why each is served by
//!   an index, and their plans for inspection; the home timeline read from the kept
//!   home timelines that the database's triggers write with every post and follow
//!   (the migration `home_timelines`), which `home` checks ([`HomeReport`]) and
//!   rebuilds.
//! - `batch`: the simulator's writes (posts by name, follow changes by names) that arrive
//!   while others of their kind are being stored wait, and are stored together, by one
//!   statement in one commit.
//! - `import`: bulk import in one transaction.
//! - `latest`: the simulator's `latest`, recorded by the statement of the action that carries
//!   it, in the action's transaction.
//! - `receipts`: keyed writes applied once, each with its receipt in one transaction.
//! - `rows`: rows as queries return them, converted into the core's records, and their
//!   column lists (named once).
//! - [`RoutedStore`] (`routed`): a primary with streaming read replicas, routing reads
//!   to fresh-enough replicas with read-your-writes per reader; `replicas`: their
//!   health, replay positions, lag, and the replica metrics ([`describe_metrics`]);
//!   `position`: WAL positions with their timeline, as read tokens carry them.
//! - [`PgOptions`], [`ReplicaOptions`] (`options`): pool size and timeouts; lag bound.
//! - [`pending_migrations`] (`pending`): what `migrate` would apply, changing nothing.
//! - [`PgError`] (`error`): setup errors, and the single mapping from database errors
//!   (constraint violations, outages) to [`minitwit_core::store::StoreError`].
//! - `migrations/` (crate root): versioned schema migrations, embedded in the binary,
//!   applied by [`PgStore::connect`] and [`PgStore::migrate`]. Never edit a released one.
//! - `testkit` (feature `testkit`): a throwaway PostgreSQL for tests, with a fresh
//!   database per test.
//!
//! # Getting started
//!
//! MiniTwit embedded in another program over PostgreSQL: as `minitwit-store-sled`'s
//! front page shows for the embedded store (that one runs as a test), with this crate
//! in its place. In `Cargo.toml`, `minitwit-core` and `minitwit-store-pg` (by path or
//! git), and `tokio` with `rt-multi-thread` and `macros`; in a debug build, the profile
//! override for `argon2` that page shows. [`PgStore::connect`] applies the schema
//! migrations; the database must exist and the user own it. Any number of processes
//! may share the database.
//!
//! ```no_run
//! use minitwit_core::{MessageText, MiniTwit, PageSize, Registration, Timeline};
//! use minitwit_store_pg::{PgOptions, PgStore};
//! use std::sync::Arc;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let url = "postgres://minitwit@localhost/minitwit";
//!     let store = PgStore::connect(url, PgOptions::default()).await?;
//!     let twit = MiniTwit::new(Arc::new(store));
//!     let alice = twit.register(Registration::parse("alice", "a@example.com", "pw", None)?).await?;
//!     twit.post(&alice, MessageText::parse("hello")?).await?;
//!     let page = twit.timeline(Timeline::User(alice.id), None, PageSize::PER_PAGE).await?;
//!     assert_eq!(page.entries[0].text, "hello");
//!     // Lets go of the store; acknowledged writes are already committed.
//!     twit.close().await?;
//!     Ok(())
//! }
//! ```

#![deny(rustdoc::broken_intra_doc_links)]

mod batch;
mod coalesce;
mod error;
mod feed;
mod follows;
mod home;
mod import;
mod latest;
mod messages;
mod options;
mod pending;
mod position;
mod receipts;
mod replicas;
mod routed;
mod rows;
mod state;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod timeline;
mod users;

pub use error::PgError;
pub use home::HomeReport;
pub use options::{PgOptions, ReplicaOptions};
pub use pending::pending_migrations;
pub use replicas::describe_metrics;
pub use routed::RoutedStore;
pub use store::PgStore;
pub use timeline::TimelinePlans;
