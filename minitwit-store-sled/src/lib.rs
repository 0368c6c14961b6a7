//! MiniTwit's embedded default store: [`SledStore`] implements
//! [`minitwit_core::Store`] on sled 0.34.
//!
//! - **Durable by default**: an operation returns only after its write is logged and
//!   synced to the drive (`fdatasync` of the store's redo log, `redo.log`); concurrent
//!   writers share syncs (group commit) so throughput holds. [`Durability::Relaxed`]
//!   acknowledges before the sync.
//! - **Indexed timelines**: the first page of any timeline costs O(log n + page) (home:
//!   about O(k log n + page) for k followees); nothing scans all messages. The index
//!   entries carry the message record and authors' names come from an in-process cache,
//!   so a page reads no record beyond its index scans once its authors are known.
//! - **Compact records**: users and messages in a fixed binary layout; JSON records of
//!   stores written before format 2 are still read.
//! - **Atomic**: every operation is one transaction over all trees it touches; one
//!   writer at a time (writes are short and in memory, the flush is shared). A durable
//!   store applies the transactions of each flush together, as one group that a crash
//!   never leaves in part (see `staging`).
//! - **One process per directory**: a second process gets [`OpenError::Locked`].
//!
//! Layout:
//! - `open`: [`SledOptions`], [`Durability`], [`OpenError`], the directory lock and the
//!   format-version check ([`FORMAT_VERSION`]).
//! - `trees`: the trees, what each maps, and the whole-store transaction.
//! - `keys`: order-preserving integer keys.
//! - `records`: the binary layout of user and message records (and the JSON of format 1).
//! - `authors`: the cache of authors' names and emails, forgotten when a user is deleted.
//! - `flusher`: the group-commit flusher thread.
//! - `staging`: a durable store's transactions staged and applied a flush at a time.
//! - `redo`: the redo log each such group is written to before it is applied, and
//!   recovery from it.
//! - `home`: home timelines kept on write, in memory.
//! - `users`, `messages`, `follows`, `timeline`, `import`, `state`: the operations,
//!   synchronous, mirroring the PostgreSQL store's modules of the same names.
//! - `receipts`: keyed writes applied once, with their receipts.
//! - `store`: the async [`Store`](minitwit_core::Store) implementation: reads and short
//!   writes inline, scans and batches on the blocking pool.
//! - `integrity`: [`IntegrityReport`] and the whole-store check.
//! - `testkit` (feature `testkit`): a fresh store in a temporary directory.
//!
//! # Getting started
//!
//! MiniTwit embedded in another program: the core service over this store. In
//! `Cargo.toml`, `minitwit-core` and `minitwit-store-sled` (by path or git), and `tokio`
//! with `rt-multi-thread` and `macros`: the service runs on a Tokio 1.x runtime. Hashing
//! passwords is slow unoptimised; in a debug build, add the profile override below
//! (see `minitwit_core::MiniTwit`).
//!
//! ```toml
//! [profile.dev.package.argon2]
//! opt-level = 3
//! ```
//!
//! ```
//! use minitwit_core::{MessageText, MiniTwit, PageSize, Registration, ServiceError, Timeline};
//! use minitwit_store_sled::{SledOptions, SledStore};
//! use std::sync::Arc;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     # let dir = tempfile::tempdir()?;
//!     # let path = dir.path().join("minitwit-data");
//!     # /*
//!     let path = "./minitwit-data";
//!     # */
//!     // One process at a time may open a directory; the store closes when dropped.
//!     let store = SledStore::open(&path, SledOptions::default())?;
//!     let twit = MiniTwit::new(Arc::new(store));
//!     let alice = twit.register(Registration::parse("alice", "a@example.com", "pw", None)?).await?;
//!     let bob = twit.register(Registration::parse("bob", "b@example.com", "pw", None)?).await?;
//!     twit.follow(alice.id, bob.id).await?;
//!     twit.post(&bob, MessageText::parse("hello, alice")?).await?;
//!     let home = twit.timeline(Timeline::Home(alice.id), None, PageSize::PER_PAGE).await?;
//!     assert_eq!(home.entries[0].text, "hello, alice");
//!     // Refusals are values, each with its HTTP status and the contract's text.
//!     let taken = twit.register(Registration::parse("bob", "c@example.com", "pw", None)?).await;
//!     assert_eq!(taken.unwrap_err(), ServiceError::UsernameTaken);
//!     twit.close().await?;
//!     Ok(())
//! }
//! ```
//!
//! `examples/embed_sled.rs` is the same as a program (`cargo run -p minitwit-store-sled
//! --example embed_sled`).

#![deny(rustdoc::broken_intra_doc_links)]

mod authors;
mod feed;
mod flusher;
mod follows;
mod home;
mod import;
mod integrity;
mod keys;
mod messages;
mod open;
mod receipts;
mod records;
mod redo;
mod staging;
mod state;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod timeline;
mod trees;
mod users;

