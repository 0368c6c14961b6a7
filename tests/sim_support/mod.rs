//! Harness for the simulator API's end-to-end tests: a real server on 127.0.0.1:0 over a
//! fresh store per test, request helpers that speak like the simulator, and the
//! [`on_every_backend!`] macro that runs each test against each storage backend.

#![allow(dead_code)] // Each test binary uses its own part of the harness.

use minitwit_core::{HashCost, MiniTwit, Store};
use minitwit_sim::SimConfig;
use serde_json::Value;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

/// What keeps a fresh store alive (its temporary directory, its database, …).
pub type Guard = Box<dyn Any + Send>;

/// The simulator's `Authorization` header value (`simulator:super_safe!`).
pub const SIMULATOR_AUTH: &str = "Basic c2ltdWxhdG9yOnN1cGVyX3NhZmUh";

// /// A fresh sled store in a temporary directory.
// pub async fn sled() -> (Arc<dyn Store>, Guard) {
//     let (store, dir) = minitwit_store_sled::testkit::fresh_store();
//     (store, Box::new(dir))
// }

/// A fresh sled store in a temporary directory.
pub async fn sled() -> (Arc<dyn Store>, Guard) {
    let (store, dir) = minitwit_store_sled::testkit::fresh_store().await;
    (store, Box::new(dir))
}

/// A fresh PostgreSQL database on the test process's throwaway server.
pub async fn pg() -> (Arc<dyn Store>, Guard) {
    let (store, database) = minitwit_store_pg::testkit::fresh_store().await;
    (store, Box::new(database))
}

/// Expands test functions `async fn NAME(app: &TestApp)` into one `#[tokio::test]` per
/// backend, in a module named after the backend. The backend list lives here only.
#[macro_export]
macro_rules! on_every_backend {
    ($tests:tt) => {
        $crate::on_every_backend!(@backends [sled, pg]; $tests);
    };
    (@backends [$($backend:ident),*]; $tests:tt) => {
        $( $crate::on_every_backend!(@one $backend; $tests); )*
    };
    (@one $backend:ident; [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let app = $crate::sim_support::TestApp::spawn(
                        $crate::sim_support::$backend().await,
                        minitwit_core::HashCost::Insecure,
                    )
                    .await;
                    super::$test(&app).await;
                }
            )*
        }
    };
}

/// A running API server and a client for it.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The service behind the server, to arrange state directly.
    pub service: MiniTwit,
    /// An HTTP client (no credentials by default).
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _guard: Guard,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
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

impl TestApp {
    /// Serves the API with the course credentials over `store` on 127.0.0.1:0.
    pub async fn spawn((store, guard): (Arc<dyn Store>, Guard), cost: HashCost) -> Self {
        let service = MiniTwit::with_hash_cost(store, cost);
        let routes = minitwit_sim::routes(service.clone(), SimConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding port 0");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let server = tokio::spawn(warp::serve(routes).incoming(listener).run());
        let client = reqwest::Client::new();
        Self { addr, service, client, server, _guard: guard }
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
        self.send(self.client.get(self.url(path)).header("authorization", SIMULATOR_AUTH)).await
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
            .header("authorization", SIMULATOR_AUTH)
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
