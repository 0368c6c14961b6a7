//! [`Coalescer`]: identical reads made at the same time share one statement, and every
//! reader still gets an answer read after it arrived.
//!
//! Under load many requests ask the same question at once (`latest`, the first page of
//! the public timeline, one user's timeline). Each key has at most one statement in
//! flight. A reader arriving while none runs starts one; a reader arriving while one
//! runs does not take that statement's answer (it may have read the database before the
//! reader's last write was acknowledged) but waits for it to finish, and then the first
//! such waiter runs one more statement whose answer all of them share. So an answer is
//! always read by a statement that started after the reader arrived: it reflects every
//! write acknowledged before the read began, in this process or any other over the same
//! database. Nothing is kept once no reader waits, so this is no cache: it never answers
//! without the database, it only lets one statement answer many readers.
//!
//! Readers of one key cost at most two statement times of latency; under load the
//! database runs at most about one statement per key per statement time instead of one
//! per reader.

use minitwit_core::store::StoreResult;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One key's statements: how many started, the one that may run, and the newest answer.
struct Slot<V> {
    /// Statements started for this key so far; each one's sequence number.
    started: AtomicU64,
    /// Held by the reader running the key's statement.
    running: tokio::sync::Mutex<()>,
    /// The newest finished statement's sequence number and answer.
    last: Mutex<Option<(u64, StoreResult<V>)>>,
}

impl<V: Clone> Slot<V> {
    fn new() -> Self {
        Self {
            started: AtomicU64::new(0),
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
        }
    }

    fn last(&self) -> MutexGuard<'_, Option<(u64, StoreResult<V>)>> {
        // The answer is replaced whole: a poisoned value is still consistent.
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The newest answer if its statement started after `arrived` statements had.
    fn answer_after(&self, arrived: u64) -> Option<StoreResult<V>> {
        match &*self.last() {
            Some((seq, answer)) if *seq > arrived => Some(answer.clone()),
            _ => None,
        }
    }
}

/// Shares statements among identical concurrent reads (see the module documentation).
pub(crate) struct Coalescer<K, V> {
    slots: Mutex<HashMap<K, Arc<Slot<V>>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self { slots: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Coalescer<K, V> {
    fn slots(&self) -> MutexGuard<'_, HashMap<K, Arc<Slot<V>>>> {
        // Slots are inserted and removed whole: a poisoned map is still consistent.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer of `read` for `key`, from a statement that started after this call.
    pub(crate) async fn read<F, Fut>(&self, key: K, read: F) -> StoreResult<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<V>>,
    {
        let slot =
            Arc::clone(self.slots().entry(key.clone()).or_insert_with(|| Arc::new(Slot::new())));
        // Released on every way out, cancellation (a dropped request) included.
        let held = Held { coalescer: self, key, slot };
        let slot = &held.slot;
        // Only statements numbered above this one started after we arrived.
        let arrived = slot.started.load(Ordering::SeqCst);
        let _running = slot.running.lock().await;
        if let Some(answer) = slot.answer_after(arrived) {
            return answer;
        }
        let seq = slot.started.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = read().await;
        *slot.last() = Some((seq, answer.clone()));
        answer
    }
}

/// A reader's hold on its key's slot; the slot is forgotten when the last one goes.
struct Held<'a, K: Hash + Eq + Clone, V: Clone> {
    coalescer: &'a Coalescer<K, V>,
    key: K,
    slot: Arc<Slot<V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Held<'_, K, V> {
    fn drop(&mut self) {
        let mut slots = self.coalescer.slots();
        // Readers take a slot only under this lock, so the count cannot rise meanwhile:
        // two references are the map's and ours.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::AtomicI64;

    /// A database of one number, whose reads take their snapshot when they start and
    /// answer when `finish` is sent.
    struct Db {
        value: AtomicI64,
        statements: AtomicU64,
    }

    impl Db {
        fn read(
            &self,
            finish: tokio::sync::oneshot::Receiver<()>,
        ) -> impl Future<Output = StoreResult<i64>> + use<'_> {
            self.statements.fetch_add(1, Ordering::SeqCst);
            let snapshot = self.value.load(Ordering::SeqCst);
            async move {
                let _ = finish.await;
                Ok(snapshot)
            }
        }
    }

    #[tokio::test]
    async fn a_reader_never_gets_an_answer_read_before_it_arrived() {
        let db = Db { value: AtomicI64::new(0), statements: AtomicU64::new(0) };
        let coalescer = Coalescer::<(), i64>::default();
        let (finish_first, first_done) = tokio::sync::oneshot::channel();
        let mut first = pin!(coalescer.read((), || db.read(first_done)));
        assert!(futures::poll!(&mut first).is_pending(), "the first statement runs");

        // A write is acknowledged while that statement runs, then two readers arrive.
        db.value.store(1, Ordering::SeqCst);
        let (finish_next, next_done) = tokio::sync::oneshot::channel();
        let mut second = pin!(coalescer.read((), || db.read(next_done)));
        let (_, unused) = tokio::sync::oneshot::channel();
        let mut third = pin!(coalescer.read((), || db.read(unused)));
        assert!(futures::poll!(&mut second).is_pending());
        assert!(futures::poll!(&mut third).is_pending());

        finish_first.send(()).expect("the first statement waits");
        assert_eq!(first.await, Ok(0), "the first reader arrived before the write");
        // The second reader runs a statement of its own, which the third shares.
        assert!(futures::poll!(&mut second).is_pending());
        finish_next.send(()).expect("the second statement waits");
        assert_eq!(second.await, Ok(1), "a reader sees the write acknowledged before it came");
        assert_eq!(third.await, Ok(1));
        assert_eq!(db.statements.load(Ordering::SeqCst), 2, "three readers, two statements");
        assert!(coalescer.slots().is_empty(), "nothing is kept once no reader waits");
    }

    #[tokio::test]
    async fn a_cancelled_reader_leaves_nothing_behind() {
        let db = Db { value: AtomicI64::new(0), statements: AtomicU64::new(0) };
        let coalescer = Coalescer::<u8, i64>::default();
        let (_finish, never) = tokio::sync::oneshot::channel();
        {
            let mut read = pin!(coalescer.read(7, || db.read(never)));
            assert!(futures::poll!(&mut read).is_pending());
        }
        assert!(coalescer.slots().is_empty(), "the slot went with its only reader");
        db.value.store(5, Ordering::SeqCst);
        let (finish, done) = tokio::sync::oneshot::channel();
        finish.send(()).expect("the receiver waits");
        assert_eq!(coalescer.read(7, || db.read(done)).await, Ok(5));
    }
}
