//! Live timelines in real headless Chromium, two browsers at once (CONTRACT.md §3.6):
//! alice posts in hers; bob, who follows her, sees the bar "1 new message" on his home
//! page without reloading, then "2 new messages"; he reaches it with the keyboard and
//! activates it, and the entries shown are exactly those of the page reloaded. Once on
//! sled (one server), once with the two browsers on two `minitwit serve` processes (the
//! shipped binary, each its own pool and change-feed listener) over one PostgreSQL
//! database. And the pages' landmarks: axe-core's default rules, best practices
//! included, find nothing on any page, the bar shown or not.

use crate::support::browser::Browser;
use crate::support::process::ServeProcess;
use crate::support::{self, Setup, spawn_app};
use fantoccini::Locator;
use minitwit_core::{HashCost, MiniTwit, Registration, User};
use minitwit_store_pg::testkit::{connect, fresh_database_url};
use std::sync::Arc;

async fn user(service: &MiniTwit, name: &str) -> User {
    let registration = Registration::parse(name, &format!("{name}@example.com"), "pw", None);
    service.register(registration.expect("valid")).await.expect("registers")
}

/// Signs `name` in on the site at `base` (its URL without a path).
async fn sign_in(browser: &Browser, base: &str, name: &str) {
    browser.goto_url(&format!("{base}/login")).await;
    browser.fill("username", name).await;
    browser.fill("password", "pw").await;
    browser.click(Locator::Css("input[type='submit']")).await;
    browser.wait_for_text("You were logged in").await;
}

async fn share(browser: &Browser, text: &str) {
    browser.fill("text", text).await;
    browser.click(Locator::Css("input[value='Share']")).await;
    browser.wait_for_text("Your message was recorded").await;
}

/// alice (on the site at `alices`) posts; bob (on `bobs`, following her) sees the bar,
/// activates it with the keyboard, and the entries match his page reloaded. `service`
/// arranges the users over the same store.
async fn a_follower_sees_new_messages_without_reloading(
    service: &MiniTwit,
    alices: &str,
    bobs: &str,
) {
    let alice = user(service, "alice").await;
    let bob = user(service, "bob").await;
    service.follow(bob.id, alice.id).await.expect("follows");
    let (alice_browser, bob_browser) = tokio::join!(Browser::start("UTC"), Browser::start("UTC"));
    sign_in(&alice_browser, alices, "alice").await;
    sign_in(&bob_browser, bobs, "bob").await;
    bob_browser
        .wait_for_css("div.live[role='status'][aria-live='polite'][data-state='open']")
        .await;

    share(&alice_browser, "Live from alice <1>").await;
    let bar = bob_browser.wait_for_css("button.live-new").await;
    assert_eq!(bar, "1 new message");
    share(&alice_browser, "Live from alice <2>").await;
    bob_browser.wait_for_text("2 new messages").await;
    assert!(!bob_browser.body_text().await.contains("Live from alice"), "not before asked");

    bob_browser.activate("button.live-new").await;
    bob_browser.wait_for_text("Live from alice <2>").await;
    let shown = bob_browser.outer_html("ul.messages > li").await;
    assert!(bob_browser.outer_html("button.live-new").await.is_empty(), "the bar is gone");
    bob_browser.client.refresh().await.expect("reloads");
    bob_browser.wait_for_css("html[data-local-times='done']").await;
    let reloaded = bob_browser.outer_html("ul.messages > li").await;
    assert_eq!(shown, reloaded, "the inserted entries are the page's own");
    assert!(reloaded[0].contains("Live from alice &lt;2&gt;"), "{reloaded:?}");
    alice_browser.close().await;
    bob_browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_new_messages_without_reloading_on_sled() {
    let app = spawn_app(support::sled().await, Setup::default()).await;
    let base = &app.site.base;
    a_follower_sees_new_messages_without_reloading(&app.service, base, base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_new_messages_without_reloading_across_two_serve_processes() {
    let (url, _database) = fresh_database_url().await;
    let (first, second) = tokio::join!(ServeProcess::start(&url), ServeProcess::start(&url));
    let service = MiniTwit::with_hash_cost(Arc::new(connect(&url).await), HashCost::Insecure);
    a_follower_sees_new_messages_without_reloading(&service, &first.web, &second.web).await;
}

/// Every kind of page, signed out and in, with the live bar showing: axe-core's default
/// rules (WCAG and best practices: one `main` landmark, all content in landmarks) find
/// no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_keeps_its_content_in_landmarks() {
    let app = spawn_app(support::sled().await, Setup::default()).await;
    let alice = user(&app.service, "alice").await;
    let reader = user(&app.service, "reader").await;
    app.service.follow(reader.id, alice.id).await.expect("follows");
    app.service
        .post(&alice, minitwit_core::MessageText::parse("hi").expect("valid"))
        .await
        .expect("posts");
    let browser = Browser::start("UTC").await;
    let mut violations = Vec::new();
    for path in ["/public", "/alice", "/register", "/login", "/nobody-is-called-this"] {
        browser.goto(&app, path).await;
        violations.extend(
            browser.all_rules_violations().await.into_iter().map(|v| format!("{path}: {v}")),
        );
    }
    sign_in(&browser, &app.site.base, "reader").await;
    browser.wait_for_css("div.live[data-state='open']").await;
    app.service
        .post(&alice, minitwit_core::MessageText::parse("new").expect("valid"))
        .await
        .expect("posts");
    browser.wait_for_css("button.live-new").await;
    let found = browser.all_rules_violations().await;
    violations.extend(found.into_iter().map(|v| format!("home with the bar: {v}")));
    browser.close().await;
    assert!(violations.is_empty(), "axe violations:\n{}", violations.join("\n"));
}
