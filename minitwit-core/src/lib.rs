//! MiniTwit's domain: users, messages, follows and timelines, with every rule of the
//! system, behind an async [`Store`] trait. No HTTP, no SQL: embed it in any Rust program.
//!
//! # Getting started
//!
//! 1. Depend on this crate, on a store (`minitwit-store-sled`, embedded, or
//!    `minitwit-store-pg`, PostgreSQL) and on `tokio` (`rt-multi-thread`, `macros`).
//! 2. Open the store (`SledStore::open(path, SledOptions::default())`) and build the
//!    service over it: [`MiniTwit::new`]`(Arc::new(store))`.
//! 3. Call it from within a Tokio runtime; [`MiniTwit::close`] when done.
//! 4. In a debug build, optimise password hashing: `[profile.dev.package.argon2]
//!    opt-level = 3` (see [`MiniTwit::new`]).
//!
//! `minitwit-store-sled`'s front page has these steps as a runnable program, and its
//! `examples/embed_sled.rs` as an example.
//!
//! # What is here, by who needs it
//!
//! **Embedding** (re-exported at the crate root, all an embedder names):
//! - [`service`]: [`MiniTwit`], every operation of the system, and [`ServiceError`].
//! - [`domain`]: parse-don't-validate newtypes for input, with the contract's error texts
//!   ([`Registration`], [`Username`], [`Email`], [`Password`], [`MessageText`],
//!   [`PageSize`]).
//! - [`model`]: the records the service returns ([`User`], [`Message`], [`Page`] of
//!   [`TimelineEntry`]), their ids ([`UserId`], [`MessageId`]) and keyset [`Cursor`]s.
//! - [`store`]: the [`Store`] trait a backend implements; [`HashCost`] for tests.
//!
//! **Writing a backend:** [`store`] ([`StoreError`](store::StoreError), and what an import
//! and a deferred flush need), [`model`]'s write records, [`layer`] (a store over another
//! that states only what it changes), and the conformance suite in `testkit` (feature
//! `testkit`, with the in-memory reference model and the proptest model test).
//!
//! **Front ends and operations** (the site, the simulator API and the CLI use these by
//! their module paths):
//! - [`cache`]: the hot reads of a single-process store, cached, and page memos;
//! - [`idempotency`]: writes applied once under a client's key, and their receipts;
//! - [`consistency`]: read-your-writes tokens over stores that read from replicas;
//! - [`feed`]: the change feed: what changed, told to every process, and who may see it
//!   on a live timeline (each store delivers it; the site streams it);
//! - [`rate_limit`]: fixed-memory rate limits for logins and registrations;
//! - [`password_hash`]: Argon2id hashing off the async executor, and its pool;
//! - [`gravatar`]: picture addresses for emails;
//! - [`transfer`]: moving whole stores: export files, import, copy, fingerprints;
//! - [`synthetic`]: generated data sets of a stated shape, for benchmarks and load tests.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn minitwit_core::Store>) -> Result<(), minitwit_core::ServiceError> {
//! use minitwit_core::{MiniTwit, MessageText, PageSize, Registration, Timeline};
//! let twit = MiniTwit::new(store);
//! let alice = twit.register(Registration::parse("alice", "a@example.com", "pw", None)?).await?;
//! twit.post(&alice, MessageText::parse("hello")?).await?;
//! let page = twit.timeline(Timeline::Public, None, PageSize::PER_PAGE).await?;
//! assert_eq!(page.entries[0].text, "hello");
//! # Ok(()) }
//! ```

#![deny(rustdoc::broken_intra_doc_links)]

pub mod cache;
pub mod consistency;
pub mod domain;
pub mod feed;
pub mod gravatar;
pub mod idempotency;
mod latest;
pub mod layer;
pub mod model;
pub mod password_hash;
pub mod rate_limit;
pub mod service;
pub mod store;
pub mod synthetic;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transfer;

pub use domain::{Email, MessageText, PageSize, Password, Registration, Username, ValidationError};
pub use model::{
    Counts, Cursor, Message, MessageFilter, MessageId, Page, Timeline, TimelineEntry, User, UserId,
};
pub use password_hash::HashCost;
pub use service::{MiniTwit, ServiceError, ServiceResult};
pub use store::Store;
