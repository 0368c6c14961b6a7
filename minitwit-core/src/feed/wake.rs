//! Waking a process's readers in small batches. Every event wakes every reader of the
//! process; woken all at once, a thousand readers queue a thousand task runs (and as
//! many socket writes) ahead of whatever request arrives next, and that request waits
//! for the whole burst. [`Wakers::wake_all`] wakes a batch, then lets the runtime poll
//! its sockets and run what is queued before waking the next batch, so a request waits
//! behind one batch at most.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use tokio::sync::Notify;

/// Readers woken before the waking task yields its thread to the other work queued.
const BATCH: usize = 32;

/// The readers of one process, each by the [`Notify`] it waits on.
#[derive(Debug, Default)]
pub(super) struct Wakers {
    readers: Mutex<Vec<Weak<Notify>>>,
    closed: AtomicBool,
}

impl Wakers {
    /// A new reader's wake-up; it stops counting when the reader drops it.
    pub(super) fn register(&self) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.lock().push(Arc::downgrade(&notify));
        notify
    }

    /// Wakes every reader, a batch at a time (a reader woken while awake finds the
    /// wake-up waiting, so none is lost).
    pub(super) async fn wake_all(&self) {
        let readers = self.live();
        for batch in readers.chunks(BATCH) {
            batch.iter().for_each(|reader| reader.notify_one());
            tokio::task::yield_now().await;
        }
    }

    /// Marks the feed closed and wakes every reader at once, to find it so.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.live().iter().for_each(|reader| reader.notify_one());
    }

    /// Whether the feed closed: a woken reader with nothing to read ends.
    pub(super) fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The readers still there; the others are forgotten.
    fn live(&self) -> Vec<Arc<Notify>> {
        let mut readers = self.lock();
        readers.retain(|reader| reader.strong_count() > 0);
        readers.iter().filter_map(Weak::upgrade).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Notify>>> {
        // A list of handles: a poisoned lock still holds a good one.
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_reader_is_woken_and_dropped_readers_are_forgotten() {
        let wakers = Wakers::default();
        let readers: Vec<_> = (0..BATCH * 3 + 1).map(|_| wakers.register()).collect();
        let gone = wakers.register();
        drop(gone);
        wakers.wake_all().await;
        for reader in &readers {
            // A wake-up given while not waiting is kept for the next wait.
            tokio::time::timeout(std::time::Duration::from_secs(5), reader.notified())
                .await
                .expect("woken");
        }
        assert_eq!(wakers.live().len(), readers.len());
        assert!(!wakers.closed());
        wakers.close();
        assert!(wakers.closed());
    }
}
