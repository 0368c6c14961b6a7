//! Group application: a durable store's transactions are staged, and the group-commit
//! flusher applies every write staged since its last round together, as one group, just
//! before it flushes.
//!
//! Why: sled 0.34 writes its I/O buffer out twice for every sled transaction
//! (`PageCache::pin_log` rolls the buffer before and after a transaction's batch
//! manifest), and each write-out wakes every idle thread of sled's I/O pool. Applied one
//! transaction per write, every write paid that; applied as a group of plain writes, a
//! flush writes out once for all the writes it covers. Over the simulator's scenario
//! this took sled's `sync_file_range` calls from 2.4 to 0.4 per action and doubled
//! durable posts a second (BENCHMARKS.md).
//!
//! The rules:
//! - **Writers see what is staged.** Every write runs under the store's write lock, and
//!   a transaction's reads ([`Staged::get`]) see its own writes, then those staged by
//!   earlier transactions, then sled. Writes that scan trees (deleting a user, imports,
//!   expiring receipts) apply what is staged first and their own writes at once
//!   ([`Trees::settle`]).
//! - **Readers see what is applied.** A staged write is not acknowledged until the
//!   flush that applies it, so nobody has been told of a write a reader cannot see yet.
//! - **Logged, then applied.** A group is written to the redo log before it is applied
//!   ([`Trees::settle`]); the flusher's sync of that log is what makes it durable (see
//!   `redo`), and opening the store applies what the log holds that sled does not
//!   ([`Trees::recover`]).
//! - **Effects follow their writes.** What a write changes in memory beside sled (the
//!   kept home timelines, the author cache) runs when the write is applied
//!   ([`Trees::after_apply`]), under the write lock, as before.
//! - **Atomic after a crash.** A group is applied as plain inserts and removals, which
//!   sled writes out only when its buffer fills or is flushed (a transaction, even one
//!   per group, made it write out three times per flush). Its first write records the
//!   whole group under [`APPLYING`] in `meta`, and its last removes that record. sled
//!   recovers a prefix of its writes after a crash, so a group cut short still has its
//!   record: opening the store applies it again, whole ([`Trees::finish_applying`]).
//!   A group too large for one record (above [`RECORDED_GROUP_MAX`]: an import) is one
//!   sled transaction instead. A group that fails to apply stays staged (and its record
//!   with it, so whatever part was applied is finished when the store is next opened),
//!   the flusher's round fails and the store stops acknowledging (its fail-stop):
//!   nothing staged is dropped unseen.
//!
//! A relaxed store, and a store being opened, apply each transaction at once.

use crate::redo::{Record, RedoLog, SEQ_KEY};
use crate::trees::{META, Trees, backend, corrupt};
use minitwit_core::store::StoreResult;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{IVec, Tree};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One tree's writes: each key's new value, or `None` for a removal.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<IVec>>;

/// What runs once a write is applied: its changes to what is kept in memory.
pub(crate) type Effect = Box<dyn FnOnce(&Trees) + Send>;

/// Writes staged and not yet applied, with their effects, in staging order.
pub(crate) struct Group {
    state: Mutex<GroupState>,
    /// Where each group is logged before it is applied (see `redo`).
    log: Mutex<RedoLog>,
}

#[derive(Default)]
struct GroupState {
    /// One map per tree, in `Trees::all`'s order; empty when nothing is staged.
    writes: Vec<Writes>,
    effects: Vec<Effect>,
}

impl Group {
    /// Groups logged to `log`.
    pub(crate) fn new(log: RedoLog) -> Self {
        Self { state: Mutex::default(), log: Mutex::new(log) }
    }

    fn log(&self) -> MutexGuard<'_, RedoLog> {
        // Changed only by `RedoLog`'s methods, which leave it whole when they fail.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> MutexGuard<'_, GroupState> {
        // Plain maps, each updated by one call that cannot panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The staged value of `key` in tree number `tree`: `Some(None)` when it is staged
    /// as removed, `None` when nothing is staged for it.
    fn get(&self, tree: usize, key: &[u8]) -> Option<Option<IVec>> {
        self.state().writes.get(tree)?.get(key).cloned()
    }

