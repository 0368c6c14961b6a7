//! What the server assembly adds around both front ends, seen from outside as
//! `minitwit serve` ships it: the listener cuts off a client that never finishes its
//! request header or body, every response of both listeners carries the security headers
//! and a request id, and `/metrics` counts requests and store operations.

use crate::support::{self, Setup, TestApp, spawn_app};
use minitwit_cli::serve::Limits;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A bound on waiting for a connection to close, far beyond the timeouts configured
/// here (and below hyper's own 30-second default header timeout): only a connection that
/// is never cut off reaches it. It bounds a hang; it measures nothing.
const HANG: Duration = Duration::from_secs(20);

/// A header without its blank line, and a body shorter than its length.
const HALF_HEADER: &[u8] = b"GET /public HTTP/1.1\r\nhost: x\r\n";
const HALF_BODY: &[u8] = b"POST /register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";

/// An app whose listeners allow a second for a header and for a body.
async fn impatient_app() -> TestApp {
    let limits = Limits {
        header_read: Duration::from_secs(1),
        body_read: Duration::from_secs(1),
        ..Limits::default()
    };
    spawn_app(support::sled().await, Setup { limits, ..Setup::default() }).await
}

/// Sends `raw` on a fresh connection to `addr`, keeps its sending half open, and returns
/// what the server wrote before it closed the connection.
async fn until_closed(addr: &str, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(raw).await.expect("sending");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(HANG, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was never closed; got so far: {answer:?}");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_header_is_cut_off_on_both_listeners() {
    let app = impatient_app().await;
    let site = app.site.base.trim_start_matches("http://");
    let api = app.api.addr.to_string();
    for addr in [site, api.as_str()] {
        let answer = until_closed(addr, HALF_HEADER).await;
        assert!(!answer.contains(" 200 "), "a half header was never served: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_body_is_a_400_and_the_connection_is_closed() {
    let app = impatient_app().await;
    let answer = until_closed(&app.api.addr.to_string(), HALF_BODY).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(app.service.stats().await.expect("stats").users, 0, "nobody was registered");
}

/// The security headers every response carries, whatever front end or route.
fn assert_security_headers(headers: &reqwest::header::HeaderMap, what: &str) {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(value("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(value("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(value("referrer-policy"), Some("same-origin"), "{what}");
    assert!(headers.contains_key("content-security-policy"), "{what}");
    let id = value("x-request-id").unwrap_or_default();
    assert!(!id.is_empty(), "{what} has a request id");
}

async fn every_response_carries_the_security_headers_and_a_request_id(app: TestApp) {
    for path in ["/latest", "/msgs", "/msgs/nobody", "/no/such/thing", "/health", "/metrics"] {
        let answer = app.api.get(path).await;
        assert_security_headers(&answer.headers, &format!("API {path} ({})", answer.status));
    }
    let unauthorized = app.api.send(app.api.client.get(app.api.url("/msgs"))).await;
    assert_eq!(unauthorized.status, 403);
    assert_security_headers(&unauthorized.headers, "API /msgs without credentials");
    for path in ["/public", "/login", "/no/such/thing", "/ready", "/metrics"] {
        let page = app.site.get(path).await;
        assert_security_headers(&page.headers, &format!("site {path} ({})", page.status));
    }
    let given = app
        .api
        .send(app.api.client.get(app.api.url("/health")).header("x-request-id", "e2e-42"))
        .await;
    assert_eq!(given.headers["x-request-id"], "e2e-42", "a sane request id is echoed");
}

async fn metrics_count_requests_and_store_operations(app: TestApp) {
    app.api.register("alice").await;
    assert_eq!(app.api.latest().await, -1);
    let answer = app.api.get("/metrics").await;
    assert_eq!(answer.status, 200);
    let text = answer.body.as_str().expect("Prometheus text").to_owned();
    let requests =
        r#"minitwit_http_requests_total{front="api",route="/latest",method="GET",status="200"}"#;
    assert!(counter(&text, requests) >= 1.0, "{requests} missing:\n{text}");
    let backend = format!(r#"backend="{}""#, app.service.store().backend());
    let timed = text.lines().any(|line| {
        line.starts_with("minitwit_store_operation_duration_seconds_count{")
            && line.contains(&backend)
    });
    assert!(timed, "no store operation timed on {backend}:\n{text}");
    let page = app.site.get("/metrics").await;
    assert_eq!(page.status, 200);
    page.assert_contains(r#"minitwit_http_requests_total{front="api""#);
}

/// The value of the sample `series` (name and labels) in a Prometheus text; 0 if absent.
fn counter(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

on_every_backend!(
    every_response_carries_the_security_headers_and_a_request_id,
    metrics_count_requests_and_store_operations,
);
