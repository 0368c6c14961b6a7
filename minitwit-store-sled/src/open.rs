//! Opening a store: options, the directory lock, the format-version check, and the
//! errors that can stop a store from opening.

use crate::flusher::{Disk, Flusher, RedoSync, WriteLock};
use crate::home::HomeConfig;
use crate::redo::{LOG_FILE, RedoLog};
use crate::staging::Group;
use crate::trees::{Trees, decode_int, meta};
use minitwit_core::store::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The on-disk format this build reads and writes, recorded in the `meta` tree.
///
/// - 1: user and message records in JSON.
/// - 2: new records in a compact binary layout (see `records`); JSON records of
///   version 1 are still read.
/// - 3: a redo log beside sled's files (`redo.log`), which may hold acknowledged writes
///   sled does not (see `redo`).
/// - 4: `author_msgs` lists an author's flagged messages only (their others are in
///   `author_idx`), so that a post writes three index entries, not four: sled keeps
///   15–20 bytes in memory for every entry it stores (BENCHMARKS.md, "Memory").
///
/// An earlier store is upgraded when it is opened, once the writes it holds are applied
/// (no record is rewritten; `author_msgs` loses its unflagged entries), so that earlier
/// builds refuse it with a clear error rather than miss what it holds.
pub const FORMAT_VERSION: u32 = 4;

/// Earlier formats this build opens (and upgrades, see [`FORMAT_VERSION`]).
const UPGRADABLE_VERSIONS: [i64; 3] = [1, 2, 3];

/// How often sled flushes a relaxed store on its own (sled's default).
const RELAXED_FLUSH_EVERY_MS: u64 = 500;

/// The file sled 0.34 keeps its log in, inside the store's directory.
const SLED_LOG_FILE: &str = "db";

/// Name of the lock file inside the store's directory.
const LOCK_FILE: &str = "minitwit.lock";

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// An operation returns only after its write is on disk (flushed and fsynced);
    /// concurrent writers share flushes (group commit). The default.
    #[default]
    Durable,
    /// An operation returns as soon as its write is applied in memory; sled flushes on
    /// its own timer (every 500 ms), so a crash can lose the last half second of
    /// acknowledged writes. Faster; for bulk loads and benchmarks.
    Relaxed,
}

/// How to open a [`SledStore`](crate::SledStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SledOptions {
    /// When writes are acknowledged.
    pub durability: Durability,
    /// Upper bound of sled's page cache, in bytes (sled's own default is 1 GiB).
    pub cache_capacity_bytes: u64,
    /// N: the newest entries kept in each reader's home timeline (at least 1; see
    /// `home`): 800, as Twitter kept, is 26 pages of 30. Older home pages merge the
    /// followees' messages as if nothing were kept.
    pub home_bound: usize,
    /// F: an author with more followers than this is not fanned out: their new messages
    /// are merged into their followers' home pages when read, so a post reaches at most
    /// F + 1 kept timelines.
    pub fanout_limit: usize,
    /// The most entries all kept home timelines hold together (56 bytes each: a position
    /// and a handle on the message's record, which all copies of a post share); the
    /// timelines of the readers seen least recently go first.
    pub home_cache_entries: usize,
}

