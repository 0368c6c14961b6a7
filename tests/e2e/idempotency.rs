//! Idempotency keys over real HTTP (CONTRACT.md §4.5): a write sent twice with one key
//! applies once and both answers are the same; a key reused for another request is 422;
//! a malformed key is 400; keys belong to their caller. On the API and the site, on
//! every backend.

use crate::support::TestApp;
use crate::support::api::{Answer, assert_error};
use crate::support::site::Page;
use minitwit_test_support::simulator;
use serde_json::{Value, json};

on_every_backend!(
    api_writes_sent_twice_with_one_key_apply_once,
    api_key_reused_for_another_request_is_422,
    api_malformed_keys_are_400,
    api_keys_belong_to_their_caller,
    site_writes_sent_twice_with_one_key_apply_once,
    site_keys_belong_to_the_signed_in_user,
);

const REPLAYED: &str = "idempotent-replayed";

/// `POST path` with `body` and `Idempotency-Key: key`, with the simulator's credentials.
async fn keyed_post(app: &TestApp, path: &str, key: &str, body: &Value) -> Answer {
    let request = app
        .api
        .client
        .post(app.api.url(path))
        .header("authorization", simulator::AUTHORIZATION)
        .header("idempotency-key", key)
        .body(body.to_string());
    app.api.send(request).await
}

/// Sends the keyed request twice and checks that both answers are 204 with an empty
/// body, the second marked replayed.
async fn twice(app: &TestApp, path: &str, key: &str, body: Value) {
    let first = keyed_post(app, path, key, &body).await;
    let second = keyed_post(app, path, key, &body).await;
    for answer in [&first, &second] {
        assert_eq!((answer.status, &answer.body), (204, &Value::Null), "{path}: {answer:?}");
    }
    assert_eq!(first.headers.get(REPLAYED), None, "{path}: the first is no replay");
    assert_eq!(second.headers.get(REPLAYED).map(|v| v.as_bytes()), Some(&b"true"[..]), "{path}");
}

async fn api_writes_sent_twice_with_one_key_apply_once(app: TestApp) {
    let register = json!({"username": "alice", "email": "a@example.com", "pwd": "pw"});
    twice(&app, "/register?latest=1", "reg-alice", register).await;
    app.api.register("bob").await;
    twice(&app, "/msgs/alice?latest=2", "post-1", json!({"content": "once"})).await;
    twice(&app, "/fllws/alice?latest=3", "follow-1", json!({"follow": "bob"})).await;
    let stats = app.service.stats().await.expect("stats");
    assert_eq!((stats.users, stats.messages, stats.follows), (2, 1, 1));
    twice(&app, "/fllws/alice?latest=4", "unfollow-1", json!({"unfollow": "bob"})).await;
    // The same follow again, under its first key: replayed, so it changes nothing.
    let follow = json!({"follow": "bob"});
    let refollow = keyed_post(&app, "/fllws/alice?latest=3", "follow-1", &follow).await;
    assert_eq!(refollow.status, 204);
    assert_eq!(app.service.stats().await.expect("stats").follows, 0);
    // Without a key, a second post is a second message, as before.
    for _ in 0..2 {
        assert_eq!(app.api.post("/msgs/alice", json!({"content": "twice"})).await.status, 204);
    }
    assert_eq!(app.service.stats().await.expect("stats").messages, 3);
}

async fn api_key_reused_for_another_request_is_422(app: TestApp) {
    app.api.register("alice").await;
    let first = keyed_post(&app, "/msgs/alice", "k", &json!({"content": "one"})).await;
    assert_eq!(first.status, 204);
    let other = keyed_post(&app, "/msgs/alice", "k", &json!({"content": "two"})).await;
    let message = assert_error(&other, 422);
    assert!(message.contains("Idempotency-Key"), "{message}");
    let elsewhere = keyed_post(&app, "/fllws/alice", "k", &json!({"follow": "alice"})).await;
    assert_error(&elsewhere, 422);
    assert_eq!(app.service.stats().await.expect("stats").messages, 1);
}

