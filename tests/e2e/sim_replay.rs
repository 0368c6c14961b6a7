//! The replay client against a real server: the full scenario (CONTRACT.md §4.4) replays
//! with no error and leaves `latest` at the last action's id; errors are counted by kind.
//! The report (throughput, latency percentiles) is printed: run with `--nocapture` to see
//! it.

use crate::support::{self, FreshStore, Setup, TestApp, scenario, spawn_app};
use minitwit_cli::simulator::{self, ActionKind, ErrorKind, ReplayOptions};
use minitwit_core::HashCost;
use minitwit_test_support::{free_port, scenario_path};
use std::time::Duration;

/// Options for a replay against `app`: generous timeout, since a loaded test machine must
/// not turn into flaky errors (the printed p99 tells how the 0.3 s budget is met).
fn options(app: &TestApp, limit: Option<usize>, concurrency: usize) -> ReplayOptions {
    ReplayOptions {
        base_url: app.api.base_url(),
        limit,
        concurrency,
        timeout: Duration::from_secs(10),
        progress: false,
        ..ReplayOptions::default()
    }
}

/// Replays the first `limit` actions (all when `None`) on a fresh server over `store` and
/// checks there was no error and that `latest` is the last id sent.
async fn replays_without_errors(store: FreshStore, limit: Option<usize>) {
    let app = spawn_app(store, Setup { cost: HashCost::Recommended, ..Setup::default() }).await;
    let report =
        simulator::run_file(&scenario_path(), &options(&app, limit, 8)).await.expect("replay runs");
    println!("replay of {} actions, concurrency 8:\n{report}", report.sent);
    assert_eq!(report.error_count(), 0, "{report}");
    let facts = scenario::facts();
    let expected = limit.map_or(facts.actions, |limit| limit as u64);
    assert_eq!(report.sent, expected);
    assert_eq!(app.api.latest().await, expected as i64 - 1, "latest is the last action's id");
    if limit.is_none() {
        let counts = app.service.stats().await.expect("stats");
        let stored = (counts.users, counts.messages);
        assert_eq!(stored, (facts.users, facts.messages), "every user and message");
    }
}

/// A test app over a fresh sled store.
async fn app_on_sled() -> TestApp {
    spawn_app(support::sled().await, Setup::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scenario_replays_without_errors_on_sled() {
    replays_without_errors(support::sled().await, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_5000_actions_replay_without_errors_on_pg() {
    replays_without_errors(support::pg().await, Some(5_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_replay_with_closed_connections_keeps_scenario_order() {
    let app = app_on_sled().await;
    let options = ReplayOptions { close_connections: true, ..options(&app, Some(600), 1) };
    replays_cleanly(&app, &options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_rate_paces_the_replay() {
    let app = app_on_sled().await;
    let options = ReplayOptions { rate: Some(200.0), ..options(&app, Some(40), 4) };
    replays_cleanly(&app, &options).await;
}

/// Replays `options.limit` actions against `app`: every one succeeds, and `latest` ends
/// at the last one's id.
async fn replays_cleanly(app: &TestApp, options: &ReplayOptions) {
    let limit = options.limit.expect("a bounded replay") as u64;
    let report = simulator::run_file(&scenario_path(), options).await.expect("replay runs");
    assert_eq!((report.sent, report.error_count()), (limit, 0), "{report}");
    assert_eq!(app.api.latest().await, limit as i64 - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_counted_as_unexpected_statuses() {
    let app = app_on_sled().await;
    let options = ReplayOptions { password: "wrong".into(), ..options(&app, Some(100), 4) };
    let report = simulator::run_file(&scenario_path(), &options).await.expect("replay runs");
    println!("{report}");
    assert_eq!(report.sent, 100);
    // Registration needs no credentials (but, without them, is throttled per address:
    // 429 past the first 20); every other action is refused.
    let forbidden: u64 = report
        .errors
        .iter()
        .filter(|(kind, _)| {
            matches!(
                kind,
                ErrorKind::UnexpectedStatus { status: 403, .. }
                    | ErrorKind::UnexpectedStatus { action: ActionKind::Register, status: 429 }
            )
        })
        .map(|(_, count)| count)
        .sum();
    assert_eq!(forbidden, report.error_count());
    assert_eq!(report.succeeded + forbidden, 100);
    let tweets = ErrorKind::UnexpectedStatus { action: ActionKind::Tweet, status: 403 };
    assert!(report.errors.get(&tweets).is_some_and(|&n| n > 0), "{report}");
    assert!(report.to_string().contains("tweet: status 403"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_server_is_counted_as_connection_errors() {
    let options = ReplayOptions {
        base_url: format!("http://127.0.0.1:{}", free_port()),
        limit: Some(5),
        progress: false,
        ..ReplayOptions::default()
    };
    let report = simulator::run_file(&scenario_path(), &options).await.expect("replay runs");
    assert_eq!(report.sent, 5);
    assert_eq!(report.errors.get(&ErrorKind::Connection), Some(&5), "{report}");
}
