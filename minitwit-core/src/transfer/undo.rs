//! All-or-nothing imports: the mark of an import in progress, and the undo of a failed
//! one.
//!
//! Before its first batch an import sets the setting [`IMPORT_MARK`] (atomically: a
//! second import, or one over a crashed one, is refused); [`Store::end_import`] removes
//! it in the step that records `latest`. If anything fails in between, the records
//! already written are removed again ([`Store::remove_imported`]), read back from the
//! same file, and the mark goes with them. If the process dies first, the mark stays:
//! [`refuse_unfinished_import`] then keeps the store from being served until
//! [`undo_import`] has removed the file's records.

use super::record::Record;
use super::{ExportReader, ExportSource, TransferError, TransferOptions, TransferResult};
use crate::model::ImportBatch;
use crate::store::{IMPORT_MARK, Store};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fails with [`TransferError::UnfinishedImport`] if an import into `store` started and
/// never ended (the process died): the store holds part of a file.
pub async fn refuse_unfinished_import(store: &Arc<dyn Store>) -> TransferResult<()> {
    match store.setting(IMPORT_MARK).await? {
        Some(mark) => Err(TransferError::UnfinishedImport(String::from_utf8_lossy(&mark).into())),
        None => Ok(()),
    }
}

/// Marks `store` as being imported into from `name`, unless it is marked already.
pub(super) async fn begin(store: &Arc<dyn Store>, name: &str) -> TransferResult<()> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mark = format!("{name}, started at unix time {since} by process {}", std::process::id());
    let stored = store.init_setting(IMPORT_MARK, mark.as_bytes()).await?;
    if stored == mark.as_bytes() {
        Ok(())
    } else {
        Err(TransferError::UnfinishedImport(String::from_utf8_lossy(&stored).into()))
    }
}

/// After `failure`, removes the first `written` records of `source` (the ones the
/// import wrote) and the mark. The error says whether the store is back as it was.
pub(super) async fn after_failure(
    store: &Arc<dyn Store>,
    source: &dyn ExportSource,
    written: u64,
    options: TransferOptions,
    failure: TransferError,
) -> TransferError {
    match remove_records(store, source, written, options).await {
        Ok(()) => TransferError::Undone(Box::new(failure)),
        Err(undo) => TransferError::UndoFailed { failure: Box::new(failure), undo: Box::new(undo) },
    }
}

/// `import --undo`: removes every record of `source` from a store whose import of it
/// never ended, and the mark. Refused when no import is unfinished, so it cannot remove
/// data that was imported completely.
pub async fn undo_import(
    store: &Arc<dyn Store>,
    source: &dyn ExportSource,
    options: TransferOptions,
) -> TransferResult<()> {
    if refuse_unfinished_import(store).await.is_ok() {
        return Err(TransferError::NothingToUndo);
    }
    remove_records(store, source, u64::MAX, options).await
}

/// Removes the first `count` records of `source` in batches, then ends the import.
async fn remove_records(
    store: &Arc<dyn Store>,
    source: &dyn ExportSource,
    mut count: u64,
    options: TransferOptions,
) -> TransferResult<()> {
    let mut reader = ExportReader::start(source.open().await?).await?;
    let mut batch = ImportBatch::default();
    let mut len = 0;
    while count > 0 {
        match reader.next().await? {
            Some(Record::User(u)) => batch.users.push(u),
            Some(Record::Message(m)) => batch.messages.push(m),
            Some(Record::Follow(f)) => batch.follows.push(f),
            Some(Record::Latest { .. }) | None => break,
        }
        count -= 1;
        len += 1;
        if len >= options.chunk_size {
            store.remove_imported(std::mem::take(&mut batch)).await?;
            len = 0;
        }
    }
    store.remove_imported(batch).await?;
    Ok(store.end_import(None).await?)
}
