//! Logs with a ceiling: 10,000 requests while PostgreSQL is down write a few dozen lines
//! (identical warnings are counted, not written), the access log can be sampled or turned
//! off, and after a burst and SIGTERM every request's line is there, whole.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, http};
use minitwit_test_support::TestCluster;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests sent during the outage.
const REQUESTS: u64 = 10_000;
/// Clients sending them at once.
const CLIENTS: u64 = 16;
/// The ceiling on the lines written meanwhile ("a few dozen").
const MOST_LINES: usize = 40;

fn log_entries(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_writes_a_few_dozen_lines_not_one_per_request() {
    // A server of its own: stopping it must not disturb the other tests' databases.
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let scratch = Scratch::new();
    let log = scratch.path("serve.log");
    let extra = ["--pg-acquire-timeout-ms", "200", "--gauge-interval", "1"];
    let server = Server::start_logging_to(&cluster.url("postgres"), &extra, &log);
    let client = http();
    assert_eq!(client.get(format!("{}/latest", server.api)).send().await.unwrap().status(), 200);
    let before = std::fs::read_to_string(&log).unwrap().lines().count();

    cluster.stop().unwrap();
    let unavailable = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for worker in 0..CLIENTS {
        let (client, unavailable) = (client.clone(), Arc::clone(&unavailable));
        let (web, api) = (server.web.clone(), server.api.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..REQUESTS / CLIENTS {
                let url = match (worker + i) % 3 {
                    0 => format!("{web}/public"),
                    1 => format!("{api}/latest"),
                    _ => format!("{api}/ready"),
                };
                let response = client.get(url).send().await.unwrap();
                if response.status() == 503 {
                    unavailable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(unavailable.load(Ordering::Relaxed), REQUESTS, "every request answered 503");
    let (status, _) = server.stop();
    assert!(status.success());
    cluster.resume().unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    let entries = log_entries(&text);
    let written = entries.len() - before;
    assert!(written <= MOST_LINES, "{written} lines for {REQUESTS} requests:\n{text}");
    let counted: u64 = entries
        .iter()
        .filter(|e| e["target"] == "minitwit::log")
        .map(|e| e["fields"]["suppressed"].as_u64().unwrap())
        .sum();
    assert!(counted >= REQUESTS, "the repeats are counted ({counted}):\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_can_be_sampled_or_turned_off() {
    let scratch = Scratch::new();
    for (setting, expected) in [("off", 0), ("5", 4), ("on", 20)] {
        let log = scratch.path(&format!("access-{setting}.log"));
        let store = scratch.sled(&format!("db-{setting}"));
        let server = Server::start_logging_to(&store, &["--access-log", setting], &log);
        let client = http();
        for _ in 0..20 {
            let response = client.get(format!("{}/public", server.web)).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
        let (status, _) = server.stop();
        assert!(status.success());
        let entries = log_entries(&std::fs::read_to_string(&log).unwrap());
        let access = entries.iter().filter(|e| e["target"] == "minitwit::access").count();
        assert_eq!(access, expected, "--access-log {setting}");
    }
}

/// Requests in the burst: well under the log's bound, so none may be dropped.
const BURST: u64 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_burst_and_sigterm_every_access_line_is_written_whole() {
    let scratch = Scratch::new();
    let log = scratch.path("burst.log");
    let server = Server::start_logging_to(&scratch.sled("db"), &[], &log);
    let client = http();
    let mut clients = Vec::new();
    for worker in 0..CLIENTS {
        let (client, web, api) = (client.clone(), server.web.clone(), server.api.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..BURST / CLIENTS {
                let url =
                    if i % 2 == 0 { format!("{web}/public") } else { format!("{api}/latest") };
                let id = format!("burst-{worker}-{i}");
                let response = client.get(url).header("x-request-id", &id).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let (status, _) = server.stop();
    assert!(status.success());

    let entries = log_entries(&std::fs::read_to_string(&log).unwrap());
    let mut ids: Vec<String> = entries
        .iter()
        .filter(|e| e["target"] == "minitwit::access")
        .map(|e| {
            let fields = &e["fields"];
            assert_eq!(fields["status"], 200, "{e}");
            assert!(fields["latency_ms"].is_f64(), "{e}");
            assert!(["/public", "/latest"].contains(&fields["route"].as_str().unwrap()), "{e}");
            fields["request_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..CLIENTS)
        .flat_map(|worker| (0..BURST / CLIENTS).map(move |i| format!("burst-{worker}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(ids, expected, "one whole line per request, none lost");
}
