//! The simulator API over real HTTP: every row of CONTRACT.md §4 in success and in each
//! failure, `latest` recorded even by failing requests, the 403 shape, bad input and
//! oversized bodies answered with 4xx JSON, percent-encoded usernames. Each test runs on
//! every backend against a fresh store.

use crate::support::TestApp;
use crate::support::api::assert_error;
use minitwit_core::MessageFilter;
use minitwit_test_support::simulator;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

on_every_backend!(
    latest_starts_at_minus_one_and_follows_every_request,
    latest_is_recorded_by_failing_requests,
    malformed_latest_is_refused,
    register_answers_204_with_an_empty_body,
    register_refuses_bad_registrations_with_the_web_texts,
    protected_endpoints_need_the_simulator_credentials,
    messages_are_posted_and_listed_newest_first,
    no_limits_listings_and_absurd_values_are_refused,
    unknown_users_are_404,
    bad_message_bodies_are_400,
    follow_and_unfollow_change_the_follows_list,
    bad_follow_requests_are_refused,
    percent_encoded_usernames_are_decoded,
    oversized_bodies_are_413,
    unknown_routes_and_methods_answer_json,
    openapi_document_is_served_without_credentials,
);

const NOT_AUTHORIZED: &str = "You are not authorized to use this resource!";

async fn latest_starts_at_minus_one_and_follows_every_request(app: TestApp) {
    assert_eq!(app.api.latest().await, -1);
    app.api.register("alice").await;
    let answer = app
        .api
        .post("/register?latest=3", json!({"username": "bob", "email": "b@x", "pwd": "p"}))
        .await;
    assert_eq!(answer.status, 204);
    assert_eq!(app.api.latest().await, 3);
    assert_eq!(app.api.post("/msgs/bob?latest=9", json!({"content": "hi"})).await.status, 204);
    assert_eq!(app.api.latest().await, 9);
    assert_eq!(app.api.get("/msgs?no=5&latest=10").await.status, 200);
    assert_eq!(app.api.get("/fllws/bob?latest=11").await.status, 200);
    assert_eq!(app.api.post("/fllws/bob?latest=12", json!({"follow": "alice"})).await.status, 204);
    assert_eq!(app.api.get("/msgs/bob?latest=13").await.status, 200);
    // Lower ids and GET /latest itself store too: latest is the last action, not the max.
    assert_eq!(app.api.get("/latest?latest=2").await.body, json!({"latest": 2}));
    assert_eq!(app.api.latest().await, 2);
}

async fn latest_is_recorded_by_failing_requests(app: TestApp) {
    app.api.register("alice").await;
    let forbidden =
        app.api.client.get(app.api.url("/msgs?latest=21")).send().await.expect("answer");
    assert_eq!(forbidden.status(), 403);
    assert_eq!(app.api.latest().await, 21);
    let taken = json!({"username": "alice", "email": "a@x", "pwd": "p"});
    assert_error(&app.api.post("/register?latest=22", taken).await, 400);
    assert_eq!(app.api.latest().await, 22);
    assert_error(&app.api.post("/msgs/nobody?latest=23", json!({"content": "x"})).await, 404);
    assert_eq!(app.api.latest().await, 23);
    assert_error(&app.api.post_raw("/fllws/alice?latest=24", "{oops").await, 400);
    assert_eq!(app.api.latest().await, 24);
    assert_error(&app.api.get("/msgs?no=-5&latest=25").await, 400);
    assert_eq!(app.api.latest().await, 25);
    assert_error(&app.api.get("/nowhere?latest=26").await, 404);
    assert_eq!(app.api.latest().await, 26);
}

async fn malformed_latest_is_refused(app: TestApp) {
    app.api.register("alice").await;
    assert_eq!(app.api.get("/latest?latest=5").await.status, 200);
    for bad in ["abc", "1.5", "", "99999999999999999999", "1e3"] {
        let message = assert_error(&app.api.get(&format!("/msgs?latest={bad}")).await, 400);
        assert!(message.contains("latest"), "{message}");
    }
    assert_eq!(app.api.latest().await, 5);
}

