//! The redo log of a durable store: MiniTwit's own write-ahead log, so that making a
//! write durable is one append and one `fdatasync` of a file this process owns, not a
//! flush of sled (which wakes every thread of sled's I/O pool and holds sled's global
//! lock while it writes out).
//!
//! - **What is logged.** Every committed write, in commit order: a transaction's inserts
//!   and removals, key by key, with the value written (absolute values, never deltas),
//!   and the simulator's `latest`. Writes are applied to sled and appended to the log
//!   under one lock ([`RedoLog::commit`]), so the log's order is sled's.
//! - **Record layout** (little-endian): payload length (`u32`), CRC-32 of what follows
//!   (`u32`), sequence number (`u64`), payload. The payload is a run of operations: a tag
//!   (`0` remove, `1` insert), the tree's index, the key's length (`u32`) and bytes, and
//!   for an insert the value's length (`u32`) and bytes.
//! - **Durable.** The group-commit flusher appends what was committed since its last
//!   round and syncs the file; then every write up to that point is acknowledged.
//! - **Sequence numbers.** Each logged transaction also records its number in sled
//!   (`meta`'s `redo_seq`, in the same transaction). After a crash sled holds a prefix of
//!   the commits (its own recovery is prefix-consistent); opening replays exactly the
//!   records past that prefix. When sled got further than the log (its buffers reached
//!   the disk before the log did), nothing is replayed: a record is never applied over a
//!   later state.
//! - **Checkpoints.** Once the log holds `SledOptions::checkpoint_bytes`, and when the store closes,
//!   the flusher flushes sled and syncs its files, then empties the log.
//! - **A torn tail** (a crash during an append: a short or corrupt last record) is
//!   dropped and reported in the log; nothing in it was acknowledged (see `recovery`).

use minitwit_core::store::StoreResult;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Name of the log file inside the store's directory.
pub(crate) const LOG_FILE: &str = "redo.log";

/// Operation tags in a payload.
const REMOVE: u8 = 0;
const INSERT: u8 = 1;

/// One transaction's writes, encoded as the log stores them.
#[derive(Debug, Default)]
pub(crate) struct Ops {
    bytes: Vec<u8>,
}

impl Ops {
    /// Forgets what was recorded (a transaction body that sled runs again).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Records that `key` of tree number `tree` now holds `value`.
    pub(crate) fn insert(&mut self, tree: u8, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(&[INSERT, tree]);
        self.push_bytes(key);
        self.push_bytes(value);
    }

    /// Records that `key` of tree number `tree` was removed.
    pub(crate) fn remove(&mut self, tree: u8, key: &[u8]) {
        self.bytes.extend_from_slice(&[REMOVE, tree]);
        self.push_bytes(key);
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        // Keys and values are MiniTwit's records: far below 4 GiB.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(bytes);
    }
}

/// One write of a record, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    /// `key` of tree number `tree` holds `value`.
    Insert { tree: u8, key: &'a [u8], value: &'a [u8] },
    /// `key` of tree number `tree` is gone.
    Remove { tree: u8, key: &'a [u8] },
}

/// Decodes a record's payload; `None` if it does not decode (a corrupt record).
pub(crate) fn decode_ops(mut payload: &[u8]) -> Option<Vec<Op<'_>>> {
    let mut ops = Vec::new();
    while let [tag, tree, rest @ ..] = payload {
        let (key, rest) = take_bytes(rest)?;
        payload = match *tag {
            INSERT => {
                let (value, rest) = take_bytes(rest)?;
                ops.push(Op::Insert { tree: *tree, key, value });
                rest
            }
            REMOVE => {
                ops.push(Op::Remove { tree: *tree, key });
                rest
            }
            _ => return None,
        };
    }
    payload.is_empty().then_some(ops)
}

