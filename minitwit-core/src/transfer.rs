//! Moving whole stores: export to a portable file, import from one, copy between two
//! stores, and [`Fingerprint`]s to prove that nothing was lost on the way.
//!
//! - [`fingerprint`](mod@fingerprint): counts and a checksum over a canonical encoding.
//! - [`file`](mod@file): the export file format (versioned JSON Lines with a checking trailer).
//!
//! Everything streams: stores are read in id order in chunks ([`StoreReader`]) and
//! written in [`ImportBatch`] chunks (users first, then messages, then follows, then
//! latest), so memory stays bounded whatever the size of the data. Writing into a store
//! that holds data is refused unless [`TransferOptions::allow_non_empty`] is set, and
//! every import and copy ends with a verification that fails loudly on any difference.

pub mod file;
pub mod fingerprint;

pub use file::{ExportReader, ExportWriter, Record};
pub use fingerprint::{Fingerprint, FingerprintBuilder};

use crate::model::{Counts, Follow, ImportBatch, Message, MessageId, User, UserId};
use crate::store::{Store, StoreError};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncWrite, BufReader};

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
}

/// Shorthand for transfer results.
pub type TransferResult<T> = Result<T, TransferError>;

/// How a transfer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Records per read and per [`ImportBatch`].
    pub chunk_size: usize,
    /// Write into a target that holds data (its ids must not collide with the source's).
    pub allow_non_empty: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self { chunk_size: 1000, allow_non_empty: false }
    }
}

/// Which kind of record a transfer is moving, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Users.
    Users,
    /// Messages.
    Messages,
    /// Follow pairs.
    Follows,
}

/// Receives progress while a transfer runs (the CLI draws progress bars). Every method
/// has a no-op default; `()` reports nothing.
pub trait Progress {
    /// The transfer starts; `totals` are the source's counts when known.
    fn start(&mut self, _totals: Counts) {}
    /// `n` more records of `section` were moved.
    fn advance(&mut self, _section: Section, _n: u64) {}
    /// The data is written; the verification starts.
    fn verifying(&mut self) {}
}

impl Progress for () {}

/// One chunk of a store in export order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Users by id ascending.
    Users(Vec<User>),
    /// Messages by id ascending.
    Messages(Vec<Message>),
    /// Follow pairs ascending.
    Follows(Vec<Follow>),
    /// The latest value, last.
    Latest(i64),
}

impl Chunk {
    /// The records of this chunk, in order.
    pub fn into_records(self) -> Vec<Record> {
        match self {
            Self::Users(users) => users.into_iter().map(Record::User).collect(),
            Self::Messages(messages) => messages.into_iter().map(Record::Message).collect(),
            Self::Follows(follows) => follows.into_iter().map(Record::Follow).collect(),
            Self::Latest(latest) => vec![Record::Latest { latest }],
        }
    }
}

/// Where a [`StoreReader`] is.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Users(Option<UserId>),
    Messages(Option<MessageId>),
    Follows(Option<Follow>),
    Latest,
    Done,
}

/// Reads a whole store in export order, one chunk at a time, with the store's
/// `users_after` / `messages_after` / `follows_after` keyset reads.
pub struct StoreReader {
    store: Arc<dyn Store>,
    chunk_size: usize,
    stage: Stage,
}

impl StoreReader {
    /// A reader at the start of `store`.
    pub fn new(store: Arc<dyn Store>, chunk_size: usize) -> Self {
        Self { store, chunk_size: chunk_size.max(1), stage: Stage::Users(None) }
    }

    /// The next non-empty chunk, or `None` when everything was read.
    pub async fn next(&mut self) -> TransferResult<Option<Chunk>> {
        loop {
            let (chunk, next) = self.read_stage().await?;
            self.stage = next;
            if chunk.is_some() || matches!(self.stage, Stage::Done) {
                return Ok(chunk);
            }
        }
    }

