//! The HTML site in real headless Chromium, used as a new person would: sign up, sign
//! in, post, follow, read, unfollow, sign out, with the mouse and with the keyboard
//! alone; every page audited by axe-core for WCAG 2.1 AA (CONTRACT.md §3.2); and the
//! script that shows times in the reader's own time zone.

use crate::support::browser::Browser;
use crate::support::{self, Setup, TestApp, spawn_app};
use fantoccini::Locator;
use minitwit_core::model::ImportBatch;
use minitwit_core::{Message, MessageId, Registration};

/// The fixed time of alice's message: 2020-02-21 01:01 UTC, 10:01 in Tokyo.
const ALICE_POSTED_AT: i64 = 1_582_246_860;
const ALICE_TEXT: &str = "Hello from alice, posted long ago";

/// A site where alice has one message from a fixed time.
async fn site_with_alice() -> TestApp {
    let app = spawn_app(support::sled().await, Setup::default()).await;
    let registration = Registration::parse("alice", "alice@example.com", "pw", None).unwrap();
    let alice = app.service.register(registration).await.unwrap();
    let message = Message {
        id: MessageId(1000),
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

/// Every kind of page, signed out and signed in, with and without errors and flashes:
/// axe-core finds no WCAG 2.0/2.1 A or AA violation on any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_wcag_21_aa_audit() {
    let app = site_with_alice().await;
    let browser = Browser::start("UTC").await;
    let mut violations = Vec::new();
    let mut audit = async |page: &str| {
        let found = browser.accessibility_violations().await;
        violations.extend(found.into_iter().map(|v| format!("{page}: {v}")));
    };
    for (page, path) in [
        ("public timeline", "/public"),
        ("user timeline", "/alice"),
        ("sign up", "/register"),
        ("sign in", "/login"),
        ("error page", "/nobody-is-called-this"),
    ] {
        browser.goto(&app, path).await;
        audit(page).await;
    }
    browser.goto(&app, "/login").await;
    browser.fill("username", "nobody").await;
    browser.click(Locator::Css("input[type='submit']")).await;
    browser.wait_for_text("Invalid username").await;
    audit("sign in with an error").await;
    app.service
        .register(Registration::parse("reader", "reader@example.com", "pw", None).unwrap())
        .await
        .unwrap();
    browser.fill("username", "reader").await;
    browser.fill("password", "pw").await;
    browser.click(Locator::Css("input[type='submit']")).await;
    browser.wait_for_text("What's on your mind reader?").await;
    audit("my timeline, with a flash").await;
    browser.goto(&app, "/alice").await;
    audit("user timeline, signed in").await;
    browser.click(Locator::Css("button.follow")).await;
    browser.wait_for_text("You are currently following this user.").await;
    audit("user timeline, followed").await;
    browser.close().await;
    assert!(violations.is_empty(), "accessibility violations:\n{}", violations.join("\n"));
}

/// The whole journey with the keyboard alone: Tab to each control, type, press Enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyboard_user_signs_up_signs_in_posts_follows_and_signs_out() {
    let app = site_with_alice().await;
    let browser = Browser::start("UTC").await;
    browser.goto(&app, "/public").await;

    browser.activate("a[href='/register']").await;
    browser.wait_for_text("Sign Up").await;
    browser.type_into("username", "keys").await;
    browser.type_into("email", "keys@example.com").await;
    browser.type_into("password", "s3cret").await;
    browser.type_into("password2", "s3cret").await;
    browser.activate("input[type='submit']").await;
    browser.wait_for_text("You were successfully registered and can login now").await;

    browser.type_into("username", "keys").await;
    browser.type_into("password", "s3cret").await;
    browser.press(&fantoccini::key::Key::Enter).await;
    browser.wait_for_text("You were logged in").await;

    browser.type_into("text", "Typed, not clicked").await;
    browser.press(&fantoccini::key::Key::Enter).await;
    browser.wait_for_text("Your message was recorded").await;

    browser.activate("a[href='/public']").await;
    browser.wait_for_text("Public Timeline").await;
    browser.activate("a[href='/alice']").await;
    browser.wait_for_text("alice's Timeline").await;
    browser.activate("button.follow").await;
    browser.wait_for_text(r#"You are now following "alice""#).await;

    browser.activate("a[href='/logout']").await;
    browser.wait_for_text("You were logged out").await;
    browser.close().await;
    let keys = app.service.user("keys").await.expect("registered by keyboard");
    let alice = app.service.user("alice").await.expect("alice");
    assert!(app.service.is_following(keys.id, alice.id).await.expect("follows"));
}
