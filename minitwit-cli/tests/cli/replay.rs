//! `minitwit replay` against a running `minitwit serve`: a slice of the scenario replays
//! without errors and lands in the store; an unreachable API, a missing or malformed
//! scenario make it fail with one line.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fails, ok, scenario_replay, scenario_text, succeeds};
use minitwit_test_support::scenario_path;

/// Actions replayed: the first 300 hold registrations, tweets, follows and unfollows.
const SLICE: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_slice_replays_without_errors() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    let server = Server::start(&store, &[]);
    let limit = SLICE.to_string();
    let flags = ["--limit", &limit, "--concurrency", "2", "--timeout-ms", "20000"];
    let report = succeeds(scenario_replay(&server.api, &flags));
    assert!(report.contains(&format!("actions sent:  {SLICE}")), "{report}");
    assert!(report.contains("errors:        0"), "{report}");
    assert!(report.contains("latency (ms):"), "{report}");
    let (status, _) = server.stop();
    assert!(status.success());

    let text = scenario_text();
    let slice: Vec<&str> = text.lines().take(SLICE).collect();
    let registrations = slice.iter().filter(|l| l.split('\t').nth(3) == Some("register")).count();
    let tweets = slice.iter().filter(|l| l.split('\t').nth(3) == Some("tweet")).count();
    let stats = ok(&["--store", &store, "stats"]);
    assert!(stats.starts_with(&format!("users\t{registrations}\nmessages\t{tweets}\n")), "{stats}");
    assert!(stats.ends_with(&format!("latest\t{}\n", SLICE - 1)), "{stats}");
}

#[test]
fn replay_failures_are_one_line() {
    let scratch = Scratch::new();
    let csv = scenario_path();
    let csv = csv.to_str().unwrap();
    // Nothing listens on port 1: every action fails, so the exit status says so.
    let line = fails(&["replay", "--csv", csv, "--base-url", "http://127.0.0.1:1", "--limit", "5"]);
    assert!(line.contains("5 of 5 actions failed"), "{line}");

    let missing = scratch.path("missing.csv");
    let line = fails(&["replay", "--csv", missing.to_str().unwrap(), "--limit", "5"]);
    assert!(line.contains("missing.csv"), "{line}");

    let garbled = scratch.path("garbled.csv");
    std::fs::write(&garbled, "not\ta scenario\n").unwrap();
    let line =
        fails(&["replay", "--csv", garbled.to_str().unwrap(), "--base-url", "http://127.0.0.1:1"]);
    assert!(line.contains("scenario line 1"), "{line}");
}