    /// Reads at the current stage: the chunk found, if any, and the stage after it.
    async fn read_stage(&self) -> TransferResult<(Option<Chunk>, Stage)> {
        let n = self.chunk_size;
        let store = &self.store;
        Ok(match self.stage {
            Stage::Users(after) => {
                let users = store.users_after(after, n).await?;
                let next = match users.last() {
                    Some(last) if users.len() == n => Stage::Users(Some(last.id)),
                    _ => Stage::Messages(None),
                };
                (non_empty(users).map(Chunk::Users), next)
            }
            Stage::Messages(after) => {
                let messages = store.messages_after(after, n).await?;
                let next = match messages.last() {
                    Some(last) if messages.len() == n => Stage::Messages(Some(last.id)),
                    _ => Stage::Follows(None),
                };
                (non_empty(messages).map(Chunk::Messages), next)
            }
            Stage::Follows(after) => {
                let follows = store.follows_after(after, n).await?;
                let next = match follows.last() {
                    Some(last) if follows.len() == n => Stage::Follows(Some(*last)),
                    _ => Stage::Latest,
                };
                (non_empty(follows).map(Chunk::Follows), next)
            }
            Stage::Latest => (store.latest().await?.map(Chunk::Latest), Stage::Done),
            Stage::Done => (None, Stage::Done),
        })
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// The fingerprint of everything `store` holds, read in chunks.
pub async fn fingerprint(store: &Arc<dyn Store>) -> TransferResult<Fingerprint> {
    let mut reader = StoreReader::new(Arc::clone(store), TransferOptions::default().chunk_size);
    let mut builder = FingerprintBuilder::new();
    while let Some(chunk) = reader.next().await? {
        for record in chunk.into_records() {
            builder.record(&record);
        }
    }
    Ok(builder.finish())
}

/// Writes everything `store` holds to `out` as an export file; returns its fingerprint.
pub async fn export<W: AsyncWrite + Unpin>(
    store: &Arc<dyn Store>,
    out: W,
    options: TransferOptions,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    progress.start(store.counts().await?);
    let mut writer = ExportWriter::start(out, store.backend()).await?;
    let mut reader = StoreReader::new(Arc::clone(store), options.chunk_size);
    while let Some(chunk) = reader.next().await? {
        report(progress, &chunk);
        for record in chunk.into_records() {
            writer.record(&record).await?;
        }
    }
    writer.finish().await
}

/// Reads a whole export file and checks it (header, order, trailer) without writing
/// anything; returns its fingerprint.
pub async fn check_file<R: AsyncBufRead + Unpin>(input: R) -> TransferResult<Fingerprint> {
    ExportReader::start(input).await?.check_to_end().await
}

/// Imports an export file into `store`: checks the whole file first, so a truncated or
/// garbled file writes nothing, then imports it and verifies the result.
pub async fn import_file(
    store: &Arc<dyn Store>,
    path: &Path,
    options: TransferOptions,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    let open =
        || async { Ok::<_, TransferError>(BufReader::new(tokio::fs::File::open(path).await?)) };
    let checked = check_file(open().await?).await?;
    progress.start(checked.counts);
    import_records(store, open().await?, options, progress).await
}

/// Imports an export file from `input` into `store` in [`ImportBatch`] chunks, then
/// verifies. The file is checked as it is read; call [`check_file`] first (or use
/// [`import_file`]) so that a bad file writes nothing.
pub async fn import<R: AsyncBufRead + Unpin>(
    store: &Arc<dyn Store>,
    input: R,
    options: TransferOptions,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    progress.start(Counts::default());
    import_records(store, input, options, progress).await
}

/// The import proper, after progress was started.
async fn import_records<R: AsyncBufRead + Unpin>(
    store: &Arc<dyn Store>,
    input: R,
    options: TransferOptions,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    let before = guard_target(store, options).await?;
    let mut reader = ExportReader::start(input).await?;
    let mut batch = Batcher::new(Arc::clone(store), options.chunk_size);
    while let Some(record) = reader.next().await? {
        if let Some(section) = section_of(&record) {
            progress.advance(section, 1);
        }
        batch.push(record).await?;
    }
    batch.finish().await?;
    let expected = reader.fingerprint()?;
    progress.verifying();
    verify(store, before, &expected).await?;
    Ok(expected)
}

/// Copies everything `from` holds into `to`, chunk by chunk, then verifies that `to`
/// holds exactly what `from` does (fingerprints equal). Returns the fingerprint.
pub async fn copy(
    from: &Arc<dyn Store>,
    to: &Arc<dyn Store>,
    options: TransferOptions,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    let before = guard_target(to, options).await?;
    progress.start(from.counts().await?);
    let mut reader = StoreReader::new(Arc::clone(from), options.chunk_size);
    while let Some(chunk) = reader.next().await? {
        report(progress, &chunk);
        write_chunk(to, chunk).await?;
    }
    progress.verifying();
    let expected = fingerprint(from).await?;
    verify(to, before, &expected).await?;
    Ok(expected)
}

fn section_of(record: &Record) -> Option<Section> {
    match record {
        Record::User(_) => Some(Section::Users),
        Record::Message(_) => Some(Section::Messages),
        Record::Follow(_) => Some(Section::Follows),
        Record::Latest { .. } => None,
    }
}

fn report(progress: &mut dyn Progress, chunk: &Chunk) {
    let (section, n) = match chunk {
        Chunk::Users(v) => (Section::Users, v.len()),
        Chunk::Messages(v) => (Section::Messages, v.len()),
        Chunk::Follows(v) => (Section::Follows, v.len()),
        Chunk::Latest(_) => return,
    };
    progress.advance(section, n as u64);
}

async fn write_chunk(store: &Arc<dyn Store>, chunk: Chunk) -> TransferResult<()> {
    let batch = match chunk {
        Chunk::Users(users) => ImportBatch { users, ..ImportBatch::default() },
        Chunk::Messages(messages) => ImportBatch { messages, ..ImportBatch::default() },
        Chunk::Follows(follows) => ImportBatch { follows, ..ImportBatch::default() },
        Chunk::Latest(latest) => return Ok(store.set_latest(latest).await?),
    };
    Ok(store.import(batch).await?)
}

/// What the target held before writing: `None` if it was empty. Refuses a non-empty
/// target unless allowed.
async fn guard_target(
    store: &Arc<dyn Store>,
    options: TransferOptions,
) -> TransferResult<Option<Counts>> {
    let counts = store.counts().await?;
    if counts == Counts::default() && store.latest().await?.is_none() {
        return Ok(None);
    }
    if options.allow_non_empty {
        Ok(Some(counts))
    } else {
        Err(TransferError::TargetNotEmpty(counts))
    }
}

/// Checks the target after writing. An empty target must now have exactly the expected
/// fingerprint; a target that held data must have grown by exactly the expected counts.
async fn verify(
    store: &Arc<dyn Store>,
    before: Option<Counts>,
    expected: &Fingerprint,
) -> TransferResult<()> {
    let actual = fingerprint(store).await?;
    let ok = match before {
        None => actual == *expected,
        Some(before) => actual.counts == add(before, expected.counts),
    };
    if ok {
        Ok(())
    } else {
        Err(TransferError::Mismatch {
            expected: Box::new(expected.clone()),
            actual: Box::new(actual),
        })
    }
}

fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        users: a.users + b.users,
        messages: a.messages + b.messages,
        follows: a.follows + b.follows,
        flagged: a.flagged + b.flagged,
    }
}

/// Collects records from a file into [`ImportBatch`]es of at most `size` records.
struct Batcher {
    store: Arc<dyn Store>,
    size: usize,
    batch: ImportBatch,
    len: usize,
}

impl Batcher {
    fn new(store: Arc<dyn Store>, size: usize) -> Self {
        Self { store, size: size.max(1), batch: ImportBatch::default(), len: 0 }
    }

    async fn push(&mut self, record: Record) -> TransferResult<()> {
        match record {
            Record::User(u) => self.batch.users.push(u),
            Record::Message(m) => self.batch.messages.push(m),
            Record::Follow(f) => self.batch.follows.push(f),
            Record::Latest { latest } => {
                // Latest comes last: everything before it is written first.
                self.flush().await?;
                return Ok(self.store.set_latest(latest).await?);
            }
        }
        self.len += 1;
        if self.len >= self.size { self.flush().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> TransferResult<()> {
        if self.len > 0 {
            self.store.import(std::mem::take(&mut self.batch)).await?;
            self.len = 0;
        }
        Ok(())
    }

    async fn finish(mut self) -> TransferResult<()> {
        self.flush().await
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests;
