//! [`Batcher`]: records read from an export file, written into a store in
//! [`ImportBatch`]es of bounded size.

use super::TransferResult;
use super::file::Record;
use crate::model::ImportBatch;
use crate::store::Store;
use std::sync::Arc;

/// Collects records from a file into [`ImportBatch`]es of at most `size` records.
pub(super) struct Batcher {
    store: Arc<dyn Store>,
    size: usize,
    batch: ImportBatch,
    len: usize,
}

impl Batcher {
    /// A batcher writing into `store`, `size` records at a time.
    pub(super) fn new(store: Arc<dyn Store>, size: usize) -> Self {
        Self { store, size: size.max(1), batch: ImportBatch::default(), len: 0 }
    }

    /// Adds a record, writing the batch when it is full (and before `latest`).
    pub(super) async fn push(&mut self, record: Record) -> TransferResult<()> {
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

    /// Writes the pending records.
    async fn flush(&mut self) -> TransferResult<()> {
        if self.len > 0 {
            self.store.import(std::mem::take(&mut self.batch)).await?;
            self.len = 0;
        }
        Ok(())
    }

    /// Writes what is left.
    pub(super) async fn finish(mut self) -> TransferResult<()> {
        self.flush().await
    }
}
