//! The proptest model test: random operation sequences against a fresh durable sled
//! store and the core's in-memory reference model must answer alike.

#[test]
fn sled_answers_like_the_model() {
    minitwit_core::testkit::model::check_against_model(
        256,
        minitwit_store_sled::testkit::fresh_store,
    );
}
