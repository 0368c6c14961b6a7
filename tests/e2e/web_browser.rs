//! The HTML site in real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! used as a new person would: sign up, sign in, post, follow, read, unfollow, sign out;
//! and the script that shows times in the reader's own time zone.

use crate::support::{self, Setup, TestApp, free_port, require_program, spawn_app};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use minitwit_core::{ImportBatch, Message, Registration};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Where screenshots go: outside the repository.
const SCREENSHOT_DIR: &str = "/tmp/minitwit-screenshots";
/// The fixed time of alice's message: 2020-02-21 01:01 UTC, 10:01 in Tokyo.
const ALICE_POSTED_AT: i64 = 1_582_246_860;
const ALICE_TEXT: &str = "Hello from alice, posted long ago";
/// How long to wait for a page to show something.
const PATIENCE: Duration = Duration::from_secs(20);

/// A headless Chromium driven over WebDriver; the driver dies with it.
struct Browser {
    client: Client,
    _driver: Child,
    _profile: TempDir,
}

/// `text` as an XPath string literal (XPath 1 has no escapes: pick the other quote, or
/// concatenate pieces).
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let pieces: Vec<String> = text.split('\'').map(|piece| format!("'{piece}'")).collect();
        format!("concat({})", pieces.join(", \"'\", "))
    }
}

impl Browser {
    /// Starts chromedriver (with time zone `tz`, which Chromium inherits) and a fresh
    /// headless Chromium session.
    async fn start(tz: &str) -> Browser {
        let fix = "apt-get install chromium chromium-driver (scripts/install-prereqs does)";
        let chromium = require_program("chromium", fix);
        let chromedriver = require_program("chromedriver", fix);
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .env("TZ", tz)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        wait_until_ready(port).await;
        let profile = TempDir::new().expect("a temporary profile directory");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1000,900",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({ "goog:chromeOptions": { "binary": chromium, "args": args } });
        let serde_json::Value::Object(caps) = caps else { unreachable!("an object literal") };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser { client, _driver: driver, _profile: profile }
    }

    async fn goto(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.site.url(path)).await.expect("navigation");
    }

    /// Waits until the page shows `text` somewhere.
    async fn wait_for_text(&self, text: &str) {
        let xpath = format!("//*[contains(., {})]", xpath_literal(text));
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("the page never showed {text:?}: {e}"));
    }

    async fn body_text(&self) -> String {
        let body = self.client.find(Locator::Css("body")).await.expect("a body");
        body.text().await.expect("body text")
    }

    async fn click(&self, locator: Locator<'_>) {
        let element = self.client.wait().at_most(PATIENCE).for_element(locator).await;
        element.expect("the element exists").click().await.expect("click");
    }

    async fn fill(&self, name: &str, value: &str) {
        let css = format!("input[name='{name}']");
        let input = self.client.find(Locator::Css(&css)).await.expect("the input exists");
        input.send_keys(value).await.expect("typing");
    }

    /// The shown text of the first `<time>` on the page, once the script has run.
    async fn first_time_shown(&self) -> (String, String) {
        let done = Locator::Css("html[data-local-times='done']");
        self.client.wait().at_most(PATIENCE).for_element(done).await.expect("the script ran");
        let time = self.client.find(Locator::Css("time")).await.expect("a time element");
        let shown = time.text().await.expect("time text");
        let tooltip = time.attr("title").await.expect("title").unwrap_or_default();
        (shown, tooltip)
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(SCREENSHOT_DIR).expect("screenshot directory");
        let path = Path::new(SCREENSHOT_DIR).join(name);
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    async fn close(self) {
        self.client.close().await.expect("the session closes");
    }
}

async fn wait_until_ready(port: u16) {
    let status = format!("http://127.0.0.1:{port}/status");
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(&status).await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on port {port}");
}