async fn register_answers_204_with_an_empty_body(app: TestApp) {
    let body = json!({"username": "Roger Histand", "email": "Roger+Histand@hotmail.com",
        "pwd": "]=)[X{Km{z"});
    let answer = app.api.post("/register?latest=0", body).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.body, serde_json::Value::Null);
    let user = app.service.user("Roger Histand").await.expect("registered");
    assert_eq!(user.email, "Roger+Histand@hotmail.com");
    let login = app.service.authenticate("Roger Histand", "]=)[X{Km{z").await;
    assert!(login.is_ok(), "the password is the one sent as pwd");
}

async fn register_refuses_bad_registrations_with_the_web_texts(app: TestApp) {
    app.api.register("alice").await;
    let cases = [
        (json!({"username": "alice", "email": "a@x", "pwd": "p"}), "The username is already taken"),
        (json!({"username": "", "email": "a@x", "pwd": "p"}), "You have to enter a username"),
        (json!({"email": "a@x", "pwd": "p"}), "You have to enter a username"),
        (json!({"username": "b", "email": "nope", "pwd": "p"}), "You have to enter a valid email"),
        (json!({"username": "b", "pwd": "p"}), "You have to enter a valid email address"),
        (json!({"username": "b", "email": "b@x", "pwd": ""}), "You have to enter a password"),
        (json!({"username": "b", "email": "b@x"}), "You have to enter a password"),
        (json!({"username": "public", "email": "b@x", "pwd": "p"}), "The username is reserved"),
        (json!({"username": "a/b", "email": "b@x", "pwd": "p"}), "may not contain '/'"),
        (json!({"username": "x".repeat(65), "email": "b@x", "pwd": "p"}), "at most 64"),
        (json!({"username": 5, "email": "b@x", "pwd": "p"}), "invalid type"),
        (json!(["b", "b@x", "p"]), "expected a map"),
    ];
    for (body, expected) in cases {
        let answer = app.api.post("/register", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        let message = assert_error(&answer, 400);
        assert!(message.contains(expected), "{body}: {message}");
    }
    for raw in ["", "{", "null", "{\"username\": \"b\",}", "\u{0}"] {
        assert_error(&app.api.post_raw("/register", raw).await, 400);
    }
    assert_eq!(app.service.stats().await.expect("stats").users, 1);
}

async fn protected_endpoints_need_the_simulator_credentials(app: TestApp) {
    app.api.register("alice").await;
    let requests = [
        app.api.client.get(app.api.url("/msgs")),
        app.api.client.get(app.api.url("/msgs/alice")),
        app.api.client.post(app.api.url("/msgs/alice")).body(r#"{"content":"x"}"#),
        app.api.client.get(app.api.url("/fllws/alice")),
        app.api.client.post(app.api.url("/fllws/alice")).body(r#"{"follow":"alice"}"#),
        // Unknown users and bad bodies are not revealed without credentials.
        app.api.client.get(app.api.url("/msgs/nobody")),
        app.api.client.post(app.api.url("/fllws/alice")).body("{oops"),
    ];
    let bearer = simulator::AUTHORIZATION.replacen("Basic", "Bearer", 1);
    let wrong = ["Basic c2ltdWxhdG9yOndyb25n", &bearer, "Basic"];
    for request in requests {
        let [without, rest @ ..] = [0, 1, 2, 3].map(|_| request.try_clone().expect("clonable"));
        assert_eq!(assert_error(&app.api.send(without).await, 403), NOT_AUTHORIZED);
        for (request, header) in rest.into_iter().zip(wrong) {
            let answer = app.api.send(request.header("authorization", header)).await;
            assert_eq!(assert_error(&answer, 403), NOT_AUTHORIZED);
        }
    }
    assert_eq!(app.service.stats().await.expect("stats").messages, 0);
}

async fn messages_are_posted_and_listed_newest_first(app: TestApp) {
    app.api.register("alice").await;
    app.api.register("bob").await;
    let texts = ["first", "<second> & \"quoted\"", "tredje 🦀 ÆØÅ"];
    for (author, text) in [("alice", texts[0]), ("bob", texts[1]), ("alice", texts[2])] {
        let answer = app.api.post(&format!("/msgs/{author}"), json!({"content": text})).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(answer.body, serde_json::Value::Null);
    }
    let public = app.api.get("/msgs").await;
    assert_eq!(public.status, 200);
    let listed: Vec<(&str, &str)> = public
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| (m["user"].as_str().expect("user"), m["content"].as_str().expect("content")))
        .collect();
    assert_eq!(listed, [("alice", texts[2]), ("bob", texts[1]), ("alice", texts[0])]);
    let first = &public.body[0];
    assert!(first["pub_date"].as_i64().is_some_and(|t| t > 1_600_000_000), "{first}");
    assert_eq!(first.as_object().expect("object").len(), 3, "exactly content, pub_date, user");
    let alice = app.api.get("/msgs/alice").await;
    assert_eq!(alice.status, 200);
    let contents: Vec<_> =
        alice.body.as_array().expect("a list").iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!(texts[2]), json!(texts[0])]);
    assert_eq!(app.api.get("/msgs/bob?no=0").await.body, json!([]));
    // Flagged messages are hidden.
    let ids: Vec<_> = app
        .service
        .messages(MessageFilter { limit: 10, ..Default::default() })
        .await
        .expect("list")
        .iter()
        .map(|m| m.id)
        .collect();
    app.service.set_flagged(&ids, true).await.expect("flagging");
    assert_eq!(app.api.get("/msgs").await.body, json!([]));
    assert_eq!(app.api.get("/msgs/alice").await.body, json!([]));
}

