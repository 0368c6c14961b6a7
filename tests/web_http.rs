//! The HTML site over real HTTP (CONTRACT.md §3 and §7): every test starts the real server on
//! 127.0.0.1:0 over a fresh store and drives it as a browser or a test suite would.

#[macro_use]
mod web_support;

use minitwit_core::{MessageText, PageSize, Registration, Timeline};
use std::time::Duration;
use web_support::{Page, TestApp, spawn_app};

web_tests! {
    backends {
        sled => minitwit_store_sled::testkit::fresh_store().await,
        pg => minitwit_store_pg::testkit::fresh_store().await,
    }
    tests {
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
    }
}

async fn registration_errors_come_in_contract_order(app: TestApp) {
    app.get("/register").await.assert_contains("<title>Sign Up | MiniTwit</title>");
    let cases = [
        (("", "", "", ""), "You have to enter a username"),
        (("meh", "", "", ""), "You have to enter a valid email address"),
        (("meh", "", "", "broken"), "You have to enter a valid email address"),
        (("meh", "", "", "meh@example.com"), "You have to enter a password"),
        (("meh", "x", "y", "meh@example.com"), "The two passwords do not match"),
        (("public", "x", "x", "meh@example.com"), "The username is reserved"),
    ];
    for ((name, pw, pw2, email), error) in cases {
        let page = app.register(name, pw, pw2, email).await;
        assert_eq!(page.status, 200);
        page.assert_contains(&format!("<strong>Error:</strong> {error}"));
    }
    let page = app
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
    app.follow(page).await.assert_contains("You were successfully registered and can login now");
    app.register("user1", "default", "default", "user1@example.com")
        .await
        .assert_contains("The username is already taken");
}

async fn login_and_logout(app: TestApp) {
    app.register("user1", "default", "default", "user1@example.com").await;
    let page = app.post("/login", &[("username", "user1"), ("password", "default")]).await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/")));
    let home = app.follow(page).await;
    home.assert_contains("You were logged in").assert_contains("sign out [user1]");
    home.assert_contains("<title>My Timeline | MiniTwit</title>");
    assert_eq!(app.get("/login").await.location.as_deref(), Some("/"), "signed in: go home");
    assert_eq!(app.get("/register").await.location.as_deref(), Some("/"));
    let page = app.get("/logout").await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/public")));
    let public = app.follow(page).await;
    public
        .assert_contains("You were logged out")
        .assert_contains("sign in")
        .assert_lacks("sign out");
    app.login("user1", "wrongpassword").await.assert_contains("Invalid password");
    app.login("user2", "wrongpassword").await.assert_contains("Invalid username");
    assert_eq!(app.get("/").await.location.as_deref(), Some("/public"), "signed out: public");
}

async fn messages_are_recorded_and_escaped(app: TestApp) {
    app.register_and_login("foo").await;
    app.add_message("test message 1").await.assert_contains("Your message was recorded");
    let home = app.add_message("<test message 2>").await;
    home.assert_contains("test message 1").assert_contains("&lt;test message 2&gt;");
    home.assert_lacks("<test message 2>");
    let page = app.add_message("   ").await;
    page.assert_lacks("Your message was recorded");
    let count = app.service.stats().await.unwrap().messages;
    assert_eq!(count, 2, "empty text records nothing");
    app.add_message(&"x".repeat(1001)).await.assert_contains("at most 1000 characters");
    app.add_message("nul\u{0}byte").await.assert_contains("may not contain control characters");
    home.assert_contains("What's on your mind foo?");
}

