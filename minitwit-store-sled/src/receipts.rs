//! Keyed writes' receipts (see `minitwit_core::idempotency`), in the `receipts` tree:
//!
//! - `k`, scope, NUL, key → recorded_at (8 bytes), status (2), fingerprint (32), body;
//! - `t`, recorded_at (8 bytes, ordered), scope, NUL, key → empty: the same keys by
//!   recording time, so the sweep reads only what has expired.
//!
//! A receipt is written in the transaction of its write, so both are applied and made
//! durable together.

use crate::keys::{self, Found};
use crate::trees::{EMPTY, Trees, Tx, TxResult, abort, backend, corrupt};
use minitwit_core::idempotency::{Receipt, ReceiptKey, Write};
use minitwit_core::store::StoreResult;
use sled::IVec;

/// Prefix of a receipt by key.
const BY_KEY: u8 = b'k';
/// Prefix of a key by recording time.
const BY_TIME: u8 = b't';
/// recorded_at, status and fingerprint, before the body.
const HEAD: usize = 8 + 2 + 32;

impl Trees {
    /// The receipt under `key`, unless it was recorded before `since`.
    pub(crate) fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>> {
        let stored = self.receipts.get(by_key(key)).map_err(backend)?;
        let receipt = stored.map(|bytes| decode(&bytes)).transpose()?;
        Ok(receipt.filter(|r| r.recorded_at >= since))
    }

    /// `write` and its receipt in one transaction, unless a live receipt is kept under
    /// `key`: then that receipt, and nothing written ([`Applied::Kept`]). The caller
    /// holds the write lock.
    pub(crate) fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: &Write,
    ) -> StoreResult<Applied> {
        let kept = self.transaction(|tx| {
            let kept = tx.receipts.get(by_key(key))?;
            let kept = kept.map(|bytes| decode(&bytes)).transpose().map_err(abort)?;
            if let Some(live) = kept.as_ref().filter(|r| r.recorded_at >= since) {
                return Ok(Applied::Kept(live.clone()));
            }
            let posted = tx.apply(write)?;
            if let Some(expired) = kept {
                tx.receipts.remove(by_time(expired.recorded_at, key))?;
            }
            tx.receipts.insert(by_key(key), encode(receipt))?;
            tx.receipts.insert(by_time(receipt.recorded_at, key), EMPTY)?;
            Ok(Applied::Now { posted })
        })?;
        if let Applied::Now { posted } = &kept {
            self.applied_to_homes(write, posted.clone());
        }
        Ok(kept)
    }

    /// Tells the kept home timelines (see `home`) about a keyed write, once applied
    /// (`posted`: what a post stored).
    fn applied_to_homes(&self, write: &Write, posted: Option<Found>) {
        match *write {
            Write::Register(_) => {}
            Write::Post(ref message) => {
                if let Some(stored) = posted {
                    let author = message.author_id;
                    self.after_apply(move |trees| trees.homes.posted(author, stored));
                }
            }
            Write::Follow { follower, followee } => {
                self.after_apply(move |trees| {
                    trees.homes.follow_changed(follower, followee, true);
                });
            }
            Write::Unfollow { follower, followee } => {
                self.after_apply(move |trees| {
                    trees.homes.follow_changed(follower, followee, false);
                });
            }
        }
    }

    /// Whether any receipt was recorded before `before`.
    pub(crate) fn any_receipt_before(&self, before: i64) -> StoreResult<bool> {
        let first = self.receipts.range(vec![BY_TIME]..by_time_prefix(before)).next();
        Ok(first.transpose().map_err(backend)?.is_some())
    }

    /// Removes up to `limit` receipts recorded before `before`, oldest first, in one
    /// transaction; how many. The caller holds the write lock.
    pub(crate) fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize> {
        let end = by_time_prefix(before);
        let expired: Vec<IVec> = self
            .receipts
            .range(vec![BY_TIME]..end)
            .take(limit)
            .map(|item| item.map(|(key, _)| key).map_err(backend))
            .collect::<StoreResult<_>>()?;
        self.transaction(|tx| {
            for time_key in &expired {
                tx.receipts.remove(time_key)?;
                let mut key = time_key.to_vec();
                key.splice(..1 + keys::FIELD, [BY_KEY]);
                tx.receipts.remove(key)?;
            }
            Ok(expired.len())
        })
    }
}

