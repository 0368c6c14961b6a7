//! The proptest model tests against PostgreSQL: random operation sequences, each on
//! a fresh database, must answer exactly as the in-memory reference model does.

#[test]
fn postgres_agrees_with_the_model() {
    minitwit_core::testkit::model::check_against_model(
        256,
        minitwit_store_pg::testkit::fresh_store,
    );
}

/// The same with kept home timelines of 2 entries and authors of more than one follower
/// loud, so that short sequences cross both: home pages must still answer as the
/// model's merge does, across each reader's floor and as authors turn loud.
#[test]
fn postgres_with_tiny_kept_home_timelines_answers_like_the_model() {
    let options =
        minitwit_store_pg::PgOptions { home_bound: 2, fanout_limit: 1, ..Default::default() };
    minitwit_core::testkit::model::check_timelines_against_model(128, move || {
        minitwit_store_pg::testkit::fresh_store_with(options.clone())
    });
}
