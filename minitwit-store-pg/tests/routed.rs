//! The core's conformance suite and the proptest model test against [`RoutedStore`]: a
//! primary with a real streaming standby (`pg_basebackup -R`), the standby in sync, each
//! test on a fresh database replicated to it.
//!
//! [`RoutedStore`]: minitwit_store_pg::RoutedStore

minitwit_core::conformance_tests!(minitwit_store_pg::testkit::fresh_routed_store);

/// Far fewer cases than the plain store's model test: each case creates a database on the
/// primary and waits for the standby to replay it.
#[test]
fn the_routed_store_agrees_with_the_model() {
    minitwit_core::testkit::model::check_against_model(
        16,
        minitwit_store_pg::testkit::fresh_routed_store,
    );
}
