//! Group commit: one thread makes durable, at once, the writes of every writer waiting at
//! that moment.
//!
//! A writer commits its transaction (staged, in a durable store), then takes a
//! [`Ticket`] (a number larger than any handed out before) and waits. The flusher thread repeatedly notes the highest ticket
//! issued so far, flushes, and announces that every ticket up to that number is durable.
//! A deferred ticket does not wake the flusher: the next flush covers it, and its wait
//! asks for one only if no flush has by then.
//! Writers that arrive during a flush ride on the next one, so N concurrent writers cost
//! about two flushes, not N. Waiting is async (a tokio watch channel); only the flusher
//! thread blocks on I/O.
//!
//! A flush of a durable store has two steps:
//! 1. the writes staged since the last flush are written to the redo log, then applied
//!    to sled, together, as one group (see `staging` and `redo`), under the store's
//!    write lock: the staged writes are the writers'. Queued on the store's own lock, an
//!    async one, writers wait without a thread, and readers not at all;
//! 2. `fdatasync` of the redo log, without the lock, so writers commit their changes
//!    while the disk syncs and form the next group. sled itself is written out only at
//!    the log's checkpoints. The sync runs on a thread of its own ([`RedoSync`]), begun
//!    as soon as the group is in the log, so that it overlaps the group's apply: a round
//!    takes the longer of the two, not their sum.
//!
//! A relaxed store's flush (its last, when it closes) is `Db::flush` under the write lock
//! (sled's flush holds sled's global read lock while a transaction needs its write lock,
//! so a writer queued there would block a thread), then `fdatasync` of sled's log file
//! (`db`): on Linux sled 0.34 ends its flush with `sync_file_range`, which neither flushes
//! the drive's cache nor records the file's new size.
//!
//! Values above 128 KiB go to sled's `blobs/` files, which are not synced; MiniTwit's
//! records are far smaller.
//!
//! Fail-stop: once a flush fails, nothing is announced durable again ("fsyncgate": after
//! a failed `fdatasync` the kernel may have dropped the dirty pages, so a later sync that
//! succeeds proves nothing). Every writer whose ticket the failed flush (or any later one)
//! would have covered learns the failure, the store refuses new writes and reports itself
//! not ready, and the reason is logged once. A flusher thread that dies (a panic) leaves
//! the same state behind, so nobody waits on it forever.
//!
//! With the `fault-injection` feature (tests only), `MINITWIT_FAULT_FAIL_SYNC=N` makes
//! the Nth flush of a store fail before it writes anything out (so a `kill -9` after it
//! loses what it would have covered), and `MINITWIT_FAULT_PANIC_SYNC=N` makes the flusher
//! thread panic there instead.

use minitwit_core::store::{StoreError, StoreResult};
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Serialises the store's writers, and keeps them out while sled writes its buffers out.
/// Async, so that a writer queued behind a flush waits without holding a thread: writers
/// apply their changes on the runtime's own threads.
pub(crate) type WriteLock = Arc<tokio::sync::Mutex<()>>;

/// A writer's place in the flush order: its write is durable once a flush covering this
/// number has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// What has been made durable so far. Only ever moves forward: `up_to` grows until the
/// first failure, after which `failed` is set for good.
#[derive(Debug, Clone, Default)]
struct Durable {
    /// Every ticket up to this one is on disk.
    up_to: u64,
    /// Why flushing stopped (a failed sync, or the flusher thread died), if it did.
    failed: Option<String>,
}

/// What writers ask of the flusher thread.
#[derive(Debug, Default)]
struct Requests {
    /// The highest ticket handed out.
    issued: u64,
    /// The highest ticket somebody waits for: the flusher sleeps until it is above what
    /// was flushed, then flushes every ticket issued.
    wanted: u64,
    /// Set when the store closes: flush what is pending, then end.
    stop: bool,
    /// Whether the flusher thread waits for a request: only then does a request need to
    /// wake it (a wake is a system call; a busy flusher checks `wanted` before it waits).
    sleeping: bool,
}

impl Requests {
    /// Asks for every ticket up to `ticket` to be flushed; wakes the flusher if it waits.
    fn want(&mut self, ticket: u64, wake: &Condvar) {
        self.wanted = self.wanted.max(ticket);
        if self.sleeping {
            wake.notify_one();
        }
    }
}

