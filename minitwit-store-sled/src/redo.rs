//! The redo log of a durable store: a file of MiniTwit's own, so that making a group of
//! writes durable is one write and one `fdatasync` of that file, not a flush of sled.
//!
//! Why: sled 0.34 hands every write-out of its buffer to its I/O pool, waking all seven
//! of the pool's idle threads, and a flush per group commit paid that each time. Over the
//! simulator's scenario those threads took a seventh of the server's CPU; with the log
//! the scenario replays about a fifth faster (BENCHMARKS.md).
//!
//! - **What is logged.** Each group the flusher applies (see `staging`), before it is
//!   applied: its writes, absolute values, as `staging` encodes them. The group also
//!   records its number in sled (`meta`'s [`SEQ_KEY`]), so sled says which groups it
//!   holds.
//! - **Layout.** The file has a fixed size ([`LOG_BYTES`], written with zeros when
//!   created, so that a sync never has to record a new size or new blocks); records
//!   follow each other from its start. A record: the magic `MTRL`, the payload's length
//!   (`u32`), the log's epoch (`u64`), the sequence number (`u64`), a CRC-32 of epoch,
//!   number and payload (`u32`), then the payload. Little-endian.
//! - **Checkpoints.** When a record would not fit, sled is flushed and its file synced,
//!   so that it holds every group applied, and the log starts again from its beginning
//!   under a new epoch (recorded in sled in the same flush). Records of an earlier epoch
//!   left further in the file are never read again.
//! - **Recovery.** Opening ([`RedoLog::open`]) reads the records of the current epoch,
//!   each numbered one more than the one before, up to the first that is not whole (a
//!   torn tail: reported, and nothing in it was acknowledged); `staging` applies those
//!   past sled's own number, in order. Sled recovers a prefix of its writes, each group whole
//!   (`staging`), so the store is then exactly as it was after the last durable group.
//!   When sled got further than the log (its buffers reached the disk first), nothing is
//!   applied over it. Then a checkpoint, so the log starts empty.

use minitwit_core::store::{StoreError, StoreResult};
use sled::Tree;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

/// Name of the log file inside the store's directory.
pub(crate) const LOG_FILE: &str = "redo.log";

/// The log's size: a checkpoint comes every this many bytes of records.
pub(crate) const LOG_BYTES: u64 = 8 * 1024 * 1024;

/// The key in `meta` of the number of the last group applied to sled (an `i64`).
pub(crate) const SEQ_KEY: &[u8] = b"redo_seq";

/// The key in `meta` of the log's epoch (an `i64`): records of any other are not read.
const EPOCH_KEY: &[u8] = b"redo_epoch";

const MAGIC: &[u8; 4] = b"MTRL";
/// Magic, length, epoch, sequence number, CRC.
const HEADER: usize = 4 + 4 + 8 + 8 + 4;

/// The open log of a durable store. Written under the store's write lock; synced by the
/// flusher without it.
#[derive(Debug)]
pub(crate) struct RedoLog {
    file: File,
    /// sled's own log file, synced at checkpoints.
    sled_file: File,
    /// The store's `meta` tree, where the epoch is kept.
    meta: Tree,
    /// Where the next record goes.
    at: u64,
    epoch: u64,
    /// The number of the last group logged or applied.
    seq: u64,
}

impl RedoLog {
    /// Opens (creating if needed) the log in `dir` of the store whose `meta` tree is
    /// `meta` and whose sled log file is `sled_file`; with the records it holds of the
    /// current epoch (for `staging` to apply those sled lacks, before [`RedoLog::start`])
    /// and the size of a torn tail (0 if none).
    pub(crate) fn open(
        dir: &Path,
        meta: &Tree,
        sled_file: File,
    ) -> StoreResult<(Self, Vec<Record>, usize)> {
        let path = dir.join(LOG_FILE);
        let failed = |e: std::io::Error| log_error(&format!("{}", path.display()), e);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(failed)?;
        let epoch = match meta.get(EPOCH_KEY).map_err(|e| log_error("reading its epoch", e))? {
            Some(bytes) => u64::from_be_bytes(
                bytes.as_ref().try_into().map_err(|_| log_error("its epoch", "not 8 bytes"))?,
            ),
            None => 0,
        };
        let (records, torn) = read_records(&file, epoch).map_err(failed)?;
        let log = Self { file, sled_file, meta: meta.clone(), at: 0, epoch, seq: 0 };
        Ok((log, records, torn))
    }

