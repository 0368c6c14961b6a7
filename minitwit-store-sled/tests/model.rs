//! The proptest model test: random operation sequences against a fresh durable sled
//! store and the core's in-memory reference model must answer alike: with the default
//! home index bounds, and with bounds so small that every sequence crosses them (two
//! entries kept per user, authors with more than one follower merged on read).

use minitwit_core::HomeIndex;
use minitwit_store_sled::SledOptions;
use minitwit_store_sled::testkit::{fresh_store, fresh_store_with};

#[test]
fn sled_answers_like_the_model() {
    minitwit_core::testkit::model::check_against_model(256, fresh_store);
}

#[test]
fn sled_answers_like_the_model_across_the_home_index_bounds() {
    let home = HomeIndex { kept: 2, fan_out_limit: 1 };
    let options = SledOptions { home, ..SledOptions::default() };
    minitwit_core::testkit::model::check_against_model(256, || fresh_store_with(options));
}