/// State shared by writers and the flusher thread.
struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    done: watch::Sender<Durable>,
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
            done: watch::Sender::new(Durable::default()),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || run(&worker, &disk))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Takes a ticket for writes applied before this call, and wakes the flusher.
    pub(crate) fn ticket(&self) -> Ticket {
        let mut requests = self.shared.requests();
        requests.issued += 1;
        let ticket = requests.issued;
        requests.want(ticket, &self.shared.wake);
        Ticket(ticket)
    }

    /// Takes a ticket without waking the flusher: the next flush anybody asks for covers
    /// it, and [`Flusher::wait`] asks for one if none has by then. A request's `latest`
    /// takes one of these, so that its own write's flush covers both.
    pub(crate) fn deferred_ticket(&self) -> Ticket {
        let mut requests = self.shared.requests();
        requests.issued += 1;
        Ticket(requests.issued)
    }

    /// Waits until a flush has covered `ticket`, or flushing has stopped before it did.
    pub(crate) async fn wait(&self, ticket: Ticket) -> StoreResult<()> {
        if self.shared.done.borrow().up_to < ticket.0 {
            let mut requests = self.shared.requests();
            if requests.wanted < ticket.0 {
                requests.want(ticket.0, &self.shared.wake);
            }
        }
        let mut rounds = self.shared.done.subscribe();
        let durable = rounds
            .wait_for(|durable| durable.up_to >= ticket.0 || durable.failed.is_some())
            .await
            .map_err(|_| stopped("the sled flusher has stopped"))?;
        if durable.up_to >= ticket.0 { Ok(()) } else { Err(stopped_by(&durable)) }
    }

    /// `Ok` while writes can still be made durable; the reason once they cannot.
    pub(crate) fn healthy(&self) -> StoreResult<()> {
        let durable = self.shared.done.borrow();
        if durable.failed.is_some() { Err(stopped_by(&durable)) } else { Ok(()) }
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

/// The store's answer once flushing has stopped: unavailable (503), with the reason.
fn stopped_by(durable: &Durable) -> StoreError {
    stopped(durable.failed.as_deref().unwrap_or("the sled flusher has stopped"))
}

fn stopped(reason: &str) -> StoreError {
    StoreError::Unavailable(format!("writes are refused: {reason}"))
}

/// The flusher thread: flush whenever tickets are pending; end when asked and idle, or
/// at the first failure (fail-stop).
fn run(shared: &Shared, disk: &Disk) {
    let _dies_loudly = DeathNotice(shared);
    let mut flushed = 0;
    while let Some(target) = next_target(shared, flushed) {
        if let Err(error) = disk.flush() {
            tracing::error!(%error, "sled flush failed: the store refuses writes from now on");
            shared
                .done
                .send_modify(|durable| durable.failed = Some(format!("flush failed: {error}")));
            return;
        }
        flushed = target;
        shared.done.send_modify(|durable| durable.up_to = target);
    }
}

/// Marks flushing as stopped when the flusher thread ends for any reason, a panic
/// included, so that waiters never wait on a dead thread.
struct DeathNotice<'a>(&'a Shared);

impl Drop for DeathNotice<'_> {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            tracing::error!("the sled flusher thread died: the store refuses writes from now on");
        }
        self.0.done.send_modify(|durable| {
            if durable.failed.is_none() {
                let reason =
                    if panicking { "the flusher thread died" } else { "the store is closed" };
                durable.failed = Some(reason.to_owned());
            }
        });
    }
}

/// What the flusher makes durable.
pub(crate) struct Disk {
    /// The database whose log buffers are written (a relaxed store).
    pub(crate) db: sled::Db,
    /// sled's log file, synced after each write-out (a relaxed store).
    pub(crate) log_file: File,
    /// The redo log, synced after each group is written to it (a durable store).
    pub(crate) redo: Option<RedoSync>,
    /// The trees, whose staged writes each flush applies first (see `staging`).
    pub(crate) trees: crate::trees::Trees,
    /// Tests only: the sync that fails on purpose.
    #[cfg(feature = "fault-injection")]
    pub(crate) fault: fault::SyncFault,
    /// The store's write lock, held while sled writes its buffers out.
    pub(crate) write_lock: WriteLock,
}

impl Disk {
    /// Logs and applies the writes staged so far and syncs the log to the drive (a
    /// relaxed store: writes out everything applied and syncs it).
    fn flush(&self) -> Result<(), String> {
        #[cfg(feature = "fault-injection")]
        self.fault.strike()?;
        let writers_wait = self.write_lock.blocking_lock();
        let Some(redo) = &self.redo else {
            self.db.flush().map_err(|e| e.to_string())?;
            drop(writers_wait);
            return self.log_file.sync_data().map_err(|e| format!("syncing the log file: {e}"));
        };
        let mut syncing = false;
        let settled = self.trees.settle_then(|| syncing = redo.begin());
        drop(writers_wait);
        let synced = if syncing { redo.finish() } else { redo.file.sync_data() };
        settled.map_err(|e| format!("logging the staged writes: {e}"))?;
        synced.map_err(|e| format!("syncing the redo log: {e}"))
    }
}

