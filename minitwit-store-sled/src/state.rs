//! The store's own state: the simulator's `latest`, settings (the session key), and the
//! totals the counters keep exact.

use crate::trees::{META, Trees, backend, decode_int, meta};
use minitwit_core::Counts;
use minitwit_core::store::{StoreError, StoreResult};

impl Trees {
    /// The totals, from the counters every write keeps (sled's `len()` would scan).
    pub(crate) fn counts(&self) -> StoreResult<Counts> {
        let count = |name| Ok::<_, StoreError>(u64::try_from(self.meta_int(name)?).unwrap_or(0));
        Ok(Counts {
            users: count(meta::USERS)?,
            messages: count(meta::MESSAGES)?,
            follows: count(meta::FOLLOWS)?,
            flagged: count(meta::FLAGGED)?,
        })
    }

    /// The simulator's `latest`, if set.
    pub(crate) fn latest(&self) -> StoreResult<Option<i64>> {
        self.read_one(META, meta::LATEST)?.map(|v| decode_int(&v)).transpose()
    }

    /// Records the simulator's `latest`.
    pub(crate) fn set_latest(&self, latest: i64) -> StoreResult<()> {
        self.write_one(META, meta::LATEST, latest.to_be_bytes()[..].into())
    }

    /// A server setting.
    pub(crate) fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.settings.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    /// Stores `value` under `key` unless set, and returns what is stored.
    pub(crate) fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        self.transaction(|tx| match tx.settings.get(key)? {
            Some(existing) => Ok(existing.to_vec()),
            None => {
                tx.settings.insert(key, value)?;
                Ok(value.to_vec())
            }
        })
    }
}
