//! Rolling updates: on SIGTERM the server reports not ready (and `minitwit health`
//! fails) while it keeps serving for the drain delay, then stops cleanly.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, http, minitwit, signal};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_ready_off_but_keeps_serving_for_the_drain_delay() {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.sled("db"), &["--drain-delay-secs", "3"]);
    let client = http();
    assert_eq!(client.get(format!("{}/ready", server.web)).send().await.unwrap().status(), 200);
    signal(&server.child, "TERM");

    let mut ready = 200;
    for _ in 0..100 {
        ready = client.get(format!("{}/ready", server.api)).send().await.unwrap().status().as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 503, "/ready turns 503 on SIGTERM");
    // Still serving: pages, the API, and new connections.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    assert_eq!(fresh.get(format!("{}/public", server.web)).send().await.unwrap().status(), 200);
    assert_eq!(fresh.get(format!("{}/latest", server.api)).send().await.unwrap().status(), 200);
    let health = minitwit(&["health", &server.web]).output().unwrap();
    assert_eq!(health.status.code(), Some(1), "health fails while draining");
    assert!(String::from_utf8_lossy(&health.stderr).contains("shutting down"));

    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "clean exit after the drain delay: {status:?}");
}

#[test]
fn sigint_skips_the_drain_delay() {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.sled("db"), &["--drain-delay-secs", "600"]);
    signal(&server.child, "INT");
    assert!(server.child.wait().unwrap().success());
}
