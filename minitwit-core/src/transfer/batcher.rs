//! [`Batcher`]: records read from an export file, written into a store in
//! [`ImportBatch`]es of bounded size.

use super::TransferResult;
use super::record::Record;
use crate::model::ImportBatch;
use crate::store::Store;
use std::sync::Arc;

/// Collects records from a file into [`ImportBatch`]es of at most `size` records, and
/// counts the records written, so that a failed import can remove exactly those.
pub(super) struct Batcher {
    store: Arc<dyn Store>,
    size: usize,
    batch: ImportBatch,
    len: usize,
    /// Records in batches the store accepted.
    pub(super) written: u64,
    /// The file's `latest`, kept for the step that ends the import.
    pub(super) latest: Option<i64>,
}

impl Batcher {
    /// A batcher writing into `store`, `size` records at a time.
    pub(super) fn new(store: Arc<dyn Store>, size: usize) -> Self {
        let batch = ImportBatch::default();
        Self { store, size: size.max(1), batch, len: 0, written: 0, latest: None }
    }

    /// Adds a record, writing the batch when it is full (`latest` is only kept).
    pub(super) async fn push(&mut self, record: Record) -> TransferResult<()> {
        match record {
            Record::User(u) => self.batch.users.push(u),
            Record::Message(m) => self.batch.messages.push(m),
            Record::Follow(f) => self.batch.follows.push(f),
            Record::Latest { latest } => {
                self.latest = Some(latest);
                return Ok(());
            }
        }
        self.len += 1;
        if self.len >= self.size { self.flush().await } else { Ok(()) }
    }

    /// Writes the pending records.
    pub(super) async fn flush(&mut self) -> TransferResult<()> {
        if self.len > 0 {
            self.store.import(std::mem::take(&mut self.batch)).await?;
            self.written += self.len as u64;
            self.len = 0;
        }
        Ok(())
    }
}
