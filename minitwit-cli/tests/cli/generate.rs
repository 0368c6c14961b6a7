//! `generate`: a small synthetic data set into sled and PostgreSQL, counted by `stats`,
//! and a social graph into sled; a store that is not empty and an impossible shape are
//! refused with one line.

use crate::common::{Scratch, fails, ok};
use minitwit_store_pg::testkit::fresh_database_url;

/// What `stats` prints for 5 users following 2 each, 20 messages (every 100th flagged:
/// none), plus the two wide followers (following all 5 users).
const STATS: &str = "users\t7\nmessages\t20\nfollows\t20\nflagged\t0\nlatest\t-1\n";

fn generate_small(store: &str) -> String {
    ok(&["--store", store, "generate", "--users", "5", "--follows", "2", "--messages", "20"])
}

#[test]
fn generates_a_data_set_of_the_chosen_size_into_sled() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    assert!(generate_small(&store).contains("generated 7 users, 20 follows, 20 messages"));
    assert_eq!(ok(&["--store", &store, "stats"]), STATS);
    let line = fails(&["--store", &store, "generate", "--users", "5", "--follows", "2"]);
    assert!(line.contains("not empty"), "{line}");
    let line = fails(&["--store", &scratch.sled("other"), "generate", "--users", "3"]);
    assert!(line.contains("--follows must be below --users"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generates_a_data_set_into_postgres() {
    let (url, _db) = fresh_database_url().await;
    generate_small(&url);
    assert_eq!(ok(&["--store", &url, "stats"]), STATS);
}

/// A social graph: 200 users following 5 each, drawn by popularity, and the two wide
/// followers following 10 and all 200.
#[test]
fn generates_a_social_graph_into_sled() {
    let scratch = Scratch::new();
    let store = scratch.sled("social");
    let args = ["--users", "200", "--follows", "5", "--messages", "10", "--graph", "social"];
    let line = ok(&[&["--store", store.as_str(), "generate"][..], &args].concat());
    assert!(line.contains("generated 202 users, 1210 follows, 10 messages"), "{line}");
}
