//! [`Record`]: one record of a store as it travels, in an export file or between two
//! stores, and as a [`Fingerprint`](super::Fingerprint) counts it.

use crate::model::{Follow, Message, User};
use serde::{Deserialize, Serialize};

/// One record of a store, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A user with their id, hash and disabled flag.
    User(User),
    /// A message with its id, date and flag.
    Message(Message),
    /// A follow pair.
    Follow(Follow),
    /// The id of the last simulator action.
    Latest {
        /// The value.
        latest: i64,
    },
}