    /// Adds a transaction's writes (one map per tree) after those staged before.
    fn stage(&self, writes: Vec<Writes>) {
        let mut state = self.state();
        if state.writes.is_empty() {
            state.writes = writes;
            return;
        }
        for (staged, new) in state.writes.iter_mut().zip(writes) {
            staged.extend(new);
        }
    }

    fn push_effect(&self, effect: Effect) {
        self.state().effects.push(effect);
    }
}

/// The value at `key` of `tree` (number `index`) as the writes so far left it: what
/// `group` has staged for it, else what sled holds.
fn staged_or_applied(
    group: Option<&Group>,
    tree: &Tree,
    index: usize,
    key: &[u8],
) -> sled::Result<Option<IVec>> {
    match group.and_then(|group| group.get(index, key)) {
        Some(staged) => Ok(staged),
        None => tree.get(key),
    }
}

/// A tree inside a transaction: reads see its staged writes; writes are staged until
/// the transaction ends.
pub(crate) struct Staged<'a> {
    tree: &'a Tree,
    /// The tree's position in `Trees::all`.
    index: usize,
    /// Writes staged by earlier transactions, if this store groups them.
    group: Option<&'a Group>,
    writes: RefCell<Writes>,
}

impl<'a> Staged<'a> {
    /// Tree `tree`, at `index` in `Trees::all`, over what `group` holds.
    pub(crate) fn new(tree: &'a Tree, index: usize, group: Option<&'a Group>) -> Self {
        Self { tree, index, group, writes: RefCell::default() }
    }

    /// The value at `key`, as this transaction sees it.
    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        let key = key.as_ref();
        if let Some(own) = self.writes.borrow().get(key) {
            return Ok(own.clone());
        }
        staged_or_applied(self.group, self.tree, self.index, key)
    }

    /// Sets `key` to `value`, without reading what it held (see [`Staged::replace`]).
    pub(crate) fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> sled::Result<()> {
        self.stage(key.as_ref(), Some(value.into()));
        Ok(())
    }

    /// Removes `key`, without reading what it held (see [`Staged::take`]).
    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> sled::Result<()> {
        self.stage(key.as_ref(), None);
        Ok(())
    }

    /// Sets `key` to `value`; the value it had. Costs a read: a lookup in sled when
    /// nothing is staged for `key`.
    pub(crate) fn replace(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<IVec>,
    ) -> sled::Result<Option<IVec>> {
        let before = self.get(key.as_ref())?;
        self.stage(key.as_ref(), Some(value.into()));
        Ok(before)
    }

    /// Removes `key`; the value it had. Costs a read, as [`Staged::replace`] does.
    pub(crate) fn take(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        let before = self.get(key.as_ref())?;
        self.stage(key.as_ref(), None);
        Ok(before)
    }

    fn stage(&self, key: &[u8], value: Option<IVec>) {
        self.writes.borrow_mut().insert(key.to_vec(), value);
    }

    /// What the transaction wrote.
    pub(crate) fn into_writes(self) -> Writes {
        self.writes.into_inner()
    }
}

impl Trees {
    /// Ends a transaction that wrote `writes` (one map per tree): staged when this store
    /// groups its writes, applied at once otherwise.
    pub(crate) fn commit(&self, writes: Vec<Writes>) -> StoreResult<()> {
        if writes.iter().all(BTreeMap::is_empty) {
            return Ok(());
        }
        match self.group() {
            Some(group) => group.stage(writes),
            None => self.apply(&writes)?,
        }
        Ok(())
    }

    /// Runs `effect` once the writes staged so far are applied (at once when none are
    /// staged by this store).
    pub(crate) fn after_apply(&self, effect: impl FnOnce(&Trees) + Send + 'static) {
        match self.group() {
            Some(group) => group.push_effect(Box::new(effect)),
            None => effect(self),
        }
    }

