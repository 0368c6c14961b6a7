//! Opening a store after a crash: the redo log's records that sled had not made durable
//! are applied again, in order, past the last one sled holds (see `redo`), then sled is
//! flushed and the log emptied.

use crate::redo::{LogFile, decode_ops, read_records};
use crate::trees::{Trees, backend};
use minitwit_core::store::{StoreError, StoreResult};
use std::path::Path;

/// What opening the store found in the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Records applied to sled again (sled had not made them durable itself).
    pub(crate) replayed: u64,
    /// Bytes of a torn last record, dropped.
    pub(crate) torn_bytes: usize,
    /// The last sequence number committed, in sled or in the log.
    pub(crate) last_seq: u64,
}

/// Opens the log in `dir` (creating it), applies to sled the records past what sled
/// holds, makes sled durable and empties the log (then `flush_sled` has run).
pub(crate) fn recover(
    dir: &Path,
    trees: &Trees,
    checkpoint_bytes: u64,
    flush_sled: impl FnOnce() -> Result<(), String>,
) -> StoreResult<(LogFile, Recovery)> {
    let io = |what: &str, e: std::io::Error| backend(format!("the redo log: {what}: {e}"));
    let (mut log, bytes) = LogFile::open(dir, checkpoint_bytes).map_err(|e| io("reading", e))?;
    let recovery = replay(&bytes, trees)?;
    report(&recovery, dir);
    if !log.is_empty() {
        flush_sled().map_err(backend)?;
        log.truncate().map_err(|e| io("emptying", e))?;
    }
    Ok((log, recovery))
}

/// Applies the records of `bytes` past sled's own sequence number, in order.
fn replay(bytes: &[u8], trees: &Trees) -> StoreResult<Recovery> {
    let (records, torn_bytes) = read_records(bytes);
    let in_sled = trees.redo_seq()?;
    let mut recovery = Recovery { replayed: 0, torn_bytes, last_seq: in_sled };
    for record in records.iter().filter(|record| record.seq > in_sled) {
        if record.seq != recovery.last_seq + 1 {
            return Err(missing_records(recovery.last_seq, record.seq));
        }
        let ops = decode_ops(record.payload).ok_or_else(|| {
            backend(format!("the redo log's record {} does not decode", record.seq))
        })?;
        trees.apply_record(record.seq, &ops)?;
        recovery.replayed += 1;
        recovery.last_seq = record.seq;
    }
    Ok(recovery)
}

fn missing_records(store_at: u64, log_at: u64) -> StoreError {
    backend(format!(
        "the redo log continues at record {log_at} but the store holds records up to \
         {store_at} only: records are missing, restore from a backup"
    ))
}

fn report(recovery: &Recovery, dir: &Path) {
    if recovery.torn_bytes > 0 {
        tracing::warn!(
            store = %dir.display(),
            torn_bytes = recovery.torn_bytes,
            "the redo log ended in a torn record (a crash during a write): dropped; \
             nothing in it had been acknowledged"
        );
    }
    if recovery.replayed > 0 {
        tracing::info!(
            store = %dir.display(),
            records = recovery.replayed,
            "replayed the redo log's records that sled had not made durable"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redo::RedoLog;
    use minitwit_core::model::{NewMessage, NewUser};
    use minitwit_core::{Email, MessageText, Username};
    use std::sync::Arc;

    /// Trees of a new sled database in `dir`, logging to a fresh redo log.
    fn logged_trees(dir: &Path) -> (Trees, Arc<RedoLog>) {
        let db = sled::Config::new().path(dir).open().expect("a test database");
        let mut trees = Trees::open(&db).expect("trees");
        let log = Arc::new(RedoLog::new(0));
        trees.log = Some(Arc::clone(&log));
        (trees, log)
    }

    /// Trees of a new sled database in `dir`, logging nothing.
    fn plain_trees(dir: &Path) -> Trees {
        Trees::open(&sled::Config::new().path(dir).open().expect("a test database")).expect("trees")
    }

    /// A little of everything a store writes; the log's bytes afterwards.
    fn workload(trees: &Trees, log: &RedoLog) -> Vec<u8> {
        let user = |name: &str| NewUser {
            username: Username::parse(name).expect("a name"),
            email: Email::parse(&format!("{name}@example.com")).expect("an email"),
            pw_hash: "hash".into(),
        };
        let (a, b) =
            (trees.create_user(&user("a")).unwrap(), trees.create_user(&user("b")).unwrap());
        trees.follow(a.id, b.id).unwrap();
        for i in 0..5 {
            let text = MessageText::parse(&format!("message {i}")).unwrap();
            let id = trees.add_message(&NewMessage { author_id: b.id, text, pub_date: i }).unwrap();
            if i % 2 == 0 {
                trees.set_flagged(id, true).unwrap();
            }
            trees.set_latest(i).unwrap();
        }
        trees.unfollow(a.id, b.id).unwrap();
        trees.bump_session_generation(a.id).unwrap();
        assert!(trees.delete_user(a.id).unwrap());
        let refused = trees.follow(a.id, b.id);
        assert!(refused.is_err(), "a refused write is not logged");
        log.take()
    }

    #[test]
    fn replaying_the_log_onto_any_earlier_state_gives_the_same_store() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let (written, log) = logged_trees(dirs[0].path());
        let bytes = workload(&written, &log);
        let (records, torn) = read_records(&bytes);
        assert_eq!(torn, 0);
        // A store that lost everything the log holds (a power cut before any checkpoint).
        let empty = plain_trees(dirs[1].path());
        let recovery = replay(&bytes, &empty).unwrap();
        assert_eq!(recovery.replayed, records.len() as u64);
        assert_eq!(empty.dump(), written.dump());
        // A store that kept a prefix: only the records past it are applied.
        let prefix = plain_trees(dirs[2].path());
        let kept = records.len() / 2;
        let end = bytes.len() - records[kept..].iter().map(|r| 16 + r.payload.len()).sum::<usize>();
        replay(&bytes[..end], &prefix).unwrap();
        assert_eq!(replay(&bytes, &prefix).unwrap().replayed, (records.len() - kept) as u64);
        assert_eq!(prefix.dump(), written.dump());
        // A store that holds more than the log (sled's buffers reached the disk before
        // the log's last records did): no record is applied over the later state.
        let everything = written.dump();
        assert_eq!(replay(&bytes[..end], &written).unwrap().replayed, 0);
        assert_eq!(written.dump(), everything);
    }
}
