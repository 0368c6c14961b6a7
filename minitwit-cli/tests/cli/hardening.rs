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

/// A client that keeps cookies and does not follow redirects, signed in as `name`.
pub async fn signed_in(web: &str, name: &str, password: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let login = client
        .post(format!("{web}/login"))
        .form(&[("username", name), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302, "{name} signs in");
    client
}

/// Whom `name` follows, as the API lists them.
async fn follows_of(api: &str, name: &str) -> Vec<String> {
    let answer = http()
        .get(format!("{api}/fllws/{name}"))
        .basic_auth("simulator", Some("super_safe!"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = answer.json().await.unwrap();
    body["follows"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_gets_change_nothing() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let alice = signed_in(&server.web, "alice", "alice-pw").await;
    let follow = format!("{}/Roger%20Histand/follow", server.web);
    for site in ["cross-site", "same-site"] {
        let forged = alice.get(&follow).header("sec-fetch-site", site).send().await.unwrap();
        assert_eq!(forged.status(), 403, "{site}");
        assert_eq!(follows_of(&server.api, "alice").await, ["bob"], "{site} followed");
    }
    let evil = "https://evil.example/page";
    let referred = alice.get(&follow).header("referer", evil).send().await.unwrap();
    assert_eq!(referred.status(), 403);
    let unfollow = format!("{}/bob/unfollow", server.web);
    let forged = alice.get(&unfollow).header("sec-fetch-site", "cross-site").send().await;
    assert_eq!(forged.unwrap().status(), 403);
    let logout = format!("{}/logout", server.web);
    let forged = alice.get(&logout).header("sec-fetch-site", "cross-site").send().await;
    assert!(forged.unwrap().status().is_client_error());
    assert_eq!(follows_of(&server.api, "alice").await, ["bob"]);
    let page = alice.get(format!("{}/public", server.web)).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("sign out [alice]"), "still signed in");

    let own = alice.get(&follow).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert_eq!(own.status(), 302, "a same-origin link still works (so alice is signed in)");
    assert_eq!(follows_of(&server.api, "alice").await, ["bob", "Roger Histand"]);
}
