//! [`TransferError`]: every way moving a store can fail, with a message for the operator.

use super::file;
use super::fingerprint::Fingerprint;
use crate::model::Counts;
use crate::store::StoreError;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not a MiniTwit export at all.
    #[error("not a minitwit export file: {0}")]
    NotAnExport(String),
    /// The file was written by a newer (or unknown) format version.
    #[error("unsupported export format version {0} (this build reads version {v})", v = file::VERSION)]
    UnsupportedVersion(u32),
    /// The file ends early: it was cut short while being written or copied.
    #[error("the export file is truncated: {0}")]
    Truncated(String),
    /// A line is not what the format allows, or the trailer disagrees with the records.
    #[error("the export file is malformed at line {line}: {reason}")]
    Malformed {
        /// The 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The target store holds data and the caller did not allow writing into it.
    #[error(
        "the target store is not empty ({} users, {} messages, {} follows); refusing to write into it",
        .0.users, .0.messages, .0.follows
    )]
    TargetNotEmpty(Counts),
    /// After writing, the target does not hold what the source held.
    #[error("verification failed: the source holds {expected}, but the target holds {actual}")]
    Mismatch {
        /// What should have arrived.
        expected: Box<Fingerprint>,
        /// What the target holds.
        actual: Box<Fingerprint>,
    },
    /// An import into the store started and never ended (its process died): the store
    /// holds part of a file and is not used until that is undone.
    #[error(
        "an import into this store did not finish ({0}; unless it is still running, its \
         process died): the store holds part of that file. Remove it with \
         `minitwit import --in FILE --undo` (the same file), then import again"
    )]
    UnfinishedImport(String),
    /// `import --undo` on a store with no unfinished import.
    #[error("no import into this store is unfinished: there is nothing to undo")]
    NothingToUndo,
    /// The import failed, and what it had written was removed again.
    #[error("{0}; nothing was imported (what had been written was removed again)")]
    Undone(Box<TransferError>),
    /// The import failed, and removing what it had written failed too.
    #[error(
        "{failure}; removing what was written failed too ({undo}): the store holds part of \
         the file and will not be served. Once the store works, run \
         `minitwit import --in FILE --undo` with the same file"
    )]
    UndoFailed {
        /// Why the import failed.
        failure: Box<TransferError>,
        /// Why the undo failed.
        undo: Box<TransferError>,
    },
}

/// Shorthand for transfer results.
pub type TransferResult<T> = Result<T, TransferError>;