    /// Starts the log, empty, after the group numbered `last` (what recovery left in
    /// sled), with a checkpoint; writes the file's whole size first when it is new.
    pub(crate) fn start(&mut self, last: u64) -> StoreResult<()> {
        self.seq = last;
        self.checkpoint()?;
        let size = self.file.metadata().map_err(|e| log_error("reading its size", e))?.len();
        if size != LOG_BYTES {
            fill_with_zeros(&self.file)?;
        }
        Ok(())
    }

    /// The number the next group gets: the caller records it in sled with the group.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Writes `payload` (a group numbered [`RedoLog::next_seq`]) as the next record;
    /// `false`, with nothing written, when it is too large for the log (the caller then
    /// makes the group durable with a checkpoint). Not synced: the flusher syncs
    /// [`RedoLog::file`].
    pub(crate) fn append(&mut self, payload: &[u8]) -> StoreResult<bool> {
        let seq = self.next_seq();
        let len = (HEADER + payload.len()) as u64;
        if len > LOG_BYTES {
            self.seq = seq;
            return Ok(false);
        }
        if self.at + len > LOG_BYTES {
            self.checkpoint()?;
        }
        let record = record(self.epoch, seq, payload);
        self.file.write_all_at(&record, self.at).map_err(|e| log_error("writing a record", e))?;
        self.at += len;
        self.seq = seq;
        Ok(true)
    }

    /// Where the next record goes (tests).
    #[cfg(test)]
    pub(crate) fn end(&self) -> u64 {
        self.at
    }

    /// A handle on the log file, for the flusher to sync without the write lock.
    pub(crate) fn file(&self) -> StoreResult<File> {
        self.file.try_clone().map_err(|e| log_error("opening it again", e))
    }

    /// Makes sled hold everything applied so far and starts the log again, empty, under
    /// a new epoch. The caller holds the write lock (nothing is applied meanwhile).
    pub(crate) fn checkpoint(&mut self) -> StoreResult<()> {
        let epoch = self.epoch + 1;
        let sled = |e: sled::Error| log_error("its checkpoint", e);
        self.meta.insert(EPOCH_KEY, &epoch.to_be_bytes()[..]).map_err(sled)?;
        self.meta.flush().map_err(sled)?;
        self.sled_file.sync_data().map_err(|e| log_error("syncing sled's log file", e))?;
        self.epoch = epoch;
        self.at = 0;
        Ok(())
    }
}

/// A failure of the redo log: the store's answer is a backend error.
fn log_error(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sled redo log, {what}: {error}"))
}

/// Writes the log's whole size with zeros and syncs it, so that later syncs write data
/// only.
fn fill_with_zeros(file: &File) -> StoreResult<()> {
    // Below glibc's threshold for a mapping of its own, whose release would raise it.
    let zeros = vec![0; 64 * 1024];
    let mut at = 0;
    while at < LOG_BYTES {
        file.write_all_at(&zeros, at).map_err(|e| log_error("preparing it", e))?;
        at += zeros.len() as u64;
    }
    file.sync_all().map_err(|e| log_error("preparing it", e))
}

/// A record as the log stores it.
fn record(epoch: u64, seq: u64, payload: &[u8]) -> Vec<u8> {
    // Groups are far below 4 GiB (and larger than the log are never logged).
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&checksum(epoch, seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn checksum(epoch: u64, seq: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&epoch.to_le_bytes());
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    crc.finalize()
}

/// A record read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
}

