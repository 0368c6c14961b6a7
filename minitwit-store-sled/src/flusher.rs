//! Group commit: one thread flushes sled's log for every writer waiting at that moment.
//!
//! A writer applies its transaction, then takes a [`Ticket`] (a number larger than any
//! handed out before) and waits. The flusher thread repeatedly notes the highest ticket
//! issued so far, flushes, and announces that every ticket up to that number is durable.
//! Writers that arrive during a flush ride on the next one, so N concurrent writers cost
//! about two flushes, not N. Waiting is async (a tokio watch channel); only the flusher
//! thread blocks on I/O.
//!
//! A flush has two steps:
//! 1. `Db::flush` writes sled's log buffers to the file. On Linux sled 0.34 ends this
//!    with `sync_file_range`, which survives a killed process but not a power cut: it
//!    neither flushes the drive's cache nor records the file's new size.
//! 2. so the flusher then calls `fdatasync` on sled's log file (`db`), which does both.
//!
//! During step 1 the flusher holds the store's write lock: sled's flush holds sled's
//! global read lock and a transaction needs its write lock, so a writer queued there
//! would make every reader queue behind it. Queued on the store's own lock, writers wait
//! just as long and readers not at all. Step 2 runs without the lock, so writers apply
//! their changes while the disk syncs and form the next group.
//!
//! Values above 128 KiB go to sled's `blobs/` files, which are not synced; MiniTwit's
//! records are far smaller.

use minitwit_core::{StoreError, StoreResult};
use std::fs::File;
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

/// The group-commit flusher of one store; stops, after a last flush, when dropped.
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flusher thread for `disk`.
    pub(crate) fn start(disk: Disk) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            requests: Mutex::default(),
            wake: Condvar::new(),
            done: watch::Sender::new(Round::default()),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || run(&worker, &disk))?;
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
    /// Closing makes everything durable: one last flush (for a relaxed store too), then
    /// the thread ends.
    fn drop(&mut self) {
        let _last = self.ticket();
        self.shared.requests().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic in the flusher thread has already been reported; nothing to add.
            let _ = thread.join();
        }
    }
}

/// The flusher thread: flush whenever tickets are pending; end when asked and idle.
fn run(shared: &Shared, disk: &Disk) {
    let mut flushed = 0;
    while let Some(target) = next_target(shared, flushed) {
        let error = disk.flush().err();
        flushed = target;
        shared.done.send_replace(Round { up_to: target, error });
    }
}

/// What the flusher makes durable.
pub(crate) struct Disk {
    /// The database whose log buffers are written.
    pub(crate) db: sled::Db,
    /// sled's log file, synced after each write-out.
    pub(crate) log_file: File,
    /// The store's write lock, held while sled writes its buffers out.
    pub(crate) write_lock: Arc<Mutex<()>>,
}

impl Disk {
    /// Writes out everything applied so far and syncs it to the drive.
    fn flush(&self) -> Result<(), String> {
        {
            // Like the writers' use of it, the lock guards no data: poison is harmless.
            let _writers_wait = self.write_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.db.flush().map_err(|e| e.to_string())?;
        }
        self.log_file.sync_data().map_err(|e| format!("syncing the log file: {e}"))
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
