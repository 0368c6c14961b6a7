//! The checks around writing into a store: refuse a non-empty target unless allowed,
//! and after writing, prove the target holds what was sent.

use super::fingerprint::Fingerprint;
use super::reader::fingerprint;
use super::{TransferError, TransferOptions, TransferResult};
use crate::model::Counts;
use crate::store::Store;
use std::sync::Arc;

/// What the target held before writing: `None` if it was empty. Refuses a non-empty
/// target unless allowed.
pub(super) async fn guard_target(
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
pub(super) async fn verify(
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

/// The sum of two sets of counts.
fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        users: a.users + b.users,
        messages: a.messages + b.messages,
        follows: a.follows + b.follows,
        flagged: a.flagged + b.flagged,
    }
}