/// A site where alice has one message from a fixed time.
async fn site_with_alice() -> TestApp {
    let app = spawn_app(support::sled().await, Setup::default()).await;
    let registration = Registration::parse("alice", "alice@example.com", "pw", None).unwrap();
    let alice = app.service.register(registration).await.unwrap();
    let message = Message {
        id: 1000,
        author_id: alice.id,
        text: ALICE_TEXT.into(),
        pub_date: ALICE_POSTED_AT,
        flagged: false,
    };
    let batch = ImportBatch { messages: vec![message], ..ImportBatch::default() };
    app.service.store().import(batch).await.unwrap();
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_signs_up_posts_follows_and_signs_out() {
    let app = site_with_alice().await;
    let browser = Browser::start("Asia/Tokyo").await;

    // Sign up.
    browser.goto(&app, "/").await;
    browser.click(Locator::LinkText("sign up")).await;
    browser.wait_for_text("Sign Up").await;
    browser.fill("username", "newbie").await;
    browser.fill("email", "newbie@example.com").await;
    browser.fill("password", "s3cret").await;
    browser.fill("password2", "typo").await;
    browser.click(Locator::Css("input[type='submit']")).await;
    browser.wait_for_text("The two passwords do not match").await;
    browser.screenshot("signup-error.png").await;
    browser.fill("password", "s3cret").await;
    browser.fill("password2", "s3cret").await;
    browser.click(Locator::Css("input[type='submit']")).await;
    browser.wait_for_text("You were successfully registered and can login now").await;

    // Sign in.
    browser.fill("username", "newbie").await;
    browser.fill("password", "s3cret").await;
    browser.click(Locator::Css("input[type='submit']")).await;
    browser.wait_for_text("You were logged in").await;
    assert!(browser.body_text().await.contains("What's on your mind newbie?"));

    // Post.
    browser.fill("text", "My first <message> & more").await;
    browser.click(Locator::Css("input[value='Share']")).await;
    browser.wait_for_text("Your message was recorded").await;
    assert!(browser.body_text().await.contains("My first <message> & more"));

    // Follow alice, found on the public timeline.
    browser.click(Locator::LinkText("public timeline")).await;
    browser.click(Locator::LinkText("alice")).await;
    browser.wait_for_text("alice's Timeline").await;
    browser.screenshot("profile.png").await;
    browser.click(Locator::Css("button.follow")).await;
    browser.wait_for_text(r#"You are now following "alice""#).await;

    // Her message is on my timeline, shown in my (Tokyo) time.
    browser.click(Locator::LinkText("my timeline")).await;
    browser.wait_for_text(ALICE_TEXT).await;
    let alice_time = browser
        .client
        .find(Locator::XPath(&format!("//li[contains(., '{ALICE_TEXT}')]//time")))
        .await
        .expect("alice's message has a time");
    assert_eq!(alice_time.attr("datetime").await.unwrap().as_deref(), Some("2020-02-21T01:01:00Z"));
    assert_eq!(alice_time.text().await.unwrap(), "2020-02-21 @ 10:01", "Tokyo is UTC+9");
    let shot = browser.screenshot("timeline.png").await;
    eprintln!("screenshot: {}", shot.display());

    // The same page on a phone.
    browser.client.set_window_size(390, 844).await.expect("resize");
    let shot = browser.screenshot("timeline-phone.png").await;
    eprintln!("screenshot: {}", shot.display());
    browser.client.set_window_size(1000, 900).await.expect("resize");

    // Unfollow.
    browser.goto(&app, "/alice").await;
    browser.click(Locator::Css("button.unfollow")).await;
    browser.wait_for_text(r#"You are no longer following "alice""#).await;
    browser.click(Locator::LinkText("my timeline")).await;
    browser.wait_for_text("My first <message> & more").await;
    assert!(!browser.body_text().await.contains(ALICE_TEXT));

    // Sign out.
    browser.click(Locator::LinkText("sign out [newbie]")).await;
    browser.wait_for_text("You were logged out").await;
    let text = browser.body_text().await;
    assert!(text.contains("Public Timeline") && text.contains("sign in"), "{text}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_follow_the_readers_time_zone() {
    let app = site_with_alice().await;
    for (tz, expected) in [("UTC", "2020-02-21 @ 01:01"), ("Asia/Tokyo", "2020-02-21 @ 10:01")] {
        let browser = Browser::start(tz).await;
        browser.goto(&app, "/public").await;
        let (shown, tooltip) = browser.first_time_shown().await;
        assert_eq!(shown, expected, "in {tz}");
        assert_eq!(tooltip, "2020-02-21 @ 01:01 UTC", "the UTC time stays as a tooltip");
        browser.close().await;
    }
}