async fn api_malformed_keys_are_400(app: TestApp) {
    app.api.register("alice").await;
    for bad in ["", "has space", &"k".repeat(256)] {
        let answer = keyed_post(&app, "/msgs/alice", bad, &json!({"content": "x"})).await;
        let message = assert_error(&answer, 400);
        assert!(message.contains("Idempotency-Key"), "{bad:?}: {message}");
    }
    let raw = app
        .api
        .client
        .post(app.api.url("/msgs/alice"))
        .header("authorization", simulator::AUTHORIZATION)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"\xff").expect("opaque"),
        )
        .body(r#"{"content":"x"}"#);
    assert_error(&app.api.send(raw).await, 400);
    assert_eq!(app.service.stats().await.expect("stats").messages, 0);
}

async fn api_keys_belong_to_their_caller(app: TestApp) {
    let body = json!({"username": "alice", "email": "a@example.com", "pwd": "pw"});
    assert_eq!(keyed_post(&app, "/register", "shared", &body).await.status, 204);
    // The same key and request without the simulator's credentials: another caller, so
    // not answered from the simulator's receipt (and alice is taken).
    let anonymous = app
        .api
        .client
        .post(app.api.url("/register"))
        .header("idempotency-key", "shared")
        .body(body.to_string());
    let answer = app.api.send(anonymous).await;
    assert_eq!(assert_error(&answer, 400), "The username is already taken");
    assert_eq!(answer.headers.get(REPLAYED), None);
}

/// `POST path` with `form` and `Idempotency-Key: key` through `client`.
async fn keyed_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    key: &str,
    form: &[(&str, &str)],
) -> Page {
    let request = client.post(app.site.url(path)).header("idempotency-key", key).form(form);
    app.site.send(request).await
}

/// A second browser: its own cookies, no redirects followed.
fn browser() -> reqwest::Client {
    let builder = reqwest::Client::builder().cookie_store(true);
    builder.redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client")
}

async fn site_writes_sent_twice_with_one_key_apply_once(app: TestApp) {
    let form = [
        ("username", "alice"),
        ("email", "a@example.com"),
        ("password", "pw"),
        ("password2", "pw"),
    ];
    let client = &app.site.client;
    let first = keyed_form(&app, client, "/register", "reg", &form).await;
    let second = keyed_form(&app, client, "/register", "reg", &form).await;
    for page in [&first, &second] {
        assert_eq!((page.status, page.location.as_deref()), (302, Some("/login")), "{page:?}");
    }
    assert_eq!(second.header(REPLAYED), Some("true"));
    let login = app.site.follow(second).await;
    login.assert_contains("You were successfully registered and can login now");
    app.site.login("alice", "pw").await;
    app.api.register("bob").await;
    for _ in 0..2 {
        let page = keyed_form(&app, client, "/add_message", "post", &[("text", "just once")]).await;
        assert_eq!(page.location.as_deref(), Some("/"));
        let page = keyed_form(&app, client, "/bob/follow", "follow", &[]).await;
        assert_eq!(page.location.as_deref(), Some("/bob"));
        app.site.follow(page).await.assert_contains("You are now following &#34;bob&#34;");
    }
    let stats = app.service.stats().await.expect("stats");
    assert_eq!((stats.users, stats.messages, stats.follows), (2, 1, 1));
    let reused = keyed_form(&app, client, "/add_message", "post", &[("text", "other")]).await;
    assert_eq!(reused.status, 422, "{reused:?}");
}

async fn site_keys_belong_to_the_signed_in_user(app: TestApp) {
    app.site.register_and_login("alice").await;
    let other = browser();
    let form = [("username", "carol"), ("password", "pw")];
    app.api.register("carol").await;
    app.site.send(other.post(app.site.url("/login")).form(&form)).await;
    for client in [&app.site.client, &other] {
        let page = keyed_form(&app, client, "/add_message", "same", &[("text", "mine")]).await;
        assert_eq!((page.status, page.header(REPLAYED)), (302, None), "{page:?}");
    }
    assert_eq!(app.service.stats().await.expect("stats").messages, 2);
}
