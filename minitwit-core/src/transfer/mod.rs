//! Moving whole stores: export to a portable file, import from one, copy between two
//! stores, and [`Fingerprint`]s to prove that nothing was lost on the way.
//!
//! - [`fingerprint`](mod@fingerprint): counts and a checksum over a canonical encoding.
//! - [`file`](mod@file): the export file format (versioned JSON Lines with a checking trailer).
//! - `record`: [`Record`], one record of a store as it travels.
//! - `reader`: a store read in export order ([`StoreReader`]), and its [`fingerprint()`].
//! - `batcher`: file records written in [`ImportBatch`]es.
//! - `verify`: the target's guard before writing and its verification after.
//! - `error`, `options`, `progress`: [`TransferError`], [`TransferOptions`], [`Progress`].
//!
//! - `undo`: all-or-nothing imports (the mark of an import in progress, and the undo).
//!
//! This module itself holds the operations: [`export`], [`check_file`], [`import`]
//! (from an [`ExportSource`]) and [`copy`].
//!
//! Everything streams: stores are read in id order in chunks ([`StoreReader`]) and
//! written in [`ImportBatch`] chunks (users first, then messages, then follows, then
//! latest), so memory stays bounded whatever the size of the data. Writing into a store
//! that holds data is refused unless [`TransferOptions::allow_non_empty`] is set, and
//! every import and copy ends with a verification that fails loudly on any difference.
//! An import is all or nothing: after a failure the target holds what it held before.

mod batcher;
mod error;
pub mod file;
pub mod fingerprint;
mod options;
mod progress;
mod reader;
mod record;
mod undo;
mod verify;

pub use error::{TransferError, TransferResult};
pub use file::{ExportReader, ExportWriter};
pub use fingerprint::{Fingerprint, FingerprintBuilder};
pub use options::TransferOptions;
pub use progress::{Progress, Section};
pub use reader::{Chunk, StoreReader, fingerprint};
pub use record::Record;
pub use undo::{refuse_unfinished_import, undo_import};

use crate::model::{Counts, ImportBatch};
use crate::store::Store;
use batcher::Batcher;
use progress::{report, section_of};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncWrite, BufReader};
use verify::{guard_target, verify};

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

/// An export file that can be read from the start as often as needed: an import reads
/// it to check it, to write it, and, after a failure, to remove what it wrote.
#[async_trait::async_trait]
pub trait ExportSource: Send + Sync {
    /// What to call it in messages (and in the mark of an import in progress).
    fn name(&self) -> String;
    /// A new reader from its first byte.
    async fn open(&self) -> TransferResult<Box<dyn AsyncBufRead + Unpin + Send>>;
}

/// A plain (uncompressed) export file.
#[async_trait::async_trait]
impl ExportSource for PathBuf {
    fn name(&self) -> String {
        self.display().to_string()
    }

    async fn open(&self) -> TransferResult<Box<dyn AsyncBufRead + Unpin + Send>> {
        Ok(Box::new(BufReader::new(tokio::fs::File::open(self).await?)))
    }
}

/// An export held in memory (tests).
#[async_trait::async_trait]
impl ExportSource for Vec<u8> {
    fn name(&self) -> String {
        format!("an export of {} bytes", self.len())
    }

    async fn open(&self) -> TransferResult<Box<dyn AsyncBufRead + Unpin + Send>> {
        Ok(Box::new(std::io::Cursor::new(self.clone())))
    }
}

/// Imports an export file into `store`, all or nothing: the whole file is checked
/// first, so a truncated or garbled file writes nothing; then it is written in
/// [`ImportBatch`] chunks under the mark of an import in progress (see
/// [`refuse_unfinished_import`]), and verified. If writing or verifying fails, what was
/// written is removed again ([`TransferError::Undone`]).
pub async fn import(
    store: &Arc<dyn Store>,
    source: &dyn ExportSource,
    options: TransferOptions,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    let checked = check_file(source.open().await?).await?;
    progress.start(checked.counts);
    refuse_unfinished_import(store).await?;
    let before = guard_target(store, options).await?;
    undo::begin(store, &source.name()).await?;
    let mut batch = Batcher::new(Arc::clone(store), options.chunk_size);
    match write_and_verify(store, source, before, &mut batch, progress).await {
        Ok(fingerprint) => Ok(fingerprint),
        Err(failure) => {
            Err(undo::after_failure(store, source, batch.written, options, failure).await)
        }
    }
}

/// The import proper, under the mark: writes every record, verifies, then records
/// `latest` and removes the mark in one step.
async fn write_and_verify(
    store: &Arc<dyn Store>,
    source: &dyn ExportSource,
    before: Option<Counts>,
    batch: &mut Batcher,
    progress: &mut dyn Progress,
) -> TransferResult<Fingerprint> {
    let mut reader = ExportReader::start(source.open().await?).await?;
    // `latest` is recorded last, with the end of the import: until then the target
    // holds its own (none, when it was empty), so the records are verified without it.
    let mut records_only = FingerprintBuilder::new();
    while let Some(record) = reader.next().await? {
        if let Some(section) = section_of(&record) {
            progress.advance(section, 1);
            records_only.record(&record);
        }
        batch.push(record).await?;
    }
    batch.flush().await?;
    let expected = reader.fingerprint()?;
    progress.verifying();
    verify(store, before, &records_only.finish()).await?;
    store.end_import(batch.latest).await?;
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

/// Writes one chunk read from another store.
async fn write_chunk(store: &Arc<dyn Store>, chunk: Chunk) -> TransferResult<()> {
    let batch = match chunk {
        Chunk::Users(users) => ImportBatch { users, ..ImportBatch::default() },
        Chunk::Messages(messages) => ImportBatch { messages, ..ImportBatch::default() },
        Chunk::Follows(follows) => ImportBatch { follows, ..ImportBatch::default() },
        Chunk::Latest(latest) => return Ok(store.set_latest(latest).await?),
    };
    Ok(store.import(batch).await?)
}

#[cfg(all(test, feature = "testkit"))]
mod tests;