/// The records of `epoch` from the start of `log`, each numbered one more than the one
/// before; and the size of a torn tail (a record of this epoch begun but not whole), 0 if
/// none. Read a record at a time, so the log is never held in memory whole.
pub(crate) fn read_records(log: impl Read, epoch: u64) -> std::io::Result<(Vec<Record>, usize)> {
    let mut log = std::io::BufReader::new(log);
    let mut records: Vec<Record> = Vec::new();
    loop {
        match read_record(&mut log, epoch)? {
            Next::Whole(record) => {
                if records.last().is_some_and(|last| record.seq != last.seq + 1) {
                    return Ok((records, 0));
                }
                records.push(record);
            }
            Next::Torn(len) => return Ok((records, len)),
            Next::End => return Ok((records, 0)),
        }
    }
}

enum Next {
    Whole(Record),
    /// A record of this epoch, of this many bytes, that is cut short or damaged.
    Torn(usize),
    /// No record of this epoch here: zeros, or an earlier epoch's.
    End,
}

fn read_record(log: &mut impl Read, epoch: u64) -> std::io::Result<Next> {
    let mut header = [0; HEADER];
    if read_up_to(log, &mut header)? < HEADER {
        return Ok(Next::End);
    }
    let number =
        |from: usize| u64::from_le_bytes(header[from..from + 8].try_into().unwrap_or_default());
    if &header[..4] != MAGIC || number(8) != epoch {
        return Ok(Next::End);
    }
    let len = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(header[24..28].try_into().unwrap_or_default());
    let seq = number(16);
    // A damaged length is bounded by the log's size.
    let mut payload = vec![0; len.min(LOG_BYTES as usize)];
    let read = read_up_to(log, &mut payload)?;
    if read < len || checksum(epoch, seq, &payload) != crc {
        return Ok(Next::Torn(HEADER + read));
    }
    Ok(Next::Whole(Record { seq, payload }))
}

/// Fills `buf` as far as `log` goes; how much it filled.
fn read_up_to(log: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match log.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::{LOG_BYTES, Next, Record, read_record, read_records, record};
    fn read(bytes: &[u8], epoch: u64) -> (Vec<Record>, usize) {
        read_records(bytes, epoch).expect("reads from memory")
    }

    fn log_of(records: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes: Vec<u8> = records.concat();
        bytes.resize(LOG_BYTES as usize / 1024, 0);
        bytes
    }

    #[test]
    fn records_of_the_epoch_are_read_in_order_up_to_zeros() {
        let bytes = log_of(&[record(3, 7, b"a"), record(3, 8, b"bc")]);
        let (records, torn) = read(&bytes, 3);
        let expected = [(7, &b"a"[..]), (8, &b"bc"[..])]
            .map(|(seq, payload)| Record { seq, payload: payload.to_vec() });
        assert_eq!(records, expected);
        assert_eq!(torn, 0);
    }

    #[test]
    fn an_earlier_epoch_or_a_gap_in_the_numbers_ends_the_log() {
        let bytes = log_of(&[record(3, 7, b"a"), record(2, 8, b"old")]);
        assert_eq!(read(&bytes, 3).0.len(), 1, "an earlier epoch's record");
        let bytes = log_of(&[record(3, 7, b"a"), record(3, 5, b"old")]);
        assert_eq!(read(&bytes, 3).0.len(), 1, "a number out of order");
        assert!(read(&bytes, 4).0.is_empty(), "a later epoch than the file's");
    }

    #[test]
    fn a_torn_record_ends_the_log_and_is_measured() {
        let whole = record(3, 7, b"abcdef");
        let mut damaged = whole.clone();
        *damaged.last_mut().expect("a payload") ^= 1;
        let bytes = log_of(&[record(3, 6, b"x"), damaged.clone()]);
        let (records, torn) = read(&bytes, 3);
        assert_eq!(records.len(), 1);
        assert_eq!(torn, damaged.len());

        let cut = &whole[..whole.len() - 2];
        let next = read_record(&mut &cut[..], 3).expect("reads");
        assert!(matches!(next, Next::Torn(len) if len == cut.len()));
    }
}
