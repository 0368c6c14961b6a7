//! [`TransferOptions`]: how a transfer runs (chunk size, writing into non-empty stores).

/// How a transfer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Records per read and per [`ImportBatch`](crate::model::ImportBatch).
    pub chunk_size: usize,
    /// Write into a target that holds data (its ids must not collide with the source's).
    pub allow_non_empty: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self { chunk_size: 1000, allow_non_empty: false }
    }
}
