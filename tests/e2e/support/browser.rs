//! A headless Chromium (Debian's `chromium` and `chromium-driver`) driven over WebDriver:
//! navigation, forms, screenshots, the keyboard alone, and the axe-core accessibility
//! audit injected into each page.

use super::{TestApp, repository_file, require_program};
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use minitwit_test_support::free_port;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Where screenshots go: outside the repository.
const SCREENSHOT_DIR: &str = "/tmp/minitwit-screenshots";
/// The most Tab presses to reach an element (the pages are short).
const MAX_TABS: usize = 40;
/// How long to wait for a page to show something.
const PATIENCE: Duration = Duration::from_secs(20);

/// A headless Chromium driven over WebDriver; the driver dies with it.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
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
    pub async fn start(tz: &str) -> Browser {
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

    pub async fn goto(&self, app: &TestApp, path: &str) {
        self.goto_url(&app.site.url(path)).await;
    }

    /// Opens an absolute URL (a page of a server the test started as a process).
    pub async fn goto_url(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// The first element `locator` finds, waited for up to [`PATIENCE`]; the last
    /// failure when none came. A page still loading (after a form was sent, say) can
    /// make a look-up fail ("aborted by navigation") rather than find nothing: that is
    /// asked again too.
    async fn find_patiently(
        &self,
        locator: Locator<'_>,
    ) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match self.client.find(locator).await {
                Ok(element) => return Ok(element),
                Err(failure) if tokio::time::Instant::now() >= deadline => return Err(failure),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until the page shows `text` somewhere.
    pub async fn wait_for_text(&self, text: &str) {
        let xpath = format!("//*[contains(., {})]", xpath_literal(text));
        let found = self.find_patiently(Locator::XPath(&xpath)).await;
        found.unwrap_or_else(|e| panic!("the page never showed {text:?}: {e}"));
    }

    pub async fn body_text(&self) -> String {
        let body = self.client.find(Locator::Css("body")).await.expect("a body");
        body.text().await.expect("body text")
    }

    pub async fn click(&self, locator: Locator<'_>) {
        let element = self.find_patiently(locator).await;
        element.expect("the element exists").click().await.expect("click");
    }

    /// Replaces what the input named `name` holds with `value`.
    pub async fn fill(&self, name: &str, value: &str) {
        let css = format!("input[name='{name}']");
        let input = self.client.find(Locator::Css(&css)).await.expect("the input exists");
        input.clear().await.expect("clearing");
        input.send_keys(value).await.expect("typing");
    }

    /// The shown text of the first `<time>` on the page, once the script has run.
    pub async fn first_time_shown(&self) -> (String, String) {
        let done = Locator::Css("html[data-local-times='done']");
        self.find_patiently(done).await.expect("the script ran");
        let time = self.client.find(Locator::Css("time")).await.expect("a time element");
        let shown = time.text().await.expect("time text");
        let tooltip = time.attr("title").await.expect("title").unwrap_or_default();
        (shown, tooltip)
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(SCREENSHOT_DIR).expect("screenshot directory");
        let path = Path::new(SCREENSHOT_DIR).join(name);
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Runs the axe-core audit on the page shown, for the WCAG 2.0 and 2.1 A and AA
    /// rules, and returns its violations, one line each (rule, impact, help, elements).
    pub async fn accessibility_violations(&self) -> Vec<String> {
        self.client.execute(&axe_core(), vec![]).await.expect("axe-core loads in the page");
        let run = "const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: 'tag', values: arguments[0] } })
              .then(result => done(result.violations.map(v =>
                `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
              .catch(err => done([`axe failed: ${err}`]));";
        let tags = json!(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]);
        let violations = self.client.execute_async(run, vec![tags]).await.expect("axe runs");
        let Value::Array(violations) = violations else { panic!("axe answered {violations}") };
        violations.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Runs the axe-core audit with its default rules (WCAG and best practices, such as
    /// `landmark-one-main` and `region`) and returns its violations, one line each.
    pub async fn all_rules_violations(&self) -> Vec<String> {
        self.client.execute(&axe_core(), vec![]).await.expect("axe-core loads in the page");
        let run = "const done = arguments[arguments.length - 1];
            axe.run(document)
              .then(result => done(result.violations.map(v =>
                `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
              .catch(err => done([`axe failed: ${err}`]));";
        let violations = self.client.execute_async(run, vec![]).await.expect("axe runs");
        let Value::Array(violations) = violations else { panic!("axe answered {violations}") };
        violations.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
    }

    /// The `outerHTML` of the elements matching `css`, in page order.
    pub async fn outer_html(&self, css: &str) -> Vec<String> {
        let script = "return Array.from(document.querySelectorAll(arguments[0]))
            .map(e => e.outerHTML);";
        let found = self.client.execute(script, vec![json!(css)]).await.expect("script runs");
        let Value::Array(found) = found else { panic!("the script answered {found}") };
        found.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Waits until an element matching `css` exists, and returns its text.
    pub async fn wait_for_css(&self, css: &str) -> String {
        let element = self.find_patiently(Locator::Css(css)).await;
        let element = element.unwrap_or_else(|e| panic!("the page never had {css}: {e}"));
        element.text().await.expect("its text")
    }

    /// Presses Tab until the focused element matches `css`: how a keyboard user reaches
    /// it. Fails when it cannot be reached that way.
    pub async fn tab_to(&self, css: &str) {
        let focused = "return document.activeElement !== null
            && document.activeElement.matches(arguments[0]);";
        for _ in 0..MAX_TABS {
            let on_it = self.client.execute(focused, vec![json!(css)]).await.expect("script");
            if on_it == Value::Bool(true) {
                return;
            }
            self.press(&Key::Tab).await;
        }
        panic!("{css} cannot be reached with the Tab key within {MAX_TABS} presses");
    }

    /// Presses `keys` (text, or a [`Key`] such as Enter) on the keyboard, as a person
    /// would: they go to whatever has focus.
    pub async fn press(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for key in keys.chars() {
            actions =
                actions.then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        }
        self.client.perform_actions(actions).await.expect("pressing keys");
    }

    /// Tabs to the element matching `css` and presses Enter on it.
    pub async fn activate(&self, css: &str) {
        self.tab_to(css).await;
        self.press(&Key::Enter).await;
    }

    /// Tabs to the input named `name` and types `text` into it.
    pub async fn type_into(&self, name: &str, text: &str) {
        self.tab_to(&format!("input[name='{name}']")).await;
        self.press(text).await;
    }

    pub async fn close(self) {
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

/// The axe-core script, from the axe-selenium-python package in the repository's `.venv`.
fn axe_core() -> String {
    let site_packages = repository_file(".venv/lib");
    let script = std::fs::read_dir(&site_packages)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| {
            python.path().join("site-packages/axe_selenium_python/node_modules/axe-core/axe.min.js")
        })
        .find(|script| script.is_file());
    let script = script.unwrap_or_else(|| {
        panic!(
            "axe-core is not installed in .venv: run `scripts/fuzz-api --install-only` \
             (scripts/install-prereqs does), which installs axe-selenium-python"
        )
    });
    std::fs::read_to_string(&script).unwrap_or_else(|err| panic!("{}: {err}", script.display()))
}
