//! The site's client: a browser-like HTTP client that keeps cookies and does not follow
//! redirects (so tests see them), with helpers for the site's forms.

use reqwest::header::HeaderMap;
use std::net::SocketAddr;

/// A client for the site.
pub struct SiteClient {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub client: reqwest::Client,
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

impl SiteClient {
    /// A client for the site at `addr`.
    pub(super) fn new(addr: SocketAddr) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self { base: format!("http://{addr}"), client }
    }
}

impl SiteClient {
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
