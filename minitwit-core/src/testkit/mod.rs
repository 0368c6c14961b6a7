//! Test support for backends: run [`conformance_tests!`](crate::conformance_tests) and
//! [`model::check_against_model`] against a fresh store and a backend is proven to keep
//! the [`Store`](crate::Store) contract.
//!
//! - [`memory`]: [`MemoryStore`], the reference model: the simplest store that can be
//!   right, used as the oracle of the model test (not as a backend).
//! - [`conformance`]: one async test per rule of the contract, and the macro that expands
//!   them into `#[tokio::test]`s for a backend.
//! - [`model`]: random operation sequences run against a backend and the model side by
//!   side; every answer must match.
//! - [`feed`]: the change feed's contract: deliveries, and live timelines' rules.
//! - [`records`]: records for tests that import data directly ([`numbered_user`]).
//! - [`counted`]: [`Counted`], the reference model counting the calls made to it.

pub mod conformance;
pub mod counted;
pub mod feed;
pub mod memory;
pub mod model;
pub mod records;

pub use counted::Counted;
pub use memory::MemoryStore;
pub use records::numbered_user;

/// The reference model must keep the contract it stands for.
#[cfg(test)]
mod memory_conformance {
    use crate::Store;
    use std::sync::Arc;

    async fn fresh() -> (Arc<dyn Store>, ()) {
        (Arc::new(super::MemoryStore::new()), ())
    }

    crate::conformance_tests!(fresh);
}