/// The redo log's `fdatasync`, on a thread of its own, begun as soon as a group is
/// written to the log: it runs while the flusher applies that group to sled, so a round
/// takes the longer of the two rather than their sum.
pub(crate) struct RedoSync {
    /// The log file.
    file: File,
    /// Asks the thread for one sync; `None` once the store closes.
    begin: Option<mpsc::SyncSender<()>>,
    /// Each sync's outcome, in order.
    done: mpsc::Receiver<std::io::Result<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RedoSync {
    /// Starts the sync thread for the redo log `file`.
    pub(crate) fn start(file: File) -> std::io::Result<Self> {
        let (begin, asked) = mpsc::sync_channel::<()>(1);
        let (answer, done) = mpsc::sync_channel(1);
        let log = file.try_clone()?;
        let thread =
            std::thread::Builder::new().name("sled-redo-sync".into()).spawn(move || {
                for () in asked {
                    if answer.send(log.sync_data()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self { file, begin: Some(begin), done, thread: Some(thread) })
    }

    /// Begins a sync of everything written to the log so far; `false` if the thread is
    /// gone (the caller then syncs itself).
    fn begin(&self) -> bool {
        self.begin.as_ref().is_some_and(|begin| begin.send(()).is_ok())
    }

    /// Waits for the sync begun last.
    fn finish(&self) -> std::io::Result<()> {
        self.done
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the redo log's sync thread died")))
    }
}

impl Drop for RedoSync {
    fn drop(&mut self) {
        self.begin = None;
        if let Some(thread) = self.thread.take() {
            // The thread only syncs; a panic there has been reported already.
            let _ = thread.join();
        }
    }
}

/// The sync-failure seam, compiled only with the `fault-injection` feature (tests).
#[cfg(feature = "fault-injection")]
pub(crate) mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts syncs; fails the one numbered by `MINITWIT_FAULT_FAIL_SYNC` and panics at
    /// the one numbered by `MINITWIT_FAULT_PANIC_SYNC`.
    #[derive(Debug, Default)]
    pub(crate) struct SyncFault {
        fail_at: Option<u64>,
        panic_at: Option<u64>,
        syncs: AtomicU64,
    }

    fn number(name: &str) -> Option<u64> {
        std::env::var(name).ok().and_then(|n| n.parse().ok())
    }

    impl SyncFault {
        /// Reads the variables (absent or unparsable: no fault).
        pub(crate) fn from_env() -> Self {
            Self {
                fail_at: number("MINITWIT_FAULT_FAIL_SYNC"),
                panic_at: number("MINITWIT_FAULT_PANIC_SYNC"),
                syncs: AtomicU64::new(0),
            }
        }

        /// Counts a sync; the injected error (or panic) when it is the one to fail.
        pub(crate) fn strike(&self) -> Result<(), String> {
            let number = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
            assert_ne!(Some(number), self.panic_at, "injected flusher panic (fault-injection)");
            if Some(number) == self.fail_at {
                return Err("injected sync failure (fault-injection)".to_owned());
            }
            Ok(())
        }
    }
}

/// Blocks until somebody wants a ticket above `flushed` and returns the highest issued;
/// `None` once stopping with nothing pending.
fn next_target(shared: &Shared, flushed: u64) -> Option<u64> {
    let mut requests = shared.requests();
    while requests.wanted <= flushed && !requests.stop {
        requests.sleeping = true;
        requests = shared.wake.wait(requests).unwrap_or_else(PoisonError::into_inner);
        requests.sleeping = false;
    }
    (requests.issued > flushed).then_some(requests.issued)
}

#[cfg(test)]
mod tests {
    use crate::{SledOptions, SledStore};
    use minitwit_core::Store as _;

    fn store(dir: &tempfile::TempDir) -> SledStore {
        SledStore::open(dir.path().join("db"), SledOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn a_write_wakes_the_flusher_when_it_sleeps() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let shared = &store.inner.flusher.shared;
        while !shared.requests().sleeping {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let written = store.init_setting("key", b"value");
        let woken = tokio::time::timeout(std::time::Duration::from_secs(60), written).await;
        woken.expect("the sleeping flusher was never woken").unwrap();
    }

    #[tokio::test]
    async fn a_deferred_ticket_rides_on_the_next_flush_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let flusher = &store.inner.flusher;
        let deferred = flusher.deferred_ticket();
        let durable = || flusher.shared.done.borrow().up_to;
        assert!(durable() < deferred.0, "a deferred ticket starts no flush");
        store.init_setting("key", b"value").await.unwrap();
        assert!(durable() >= deferred.0, "the write's flush covered the deferred ticket");
    }

    #[tokio::test]
    async fn waiting_on_a_deferred_ticket_alone_asks_for_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let ticket = store.inner.flusher.deferred_ticket();
        store.inner.flusher.wait(ticket).await.unwrap();
    }
}