async fn timelines_show_the_right_messages(app: TestApp) {
    app.register_and_login("foo").await;
    app.add_message("the message by foo").await;
    app.logout().await;
    app.register_and_login("Roger Histand").await;
    app.add_message("the message by Roger").await;
    let public = app.get("/public").await;
    public.assert_contains("the message by foo").assert_contains("the message by Roger");
    public.assert_contains(r#"<a href="/Roger%20Histand">Roger Histand</a>"#);
    public.assert_contains("<title>Public Timeline | MiniTwit</title>");
    let home = app.get("/").await;
    home.assert_lacks("the message by foo").assert_contains("the message by Roger");
    let page = app.post("/foo/follow", &[]).await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/foo")));
    let foo_page = app.follow(page).await;
    foo_page.assert_contains("You are now following &#34;foo&#34;");
    foo_page.assert_contains("You are currently following this user.");
    foo_page.assert_contains("the message by foo").assert_lacks("the message by Roger");
    foo_page.assert_contains("<title>foo's Timeline | MiniTwit</title>");
    let home = app.get("/").await;
    home.assert_contains("the message by foo").assert_contains("the message by Roger");
    let me = app.get("/Roger%20Histand").await;
    me.assert_contains("This is you!").assert_lacks("the message by foo");
    let page = app.post("/foo/unfollow", &[]).await;
    let foo_page = app.follow(page).await;
    foo_page.assert_contains("You are no longer following &#34;foo&#34;");
    foo_page.assert_contains("You are not yet following this user.");
    app.get("/").await.assert_lacks("the message by foo");
    app.logout().await;
    let foo_page = app.get("/foo").await;
    foo_page.assert_contains("the message by foo").assert_lacks("following this user");
    let empty_app = app.get("/public?before=1.1").await;
    empty_app.assert_contains("There's no message so far.");
}

async fn follow_and_unfollow_by_legacy_get(app: TestApp) {
    app.register_and_login("foo").await;
    app.logout().await;
    app.register_and_login("bar").await;
    let page = app.get("/foo/follow").await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/foo")));
    app.follow(page).await.assert_contains("You are now following &#34;foo&#34;");
    let page = app.get("/foo/unfollow").await;
    assert_eq!(page.status, 302);
    app.follow(page).await.assert_contains("You are no longer following &#34;foo&#34;");
}

async fn unknown_users_are_404_and_signed_out_actions_401(app: TestApp) {
    let page = app.get("/nobody").await;
    assert_eq!(page.status, 404);
    page.assert_contains("404 Not Found")
        .assert_contains("<title>404 Not Found | MiniTwit</title>");
    assert_eq!(app.get("/nobody/follow").await.status, 401);
    assert_eq!(app.post("/nobody/unfollow", &[]).await.status, 401);
    let page = app.post("/add_message", &[("text", "hi")]).await;
    assert_eq!(page.status, 401);
    page.assert_contains("You have to sign in");
    app.register_and_login("foo").await;
    assert_eq!(app.post("/nobody/follow", &[]).await.status, 404);
    assert_eq!(app.get("/a/b/c").await.status, 404);
    assert_eq!(app.get("/%FF").await.status, 404);
    assert_eq!(app.get("/a%00b").await.status, 404, "PostgreSQL cannot be asked about NUL");
    app.logout().await;
    app.login("a\u{0}b", "pw").await.assert_contains("Invalid username");
    assert_eq!(app.send(app.client.delete(app.url("/public"))).await.status, 405);
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
        let page = app.get(&path).await;
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
    app.login("author", "pw").await;
    app.get("/other/follow").await;
    assert_eq!(walk(&app, "/").await, expected(&app, Timeline::Home(author.id)).await);
    let bad = app.get("/public?before=garbage").await;
    assert_eq!(bad.status, 400);
    bad.assert_contains("400 Bad Request");
}

async fn cross_site_requests_are_refused(app: TestApp) {
    app.register_and_login("foo").await;
    let origin = app.base.clone();
    let post = |headers: &[(&'static str, &str)]| {
        let mut request = app.client.post(app.url("/add_message")).form(&[("text", "hello")]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app.send(request)
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
    let legacy = app.client.get(app.url("/foo/follow")).header("sec-fetch-site", "cross-site");
    assert_eq!(app.send(legacy).await.status, 403);
}

async fn responses_carry_security_and_cache_headers(app: TestApp) {
    let public = app.get("/public").await;
    let csp = public.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(public.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(public.header("x-frame-options"), Some("DENY"));
    assert!(public.header("referrer-policy").is_some());
    assert!(!public.body.contains("<script>"), "no inline script");
    let style = public.body.split(r#"<link rel="stylesheet" href=""#).nth(1).unwrap();
    let style = style.split('"').next().unwrap();
    let css = app.get(style).await;
    assert_eq!(css.status, 200);
    assert!(css.header("cache-control").unwrap().contains("immutable"));
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    let etag = css.header("etag").unwrap().to_owned();
    let again = app.client.get(app.url("/static/style.css")).header("if-none-match", etag);
    assert_eq!(app.send(again).await.status, 304);
    let missing = app.get("/static/nope.css").await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-security-policy").is_some(), "error pages too");
    let huge = "x".repeat(70 * 1024);
    assert_eq!(app.post("/login", &[("username", &huge)]).await.status, 413);
    // HEAD reads a page's head; it never signs out or follows.
    let head = app.send(app.client.head(app.url("/public"))).await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(head.header("content-type").unwrap().starts_with("text/html"));
    let head_logout = app.send(app.client.head(app.url("/logout"))).await;
    assert_ne!(head_logout.status, 302, "HEAD /logout must not sign out");
    assert!(head_logout.header("set-cookie").is_none());
}

async fn sessions_are_encrypted_cookies(app: TestApp) {
    app.register("foo", "secret", "secret", "foo@example.com").await;
    let page = app.post("/login", &[("username", "foo"), ("password", "secret")]).await;
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.starts_with("session=") && cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("foo") && !cookie.contains("logged"), "encrypted: {cookie}");
    let fresh =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = app.send(fresh.get(app.url("/")).header("cookie", "session=eyJ1IjoxfQ")).await;
    assert_eq!(page.location.as_deref(), Some("/public"), "a forged cookie signs nobody in");
}

/// Login throttling: with a quota of two attempts, the third is refused with 429 and a
/// clear message; once the quota refills, signing in works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_kicks_in_and_lifts() {
    let app = spawn_app(minitwit_store_sled::testkit::fresh_store().await, |config| {
        config.login_per_account.burst = 2;
        config.login_per_account.replenish_every = Duration::from_millis(500);
    })
    .await;
    app.register("foo", "right", "right", "foo@example.com").await;
    for _ in 0..2 {
        app.login("foo", "wrong").await.assert_contains("Invalid password");
    }
    let page = app.post("/login", &[("username", "foo"), ("password", "right")]).await;
    assert_eq!(page.status, 429);
    page.assert_contains("Too many sign-in attempts");
    assert!(page.header("retry-after").is_some());
    app.login("bar", "wrong").await.assert_contains("Invalid username");
    let mut page = page;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = app.post("/login", &[("username", "foo"), ("password", "right")]).await;
        if page.status != 429 {
            break;
        }
    }
    assert_eq!(page.location.as_deref(), Some("/"), "signing in works again");
}

/// A store outage: pages answer 503 with a page that leaks nothing, and the site works
/// again once the database is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_a_503_page_and_passes() {
    use minitwit_store_pg::testkit::TestCluster;
    use minitwit_store_pg::{PgOptions, PgStore};
    use std::sync::Arc;
    let blocking = |f: fn(&TestCluster) -> Result<(), _>, cluster: Arc<TestCluster>| {
        tokio::task::spawn_blocking(move || f(&cluster).expect("cluster operation"))
    };
    let cluster = tokio::task::spawn_blocking(TestCluster::start).await.unwrap();
    let cluster = Arc::new(cluster.unwrap_or_else(|e| panic!("{e}")));
    let options = PgOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(500),
        ..PgOptions::default()
    };
    let store = PgStore::connect(&cluster.url("postgres"), options).await.expect("connects");
    let app = spawn_app((Arc::new(store), cluster.clone()), |_| {}).await;
    assert_eq!(app.get("/public").await.status, 200);

    blocking(TestCluster::stop, cluster.clone()).await.unwrap();
    let page = app.get("/public").await;
    assert_eq!(page.status, 503);
    page.assert_contains("503 Service Unavailable").assert_contains("temporarily unavailable");
    for secret in ["postgres", "sqlx", "connection", "pool", "/tmp"] {
        page.assert_lacks(secret);
    }

    blocking(TestCluster::resume, cluster.clone()).await.unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/public").await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the site works again");
}
