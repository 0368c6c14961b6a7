//! The proptest model test against PostgreSQL: random operation sequences, each on a
//! fresh database, must answer exactly as the in-memory reference model does: with the
//! default home index bounds, and with bounds so small that every sequence crosses them
//! (follows copy two messages, authors with more than one follower merged on read).

use minitwit_core::HomeIndex;
use minitwit_store_pg::testkit::{fresh_store, fresh_store_with};

#[test]
fn postgres_agrees_with_the_model() {
    minitwit_core::testkit::model::check_against_model(256, fresh_store);
}

#[test]
fn postgres_agrees_with_the_model_across_the_home_index_bounds() {
    let home = HomeIndex { kept: 2, fan_out_limit: 1 };
    minitwit_core::testkit::model::check_against_model(64, || fresh_store_with(home));
}
