//! `minitwit serve` against hostile and careless clients:
//! - headers and labels: security headers on every response of both listeners, and a
//!   closed set of metric labels whatever methods clients invent;
//! - bodies: one the client aborts is the client's failure (400), never a server error;
//!   a 413 closes its connection;
//! - cross-site GETs change nothing;
//! - slow and idle clients: slow-loris headers, idle connections, slow bodies and
//!   connections past the cap are cut off, and none delays shutdown past its grace;
//!   requests past the deadline get the front end's 503, counted;
//! - floods: registrations answer 204 or 503 while cheap requests stay served, and
//!   registrations without the simulator's credentials are throttled per address;
//! - sessions: a password change or "sign out everywhere" ends live sessions (sled and
//!   PostgreSQL);
//! - export files are readable by their owner only.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fixture_store, http};
use minitwit_test_support::simulator;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// `host:port` of a listener's `http://host:port` URL.
pub fn authority(base: &str) -> &str {
    base.strip_prefix("http://").unwrap()
}

/// Sends `raw` on a fresh connection, then half-closes it and reads what comes back.
pub fn raw_exchange(base: &str, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(authority(base)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(raw).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_of_both_listeners_carries_the_security_headers() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let client = http();
    let paths = [
        format!("{}/health", server.web),
        format!("{}/ready", server.web),
        format!("{}/metrics", server.web),
        format!("{}/health", server.api),
        format!("{}/ready", server.api),
        format!("{}/metrics", server.api),
        format!("{}/latest", server.api),
        format!("{}/msgs", server.api),
        format!("{}/no/such/thing", server.api),
        format!("{}/public", server.web),
    ];
    for url in paths {
        let response = client.get(&url).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(headers["x-frame-options"], "DENY", "{url}");
        assert!(headers.contains_key("content-security-policy"), "{url}");
        assert!(headers.contains_key("referrer-policy"), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_do_not_become_metric_series() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let client = http();
    for base in [&server.web, &server.api] {
        let method = reqwest::Method::from_bytes(b"FOOBAR").unwrap();
        let response = client.request(method, format!("{base}/health")).send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = client.get(format!("{}/metrics", server.api)).send().await.unwrap();
    let text = text.text().await.unwrap();
    assert!(!text.contains("FOOBAR"), "a client invented a label value:\n{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_body_is_a_client_error_not_a_server_error() {
    let scratch = Scratch::new();
    let log = scratch.path("serve.log");
    let server = Server::start_logging_to(&fixture_store(&scratch, "db"), &[], &log);
    let head = "POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nusername=al";
    raw_exchange(&server.web, head.as_bytes());
    let client = http();
    let metrics = client.get(format!("{}/metrics", server.web)).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let login: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("minitwit_http_requests_total{front=\"web\",route=\"/login\""))
        .collect();
    assert_eq!(login.len(), 1, "{text}");
    assert!(login[0].contains(r#"status="400""#), "{login:?}");
    let (status, _) = server.stop();
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("\"ERROR\""), "an aborted body logged an error:\n{logged}");
}

/// A client that keeps cookies and does not follow redirects, signed in as `name`.
pub async fn signed_in(web: &str, name: &str, password: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let login = client
        .post(format!("{web}/login"))
        .form(&[("username", name), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302, "{name} signs in");
    client
}

/// Whom `name` follows, as the API lists them.
async fn follows_of(api: &str, name: &str) -> Vec<String> {
    let answer = http()
        .get(format!("{api}/fllws/{name}"))
        .header("authorization", simulator::AUTHORIZATION)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = answer.json().await.unwrap();
    body["follows"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_gets_change_nothing() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let alice = signed_in(&server.web, "alice", "alice-pw").await;
    let follow = format!("{}/Roger%20Histand/follow", server.web);
    for site in ["cross-site", "same-site"] {
        let forged = alice.get(&follow).header("sec-fetch-site", site).send().await.unwrap();
        assert_eq!(forged.status(), 403, "{site}");
        assert_eq!(follows_of(&server.api, "alice").await, ["bob"], "{site} followed");
    }
    let evil = "https://evil.example/page";
    let referred = alice.get(&follow).header("referer", evil).send().await.unwrap();
    assert_eq!(referred.status(), 403);
    let unfollow = format!("{}/bob/unfollow", server.web);
    let forged = alice.get(&unfollow).header("sec-fetch-site", "cross-site").send().await;
    assert_eq!(forged.unwrap().status(), 403);
    let logout = format!("{}/logout", server.web);
    let forged = alice.get(&logout).header("sec-fetch-site", "cross-site").send().await;
    assert!(forged.unwrap().status().is_client_error());
    assert_eq!(follows_of(&server.api, "alice").await, ["bob"]);
    let page = alice.get(format!("{}/public", server.web)).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("sign out [alice]"), "still signed in");

    let own = alice.get(&follow).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert_eq!(own.status(), 302, "a same-origin link still works (so alice is signed in)");
    assert_eq!(follows_of(&server.api, "alice").await, ["bob", "Roger Histand"]);
}

/// How long any single wait in these tests may last before it counts as a hang.
const HANG: Duration = Duration::from_secs(30);

/// Reads until the server closes the connection; what it sent. Panics on a hang.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(HANG, stream.read_to_end(&mut answer)).await;
    // A reset is a close as well.
    let _ = read.expect("the server never closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn connect(base: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(authority(base)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_closed_while_others_are_served() {
    use tokio::io::AsyncWriteExt as _;
    let scratch = Scratch::new();
    let limits = ["--header-timeout-secs", "2"];
    let server = Server::start(&fixture_store(&scratch, "db"), &limits);
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = connect(&server.web).await;
        stream.write_all(b"GET /public HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
        slow.push(stream);
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ordinary = {
        let (done, web) = (done.clone(), server.web.clone());
        tokio::spawn(async move {
            let client = http();
            let mut served = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let page = client.get(format!("{web}/public")).send().await.unwrap();
                assert_eq!(page.status(), 200, "an ordinary client is served throughout");
                served += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            served
        })
    };
    let closes = slow.iter_mut().map(until_closed);
    let answers = futures::future::join_all(closes).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(ordinary.await.unwrap() > 0);
    assert_eq!(answers.len(), 200, "all 200 slow connections were closed");
    assert!(answers.iter().all(|a| !a.contains("200 OK")), "a half header was never served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_slow_bodies_and_excess_connections_are_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let scratch = Scratch::new();
    let limits = [
        ["--header-timeout-secs", "30"],
        ["--idle-timeout-secs", "1"],
        ["--body-timeout-secs", "1"],
        ["--max-connections", "3"],
    ];
    let server = Server::start(&fixture_store(&scratch, "db"), &limits.concat());

    let mut idle = connect(&server.api).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served, then closed when idle: {answer}");

    let mut slow_body = connect(&server.web).await;
    let head = "POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nusername=al";
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let held = [connect(&server.web).await, connect(&server.web).await, connect(&server.web).await];
    let mut excess = connect(&server.web).await;
    let answer = until_closed(&mut excess).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    drop(held);
    let mut served = false;
    for _ in 0..100 {
        let mut stream = connect(&server.web).await;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = tokio::time::timeout(HANG, stream.read_to_string(&mut answer)).await.unwrap();
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "freed connection slots are used again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_never_delays_shutdown_past_the_grace_period() {
    use tokio::io::AsyncWriteExt as _;
    let scratch = Scratch::new();
    let limits = ["--header-timeout-secs", "600", "--body-timeout-secs", "600"];
    let mut server = Server::start(
        &fixture_store(&scratch, "db"),
        &[&limits[..], &["--shutdown-grace-secs", "1"]].concat(),
    );
    let mut half_head = connect(&server.web).await;
    half_head.write_all(b"GET /public HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut half_body = connect(&server.api).await;
    let head = "POST /register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    half_body.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    crate::common::signal(&server.child, "TERM");
    let exited = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    });
    let (status, _server) =
        tokio::time::timeout(HANG, exited).await.expect("shutdown hung").unwrap();
    assert!(status.success(), "{status:?}");
}

/// Registers `name` through the API, with the simulator's credentials or without.
async fn register(
    client: &reqwest::Client,
    api: &str,
    name: &str,
    credentials: bool,
) -> reqwest::Response {
    let body = serde_json::json!({"username": name, "email": format!("{name}@x.org"), "pwd": "pw"});
    let request = client.post(format!("{api}/register")).json(&body);
    let request = if credentials {
        request.header("authorization", simulator::AUTHORIZATION)
    } else {
        request
    };
    request.send().await.expect("an answer, never a timeout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_gets_204_or_503_and_cheap_requests_stay_served() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &["--hash-workers", "1"]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let flood = (0..300).map(|i| {
        let (client, api) = (client.clone(), server.api.clone());
        tokio::spawn(async move {
            let answer = register(&client, &api, &format!("flood{i}"), true).await;
            let status = answer.status().as_u16();
            if status == 503 {
                assert!(answer.headers().contains_key("retry-after"), "503 without Retry-After");
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body["status"], 503, "the API's error shape: {body}");
            }
            status
        })
    });
    let flood: Vec<_> = flood.collect();
    let cheap = [
        format!("{}/public", server.web),
        format!("{}/health", server.api),
        format!("{}/latest", server.api),
    ];
    for round in 0..10 {
        for url in &cheap {
            let answer = client.get(url).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{url} during the flood (round {round})");
        }
    }
    let mut statuses = Vec::new();
    for registration in flood {
        statuses.push(registration.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 204 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&204), "some registrations got through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncredentialed_api_registrations_are_throttled_per_address() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    let client = http();
    let mut statuses = Vec::new();
    for i in 0..25 {
        let answer = register(&client, &server.api, &format!("anon{i}"), false).await;
        if answer.status() == 429 {
            assert!(answer.headers().contains_key("retry-after"));
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["status"], 429, "{body}");
            statuses.push(429);
        } else {
            statuses.push(answer.status().as_u16());
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 20, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
    let trusted = register(&client, &server.api, "trusted", true).await;
    assert_eq!(trusted.status(), 204, "the simulator's own registrations are not throttled");
    let no_redirects =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let web_throttled = no_redirects
        .post(format!("{}/register", server.web))
        .form(&[("username", "webby"), ("email", "w@x.org"), ("password", "p"), ("password2", "p")])
        .send()
        .await
        .unwrap();
    assert_eq!(web_throttled.status(), 302, "the site has a throttle of its own");
}

/// Whether `client`'s session is signed in as `name` on the site at `web`; also whether
/// the answer cleared the session cookie.
async fn signed_in_as(client: &reqwest::Client, web: &str, name: &str) -> (bool, bool) {
    let page = client.get(format!("{web}/public")).send().await.unwrap();
    let cleared = page.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str().unwrap().starts_with("session=") && c.to_str().unwrap().contains("Max-Age=0")
    });
    let text = page.text().await.unwrap();
    (text.contains(&format!("sign out [{name}]")), cleared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_with_a_password_change_or_sign_out_everywhere() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let server = Server::start(&store, &[]);
    let alice = signed_in(&server.web, "alice", "alice-pw").await;
    assert_eq!(signed_in_as(&alice, &server.web, "alice").await, (true, false));
    drop(server);

    let server = Server::start(&store, &[]);
    let (still, _) = signed_in_as(&alice, &server.web, "alice").await;
    assert!(still, "a session survives a restart when nothing happened");
    drop(server);

    let changed = crate::common::run_with_stdin(
        &["--store", &store, "user", "password", "alice", "--password-stdin"],
        "new-pw\n",
    );
    assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));
    let server = Server::start(&store, &[]);
    assert_eq!(
        signed_in_as(&alice, &server.web, "alice").await,
        (false, true),
        "the old cookie is signed out and cleared"
    );
    let again = signed_in(&server.web, "alice", "new-pw").await;
    assert!(signed_in_as(&again, &server.web, "alice").await.0);
    drop(server);

    crate::common::ok(&["--store", &store, "user", "sign-out", "alice"]);
    let server = Server::start(&store, &[]);
    assert_eq!(signed_in_as(&again, &server.web, "alice").await, (false, true));
    let forged = http()
        .get(format!("{}/public", server.web))
        .header("cookie", "session=forged-value")
        .send()
        .await
        .unwrap();
    let cleared = forged
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=0"));
    assert!(cleared, "an unusable cookie is cleared");
}

/// The same on PostgreSQL, live: the CLI changes the password while the server runs (sled
/// locks its directory, so the test above restarts the server instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_signs_out_a_live_session_on_postgres() {
    let scratch = Scratch::new();
    let (url, _db) = minitwit_store_pg::testkit::fresh_database_url().await;
    let file = scratch.path("fixture.jsonl");
    crate::common::write_fixture(&file);
    crate::common::ok(&["--store", &url, "import", "--in", file.to_str().unwrap()]);
    let server = Server::start(&url, &[]);
    let alice = signed_in(&server.web, "alice", "alice-pw").await;
    let bob = signed_in(&server.web, "bob", "bob-pw").await;
    assert_eq!(signed_in_as(&alice, &server.web, "alice").await, (true, false));

    let changed = crate::common::run_with_stdin(
        &["--store", &url, "user", "password", "alice", "--password-stdin"],
        "new-pw\n",
    );
    assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));
    assert_eq!(
        signed_in_as(&alice, &server.web, "alice").await,
        (false, true),
        "the running server signs the old cookie out on its next request, and clears it"
    );
    assert_eq!(signed_in_as(&bob, &server.web, "bob").await, (true, false), "others stay");
    let again = signed_in(&server.web, "alice", "new-pw").await;
    assert!(signed_in_as(&again, &server.web, "alice").await.0);

    crate::common::ok(&["--store", &url, "user", "sign-out", "alice"]);
    assert_eq!(signed_in_as(&again, &server.web, "alice").await, (false, true));
    let (status, _) = server.stop();
    assert!(status.success());
}

#[test]
fn export_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    for name in ["out.jsonl", "out.jsonl.gz"] {
        let file = scratch.path(name);
        crate::common::ok(&["--store", &store, "export", "--out", file.to_str().unwrap()]);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: {mode:o}");
    }
}

/// The request counter's value for one label set in a `/metrics` text (0 when absent).
fn requests_counted(metrics: &str, front: &str, route: &str, status: u16) -> u64 {
    let labels = format!(r#"front="{front}",method="POST",route="{route}",status="{status}""#);
    let line = metrics.lines().find(|l| {
        l.starts_with("minitwit_http_requests_total{") && {
            let inside = l.split(['{', '}']).nth(1).unwrap_or_default();
            let mut have: Vec<&str> = inside.split(',').collect();
            have.sort_unstable();
            have.join(",") == labels
        }
    });
    line.and_then(|l| l.rsplit(' ').next()).map_or(0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_deadline_get_the_front_ends_503_and_are_counted() {
    let scratch = Scratch::new();
    // One hashing worker and a long queue: registrations wait far past a 1 s deadline.
    let limits = ["--request-timeout-secs", "1", "--hash-workers", "1", "--hash-queue", "1000"];
    let server = Server::start(&fixture_store(&scratch, "db"), &limits);
    let client = reqwest::Client::builder().timeout(HANG).build().unwrap();
    let flood = (0..150).map(|i| {
        let (client, api) = (client.clone(), server.api.clone());
        tokio::spawn(async move { register(&client, &api, &format!("late{i}"), true).await })
    });
    let flood: Vec<_> = flood.collect();
    // Queued behind the API's flood, a sign-up on the site runs out of time as well.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let form = [("username", "webby"), ("email", "w@x.org"), ("password", "p"), ("password2", "p")];
    let page = client.post(format!("{}/register", server.web)).form(&form).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "1");
    assert!(page.text().await.unwrap().contains("<html"), "the site's own error page");
    let mut late = 0;
    for answer in futures::future::join_all(flood).await {
        let answer = answer.unwrap();
        if answer.status() == 503 {
            late += 1;
            assert_eq!(answer.headers()["retry-after"], "1");
            assert!(answer.headers().contains_key("x-content-type-options"), "security headers");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["status"], 503, "the API's JSON error shape: {body}");
            assert!(body["error_msg"].as_str().unwrap().contains("took too long"), "{body}");
        } else {
            assert_eq!(answer.status(), 204);
        }
    }
    assert!(late > 0, "some registrations waited past the deadline");
    let metrics = client.get(format!("{}/metrics", server.api)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(requests_counted(&metrics, "api", "/register", 503) >= late, "{metrics}");
    assert!(requests_counted(&metrics, "web", "/register", 503) >= 1, "{metrics}");
}

#[test]
fn a_413_closes_the_connection_and_says_so() {
    let scratch = Scratch::new();
    let server = Server::start(&fixture_store(&scratch, "db"), &[]);
    for (base, path) in [(&server.api, "/register"), (&server.web, "/register")] {
        // The body is announced but never sent: the server cannot read past it.
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: 10000000\r\n\r\n"
        );
        let mut stream = TcpStream::connect(authority(base)).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
        let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 413"), "{base}{path}: {answer}");
        assert!(answer.contains("connection: close"), "{base}{path}: {answer}");
    }
}