pub use integrity::IntegrityReport;
pub use open::{Durability, FORMAT_VERSION, OpenError, SledOptions};

use flusher::{Flusher, WriteLock};
use minitwit_core::store::{DurableWait, StoreError, StoreResult};
use std::path::Path;
use std::sync::Arc;
use trees::Trees;

/// A MiniTwit store in a sled directory. Cheap to share behind an `Arc`; closes (after
/// a last flush) when the last handle is dropped.
pub struct SledStore {
    inner: Arc<Inner>,
}

/// The open store, shared with the blocking tasks that run operations.
struct Inner {
    trees: Trees,
    /// Serialises writers: each write (a short in-memory transaction, plus any scans
    /// it needs, which sled transactions cannot hold) sees a store no one else changes.
    /// The group-commit flusher takes it too, while it flushes.
    write_lock: WriteLock,
    durability: Durability,
    /// Declared before `_lock`: dropping it runs the last flush first.
    flusher: Flusher,
    /// The change feed's delivery in this process.
    feed: minitwit_core::feed::Hub,
    /// The directory lock, released when the store closes.
    _lock: std::fs::File,
}

impl SledStore {
    /// Opens (creating if needed) the store in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: SledOptions) -> Result<Self, OpenError> {
        let opened = open::open(path.as_ref(), options)?;
        let inner = Inner {
            trees: opened.trees,
            write_lock: opened.write_lock,
            durability: options.durability,
            flusher: opened.flusher,
            feed: feed::hub(),
            _lock: opened.lock,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The durability this store was opened with.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Checks that every index entry points at a record and every record is indexed,
    /// and that the counters equal the records. Reads the whole store; run it when the
    /// store is quiet.
    pub async fn check_integrity(&self) -> StoreResult<IntegrityReport> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.trees.check_integrity()).await?
    }

    /// Runs a read right here, on the calling task's thread. sled answers reads from its
    /// page cache (or the kernel's) in microseconds and never takes a lock a writer holds
    /// for long, so handing them to the blocking pool and back would cost more than the
    /// read itself (BENCHMARKS.md has the measurement).
    async fn read<T>(&self, op: impl FnOnce(&Trees) -> StoreResult<T>) -> StoreResult<T> {
        op(&self.inner.trees)
    }

    /// Makes a single-key write right here (staged with the next group in a durable
    /// store, applied at once in a relaxed one) and returns the wait for its durability:
    /// the shared flush of the caller's next durable write covers it (its ticket is
    /// deferred: it wakes the flusher only when waited for). It needs no transaction, so
    /// no write lock either. Refused (503) once a flush has failed.
    fn unsynced_write(
        &self,
        op: impl FnOnce(&Trees) -> StoreResult<()>,
    ) -> StoreResult<DurableWait> {
        self.inner.flusher.healthy()?;
        op(&self.inner.trees)?;
        if self.inner.durability == Durability::Relaxed {
            return Ok(minitwit_core::store::already_durable());
        }
        let (inner, ticket) = (Arc::clone(&self.inner), self.inner.flusher.deferred_ticket());
        Ok(Box::pin(async move { inner.flusher.wait(ticket).await }))
    }

    /// Runs a short write (one transaction over a few keys, in memory) right here under
    /// the write lock, which it awaits; when durable, returns only after a flush covering
    /// it. Handing it to the blocking pool and back would cost more thread switches than
    /// the transaction takes (BENCHMARKS.md has the measurement). Refused (503) once a flush has failed.
    async fn write<T>(&self, op: impl FnOnce(&Trees) -> StoreResult<T>) -> StoreResult<T> {
        self.inner.flusher.healthy()?;
        let result = {
            let _writer = self.inner.write_lock.lock().await;
            op(&self.inner.trees)
        };
        self.durable(result).await
    }

    /// [`SledStore::write`] on the blocking pool, for writes that scan or batch (deleting
    /// a user's messages, imports) and would hold a runtime thread too long.
    async fn long_write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Trees) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.inner.flusher.healthy()?;
        let inner = Arc::clone(&self.inner);
        let result = blocking(move || {
            let _writer = inner.write_lock.blocking_lock();
            // Its scans must see every write before it, and the writes after it must
            // not see its own only in part (see `staging`).
            inner.trees.settle()?;
            let result = op(&inner.trees);
            inner.trees.settle()?;
            result
        })
        .await?;
        self.durable(result).await
    }

    /// `result` of a write applied just now, once a flush covers it (at once when relaxed).
    async fn durable<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if self.inner.durability == Durability::Durable {
            self.inner.flusher.wait(self.inner.flusher.ticket()).await?;
        }
        result
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("a sled task failed: {e}")))
}
