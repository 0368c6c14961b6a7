//! The simulator's `latest`, written beside the request that carries it. A front end
//! records `latest` first and waits for it last (`Store::begin_set_latest`); written
//! there and then, its commit and the request's own waited for two flushes, one after
//! the other. Begun here, the value is written by a task of its own while the request
//! does its work, so the two commits can share a flush.
//!
//! One writer task at a time per process writes the newest value asked for, then again
//! if more were asked meanwhile, so concurrent requests share writes (as the core's
//! coalescing did when the write was made in place). What holds:
//! - the value stored last is the newest one asked for;
//! - a request is answered once a write covering its value (its own, or one of a value
//!   asked for after it) is durable, or with the error of the write that covered it;
//! - a read of `latest` in this process waits for the values asked for before it, so it
//!   sees them (other processes see a value once its request is acknowledged).

use minitwit_core::store::{DurableWait, StoreError, StoreResult};
use sqlx::PgPool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// The writes of `latest` of one store (shared by its clones).
pub(crate) struct LatestWrites {
    asked: Mutex<Asked>,
    /// The last write's outcome: the number of values it covers, and its result.
    written: watch::Sender<(u64, StoreResult<()>)>,
}

/// The values asked for so far.
#[derive(Default)]
struct Asked {
    /// How many, and the newest.
    count: u64,
    newest: i64,
    /// Whether the writer task is running (it ends once it has written them all).
    writing: bool,
}

impl Default for LatestWrites {
    fn default() -> Self {
        Self { asked: Mutex::default(), written: watch::Sender::new((0, Ok(()))) }
    }
}

impl LatestWrites {
    fn asked(&self) -> MutexGuard<'_, Asked> {
        // Plain fields, each updated in one step: a poisoned lock is still consistent.
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for `latest` to be written (starting the writer task if it is idle); the
    /// wait for a write covering it to be durable.
    pub(crate) fn begin(self: &Arc<Self>, pool: &PgPool, latest: i64) -> DurableWait {
        let mine = {
            let mut asked = self.asked();
            asked.count += 1;
            asked.newest = latest;
            if !asked.writing {
                asked.writing = true;
                tokio::spawn(Arc::clone(self).write_all(pool.clone()));
            }
            asked.count
        };
        let this = Arc::clone(self);
        Box::pin(async move { this.covered(mine).await })
    }

    /// Waits for every value asked for so far to be written (whatever the outcome:
    /// that is their requests' concern).
    pub(crate) async fn settled(&self) {
        let asked = self.asked().count;
        let _ = self.covered(asked).await;
    }

    /// The outcome of the first write seen that covers value number `number`.
    async fn covered(&self, number: u64) -> StoreResult<()> {
        let mut written = self.written.subscribe();
        let outcome = written.wait_for(|(covers, _)| *covers >= number).await;
        match outcome {
            Ok(outcome) => outcome.1.clone(),
            Err(_) => Err(StoreError::Backend("the writer of latest stopped".to_owned())),
        }
    }

    /// The writer task: writes the newest value asked for until none is left unwritten.
    async fn write_all(self: Arc<Self>, pool: PgPool) {
        loop {
            let (count, newest) = {
                let mut asked = self.asked();
                if asked.count == self.written.borrow().0 {
                    asked.writing = false;
                    return;
                }
                (asked.count, asked.newest)
            };
            let result = crate::state::set_latest(&pool, newest).await;
            self.written.send_modify(|written| *written = (count, result));
        }
    }
}