impl Tx<'_> {
    /// Applies one of the writes a key can carry; what a post stored.
    fn apply(&self, write: &Write) -> TxResult<Option<Found>> {
        match write {
            Write::Register(user) => self.create_user(user).map(|_| None),
            Write::Post(message) => self.add_message(message).map(Some),
            Write::Follow { follower, followee } => {
                self.follow(*follower, *followee).map(|()| None)
            }
            Write::Unfollow { follower, followee } => {
                self.remove_follow(*follower, *followee).map(|()| None)
            }
        }
    }
}

/// What [`Trees::apply_once`] did.
#[derive(Debug)]
pub(crate) enum Applied {
    /// A live receipt was kept under the key: this, and nothing written.
    Kept(Receipt),
    /// The write was applied, and its receipt kept.
    Now {
        /// What a post stored: the message's position and record.
        posted: Option<Found>,
    },
}

/// `k`, scope, NUL, key.
fn by_key(key: &ReceiptKey) -> Vec<u8> {
    let mut bytes = vec![BY_KEY];
    push_key(&mut bytes, key);
    bytes
}

/// `t`, recorded_at, scope, NUL, key.
fn by_time(recorded_at: i64, key: &ReceiptKey) -> Vec<u8> {
    let mut bytes = by_time_prefix(recorded_at);
    push_key(&mut bytes, key);
    bytes
}

/// `t`, recorded_at: every key recorded earlier sorts before it.
fn by_time_prefix(recorded_at: i64) -> Vec<u8> {
    let mut bytes = vec![BY_TIME];
    bytes.extend_from_slice(&keys::int(recorded_at));
    bytes
}

fn push_key(bytes: &mut Vec<u8>, key: &ReceiptKey) {
    bytes.extend_from_slice(key.scope.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.key.as_bytes());
}

fn encode(receipt: &Receipt) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEAD + receipt.body.len());
    bytes.extend_from_slice(&receipt.recorded_at.to_be_bytes());
    bytes.extend_from_slice(&receipt.status.to_be_bytes());
    bytes.extend_from_slice(&receipt.fingerprint);
    bytes.extend_from_slice(&receipt.body);
    bytes
}

fn decode(bytes: &[u8]) -> StoreResult<Receipt> {
    let bad = || corrupt("a receipt");
    let (head, body) = (bytes.get(..HEAD).ok_or_else(bad)?, &bytes[HEAD..]);
    let recorded_at = i64::from_be_bytes(head[..8].try_into().map_err(|_| bad())?);
    let status = u16::from_be_bytes(head[8..10].try_into().map_err(|_| bad())?);
    let fingerprint = head[10..].try_into().map_err(|_| bad())?;
    Ok(Receipt { fingerprint, status, body: body.to_vec(), recorded_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_time_keys_sort_by_time() {
        let receipt =
            Receipt { fingerprint: [7; 32], status: 204, body: b"{}".to_vec(), recorded_at: 99 };
        assert_eq!(decode(&encode(&receipt)), Ok(receipt));
        assert!(decode(&[1, 2, 3]).is_err());
        let key = ReceiptKey { scope: "zzz".into(), key: "zzz".into() };
        assert!(by_time(5, &key) < by_time_prefix(6));
        let time_key = by_time(5, &key);
        let mut back = time_key.clone();
        back.splice(..1 + keys::FIELD, [BY_KEY]);
        assert_eq!(back, by_key(&key));
    }
}
