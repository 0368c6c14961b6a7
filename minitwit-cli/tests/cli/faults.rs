//! Faults under a running `minitwit serve`: the sled flusher's sync failing (through the
//! `fault-injection` seam the test build of the binary has) or its thread dying. The
//! store must stop acknowledging (fail-stop), answer 503, and `/ready` must say so.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fixture_store, http};

/// Posts as alice through the API; the status.
async fn post(client: &reqwest::Client, api: &str, text: &str) -> u16 {
    let answer = client
        .post(format!("{api}/msgs/alice"))
        .basic_auth("simulator", Some("super_safe!"))
        .json(&serde_json::json!({ "content": text }))
        .send()
        .await
        .expect("the server answers (never hangs)");
    answer.status().as_u16()
}

/// Posts one message at a time until one is refused and ten more after it; the statuses.
async fn post_until_refused(api: &str) -> Vec<u16> {
    let client = http();
    let mut statuses = Vec::new();
    for i in 0..40 {
        statuses.push(post(&client, api, &format!("post {i}")).await);
        let refused_at = statuses.iter().position(|status| *status != 204);
        if refused_at.is_some_and(|at| statuses.len() > at + 10) {
            break;
        }
    }
    statuses
}

/// Asserts the fail-stop shape: some posts acknowledged, then every one refused with 503
/// and `Retry-After`; `/ready` 503 on both listeners.
async fn assert_fail_stop(server: &Server, statuses: &[u16]) {
    let first_refused = statuses.iter().position(|status| *status != 204).expect("a refusal");
    assert!(first_refused > 0, "{statuses:?}");
    assert!(statuses[first_refused..].iter().all(|status| *status == 503), "{statuses:?}");
    assert!(statuses.len() > first_refused + 10, "{statuses:?}");
    for base in [&server.web, &server.api] {
        let ready = http().get(format!("{base}/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 503, "{base}/ready");
    }
    let refused = http()
        .post(format!("{}/msgs/alice", server.api))
        .basic_auth("simulator", Some("super_safe!"))
        .json(&serde_json::json!({ "content": "after" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
}

/// The texts of alice's messages in the store at `url` (read after the server stopped).
fn stored_posts(url: &str) -> String {
    crate::common::ok(&["--store", url, "message", "list"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_sync_failure_stops_all_writes() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let log = scratch.path("serve.log");
    let env = [("MINITWIT_FAULT_FAIL_SYNC", "4")];
    let server = Server::start_with_env(&store, &[], &log, &env);
    let statuses = post_until_refused(&server.api).await;
    assert_fail_stop(&server, &statuses).await;
    let (status, _) = server.stop();
    assert!(!status.success(), "the final flush cannot succeed either: {status:?}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("injected sync failure"), "the reason is logged:\n{logged}");

    let listed = stored_posts(&store);
    let acknowledged = statuses.iter().take_while(|status| **status == 204).count();
    for i in 0..acknowledged {
        assert!(listed.contains(&format!("post {i}\n")), "acknowledged post {i} lost:\n{listed}");
    }
    for i in acknowledged + 1..statuses.len() {
        assert!(!listed.contains(&format!("post {i}\n")), "refused post {i} stored:\n{listed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_flusher_is_detected_not_waited_on() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let log = scratch.path("serve.log");
    let env = [("MINITWIT_FAULT_PANIC_SYNC", "3")];
    let server = Server::start_with_env(&store, &[], &log, &env);
    let statuses = post_until_refused(&server.api).await;
    assert_fail_stop(&server, &statuses).await;
    drop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("flusher thread died"), "the reason is logged:\n{logged}");
}