    /// Writes `value` at `key` of tree number `tree`, outside any transaction and without
    /// the write lock: staged when this store groups its writes, applied at once
    /// otherwise.
    pub(crate) fn write_one(&self, tree: usize, key: &[u8], value: IVec) -> StoreResult<()> {
        match self.group() {
            Some(group) => {
                let mut writes = vec![Writes::new(); self.all().len()];
                writes[tree].insert(key.to_vec(), Some(value));
                group.stage(writes);
                Ok(())
            }
            None => self.all()[tree].insert(key, value).map(drop).map_err(backend),
        }
    }

    /// The value at `key` of tree number `tree` as the last write left it, staged or
    /// applied: for values written by [`Trees::write_one`], which are read back before
    /// they are durable.
    pub(crate) fn read_one(&self, tree: usize, key: &[u8]) -> StoreResult<Option<IVec>> {
        staged_or_applied(self.group(), &self.all()[tree], tree, key).map_err(backend)
    }

    /// Logs every staged write, as one group (see `redo`), applies it, then runs their
    /// effects; the log is synced by the caller. The caller holds the write lock. On
    /// failure everything stays staged.
    pub(crate) fn settle(&self) -> StoreResult<()> {
        self.settle_then(|| ())
    }

    /// [`Trees::settle`], calling `logged` once the group is written to the log and
    /// before it is applied, so that the caller's sync of the log can run meanwhile.
    /// `logged` is not called when nothing was staged, or when the group was made durable
    /// by a checkpoint instead.
    pub(crate) fn settle_then(&self, logged: impl FnOnce()) -> StoreResult<()> {
        let Some(group) = self.group() else { return Ok(()) };
        let mut state = group.state();
        if !state.writes.iter().all(BTreeMap::is_empty) {
            self.log_and_apply(&mut group.log(), &mut state.writes, logged)?;
        }
        state.writes.clear();
        let effects = std::mem::take(&mut state.effects);
        drop(state);
        for effect in effects {
            effect(self);
        }
        Ok(())
    }

    /// Writes `writes` to `log` as its next group, numbered in sled as well, then
    /// applies them. A group too large for the log is made durable by a checkpoint.
    fn log_and_apply(
        &self,
        log: &mut RedoLog,
        writes: &mut [Writes],
        on_logged: impl FnOnce(),
    ) -> StoreResult<()> {
        number(writes, log.next_seq());
        let record = encode(writes);
        let logged = log.append(&record)?;
        if logged {
            on_logged();
        }
        self.apply_encoded(writes, record)?;
        if !logged {
            log.checkpoint()?;
        }
        Ok(())
    }

    /// Applies, in order, the records of `log` (found when it opened) that sled lacks,
    /// those numbered past the last group sled holds, then starts the log; how many were
    /// applied. Run when the store opens, before anything else writes.
    pub(crate) fn recover(&self, records: Vec<Record>, log: &mut RedoLog) -> StoreResult<usize> {
        let held = u64::try_from(self.meta_int(SEQ_KEY)?).unwrap_or(0);
        let mut last = held;
        let mut applied = 0;
        for record in records.into_iter().filter(|record| record.seq > held) {
            let writes = decode(&record.payload, self.all().len())
                .ok_or_else(|| corrupt("a record of the redo log whose checksum matches"))?;
            self.apply_encoded(&writes, record.payload)?;
            last = record.seq;
            applied += 1;
        }
        log.start(last)?;
        Ok(applied)
    }

    /// Applies `writes` (one map per tree, in `Trees::all`'s order), whose [`encode`]d
    /// record is `record`, as plain writes between the group's record and its removal
    /// (see the module documentation), or in one transaction when the record would be
    /// too large.
    fn apply_encoded(&self, writes: &[Writes], record: Vec<u8>) -> StoreResult<()> {
        if record.len() > RECORDED_GROUP_MAX {
            return self.apply(writes);
        }
        self.meta.insert(APPLYING, record).map_err(backend)?;
        self.apply_plainly(writes)?;
        self.meta.remove(APPLYING).map_err(backend)?;
        Ok(())
    }