fn take_bytes(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = input.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Writes committed to sled whose records the flusher has not yet appended to the file.
#[derive(Debug)]
pub(crate) struct RedoLog {
    pending: Mutex<Pending>,
}

#[derive(Debug)]
struct Pending {
    /// Encoded records, in commit order.
    bytes: Vec<u8>,
    /// The sequence number of the last record committed.
    last_seq: u64,
}

impl RedoLog {
    /// A log whose next record follows `last_seq`.
    pub(crate) fn new(last_seq: u64) -> Self {
        Self { pending: Mutex::new(Pending { bytes: Vec::new(), last_seq }) }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Two plain fields, never left half-updated by a panic in `commit`'s closure:
        // the record is appended only after the closure returned.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `apply` (which writes to sled and records its writes in the `Ops` it is
    /// given) with the record's sequence number, under the log's lock, and appends the
    /// record when anything was written. Nothing is logged when `apply` fails.
    pub(crate) fn commit<T>(
        &self,
        apply: impl FnOnce(u64, &mut Ops) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut pending = self.pending();
        let seq = pending.last_seq + 1;
        let mut ops = Ops::default();
        let value = apply(seq, &mut ops)?;
        if !ops.is_empty() {
            encode_record(&mut pending.bytes, seq, &ops.bytes);
            pending.last_seq = seq;
        }
        Ok(value)
    }

    /// Takes the records committed since the last call, for the flusher to append.
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.pending().bytes)
    }
}

fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A record read back from the file.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) seq: u64,
    pub(crate) payload: &'a [u8],
}

/// The whole records at the start of `bytes`, and how many bytes after them are a torn
/// tail (a short or corrupt record, and whatever follows it).
pub(crate) fn read_records(bytes: &[u8]) -> (Vec<Record<'_>>, usize) {
    let mut records = Vec::new();
    let mut rest = bytes;
    while let Some((record, after)) = read_record(rest) {
        records.push(record);
        rest = after;
    }
    (records, rest.len())
}

fn read_record(bytes: &[u8]) -> Option<(Record<'_>, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (crc, rest) = rest.split_first_chunk::<4>()?;
    let (seq_bytes, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (payload, after) = rest.split_at(len);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(seq_bytes);
    hasher.update(payload);
    if hasher.finalize() != u32::from_le_bytes(*crc) {
        return None;
    }
    Some((Record { seq: u64::from_le_bytes(*seq_bytes), payload }, after))
}

/// The log file, appended to and synced by the flusher thread alone.
#[derive(Debug)]
pub(crate) struct LogFile {
    file: File,
    size: u64,
    /// The size from which a checkpoint is due.
    checkpoint_bytes: u64,
}

impl LogFile {
    /// Opens (creating it) the log in `dir`, and reads what it holds.
    pub(crate) fn open(dir: &Path, checkpoint_bytes: u64) -> std::io::Result<(Self, Vec<u8>)> {
        let mut file =
            OpenOptions::new().create(true).read(true).append(true).open(dir.join(LOG_FILE))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok((Self { file, size: bytes.len() as u64, checkpoint_bytes }, bytes))
    }

    /// Whether the log holds anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends `bytes` and syncs them (and the file's new size) to the drive.
    pub(crate) fn append_and_sync(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes)?;
        self.file.sync_data()?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Whether the log has grown enough for a checkpoint.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.size >= self.checkpoint_bytes
    }

    /// Empties the log: every record in it is in sled's synced files.
    pub(crate) fn truncate(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, ops: &Ops) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(&mut out, seq, &ops.bytes);
        out
    }

    fn sample() -> Ops {
        let mut ops = Ops::default();
        ops.insert(3, b"key", b"value");
        ops.remove(7, b"gone");
        ops.insert(0, b"", b"");
        ops
    }

    #[test]
    fn operations_decode_as_encoded() {
        let ops = sample();
        assert_eq!(
            decode_ops(&ops.bytes),
            Some(vec![
                Op::Insert { tree: 3, key: b"key", value: b"value" },
                Op::Remove { tree: 7, key: b"gone" },
                Op::Insert { tree: 0, key: b"", value: b"" },
            ])
        );
        assert_eq!(decode_ops(&ops.bytes[..ops.bytes.len() - 1]), None, "a cut payload");
    }

    #[test]
    fn records_read_back_until_a_torn_tail() {
        let mut bytes = record(1, &sample());
        bytes.extend(record(2, &sample()));
        let whole = bytes.len();
        let third = record(3, &sample());
        for cut in 0..third.len() {
            let mut log = bytes.clone();
            log.extend_from_slice(&third[..cut]);
            let (records, torn) = read_records(&log);
            assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2], "cut at {cut}");
            assert_eq!(torn, cut);
        }
        let mut flipped = bytes.clone();
        flipped[whole - 1] ^= 1;
        let (records, torn) = read_records(&flipped);
        assert_eq!(records.len(), 1, "a corrupt record ends the log");
        assert_eq!(torn, whole - record(1, &sample()).len());
    }
}
