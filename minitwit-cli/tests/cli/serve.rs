//! `minitwit serve` as the real binary: it prints where it listens, answers `/health`,
//! `/ready` and `/metrics` on both listeners with request ids, holds the sled lock (other
//! commands get one clear line), and stops cleanly on SIGTERM and SIGINT.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fails, fixture_store, http, signal};
use minitwit_test_support::simulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_operations_routes_on_both_listeners() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let server = Server::start(&store, &[]);
    let client = http();
    for base in [&server.web, &server.api] {
        let health = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert!(health.headers()["x-request-id"].to_str().unwrap().len() >= 16);
        let ready = client.get(format!("{base}/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let tagged = client
            .get(format!("{base}/health"))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .unwrap();
        assert_eq!(tagged.headers()["x-request-id"], "trace-me-42", "a client's id is kept");
    }
    client.get(format!("{}/public", server.web)).send().await.unwrap();
    client.get(format!("{}/latest", server.api)).send().await.unwrap();

    let metrics = client.get(format!("{}/metrics", server.api)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for expected in [
        r#"minitwit_http_requests_total{front="web",route="/health",method="GET",status="200"} 2"#,
        r#"minitwit_http_requests_total{front="api",route="/ready",method="GET",status="200"} 1"#,
        "minitwit_http_request_duration_seconds_bucket{",
        r#"minitwit_store_operation_duration_seconds_bucket{backend="sled",operation="ping",outcome="ok""#,
        "minitwit_users 3",
        "minitwit_messages 6",
        "minitwit_follows 1",
        "minitwit_flagged_messages 0",
    ] {
        assert!(text.contains(expected), "/metrics lacks {expected}:\n{text}");
    }
    let (status, _) = server.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_locks_its_sled_store() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    let server = Server::start(&store, &[]);
    let line = fails(&["--store", &store, "stats"]);
    assert!(line.contains("in use (by this or another process)"), "{line}");
    let line = fails(&["copy", "--from", &store, "--to", &scratch.sled("copy")]);
    assert!(line.contains("in use (by this or another process)"), "{line}");
    let (status, _) = server.stop();
    assert!(status.success());
    // Released on exit.
    assert!(crate::common::ok(&["--store", &store, "stats"]).starts_with("users\t0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_server_too_and_the_data_stays() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    let server = Server::start(&store, &[]);
    let client = http();
    let response = client
        .post(format!("{}/register", server.api))
        .json(&serde_json::json!({"username": "zoe", "email": "z@x.org", "pwd": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    signal(&server.child, "INT");
    let mut server = server;
    assert!(server.child.wait().unwrap().success());
    assert!(crate::common::ok(&["--store", &store, "user", "show", "zoe"]).contains("\tzoe\t"));
}

#[test]
fn bad_serve_configuration_fails_with_one_line() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    let short_key = crate::common::minitwit(&[
        "--store",
        &store,
        "serve",
        "--web-addr",
        "127.0.0.1:0",
        "--api-addr",
        "127.0.0.1:0",
    ])
    .env("MINITWIT_SESSION_KEY", "too-short")
    .output()
    .unwrap();
    let line = crate::common::failure_line(&short_key, &[]);
    assert!(line.contains("at least 32 bytes") && !line.contains("too-short"), "{line}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line =
        fails(&["--store", &store, "serve", "--web-addr", &addr, "--api-addr", "127.0.0.1:0"]);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_are_structured_and_hold_no_secret() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let log = scratch.path("serve.log");
    let server = Server::start_logging_to(&store, &[], &log);
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client
        .post(format!("{}/login", server.web))
        .header("cookie", "session=cookie-secret-value")
        .form(&[("username", "alice"), ("password", "alice-pw")])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success() || login.status().is_redirection());
    let msgs = client
        .get(format!("{}/msgs?no=5", server.api))
        .header("authorization", simulator::AUTHORIZATION)
        .header("x-request-id", "req-for-the-log")
        .send()
        .await
        .unwrap();
    assert_eq!(msgs.status(), 200);
    client.get(format!("{}/health", server.api)).send().await.unwrap();
    let (status, _) = server.stop();
    assert!(status.success());

    let text = std::fs::read_to_string(&log).unwrap();
    let requests: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|entry: &serde_json::Value| entry["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "one line per request, none for /health at info: {text}");
    let api = &requests[1];
    assert_eq!(api["fields"]["front"], "api");
    assert_eq!(api["fields"]["route"], "/msgs");
    assert_eq!(api["fields"]["method"], "GET");
    assert_eq!(api["fields"]["request_id"], "req-for-the-log");
    assert_eq!(api["fields"]["status"], 200);
    assert!(api["fields"]["latency_ms"].is_f64());
    assert_eq!(requests[0]["fields"]["route"], "/login");
    for secret in ["alice-pw", "cookie-secret-value", simulator::PASSWORD, "c2ltdWxhdG9y", "argon2"]
    {
        assert!(!text.contains(secret), "{secret} leaked into the log:\n{text}");
    }
}

/// SIGTERM ends every live timeline stream at once, with a retry hint, while the server
/// still drains (CONTRACT.md §3.6, §8): the stream is over while `/ready` still says
/// "shutting down" and the process runs, well inside a long drain delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_live_streams_at_once_within_the_drain_delay() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let mut server = Server::start(&store, &["--drain-delay-secs", "120"]);
    let client = http();
    let request =
        client.get(format!("{}/public", server.web)).header("accept", "text/event-stream");
    let mut stream = request.send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap_or_default();
    assert!(String::from_utf8_lossy(&first).contains("retry:"), "the stream began");

    signal(&server.child, "TERM");
    let mut rest = String::new();
    let until_end = async {
        while let Some(chunk) = stream.chunk().await.unwrap_or(None) {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), until_end).await;
    assert!(ended.is_ok(), "the stream was still open 60 s into a 120 s drain delay");
    assert!(rest.contains("retry:"), "it ends with a retry hint: {rest:?}");
    let ready = client.get(format!("{}/ready", server.web)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "still draining");
    assert_eq!(ready.text().await.unwrap(), "shutting down");
    assert!(server.child.try_wait().unwrap().is_none(), "the process still runs");
    let refused =
        client.get(format!("{}/public", server.web)).header("accept", "text/event-stream");
    let refused = refused.send().await.unwrap();
    assert_eq!(refused.status(), 503, "no new stream while draining");
    assert!(refused.headers().contains_key("retry-after"));

    signal(&server.child, "INT");
    assert!(server.child.wait().unwrap().success(), "a second signal skips the delay");
}