async fn no_limits_listings_and_absurd_values_are_refused(app: TestApp) {
    app.api.register("alice").await;
    for i in 0..105 {
        let answer = app.api.post("/msgs/alice", json!({"content": format!("message {i}")})).await;
        assert_eq!(answer.status, 204);
    }
    let count = |answer: crate::support::api::Answer| answer.body.as_array().map(Vec::len);
    assert_eq!(count(app.api.get("/msgs").await), Some(100), "the default is 100");
    assert_eq!(count(app.api.get("/msgs/alice").await), Some(100));
    assert_eq!(count(app.api.get("/msgs?no=7").await), Some(7));
    assert_eq!(count(app.api.get("/msgs/alice?no=3").await), Some(3));
    assert_eq!(count(app.api.get("/msgs?no=0").await), Some(0));
    assert_eq!(count(app.api.get("/msgs?no=18446744073709551615").await), Some(105), "capped");
    assert_eq!(app.api.get("/msgs?no=2").await.body[0]["content"], "message 104");
    for bad in ["-1", "abc", "1.5", "", "1e3", "18446744073709551616", "%00"] {
        for path in ["/msgs", "/msgs/alice", "/fllws/alice"] {
            let message = assert_error(&app.api.get(&format!("{path}?no={bad}")).await, 400);
            assert!(message.contains("number of items"), "{path}?no={bad}: {message}");
        }
    }
    assert_error(&app.api.get("/msgs?no=1&no=2").await, 400);
}

async fn unknown_users_are_404(app: TestApp) {
    app.api.register("alice").await;
    assert_error(&app.api.get("/msgs/nobody").await, 404);
    assert_error(&app.api.get("/msgs/Alice").await, 404);
    assert_error(&app.api.post("/msgs/nobody", json!({"content": "x"})).await, 404);
    assert_error(&app.api.get("/fllws/nobody").await, 404);
    assert_error(&app.api.post("/fllws/nobody", json!({"follow": "alice"})).await, 404);
    assert_error(&app.api.post("/fllws/alice", json!({"follow": "nobody"})).await, 404);
    assert_error(&app.api.post("/fllws/alice", json!({"unfollow": "nobody"})).await, 404);
    assert_error(&app.api.get("/msgs/%FF%FE").await, 404);
    assert_error(&app.api.get("/msgs/a%00b").await, 404);
    assert_error(&app.api.get("/fllws/a%00b").await, 404);
    assert_error(&app.api.post("/fllws/alice", json!({"follow": "a\u{0}b"})).await, 404);
    assert_eq!(app.service.stats().await.expect("stats").follows, 0);
}

