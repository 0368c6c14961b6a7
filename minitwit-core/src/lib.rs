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
//! Layout:
//! - [`domain`]: parse-don't-validate newtypes for client input, with the contract's error
//!   texts ([`Username`], [`Email`], [`Password`], [`MessageText`], [`PageSize`],
//!   [`Registration`]).
//! - [`model`]: the records stores keep and return, and keyset [`Cursor`]s.
//! - [`store`]: the [`Store`] trait that backends implement, and [`StoreError`].
//! - [`layer`]: [`StoreLayer`], a store over another that states only what it changes.
//! - [`service`]: [`MiniTwit`], the service front ends and the CLI call (`latest` writes
//!   coalesced).
//! - [`cache`]: [`CachedStore`], the hot reads of a single-process store, cached; and
//!   [`PageMemo`], answers built from first pages, kept while their page is unchanged.
//! - [`idempotency`]: writes applied once under a client's key, and their receipts.
//! - [`consistency`]: [`ReadToken`], read-your-writes over stores that read from replicas.
//! - [`feed`]: the change feed: what changed, told to every process, and who may see it
//!   on a live timeline.
//! - [`password_hash`]: Argon2id hashing off the async executor.
//! - [`gravatar`]: picture addresses for emails.
//! - [`transfer`]: moving whole stores: export files, import, copy, fingerprints.
//! - [`rate_limit`]: fixed-memory rate limits for logins and registrations, by account
//!   or by [`ClientAddress`](rate_limit::ClientAddress).
//! - [`synthetic`]: generated data sets of a stated shape, for benchmarks and load tests.
//! - `testkit` (feature `testkit`): the conformance suite every backend runs, the
//!   in-memory reference model and the proptest model test.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn minitwit_core::Store>) -> Result<(), minitwit_core::ServiceError> {
//! use minitwit_core::{MiniTwit, MessageText, PageSize, Registration, Timeline};
//! let twit = MiniTwit::new(store);
//! let alice = twit.register(Registration::parse("alice", "a@example.com", "pw", None)?).await?;
//! twit.post(&alice, MessageText::parse("hello")?).await?;
//! let page = twit.timeline(Timeline::Public, None, PageSize::WEB).await?;
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

pub use cache::{CachedStore, PageMemo, PublicPageMemo, UserPageMemo};
pub use consistency::ReadToken;
pub use domain::{Email, MessageText, PageSize, Password, Registration, Username, ValidationError};
pub use idempotency::{IdempotencyKey, Keyed, Outcome, Receipt, ReceiptKey, Write};
pub use layer::{Operation, StoreLayer};
pub use model::{
    Counts, Cursor, Follow, ImportBatch, Message, MessageFilter, MessageId, NewMessage, NewUser,
    Page, Timeline, TimelineEntry, User, UserId,
};
pub use password_hash::{HashCost, HashError, HashPool, Hasher};
pub use rate_limit::{RateTable, Throttle};
pub use service::{LatestRecorded, MiniTwit, ServiceError, ServiceResult, unix_now};
pub use store::{DurableWait, IMPORT_MARK, Store, StoreError, StoreResult, already_durable};