impl Default for SledOptions {
    /// Durable, with an 8 MiB page cache (at 1M messages, reads measured no faster with
    /// up to 64 MiB, for 200 MB more resident: BENCHMARKS.md); home timelines of 800
    /// entries, 250,000 entries in all, and authors with more than 2,000 followers merged
    /// on read.
    fn default() -> Self {
        Self {
            durability: Durability::Durable,
            cache_capacity_bytes: 8 * 1024 * 1024,
            home_bound: 800,
            fanout_limit: 2_000,
            home_cache_entries: 250_000,
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store is open already: in another process (a running server, say), or in this
    /// one (a second `open` of the same directory). sled allows one opening per
    /// directory: close the other one, or use PostgreSQL for replicas.
    #[error("the sled store at {} is in use (by this or another process)", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
    /// The directory holds a store written in a format this build does not read.
    #[error(
        "the sled store at {} has format version {found}; this build reads version {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The store's directory.
        path: PathBuf,
        /// The version recorded in the store.
        found: i64,
        /// The version this build reads.
        supported: u32,
    },
    /// The directory or its files could not be created, read or locked.
    #[error("cannot open the sled store at {}: {source}", path.display())]
    Io {
        /// The store's directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// sled refused the data (corrupt files, say).
    #[error("cannot open the sled store at {}: {source}", path.display())]
    Storage {
        /// The store's directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// A group of writes that a crash cut short could not be applied again (see the
    /// `staging` module), or the redo log could not be read or applied (see `redo`):
    /// a record does not decode, a file cannot be read, or sled refused the writes.
    #[error("cannot recover the sled store at {}: {reason}", path.display())]
    Recovery {
        /// The store's directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A store of an earlier format could not be upgraded to this build's (see
    /// [`FORMAT_VERSION`]): sled refused a read or a write. The store keeps its earlier
    /// format's label, and the next opening by this build upgrades it again.
    #[error("cannot upgrade the sled store at {} to format version {FORMAT_VERSION}: {reason}", path.display())]
    Upgrade {
        /// The store's directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// An open store's parts, before they are wrapped in a [`SledStore`](crate::SledStore).
pub(crate) struct Opened {
    pub(crate) trees: Trees,
    pub(crate) flusher: Flusher,
    pub(crate) write_lock: WriteLock,
    pub(crate) lock: File,
}

/// Locks the directory, opens sled and its trees, checks the format and starts the
/// group-commit flusher.
pub(crate) fn open(path: &Path, options: SledOptions) -> Result<Opened, OpenError> {
    let io = |source| OpenError::Io { path: path.to_owned(), source };
    let storage = |source| OpenError::Storage { path: path.to_owned(), source };
    std::fs::create_dir_all(path).map_err(io)?;
    let lock = lock_directory(path)?;
    let db = open_sled_when_released(path, options).map_err(storage)?;
    let mut trees = Trees::open(&db, HomeConfig::of(&options)).map_err(storage)?;
    let earlier = check_format(path, &trees)?;
    finish_applying(path, &db, &trees)?;
    let log_file = File::open(path.join(SLED_LOG_FILE)).map_err(io)?;
    let redo = if needs_redo_log(path, options.durability).map_err(io)? {
        Some(recover(path, &trees, log_file.try_clone().map_err(io)?)?)
    } else {
        None
    };
    if let Some(earlier) = earlier {
        upgrade(path, &trees, earlier)?;
    }
    sync_directory(path).map_err(io)?;
    let redo_file = match (options.durability, redo) {
        (Durability::Durable, Some(redo)) => {
            let file = redo.file().map_err(|e| recovery_error(path, e.to_string()))?;
            trees.group_writes(Group::new(redo));
            Some(RedoSync::start(file).map_err(io)?)
        }
        // A relaxed store is done with the log once it has applied what it held.
        _ => None,
    };
    let write_lock = WriteLock::default();
    let disk = Disk {
        db,
        log_file,
        redo: redo_file,
        trees: trees.clone(),
        write_lock: Arc::clone(&write_lock),
        #[cfg(feature = "fault-injection")]
        fault: crate::flusher::fault::SyncFault::from_env(),
    };
    let flusher = Flusher::start(disk).map_err(io)?;
    Ok(Opened { trees, flusher, write_lock, lock })
}

/// Applies again, whole, the group of writes a crash cut short (see `staging`), and
/// makes it durable; reported in the log.
fn finish_applying(path: &Path, db: &sled::Db, trees: &Trees) -> Result<(), OpenError> {
    let recovery = |reason: String| recovery_error(path, reason);
    if trees.finish_applying().map_err(|e| recovery(e.to_string()))? {
        db.flush().map_err(|e| recovery(format!("flushing the recovered writes: {e}")))?;
        tracing::warn!(path = %path.display(), "a group of writes cut short by a crash was applied again, whole");
    }
    Ok(())
}

/// Whether the store in `path` opens its redo log: a durable store always does; a relaxed
/// one, which writes to sled directly, only to apply what a durable run left there.
fn needs_redo_log(path: &Path, durability: Durability) -> std::io::Result<bool> {
    match durability {
        Durability::Durable => Ok(true),
        Durability::Relaxed => path.join(LOG_FILE).try_exists(),
    }
}

/// Opens the redo log, applying the groups it holds that sled does not (see `redo`);
/// reported in the log.
fn recover(path: &Path, trees: &Trees, sled_file: File) -> Result<RedoLog, OpenError> {
    let failed = |e: StoreError| recovery_error(path, e.to_string());
    let (mut redo, records, torn_bytes) =
        RedoLog::open(path, &trees.meta, sled_file).map_err(failed)?;
    let replayed = trees.recover(records, &mut redo).map_err(failed)?;
    if replayed > 0 || torn_bytes > 0 {
        tracing::warn!(
            path = %path.display(),
            replayed,
            torn_bytes,
            "acknowledged groups of writes applied from the redo log; a torn last record (never acknowledged) dropped if torn_bytes > 0"
        );
    }
    Ok(redo)
}

fn recovery_error(path: &Path, reason: String) -> OpenError {
    OpenError::Recovery { path: path.to_owned(), reason }
}

/// How long [`open_sled_when_released`] waits for sled's own lock.
const SLED_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// [`open_sled`], waiting while sled's own lock on its files is still held. With the
/// directory locked (`lock_directory`), only a sled instance of this process that is
/// still closing can hold it: sled's background threads let go of its files a moment
/// after the last handle is dropped, so a store closed and opened again at once (a test,
/// an embedder reopening) would otherwise be refused.
fn open_sled_when_released(path: &Path, options: SledOptions) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + SLED_RELEASE_WAIT;
    loop {
        match open_sled(path, options) {
            Err(err) if is_sled_lock_held(&err) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// Whether sled refused to open because its lock on its files is held.
fn is_sled_lock_held(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Opens sled with the page cache bounded and, for a durable store, without sled's
/// own timer flushes: the flusher does them, and the timer's would only stall readers
/// (see the `flusher` module).
fn open_sled(path: &Path, options: SledOptions) -> sled::Result<sled::Db> {
    let timer = match options.durability {
        Durability::Durable => None,
        Durability::Relaxed => Some(RELAXED_FLUSH_EVERY_MS),
    };
    sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity_bytes)
        .flush_every_ms(timer)
        .open()
}

/// Makes the directory's entries (sled's files, when just created) durable.
fn sync_directory(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Takes an exclusive lock on the directory's lock file, held while the store is open.
/// The operating system releases it when the process dies, however it dies.
fn lock_directory(path: &Path) -> Result<File, OpenError> {
    let io = |source| OpenError::Io { path: path.to_owned(), source };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(LOCK_FILE))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(OpenError::Locked { path: path.to_owned() }),
        Err(TryLockError::Error(source)) => Err(io(source)),
    }
}

/// Records the format version in a new store; refuses a store of a version this build
/// cannot open; the version of an earlier one, which [`upgrade`] upgrades once the
/// writes it holds are applied.
fn check_format(path: &Path, trees: &Trees) -> Result<Option<i64>, OpenError> {
    let storage = |source| OpenError::Storage { path: path.to_owned(), source };
    let unsupported = |found| OpenError::UnsupportedFormat {
        path: path.to_owned(),
        found,
        supported: FORMAT_VERSION,
    };
    let recorded = trees.meta.get(meta::FORMAT_VERSION).map_err(storage)?;
    let found = match recorded {
        None => None,
        Some(bytes) => Some(decode_int(&bytes).map_err(|_| unsupported(-1))?),
    };
    match found {
        Some(found) if found == i64::from(FORMAT_VERSION) => Ok(None),
        None => record_format(trees).map(|()| None).map_err(storage),
        Some(found) if UPGRADABLE_VERSIONS.contains(&found) => Ok(Some(found)),
        Some(found) => Err(unsupported(found)),
    }
}

/// Upgrades a store of format `earlier` (see [`FORMAT_VERSION`]): drops the unflagged
/// messages' entries from `author_msgs`, then records this build's format. A crash
/// before the record leaves the store at `earlier`, and the next open does it again.
fn upgrade(path: &Path, trees: &Trees, earlier: i64) -> Result<(), OpenError> {
    let failed = |reason: String| OpenError::Upgrade { path: path.to_owned(), reason };
    let dropped = trees.keep_only_flagged_in_author_msgs().map_err(|e| failed(e.to_string()))?;
    record_format(trees).map_err(|e| failed(e.to_string()))?;
    tracing::info!(
        path = %path.display(),
        from = earlier,
        to = FORMAT_VERSION,
        dropped,
        "upgraded the store's format: the entries of unflagged messages dropped from author_msgs"
    );
    Ok(())
}

/// Records (durably) that the store is in this build's format.
fn record_format(trees: &Trees) -> sled::Result<()> {
    let version = i64::from(FORMAT_VERSION).to_be_bytes();
    trees.meta.insert(meta::FORMAT_VERSION, &version[..])?;
    trees.meta.flush()?;
    Ok(())
}
