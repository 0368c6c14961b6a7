//! Moving whole stores: export to a portable file, import from one, copy between two
//! stores, and [`Fingerprint`]s to prove that nothing was lost on the way.
//!
//! - [`fingerprint`](mod@fingerprint): counts and a checksum over a canonical encoding.
//! - [`file`](mod@file): the export file format (versioned JSON Lines with a checking trailer).
//! - `reader`: a store read in export order ([`StoreReader`]), and its [`fingerprint()`].
//! - `batcher`: file records written in [`ImportBatch`]es.
//! - `verify`: the target's guard before writing and its verification after.
//! - `error`, `options`, `progress`: [`TransferError`], [`TransferOptions`], [`Progress`].
//!
//! This module itself holds the operations: [`export`], [`check_file`], [`import_file`],
//! [`import`] and [`copy`].
//!
//! Everything streams: stores are read in id order in chunks ([`StoreReader`]) and
//! written in [`ImportBatch`] chunks (users first, then messages, then follows, then
//! latest), so memory stays bounded whatever the size of the data. Writing into a store
//! that holds data is refused unless [`TransferOptions::allow_non_empty`] is set, and
//! every import and copy ends with a verification that fails loudly on any difference.

mod batcher;
mod error;
pub mod file;
pub mod fingerprint;
mod options;
mod progress;
mod reader;
mod verify;

pub use error::{TransferError, TransferResult};
pub use file::{ExportReader, ExportWriter, Record};
pub use fingerprint::{Fingerprint, FingerprintBuilder};
pub use options::TransferOptions;
pub use progress::{Progress, Section};
pub use reader::{Chunk, StoreReader, fingerprint};

use crate::model::{Counts, ImportBatch};
use crate::store::Store;
use batcher::Batcher;
use progress::{report, section_of};
use std::path::Path;
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
