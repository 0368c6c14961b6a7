//! The HTML site over real HTTP (CONTRACT.md §3 and §7): every test starts the real server on
//! 127.0.0.1:0 over a fresh store and drives it as a browser or a test suite would.

use crate::support::site::Page;
use crate::support::{self, Setup, TestApp, spawn_app};
use minitwit_core::{MessageText, PageSize, Registration, Timeline};
use std::time::Duration;

on_every_backend!(
    registration_errors_come_in_contract_order,
    login_and_logout,
    messages_are_recorded_and_escaped,
    timelines_show_the_right_messages,
    follow_and_unfollow_by_legacy_get,
    unknown_users_are_404_and_signed_out_actions_401,
    pagination_has_no_gap_or_duplicate,
    cross_site_requests_are_refused,
    responses_carry_security_and_cache_headers,
    sessions_are_encrypted_cookies,
);

async fn registration_errors_come_in_contract_order(app: TestApp) {
    app.site.get("/register").await.assert_contains("<title>Sign Up | MiniTwit</title>");
    let cases = [
        (("", "", "", ""), "You have to enter a username"),
        (("meh", "", "", ""), "You have to enter a valid email address"),
        (("meh", "", "", "broken"), "You have to enter a valid email address"),
        (("meh", "", "", "meh@example.com"), "You have to enter a password"),
        (("meh", "x", "y", "meh@example.com"), "The two passwords do not match"),
        (("public", "x", "x", "meh@example.com"), "The username is reserved"),
    ];
    for ((name, pw, pw2, email), error) in cases {
        let page = app.site.register(name, pw, pw2, email).await;
        assert_eq!(page.status, 200);
        page.assert_contains(&format!("<strong>Error:</strong> {error}"));
    }
    let page = app
        .site
        .post(
            "/register",
            &[
                ("username", "user1"),
                ("password", "default"),
                ("password2", "default"),
                ("email", "user1@example.com"),
            ],
        )
        .await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/login")));
    app.site
        .follow(page)
        .await
        .assert_contains("You were successfully registered and can login now");
    app.site
        .register("user1", "default", "default", "user1@example.com")
        .await
        .assert_contains("The username is already taken");
}

async fn login_and_logout(app: TestApp) {
    app.site.register("user1", "default", "default", "user1@example.com").await;
    let page = app.site.post("/login", &[("username", "user1"), ("password", "default")]).await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/")));
    let home = app.site.follow(page).await;
    home.assert_contains("You were logged in").assert_contains("sign out [user1]");
    home.assert_contains("<title>My Timeline | MiniTwit</title>");
    assert_eq!(app.site.get("/login").await.location.as_deref(), Some("/"), "signed in: go home");
    assert_eq!(app.site.get("/register").await.location.as_deref(), Some("/"));
    let page = app.site.get("/logout").await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/public")));
    let public = app.site.follow(page).await;
    public
        .assert_contains("You were logged out")
        .assert_contains("sign in")
        .assert_lacks("sign out");
    app.site.login("user1", "wrongpassword").await.assert_contains("Invalid password");
    app.site.login("user2", "wrongpassword").await.assert_contains("Invalid username");
    assert_eq!(app.site.get("/").await.location.as_deref(), Some("/public"), "signed out: public");
}

async fn messages_are_recorded_and_escaped(app: TestApp) {
    app.site.register_and_login("foo").await;
    app.site.add_message("test message 1").await.assert_contains("Your message was recorded");
    let home = app.site.add_message("<test message 2>").await;
    home.assert_contains("test message 1").assert_contains("&lt;test message 2&gt;");
    home.assert_lacks("<test message 2>");
    let page = app.site.add_message("   ").await;
    page.assert_lacks("Your message was recorded");
    let count = app.service.stats().await.unwrap().messages;
    assert_eq!(count, 2, "empty text records nothing");
    app.site.add_message(&"x".repeat(1001)).await.assert_contains("at most 1000 characters");
    app.site
        .add_message("nul\u{0}byte")
        .await
        .assert_contains("may not contain control characters");
    home.assert_contains("What's on your mind foo?");
}

