//! `minitwit serve` against hostile and careless clients: security headers on every
//! response of both listeners, a closed set of metric labels, and a body the client
//! aborts counted as the client's failure (400), never a server error.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fixture_store, http};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// `host:port` of a listener's `http://host:port` URL.
pub fn authority(base: &str) -> &str {
    base.strip_prefix("http://").unwrap()
}

/// Sends `raw` on a fresh connection, then half-closes it and reads what comes back.
pub fn raw_exchange(base: &str, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(authority(base)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(raw).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_of_both_listeners_carries_the_security_headers() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let client = http();
    let paths = [
        format!("{}/health", server.web),
        format!("{}/ready", server.web),
        format!("{}/metrics", server.web),
        format!("{}/health", server.api),
        format!("{}/ready", server.api),
        format!("{}/metrics", server.api),
        format!("{}/latest", server.api),
        format!("{}/msgs", server.api),
        format!("{}/no/such/thing", server.api),
        format!("{}/public", server.web),
    ];
    for url in paths {
        let response = client.get(&url).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(headers["x-frame-options"], "DENY", "{url}");
        assert!(headers.contains_key("content-security-policy"), "{url}");
        assert!(headers.contains_key("referrer-policy"), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_do_not_become_metric_series() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let client = http();
    for base in [&server.web, &server.api] {
        let method = reqwest::Method::from_bytes(b"FOOBAR").unwrap();
        let response = client.request(method, format!("{base}/health")).send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = client.get(format!("{}/metrics", server.api)).send().await.unwrap();
    let text = text.text().await.unwrap();
    assert!(!text.contains("FOOBAR"), "a client invented a label value:\n{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_body_is_a_client_error_not_a_server_error() {
    let scratch = Scratch::new();
    let log = scratch.path("serve.log");
    let server = Server::start_logging_to(&fixture_store(&scratch, "db"), &[], &log);
    let head = "POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nusername=al";
    raw_exchange(&server.web, head.as_bytes());
    let client = http();
    let metrics = client.get(format!("{}/metrics", server.web)).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let login: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("minitwit_http_requests_total{front=\"web\",route=\"/login\""))
        .collect();
    assert_eq!(login.len(), 1, "{text}");
    assert!(login[0].contains(r#"status="400""#), "{login:?}");
    let (status, _) = server.stop();
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("\"ERROR\""), "an aborted body logged an error:\n{logged}");
}