async fn bad_message_bodies_are_400(app: TestApp) {
    app.api.register("alice").await;
    let cases = [
        (json!({"content": ""}), "may not be empty"),
        (json!({"content": "  \n "}), "may not be empty"),
        (json!({"content": "🦀".repeat(1001)}), "at most 1000"),
        (json!({"content": "nul\u{0}byte"}), "control characters"),
        (json!({}), "missing field"),
        (json!({"content": 42}), "invalid type"),
        (json!({"content": null}), "invalid type"),
        (json!("content"), "invalid type"),
    ];
    for (body, expected) in cases {
        let message = assert_error(&app.api.post("/msgs/alice", body.clone()).await, 400);
        assert!(message.contains(expected), "{body}: {message}");
    }
    for raw in ["", "{", "{\"content\": \"x\"", "[]"] {
        assert_error(&app.api.post_raw("/msgs/alice", raw).await, 400);
    }
    assert_eq!(
        app.api.post("/msgs/alice", json!({"content": "🦀".repeat(1000)})).await.status,
        204
    );
    assert_eq!(app.service.stats().await.expect("stats").messages, 1);
}

async fn follow_and_unfollow_change_the_follows_list(app: TestApp) {
    for name in ["alice", "bob", "carol"] {
        app.api.register(name).await;
    }
    assert_eq!(app.api.get("/fllws/alice").await.body, json!({"follows": []}));
    for target in ["bob", "carol", "bob"] {
        assert_eq!(app.api.post("/fllws/alice", json!({"follow": target})).await.status, 204);
    }
    let follows = app.api.get("/fllws/alice").await;
    assert_eq!(follows.status, 200);
    let mut names: Vec<_> = follows.body["follows"].as_array().expect("list").clone();
    names.sort_by_key(|n| n.to_string());
    assert_eq!(names, [json!("bob"), json!("carol")], "following twice leaves one");
    assert_eq!(
        app.api.get("/fllws/alice?no=1").await.body["follows"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(app.api.get("/fllws/bob").await.body, json!({"follows": []}), "follows are one way");
    assert_eq!(app.api.post("/fllws/alice", json!({"unfollow": "bob"})).await.status, 204);
    assert_eq!(app.api.post("/fllws/alice", json!({"unfollow": "bob"})).await.status, 204);
    assert_eq!(app.api.get("/fllws/alice").await.body, json!({"follows": ["carol"]}));
    assert_eq!(app.api.post("/fllws/bob", json!({"unfollow": "alice"})).await.status, 204);
}

async fn bad_follow_requests_are_refused(app: TestApp) {
    app.api.register("alice").await;
    app.api.register("bob").await;
    let bodies = [
        json!({}),
        json!({"follow": "bob", "unfollow": "bob"}),
        json!({"follow": 5}),
        json!({"follows": "bob"}),
        json!([{"follow": "bob"}]),
    ];
    for body in bodies {
        assert_error(&app.api.post("/fllws/alice", body).await, 400);
    }
    for raw in ["", "{", "follow=bob"] {
        assert_error(&app.api.post_raw("/fllws/alice", raw).await, 400);
    }
    assert_eq!(app.service.stats().await.expect("stats").follows, 0);
}

async fn percent_encoded_usernames_are_decoded(app: TestApp) {
    let names = ["Roger Histand", "Jürgen Ørsted", "李小龍", "a+b%c"];
    for name in names {
        app.api.register(name).await;
    }
    let encoded =
        ["Roger%20Histand", "J%C3%BCrgen%20%C3%98rsted", "%E6%9D%8E%E5%B0%8F%E9%BE%8D", "a+b%25c"];
    for (name, path) in names.iter().zip(encoded) {
        let posted = app.api.post(&format!("/msgs/{path}"), json!({"content": name})).await;
        assert_eq!(posted.status, 204, "{name}: {posted:?}");
        let listed = app.api.get(&format!("/msgs/{path}")).await;
        assert_eq!(listed.body[0]["user"], json!(name));
        assert_eq!(listed.body[0]["content"], json!(name));
        let followed = app.api.post("/fllws/Roger%20Histand", json!({"follow": name})).await;
        assert_eq!(followed.status, 204);
    }
    let follows = app.api.get("/fllws/Roger%20Histand").await;
    assert_eq!(follows.body["follows"].as_array().map(Vec::len), Some(4));
}

async fn oversized_bodies_are_413(app: TestApp) {
    app.api.register("alice").await;
    // An announced length over the limit is refused before the body is read, so only the
    // head is sent: the answer cannot race a half-written body.
    for path in ["/register", "/msgs/alice", "/fllws/alice"] {
        let answer = raw_exchange(&app, path, "Content-Length: 71680\r\n", &[]).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains(r#""status":413"#) && answer.contains("65536"), "{answer}");
    }
    // Without a length (chunked), the limit holds while reading: 5 chunks of 16 KiB.
    let chunk = format!("4000\r\n{}\r\n", "y".repeat(16 * 1024));
    let answer =
        raw_exchange(&app, "/msgs/alice", "Transfer-Encoding: chunked\r\n", &[chunk.as_bytes(); 5])
            .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""status":413"#), "{answer}");
    // Just under the limit is read (and then judged on its content).
    let long = json!({"content": "z".repeat(60 * 1024)});
    assert_error(&app.api.post("/msgs/alice", long).await, 400);
    assert_eq!(app.service.stats().await.expect("stats").messages, 0);
}

/// Sends a POST with the simulator's credentials, `headers` and the `body` parts over a
/// raw connection, and returns the whole answer.
async fn raw_exchange(app: &TestApp, path: &str, headers: &str, body: &[&[u8]]) -> String {
    let mut stream = tokio::net::TcpStream::connect(app.api.addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nConnection: close\r\n{headers}\r\n",
        app.api.addr,
        simulator::AUTHORIZATION
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    for part in body {
        stream.write_all(part).await.expect("write body");
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read answer");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn unknown_routes_and_methods_answer_json(app: TestApp) {
    assert_error(&app.api.get("/").await, 404);
    assert_error(&app.api.get("/public").await, 404);
    assert_error(&app.api.get("/msgs/a/b").await, 404);
    let cases = [
        (reqwest::Method::POST, "/latest", "GET"),
        (reqwest::Method::GET, "/register", "POST"),
        (reqwest::Method::DELETE, "/msgs", "GET"),
        (reqwest::Method::PUT, "/msgs/alice", "GET, POST"),
        (reqwest::Method::DELETE, "/fllws/alice", "GET, POST"),
        (reqwest::Method::POST, "/openapi.yaml", "GET"),
    ];
    for (method, path, allow) in cases {
        let request = app
            .api
            .client
            .request(method, app.api.url(path))
            .header("authorization", simulator::AUTHORIZATION);
        let answer = app.api.send(request).await;
        assert_error(&answer, 405);
        assert_eq!(
            answer.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{path}"
        );
    }
}

async fn openapi_document_is_served_without_credentials(app: TestApp) {
    let response = app.api.client.get(app.api.url("/openapi.yaml")).send().await.expect("answer");
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/yaml"));
    let text = response.text().await.expect("body");
    assert!(text.starts_with("openapi: 3"), "{text}");
    for path in ["/latest:", "/register:", "/msgs:", "/msgs/{username}:", "/fllws/{username}:"] {
        assert!(text.contains(path), "{path} is documented");
    }
}
