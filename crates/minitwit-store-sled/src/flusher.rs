//! Group commit: one thread flushes sled's log for every writer waiting at that moment.
//!
//! A writer applies its transaction, then takes a [`Ticket`] (a number larger than any
//! handed out before) and waits. The flusher thread repeatedly notes the highest ticket
//! issued so far, calls `Db::flush` (write + fsync), and announces that every ticket up
//! to that number is durable. Writers that arrive during a flush ride on the next one, so
//! N concurrent writers cost about two flushes, not N. Waiting is async (a tokio watch
//! channel); only the flusher thread blocks on I/O.
//!
//! The flusher holds the store's write lock while it flushes. sled's flush holds sled's
//! global read lock for the whole fsync and a transaction needs its write lock; a writer
//! queued there would make every reader queue behind it too. Queued on the store's own
//! lock instead, writers wait for the flush just as long, but readers do not wait at all.

use minitwit_core::{StoreError, StoreResult};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// A writer's place in the flush order: its write is durable once a flush covering this
/// number has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// The outcome of the latest flush.
#[derive(Debug, Clone, Default)]
struct Round {
    /// Every ticket up to this one is covered.
    up_to: u64,
    /// Why the flush failed, if it did.
    error: Option<String>,
}

/// What writers ask of the flusher thread.
#[derive(Debug, Default)]
struct Requests {
    /// The highest ticket handed out.
    issued: u64,
    /// Set when the store closes: flush what is pending, then end.
    stop: bool,
}

/// State shared by writers and the flusher thread.
struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    done: watch::Sender<Round>,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Requests> {
        // The lock guards two plain fields that are never left half-updated.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The group-commit flusher of one store; stops (after a last flush) when dropped.
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flusher thread for `db`, which flushes while holding `write_lock`.
    pub(crate) fn start(db: sled::Db, write_lock: Arc<Mutex<()>>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            requests: Mutex::default(),
            wake: Condvar::new(),
            done: watch::Sender::new(Round::default()),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || run(&worker, &db, &write_lock))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Takes a ticket for writes applied before this call.
    pub(crate) fn ticket(&self) -> Ticket {
        let mut requests = self.shared.requests();
        requests.issued += 1;
        self.shared.wake.notify_one();
        Ticket(requests.issued)
    }

    /// Waits until a flush has covered `ticket`.
    pub(crate) async fn wait(&self, ticket: Ticket) -> StoreResult<()> {
        let mut rounds = self.shared.done.subscribe();
        let round = rounds
            .wait_for(|round| round.up_to >= ticket.0)
            .await
            .map_err(|_| StoreError::Backend("the sled flusher has stopped".into()))?;
        match &round.error {
            None => Ok(()),
            Some(error) => Err(StoreError::Backend(format!("flushing sled: {error}"))),
        }
    }

    /// Makes everything written so far durable.
    pub(crate) async fn flush_all(&self) -> StoreResult<()> {
        self.wait(self.ticket()).await
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.requests().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic in the flusher thread has already been reported; nothing to add.
            let _ = thread.join();
        }
    }
}

/// The flusher thread: flush whenever tickets are pending; end when asked and idle.
fn run(shared: &Shared, db: &sled::Db, write_lock: &Mutex<()>) {
    let mut flushed = 0;
    while let Some(target) = next_target(shared, flushed) {
        let error = {
            // Like the writers' use of it, the lock guards no data: poison is harmless.
            let _writers_wait = write_lock.lock().unwrap_or_else(PoisonError::into_inner);
            db.flush().err().map(|e| e.to_string())
        };
        flushed = target;
        shared.done.send_replace(Round { up_to: target, error });
    }
}

/// Blocks until some ticket above `flushed` is issued and returns the highest; `None`
/// once stopping with nothing pending.
fn next_target(shared: &Shared, flushed: u64) -> Option<u64> {
    let mut requests = shared.requests();
    while requests.issued == flushed && !requests.stop {
        requests = shared.wake.wait(requests).unwrap_or_else(PoisonError::into_inner);
    }
    (requests.issued > flushed).then_some(requests.issued)
}