async fn timelines_show_the_right_messages(app: TestApp) {
    app.site.register_and_login("foo").await;
    app.site.add_message("the message by foo").await;
    app.site.logout().await;
    app.site.register_and_login("Roger Histand").await;
    app.site.add_message("the message by Roger").await;
    let public = app.site.get("/public").await;
    public.assert_contains("the message by foo").assert_contains("the message by Roger");
    public.assert_contains(r#"<a href="/Roger%20Histand">Roger Histand</a>"#);
    public.assert_contains("<title>Public Timeline | MiniTwit</title>");
    let home = app.site.get("/").await;
    home.assert_lacks("the message by foo").assert_contains("the message by Roger");
    let page = app.site.post("/foo/follow", &[]).await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/foo")));
    let foo_page = app.site.follow(page).await;
    foo_page.assert_contains("You are now following &#34;foo&#34;");
    foo_page.assert_contains("You are currently following this user.");
    foo_page.assert_contains("the message by foo").assert_lacks("the message by Roger");
    foo_page.assert_contains("<title>foo's Timeline | MiniTwit</title>");
    let home = app.site.get("/").await;
    home.assert_contains("the message by foo").assert_contains("the message by Roger");
    let me = app.site.get("/Roger%20Histand").await;
    me.assert_contains("This is you!").assert_lacks("the message by foo");
    let page = app.site.post("/foo/unfollow", &[]).await;
    let foo_page = app.site.follow(page).await;
    foo_page.assert_contains("You are no longer following &#34;foo&#34;");
    foo_page.assert_contains("You are not yet following this user.");
    app.site.get("/").await.assert_lacks("the message by foo");
    app.site.logout().await;
    let foo_page = app.site.get("/foo").await;
    foo_page.assert_contains("the message by foo").assert_lacks("following this user");
    let empty_app = app.site.get("/public?before=1.1").await;
    empty_app.assert_contains("There's no message so far.");
}

async fn follow_and_unfollow_by_legacy_get(app: TestApp) {
    app.site.register_and_login("foo").await;
    app.site.logout().await;
    app.site.register_and_login("bar").await;
    let page = app.site.get("/foo/follow").await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/foo")));
    app.site.follow(page).await.assert_contains("You are now following &#34;foo&#34;");
    let page = app.site.get("/foo/unfollow").await;
    assert_eq!(page.status, 302);
    app.site.follow(page).await.assert_contains("You are no longer following &#34;foo&#34;");
}

async fn unknown_users_are_404_and_signed_out_actions_401(app: TestApp) {
    let page = app.site.get("/nobody").await;
    assert_eq!(page.status, 404);
    page.assert_contains("404 Not Found")
        .assert_contains("<title>404 Not Found | MiniTwit</title>");
    assert_eq!(app.site.get("/nobody/follow").await.status, 401);
    assert_eq!(app.site.post("/nobody/unfollow", &[]).await.status, 401);
    let page = app.site.post("/add_message", &[("text", "hi")]).await;
    assert_eq!(page.status, 401);
    page.assert_contains("You have to sign in");
    app.site.register_and_login("foo").await;
    assert_eq!(app.site.post("/nobody/follow", &[]).await.status, 404);
    assert_eq!(app.site.get("/a/b/c").await.status, 404);
    assert_eq!(app.site.get("/%FF").await.status, 404);
    assert_eq!(app.site.get("/a%00b").await.status, 404, "PostgreSQL cannot be asked about NUL");
    app.site.logout().await;
    app.site.login("a\u{0}b", "pw").await.assert_contains("Invalid username");
    assert_eq!(app.site.send(app.site.client.delete(app.site.url("/public"))).await.status, 405);
}

/// The message texts on a page, in order.
fn texts(page: &Page) -> Vec<String> {
    page.body.match_indices("msg-").map(|(i, _)| page.body[i..i + 7].to_owned()).collect()
}

/// Walks a timeline from `path` through its "older messages" links.
async fn walk(app: &TestApp, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let page = app.site.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        seen.extend(texts(&page));
        next = page
            .body
            .split(r#"class="older" rel="next" href=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
    }
    seen
}

/// A whole timeline, read from the service in one go.
async fn expected(app: &TestApp, timeline: Timeline) -> Vec<String> {
    let page = app.service.timeline(timeline, None, PageSize::new(1000)).await.unwrap();
    page.entries.into_iter().map(|e| e.text).collect()
}

async fn pagination_has_no_gap_or_duplicate(app: TestApp) {
    let reg = |name: &str| Registration::parse(name, "x@example.com", "pw", None).unwrap();
    let author = app.service.register(reg("author")).await.unwrap();
    let other = app.service.register(reg("other")).await.unwrap();
    // Many messages share a second, so the cursor must break ties by id.
    for i in 0..70 {
        let who = if i % 5 == 0 { &other } else { &author };
        app.service.post(who, MessageText::parse(&format!("msg-{i:03}")).unwrap()).await.unwrap();
    }
    assert_eq!(walk(&app, "/public").await, expected(&app, Timeline::Public).await);
    assert_eq!(walk(&app, "/author").await, expected(&app, Timeline::User(author.id)).await);
    assert_eq!(expected(&app, Timeline::Public).await.len(), 70);
    app.site.login("author", "pw").await;
    app.site.get("/other/follow").await;
    assert_eq!(walk(&app, "/").await, expected(&app, Timeline::Home(author.id)).await);
    let bad = app.site.get("/public?before=garbage").await;
    assert_eq!(bad.status, 400);
    bad.assert_contains("400 Bad Request");
}

async fn cross_site_requests_are_refused(app: TestApp) {
    app.site.register_and_login("foo").await;
    let origin = app.site.base.clone();
    let post = |headers: &[(&'static str, &str)]| {
        let mut request =
            app.site.client.post(app.site.url("/add_message")).form(&[("text", "hello")]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app.site.send(request)
    };
    let page = post(&[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")]).await;
    assert_eq!(page.status, 403);
    page.assert_contains("403 Forbidden");
    assert_eq!(post(&[("origin", "https://evil.example")]).await.status, 403);
    assert_eq!(app.service.stats().await.unwrap().messages, 0, "nothing was posted");
    assert_eq!(post(&[("sec-fetch-site", "same-origin"), ("origin", &origin)]).await.status, 302);
    assert_eq!(post(&[("sec-fetch-site", "same-site"), ("origin", &origin)]).await.status, 302);
    assert_eq!(post(&[]).await.status, 302, "header-less clients are not browsers");
    assert_eq!(app.service.stats().await.unwrap().messages, 3);
    let legacy =
        app.site.client.get(app.site.url("/foo/follow")).header("sec-fetch-site", "cross-site");
    assert_eq!(app.site.send(legacy).await.status, 403);
}

async fn responses_carry_security_and_cache_headers(app: TestApp) {
    let public = app.site.get("/public").await;
    let csp = public.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(public.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(public.header("x-frame-options"), Some("DENY"));
    assert!(public.header("referrer-policy").is_some());
    assert!(!public.body.contains("<script>"), "no inline script");
    let style = public.body.split(r#"<link rel="stylesheet" href=""#).nth(1).unwrap();
    let style = style.split('"').next().unwrap();
    let css = app.site.get(style).await;
    assert_eq!(css.status, 200);
    assert!(css.header("cache-control").unwrap().contains("immutable"));
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    let etag = css.header("etag").unwrap().to_owned();
    let again =
        app.site.client.get(app.site.url("/static/style.css")).header("if-none-match", etag);
    assert_eq!(app.site.send(again).await.status, 304);
    let missing = app.site.get("/static/nope.css").await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-security-policy").is_some(), "error pages too");
    let huge = "x".repeat(70 * 1024);
    assert_eq!(app.site.post("/login", &[("username", &huge)]).await.status, 413);
    // HEAD reads a page's head; it never signs out or follows.
    let head = app.site.send(app.site.client.head(app.site.url("/public"))).await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(head.header("content-type").unwrap().starts_with("text/html"));
    let head_logout = app.site.send(app.site.client.head(app.site.url("/logout"))).await;
    assert_ne!(head_logout.status, 302, "HEAD /logout must not sign out");
    assert!(head_logout.header("set-cookie").is_none());
}

async fn sessions_are_encrypted_cookies(app: TestApp) {
    app.site.register("foo", "secret", "secret", "foo@example.com").await;
    let page = app.site.post("/login", &[("username", "foo"), ("password", "secret")]).await;
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.starts_with("session=") && cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("foo") && !cookie.contains("logged"), "encrypted: {cookie}");
    let fresh =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page =
        app.site.send(fresh.get(app.site.url("/")).header("cookie", "session=eyJ1IjoxfQ")).await;
    assert_eq!(page.location.as_deref(), Some("/public"), "a forged cookie signs nobody in");
}

/// Login throttling: with a quota of two attempts, the third is refused with 429 and a
/// clear message; once the quota refills, signing in works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_kicks_in_and_lifts() {
    let web = |config: &mut minitwit_web::WebConfig| {
        config.login_per_account.burst = 2;
        config.login_per_account.replenish_every = Duration::from_millis(500);
    };
    let app = spawn_app(support::sled().await, Setup { web, ..Setup::default() }).await;
    app.site.register("foo", "right", "right", "foo@example.com").await;
    for _ in 0..2 {
        app.site.login("foo", "wrong").await.assert_contains("Invalid password");
    }
    let page = app.site.post("/login", &[("username", "foo"), ("password", "right")]).await;
    assert_eq!(page.status, 429);
    page.assert_contains("Too many sign-in attempts");
    assert!(page.header("retry-after").is_some());
    app.site.login("bar", "wrong").await.assert_contains("Invalid username");
    let mut page = page;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = app.site.post("/login", &[("username", "foo"), ("password", "right")]).await;
        if page.status != 429 {
            break;
        }
    }
    assert_eq!(page.location.as_deref(), Some("/"), "signing in works again");
}
