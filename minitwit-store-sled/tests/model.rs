//! The proptest model test: random operation sequences against a fresh durable sled
//! store and the core's in-memory reference model must answer alike.

#[test]
fn sled_answers_like_the_model() {
    minitwit_core::testkit::model::check_against_model(
        256,
        minitwit_store_sled::testkit::fresh_store,
    );
}

/// The same with kept home timelines of 2 entries, 5 entries kept in all, and authors of
/// more than one follower merged on read, so that short sequences cross all three: home
/// pages must still answer as the model's merge does, across the kept timelines' floor,
/// as authors turn loud and as timelines are dropped for room.
#[test]
fn sled_with_tiny_kept_home_timelines_answers_like_the_model() {
    let options = minitwit_store_sled::SledOptions {
        home_bound: 2,
        fanout_limit: 1,
        home_cache_entries: 5,
        ..minitwit_store_sled::SledOptions::default()
    };
    minitwit_core::testkit::model::check_timelines_against_model(256, move || {
        minitwit_store_sled::testkit::fresh_store_with(options)
    });
}