    /// Applies the group a crash cut short, if any (its record is still in `meta`);
    /// whether there was one. Run when the store opens, before anything else writes.
    pub(crate) fn finish_applying(&self) -> StoreResult<bool> {
        let Some(record) = self.meta.get(APPLYING).map_err(backend)? else { return Ok(false) };
        let writes = decode(&record, self.all().len())
            .ok_or_else(|| corrupt("the record of a group of writes being applied"))?;
        self.apply_plainly(&writes)?;
        self.meta.remove(APPLYING).map_err(backend)?;
        Ok(true)
    }

    /// Each write of `writes` on its own, in the trees' order (records before the
    /// indexes that point at them).
    fn apply_plainly(&self, writes: &[Writes]) -> StoreResult<()> {
        for (tree, writes) in self.all().iter().zip(writes) {
            for (key, value) in writes {
                match value {
                    Some(value) => tree.insert(key.as_slice(), value.clone()),
                    None => tree.remove(key.as_slice()),
                }
                .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Applies `writes` (one map per tree, in `Trees::all`'s order) in one transaction.
    fn apply(&self, writes: &[Writes]) -> StoreResult<()> {
        if writes.iter().all(BTreeMap::is_empty) {
            return Ok(());
        }
        let batches: Vec<sled::Batch> = writes.iter().map(batch).collect();
        use sled::Transactional as _;
        let applied = self.all()[..].transaction(|view: &Vec<TransactionalTree>| {
            for (tree, batch) in view.iter().zip(&batches) {
                tree.apply_batch(batch)?;
            }
            Ok::<_, ConflictableTransactionError<std::convert::Infallible>>(())
        });
        applied.map_err(|err| match err {
            sled::transaction::TransactionError::Storage(error) => backend(error),
            sled::transaction::TransactionError::Abort(never) => match never {},
        })
    }
}

/// Adds to `writes` the group's number, `seq`, kept in sled (see `redo`).
fn number(writes: &mut [Writes], seq: u64) {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX).to_be_bytes();
    writes[META].insert(SEQ_KEY.to_vec(), Some(IVec::from(&seq[..])));
}

/// The key in `meta` of the record of the group being applied.
pub(crate) const APPLYING: &[u8] = b"applying_group";

/// The largest group applied as plain writes: sled keeps values above 128 KiB in blob
/// files, which the flusher does not sync, so a record stays well below that.
pub(crate) const RECORDED_GROUP_MAX: usize = 64 * 1024;

/// A group's writes as one value: for each tree, in order, its number of writes
/// (`u32`), then each write: the key's length (`u32`) and bytes, then `0` for a removal
/// or `1`, the value's length (`u32`) and bytes. Little-endian.
fn encode(writes: &[Writes]) -> Vec<u8> {
    fn push(bytes: &[u8], out: &mut Vec<u8>) {
        // Keys and values are MiniTwit's records: far below 4 GiB.
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    for tree in writes {
        out.extend_from_slice(&u32::try_from(tree.len()).unwrap_or(u32::MAX).to_le_bytes());
        for (key, value) in tree {
            push(key, &mut out);
            match value {
                None => out.push(0),
                Some(value) => {
                    out.push(1);
                    push(value, &mut out);
                }
            }
        }
    }
    out
}

/// The writes of a record made by [`encode`] for `trees` trees; `None` if it does not
/// decode.
fn decode(mut record: &[u8], trees: usize) -> Option<Vec<Writes>> {
    fn take<'a>(input: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
        let (head, rest) = (input.get(..len)?, input.get(len..)?);
        *input = rest;
        Some(head)
    }
    fn length(input: &mut &[u8]) -> Option<usize> {
        let bytes: [u8; 4] = take(input, 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    }
    let mut writes = Vec::with_capacity(trees);
    for _ in 0..trees {
        let mut tree = Writes::new();
        for _ in 0..length(&mut record)? {
            let key_len = length(&mut record)?;
            let key = take(&mut record, key_len)?.to_vec();
            let value = match take(&mut record, 1)? {
                [0] => None,
                [1] => {
                    let value_len = length(&mut record)?;
                    Some(IVec::from(take(&mut record, value_len)?))
                }
                _ => return None,
            };
            tree.insert(key, value);
        }
        writes.push(tree);
    }
    record.is_empty().then_some(writes)
}

/// One tree's writes as a sled batch.
fn batch(writes: &Writes) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (key, value) in writes {
        match value {
            Some(value) => batch.insert(key.as_slice(), value.clone()),
            None => batch.remove(key.as_slice()),
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::{APPLYING, Writes, decode, encode, number};
    use crate::home::HomeConfig;
    use crate::redo::{LOG_BYTES, LOG_FILE, RedoLog};
    use crate::trees::{Trees, meta};
    use sled::IVec;
    use std::os::unix::fs::FileExt as _;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The redo log of the store in `dir`, opened, with what it held applied (how many
    /// groups, and the size of a torn tail), and started.
    fn recovered_log(dir: &tempfile::TempDir, trees: &Trees) -> (RedoLog, usize, usize) {
        let sled_file = std::fs::File::open(dir.path().join("db")).expect("sled's log file");
        let (mut log, records, torn) =
            RedoLog::open(dir.path(), &trees.meta, sled_file).expect("the redo log opens");
        let replayed = trees.recover(records, &mut log).expect("recovers");
        (log, replayed, torn)
    }

    fn started_log(dir: &tempfile::TempDir, trees: &Trees) -> RedoLog {
        recovered_log(dir, trees).0
    }

    /// Trees over a fresh sled database, writing plainly, and their redo log.
    fn trees_and_log() -> (Trees, RedoLog, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sled::Config::new().path(dir.path()).open().expect("a fresh sled database");
        let trees = Trees::open(&db, HomeConfig::of(&crate::SledOptions::default()))
            .expect("the trees of a fresh database");
        let log = started_log(&dir, &trees);
        (trees, log, dir)
    }

    /// A group setting `key` in `settings` to `value`.
    fn setting(trees: &Trees, key: &str, value: &[u8]) -> Vec<Writes> {
        let mut writes = vec![Writes::new(); trees.all().len()];
        writes[1].insert(key.as_bytes().to_vec(), Some(IVec::from(value)));
        writes
    }

    /// Writes `writes` to `log` as the flusher does, without applying them: a crash came
    /// between the two.
    fn log_only(log: &mut RedoLog, mut writes: Vec<Writes>) -> u64 {
        let at = log.next_seq();
        number(&mut writes, at);
        assert!(log.append(&encode(&writes)).expect("logs"));
        at
    }

    fn value(trees: &Trees, key: &str) -> Option<Vec<u8>> {
        trees.setting(key).expect("reads")
    }

    #[test]
    fn a_group_logged_but_not_applied_is_applied_when_the_store_opens() {
        let (trees, mut log, dir) = trees_and_log();
        trees
            .log_and_apply(&mut log, &mut setting(&trees, "a", b"1"), || ())
            .expect("logs, applies");
        log_only(&mut log, setting(&trees, "b", b"2"));
        assert_eq!(value(&trees, "b"), None);
        drop(log);

        let (_log, replayed, torn) = recovered_log(&dir, &trees);
        assert_eq!((replayed, torn), (1, 0), "only the group sled lacks");
        assert_eq!(value(&trees, "a").as_deref(), Some(&b"1"[..]));
        assert_eq!(value(&trees, "b").as_deref(), Some(&b"2"[..]));
        let (_log, replayed, _) = recovered_log(&dir, &trees);
        assert_eq!(replayed, 0, "a checkpoint followed the recovery");
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_reported_and_the_ones_before_it_applied() {
        let (trees, mut log, dir) = trees_and_log();
        log_only(&mut log, setting(&trees, "a", b"1"));
        log_only(&mut log, setting(&trees, "b", b"2"));
        let last_byte = log.end() - 1;
        drop(log);
        let file = std::fs::OpenOptions::new().write(true).open(dir.path().join(LOG_FILE));
        file.expect("the log").write_all_at(b"\xff", last_byte).expect("damages it");

        let (_log, replayed, torn) = recovered_log(&dir, &trees);
        assert_eq!(replayed, 1);
        assert!(torn > 0, "the torn record is reported");
        assert_eq!(value(&trees, "a").as_deref(), Some(&b"1"[..]));
        assert_eq!(value(&trees, "b"), None, "nothing of a torn record is applied");
    }

    #[test]
    fn the_log_starts_again_when_full_and_recovers_what_follows() {
        let (trees, mut log, dir) = trees_and_log();
        let large = vec![7; 64 * 1024];
        for n in 0..2 * LOG_BYTES / large.len() as u64 {
            let mut writes = setting(&trees, &format!("k{n}"), &large);
            trees.log_and_apply(&mut log, &mut writes, || ()).expect("logs, applies");
        }
        log_only(&mut log, setting(&trees, "last", b"x"));
        drop(log);

        let (_log, replayed, _) = recovered_log(&dir, &trees);
        assert_eq!(replayed, 1, "the last group only: earlier ones are in sled");
        assert_eq!(value(&trees, "last").as_deref(), Some(&b"x"[..]));
        assert_eq!(value(&trees, "k0").as_deref(), Some(&large[..]));
    }

    #[test]
    fn the_caller_hears_of_a_group_once_it_is_logged_and_before_it_is_applied() {
        let (trees, mut log, dir) = trees_and_log();
        let mut heard = None;
        let logged = || {
            let file = std::fs::read(dir.path().join(LOG_FILE)).expect("reads the log");
            heard = Some((file.starts_with(b"MTRL"), value(&trees, "a")));
        };
        trees.log_and_apply(&mut log, &mut setting(&trees, "a", b"1"), logged).expect("applies");
        assert_eq!(heard, Some((true, None)), "told with the record written, not yet applied");
        assert_eq!(value(&trees, "a").as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn a_group_too_large_for_the_log_is_made_durable_by_a_checkpoint() {
        let (trees, mut log, dir) = trees_and_log();
        let mut huge = setting(&trees, "huge", &vec![1; LOG_BYTES as usize]);
        let logged = || panic!("the caller is not told of a group the log did not take");
        trees.log_and_apply(&mut log, &mut huge, logged).expect("applies");
        drop(log);
        let (_log, replayed, _) = recovered_log(&dir, &trees);
        assert_eq!(replayed, 0, "nothing of it was logged");
        assert_eq!(value(&trees, "huge").map(|v| v.len()), Some(LOG_BYTES as usize));
    }

    /// Trees over a fresh sled database, staging their writes as a durable store does.
    fn grouped_trees() -> (Trees, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sled::Config::new().path(dir.path()).open().expect("a fresh sled database");
        let mut trees = Trees::open(&db, HomeConfig::of(&crate::SledOptions::default()))
            .expect("the trees of a fresh database");
        let log = started_log(&dir, &trees);
        trees.group_writes(super::Group::new(log));
        (trees, dir)
    }

    #[test]
    fn writers_read_what_is_staged_and_readers_what_is_applied() {
        let (trees, _dir) = grouped_trees();
        assert_eq!(trees.transaction(|tx| tx.bump(meta::MESSAGES, 1)).expect("stages"), 1);
        assert_eq!(trees.transaction(|tx| tx.bump(meta::MESSAGES, 1)).expect("stages"), 2);
        let applied = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&applied);
        trees.after_apply(move |_| flag.store(true, Ordering::SeqCst));
        assert_eq!(trees.meta_int(meta::MESSAGES).expect("reads"), 0, "nothing applied yet");
        assert!(!applied.load(Ordering::SeqCst), "effects wait for their writes");

        trees.settle().expect("applies");
        assert_eq!(trees.meta_int(meta::MESSAGES).expect("reads"), 2);
        assert!(applied.load(Ordering::SeqCst));
    }

    #[test]
    fn a_staged_removal_hides_the_applied_value_until_it_is_applied_too() {
        let (trees, _dir) = grouped_trees();
        trees.transaction(|tx| Ok(tx.settings.insert("k", &b"v"[..])?)).expect("stages");
        trees.settle().expect("applies");
        let before = trees.transaction(|tx| Ok(tx.settings.take("k")?)).expect("stages");
        assert_eq!(before.as_deref(), Some(&b"v"[..]), "a removal returns the value it removes");
        let seen = trees.transaction(|tx| Ok(tx.settings.get("k")?)).expect("reads");
        assert_eq!(seen, None, "the next writer sees the removal");
        assert_eq!(trees.setting("k").expect("reads").as_deref(), Some(&b"v"[..]));

        trees.settle().expect("applies");
        assert_eq!(trees.setting("k").expect("reads"), None);
    }

    #[test]
    fn a_group_cut_short_is_applied_again_whole_when_the_store_opens() {
        let (trees, _dir) = grouped_trees();
        let mut writes = vec![Writes::new(); trees.all().len()];
        let settings = 1;
        writes[settings].insert(b"a".to_vec(), Some(IVec::from(&b"1"[..])));
        writes[settings].insert(b"b".to_vec(), Some(IVec::from(&b"2"[..])));
        writes[settings].insert(b"gone".to_vec(), None);
        trees.settings.insert("gone", &b"x"[..]).expect("writes");
        // The crash came after the group's record and its first write.
        trees.meta.insert(APPLYING, encode(&writes)).expect("writes");
        trees.settings.insert("a", &b"1"[..]).expect("writes");

        assert!(trees.finish_applying().expect("applies the rest"));
        assert_eq!(trees.setting("a").expect("reads").as_deref(), Some(&b"1"[..]));
        assert_eq!(trees.setting("b").expect("reads").as_deref(), Some(&b"2"[..]));
        assert_eq!(trees.setting("gone").expect("reads"), None);
        assert_eq!(trees.meta.get(APPLYING).expect("reads"), None, "the record is removed");
        assert!(!trees.finish_applying().expect("nothing left to apply"));
    }

    #[test]
    fn a_settled_group_leaves_no_record_and_a_damaged_record_is_an_error() {
        let (trees, _dir) = grouped_trees();
        trees.transaction(|tx| Ok(tx.settings.insert("k", &b"v"[..])?)).expect("stages");
        trees.settle().expect("applies");
        assert_eq!(trees.meta.get(APPLYING).expect("reads"), None);
        assert!(!trees.finish_applying().expect("nothing to apply"));

        trees.meta.insert(APPLYING, &[1, 0, 0][..]).expect("writes");
        assert!(trees.finish_applying().is_err(), "a record that does not decode");
    }

    #[test]
    fn records_decode_to_the_writes_they_encode() {
        let mut writes = vec![Writes::new(); 3];
        writes[0].insert(vec![], Some(IVec::from(&[][..])));
        writes[2].insert(b"key".to_vec(), None);
        writes[2].insert(b"k2".to_vec(), Some(IVec::from(&b"value"[..])));
        assert_eq!(decode(&encode(&writes), 3), Some(writes.clone()));
        let record = encode(&writes);
        assert_eq!(decode(&record[..record.len() - 1], 3), None, "a short record");
    }

    #[test]
    fn an_aborted_transaction_stages_nothing() {
        let (trees, _dir) = grouped_trees();
        let refused = trees.transaction(|tx| {
            tx.bump(meta::USERS, 1)?;
            Err::<(), _>(crate::trees::abort(minitwit_core::store::StoreError::Conflict(
                "refused".into(),
            )))
        });
        assert!(refused.is_err());
        assert_eq!(trees.transaction(|tx| tx.meta_int(meta::USERS)).expect("reads"), 0);
        trees.settle().expect("applies");
        assert_eq!(trees.meta_int(meta::USERS).expect("reads"), 0);
    }
}
