//! The API's client: requests with the simulator's credentials and JSON bodies, as the
//! simulator sends them, and the check of the JSON error shape.

use minitwit_test_support::simulator;
use serde_json::Value;
use std::net::SocketAddr;

/// A client for the API.
pub struct ApiClient {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// An HTTP client (no credentials by default).
    pub client: reqwest::Client,
}

/// A response's status and body (JSON, `Value::Null` when empty, a string otherwise).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl ApiClient {
    /// A client for the API at `addr`.
    pub(super) fn new(addr: SocketAddr) -> Self {
        Self { addr, client: reqwest::Client::new() }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The absolute URL of `path_and_query` (already percent-encoded).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url())
    }

    /// `GET` with the simulator's credentials.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path)).header("authorization", simulator::AUTHORIZATION))
            .await
    }

    /// `POST` of a JSON body with the simulator's credentials, as the simulator sends it.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_raw(path, body.to_string()).await
    }

    /// `POST` of a raw body with the simulator's credentials and a JSON content type.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let request = self
            .client
            .post(self.url(path))
            .header("authorization", simulator::AUTHORIZATION)
            .header("content-type", "application/json")
            .body(body);
        self.send(request).await
    }

    /// Sends a request and reads the answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the test server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading the body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer { status, body, headers }
    }

    /// Registers `name` through the API and asserts the 204.
    pub async fn register(&self, name: &str) {
        let email = format!("{}@example.com", name.replace(' ', "."));
        let answer = self
            .post("/register", serde_json::json!({"username": name, "email": email, "pwd": "pw"}))
            .await;
        assert_eq!(answer.status, 204, "registering {name}: {answer:?}");
    }

    /// The stored `latest`, via `GET /latest`.
    pub async fn latest(&self) -> i64 {
        let answer = self.get("/latest").await;
        assert_eq!(answer.status, 200);
        answer.body["latest"].as_i64().expect("latest is an integer")
    }
}

/// Asserts the JSON error shape with `status` and returns its message.
pub fn assert_error(answer: &Answer, status: u16) -> String {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.body["status"], status, "{answer:?}");
    let message = answer.body["error_msg"].as_str().expect("error_msg is a string");
    assert!(!message.is_empty());
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"));
    message.to_owned()
}
