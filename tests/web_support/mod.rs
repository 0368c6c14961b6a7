//! Harness for the web end-to-end tests: the real site served on 127.0.0.1:0 over a
//! fresh store per test, a cookie-keeping HTTP client that does not follow redirects
//! (so tests see them), and the macro that runs every test against every backend.
#![allow(dead_code)] // each test binary uses its own part of the harness

use minitwit_core::{HashCost, MiniTwit, Store};
use minitwit_web::{WebConfig, routes};
use reqwest::header::HeaderMap;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

/// Runs each listed test (an `async fn(TestApp)`) once per backend, as
/// `BACKEND::TEST`. Adding a backend is one line: `name => async expression giving
/// (Arc<dyn Store>, guard)`. (Declare the harness with `#[macro_use] mod web_support;`.)
#[allow(unused_macros)] // the browser tests run against one backend
macro_rules! web_tests {
    (backends { $($backend:ident => $store:expr),+ $(,)? } tests $tests:tt) => {
        $( web_tests!(@one $backend, $store, $tests); )+
    };
    (@one $backend:ident, $store:expr, { $($test:ident),+ $(,)? }) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let app = crate::web_support::spawn_app($store, |_| {}).await;
                    super::$test(app).await;
                }
            )+
        }
    };
}

/// The session key every test server uses.
pub const TEST_SESSION_KEY: [u8; 64] = [42; 64];

/// A running site and a client for it.
pub struct TestApp {
    /// Where the site listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The service behind the site, for arranging data quickly.
    pub service: MiniTwit,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub client: reqwest::Client,
    _store_guard: Box<dyn Any + Send>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    /// The status code.
    pub status: u16,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// All headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// Asserts the body contains `needle`, showing the page when it does not.
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(self.body.contains(needle), "expected {needle:?} in:\n{}", self.body);
        self
    }

    /// Asserts the body does not contain `needle`.
    pub fn assert_lacks(&self, needle: &str) -> &Self {
        assert!(!self.body.contains(needle), "did not expect {needle:?} in:\n{}", self.body);
        self
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Starts the site over `store` (with cheap password hashing) on a free port;
/// `configure` adjusts the default configuration.
pub async fn spawn_app<G: Send + 'static>(
    (store, guard): (Arc<dyn Store>, G),
    configure: impl FnOnce(&mut WebConfig),
) -> TestApp {
    let service = MiniTwit::with_hash_cost(store, HashCost::Insecure);
    let mut config = WebConfig::new(TEST_SESSION_KEY.to_vec()).expect("a 64-byte key is valid");
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(warp::serve(routes(service.clone(), config)).incoming(listener).run());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    TestApp { addr, base: format!("http://{addr}"), service, client, _store_guard: Box::new(guard) }
}

impl TestApp {
    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await.expect("a text body");
        Page { status, location, headers, body }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST path` with a url-encoded form.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.client.post(self.url(path)).form(form)).await
    }

    /// Follows `page`'s redirects (as a browser would, with GET) to the final page.
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..10 {
            let Some(location) = page.location.clone() else { return page };
            assert!(location.starts_with('/'), "redirects stay on the site: {location}");
            page = self.get(&location).await;
        }
        panic!("too many redirects");
    }

    /// Registers through the form and returns the page after the redirects.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        password2: &str,
        email: &str,
    ) -> Page {
        let form = [
            ("username", username),
            ("password", password),
            ("password2", password2),
            ("email", email),
        ];
        let page = self.post("/register", &form).await;
        self.follow(page).await
    }

    /// Registers `name` (password `default`, email `NAME@example.com`) and signs in.
    pub async fn register_and_login(&self, name: &str) -> Page {
        let email = format!("{name}@example.com");
        self.register(name, "default", "default", &email).await;
        self.login(name, "default").await
    }

    /// Signs in through the form and returns the page after the redirects.
    pub async fn login(&self, username: &str, password: &str) -> Page {
        let page = self.post("/login", &[("username", username), ("password", password)]).await;
        self.follow(page).await
    }

    /// Signs out and returns the page after the redirects.
    pub async fn logout(&self) -> Page {
        let page = self.get("/logout").await;
        self.follow(page).await
    }

    /// Posts a message through the form and returns the page after the redirects.
    pub async fn add_message(&self, text: &str) -> Page {
        let page = self.post("/add_message", &[("text", text)]).await;
        assert_eq!(page.status, 302, "posting redirects");
        self.follow(page).await
    }
}
