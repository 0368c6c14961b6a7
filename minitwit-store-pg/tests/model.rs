//! The proptest model test against PostgreSQL: 256 random operation sequences, each on
//! a fresh database, must answer exactly as the in-memory reference model does.

#[test]
fn postgres_agrees_with_the_model() {
    minitwit_core::testkit::model::check_against_model(
        256,
        minitwit_store_pg::testkit::fresh_store,
    );
}
