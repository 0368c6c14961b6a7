//! Live timelines over real HTTP (CONTRACT.md §3.6): each timeline page as a stream of
//! server-sent events. What reaches a stream is what its page shows (a flagged message,
//! an unfollowed author's message, another reader's home never do); a signed-out session
//! loses its home stream; a reader that reconnects with `Last-Event-ID` gets what it
//! missed exactly once (after a PostgreSQL restart too); the caps answer 429 and 503
//! with `Retry-After`; a reader that stops reading is dropped without the server holding
//! what it did not read; shutting down ends every stream at once with a retry hint, and
//! SIGTERM to a real `minitwit serve` process ends them while it still drains.
//! Nothing here is timed: each wait has a generous deadline only so a hang fails.

use crate::support::live::{self, EventStream, entry_ids};
use crate::support::process::ServeProcess;
use crate::support::site::SiteClient;
use crate::support::{self, Setup, TestApp, spawn_app};
use minitwit_core::{MessageId, MessageText, MiniTwit, Registration, User};
use minitwit_store_pg::{PgOptions, PgStore};
use minitwit_test_support::TestCluster;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

on_every_backend!(
    only_what_the_page_shows_reaches_a_stream,
    a_signed_out_session_loses_its_home_stream,
    a_reader_that_reconnects_gets_what_it_missed_exactly_once,
);

async fn user(service: &MiniTwit, name: &str) -> User {
    let registration = Registration::parse(name, &format!("{name}@example.com"), "pw", None);
    service.register(registration.expect("valid")).await.expect("registers")
}

async fn post(service: &MiniTwit, author: &User, text: &str) -> i64 {
    service.post(author, MessageText::parse(text).expect("valid")).await.expect("posts").0
}

/// A site client signed in as `name`.
async fn signed_in(app: &TestApp, name: &str) -> SiteClient {
    let client = app.another_site_client();
    client.login(name, "pw").await.assert_contains("You were logged in");
    client
}

async fn stream(client: &SiteClient, path: &str) -> EventStream {
    match live::open(&client.client, &client.url(path), None).await {
        Ok(stream) => stream,
        Err(refused) => panic!("{path} refused a stream: {}", refused.status()),
    }
}

async fn only_what_the_page_shows_reaches_a_stream(app: TestApp) {
    let s = &app.service;
    let (alice, bob, carol) =
        (user(s, "alice").await, user(s, "bob").await, user(s, "carol").await);
    s.follow(bob.id, alice.id).await.expect("follows");
    let (bob_site, carol_site) = (signed_in(&app, "bob").await, signed_in(&app, "carol").await);
    let mut public = stream(&app.site, "/public").await;
    let mut bob_home = stream(&bob_site, "/").await;
    let mut carol_home = stream(&carol_site, "/").await;
    let mut alice_page = stream(&app.site, "/alice").await;

    let probe = post(s, &alice, "probe").await;
    assert_eq!(entry_ids(&public.until_entry(probe).await), [probe]);
    assert_eq!(entry_ids(&bob_home.until_entry(probe).await), [probe], "a followee's post");
    assert_eq!(entry_ids(&alice_page.until_entry(probe).await), [probe]);

    let carols = post(s, &carol, "carol's own").await;
    s.unfollow(bob.id, alice.id).await.expect("unfollows");
    let unfollowed = post(s, &alice, "after bob unfollowed").await;
    let flagged = post(s, &bob, "bob's, soon flagged").await;
    let bobs = post(s, &bob, "bob's own").await;
    let alices = post(s, &alice, "alice again").await;
    let carols_last = post(s, &carol, "carol's last").await;

    let seen = bob_home.until_entry(bobs).await;
    assert_eq!(entry_ids(&seen), [flagged, bobs], "not carol's, not the unfollowed alice's");
    assert!(seen.iter().any(|e| e.event == "withdraw" && e.data == probe.to_string()));
    let seen = carol_home.until_entry(carols_last).await;
    assert_eq!(entry_ids(&seen), [carols, carols_last], "nothing of bob's home reaches carol");
    let seen = alice_page.until_entry(alices).await;
    assert_eq!(entry_ids(&seen), [unfollowed, alices], "alice's page: alice's only");
    let seen = public.until_entry(carols_last).await;
    assert_eq!(entry_ids(&seen), [carols, unfollowed, flagged, bobs, alices, carols_last]);

    // Flagged after it was sent: withdrawn from the readers that had it.
    s.set_flagged(&[MessageId(flagged)], true).await.expect("flags");
    let withdrawn = bob_home.next_named().await.expect("the stream goes on");
    assert_eq!((withdrawn.event.as_str(), withdrawn.data), ("withdraw", flagged.to_string()));

    // Flagged while a reader was away: never sent.
    drop(bob_home);
    let hidden = post(s, &bob, "hidden before bob is back").await;
    s.set_flagged(&[MessageId(hidden)], true).await.expect("flags");
    let back = post(s, &bob, "after the hidden one").await;
    let resumed = live::open(&bob_site.client, &bob_site.url("/"), Some(&bobs.to_string())).await;
    let mut bob_home = resumed.unwrap_or_else(|r| panic!("refused: {}", r.status()));
    assert_eq!(entry_ids(&bob_home.until_entry(back).await), [back], "not the flagged {hidden}");
}

async fn a_signed_out_session_loses_its_home_stream(app: TestApp) {
    user(&app.service, "bob").await;
    let bob_site = signed_in(&app, "bob").await;
    let mut home = stream(&bob_site, "/").await;
    app.service.sign_out_everywhere("bob").await.expect("signs out");
    let rest = home.until_end().await;
    assert!(rest.iter().any(|e| e.event == "signedout"), "the script is told: {rest:?}");
    let refused = live::open(&bob_site.client, &bob_site.url("/"), None).await;
    assert_eq!(refused.err().map(|r| r.status().as_u16()), Some(401), "the old cookie is void");
    let nobody = live::open(&app.site.client, &app.site.url("/"), None).await;
    assert_eq!(nobody.err().map(|r| r.status().as_u16()), Some(401), "signed out: no home");
}

async fn a_reader_that_reconnects_gets_what_it_missed_exactly_once(app: TestApp) {
    let alice = user(&app.service, "alice").await;
    let mut public = stream(&app.site, "/public").await;
    let first = post(&app.service, &alice, "first").await;
    public.until_entry(first).await;
    drop(public);
    let mut missed = Vec::new();
    for n in 0..5 {
        missed.push(post(&app.service, &alice, &format!("missed {n}")).await);
    }
    let after = first.to_string();
    let opened = live::open(&app.site.client, &app.site.url("/public"), Some(&after)).await;
    let mut public = opened.unwrap_or_else(|r| panic!("refused: {}", r.status()));
    let last = post(&app.service, &alice, "live again").await;
    let seen = entry_ids(&public.until_entry(last).await);
    missed.push(last);
    assert_eq!(seen, missed, "each missed message once, in order, then the live ones");

    // Too much missed: reload instead.
    drop(public);
    for n in 0..31 {
        post(&app.service, &alice, &format!("many {n}")).await;
    }
    let after = last.to_string();
    let opened = live::open(&app.site.client, &app.site.url("/public"), Some(&after)).await;
    let mut public = opened.unwrap_or_else(|r| panic!("refused: {}", r.status()));
    let reload = public.next_named().await.expect("an event");
    assert_eq!(reload.event, "reload", "{reload:?}");
}

fn two_per_address(config: &mut minitwit_web::WebConfig) {
    config.live.max_streams_per_address = 2;
    config.live.heartbeat = Duration::from_millis(200);
}

fn two_per_process(config: &mut minitwit_web::WebConfig) {
    config.live.max_streams = 2;
    config.live.heartbeat = Duration::from_millis(200);
}

/// A stream refused with `status` and a `Retry-After`.
async fn refused_with(app: &TestApp, status: u16) {
    let refused = live::open(&app.site.client, &app.site.url("/public"), None).await;
    let Err(refused) = refused else { panic!("a stream past the cap was opened") };
    assert_eq!(refused.status().as_u16(), status);
    assert!(refused.headers().get("retry-after").is_some(), "{:?}", refused.headers());
}

/// Opens a stream once a slot is free again (a closed stream gives its slot back when
/// the server notices, at its next heartbeat).
async fn opens_again(app: &TestApp) -> EventStream {
    for _ in 0..300 {
        if let Ok(stream) = live::open(&app.site.client, &app.site.url("/public"), None).await {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a closed stream never gave its slot back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_answers_429_with_retry_after() {
    let app =
        spawn_app(support::sled().await, Setup { web: two_per_address, ..Setup::default() }).await;
    let first = stream(&app.site, "/public").await;
    let _second = stream(&app.site, "/public").await;
    refused_with(&app, 429).await;
    drop(first);
    let _again = opens_again(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_process_cap_answers_503_with_retry_after() {
    let app =
        spawn_app(support::sled().await, Setup { web: two_per_process, ..Setup::default() }).await;
    let first = stream(&app.site, "/public").await;
    let _second = stream(&app.site, "/public").await;
    refused_with(&app, 503).await;
    assert_eq!(app.site.get("/public").await.status, 200, "pages are still served");
    drop(first);
    let _again = opens_again(&app).await;
}

fn small_queue(config: &mut minitwit_web::WebConfig) {
    config.live.queue = 4;
}

/// The counter `name`'s value in `/metrics` (0 before it is first counted).
async fn counter(app: &TestApp, name: &str) -> f64 {
    let metrics = app.site.get("/metrics").await.body;
    let line = metrics.lines().find(|line| line.starts_with(name));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_dropped_without_the_server_keeping_its_events() {
    let limits = minitwit_cli::serve::Limits {
        write_stall: Duration::from_secs(2),
        ..minitwit_cli::serve::Limits::default()
    };
    let setup = Setup { web: small_queue, limits, ..Setup::default() };
    let app = spawn_app(support::sled().await, setup).await;
    let alice = user(&app.service, "alice").await;
    let dropped_before = counter(&app, minitwit_web::SLOW_READERS_DROPPED).await;

    // A reader with a tiny receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small receive buffer");
    let addr = app.site.base.trim_start_matches("http://").parse().expect("the site's address");
    let mut reader = socket.connect(addr).await.expect("connects");
    let request = "GET /public HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n";
    reader.write_all(request.as_bytes()).await.expect("asks for the stream");

    // Waves of 250 entries of 6 kB (a quote is `&quot;` on the page), each kept up with
    // by the process's own feed, until the server drops the reader. The buffers on the
    // way (the kernel's, up to a few MB, and the few hundred kB hyper takes of a body
    // before it waits) hold the first waves; how many depends on the kernel's buffer
    // tuning, so the test posts until the drop is counted, at most 40 waves (60 MB).
    let text = "\"".repeat(1000);
    let mut waves = 0;
    while counter(&app, minitwit_web::SLOW_READERS_DROPPED).await <= dropped_before {
        assert!(waves < 40, "the stalled reader was not dropped after {waves} waves of posts");
        let posts = (0..250).map(|_| post(&app.service, &alice, &text));
        futures::future::join_all(posts).await;
        waves += 1;
    }
    let total_sent_if_buffered = waves * 250 * 6000;

    let mut read = Vec::new();
    let reading = reader.read_to_end(&mut read);
    let ended = tokio::time::timeout(Duration::from_secs(60), reading).await;
    assert!(ended.is_ok(), "the server never let go of the stalled stream");
    assert!(
        read.len() < total_sent_if_buffered / 2,
        "the server kept {} bytes for a reader that did not read",
        read.len()
    );
    let dropped = counter(&app, minitwit_web::SLOW_READERS_DROPPED).await;
    assert!(dropped > dropped_before, "counted as a dropped slow reader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_every_stream_at_once_with_a_retry_hint() {
    let app = spawn_app(support::sled().await, Setup::default()).await;
    let mut public = stream(&app.site, "/public").await;
    app.begin_shutdown();
    let rest = public.until_end().await;
    assert!(rest.iter().any(|e| e.retry.is_some()), "a retry hint: {rest:?}");
    refused_with(&app, 503).await;
}

/// Runs a blocking cluster operation off the async workers.
async fn on_cluster(cluster: &Arc<TestCluster>, operation: fn(&TestCluster) -> Result<(), String>) {
    let cluster = Arc::clone(cluster);
    tokio::task::spawn_blocking(move || operation(&cluster).unwrap_or_else(|err| panic!("{err}")))
        .await
        .expect("the cluster task runs");
}

/// Posts, retrying while the database comes back.
async fn post_once_back(service: &MiniTwit, author: &User, text: &str) -> i64 {
    for _ in 0..300 {
        match service.post(author, MessageText::parse(text).expect("valid")).await {
            Ok(id) => return id.0,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the database never came back");
}

/// The entries of `/public` after `after` up to `until`, read as `EventSource` reads
/// them: when the server ends the stream (with its retry hint), it opens it again from
/// the last entry seen (`Last-Event-ID`), after the hinted delay.
async fn as_event_source(
    site: &SiteClient,
    stream: &mut EventStream,
    after: i64,
    until: i64,
) -> Vec<i64> {
    let (mut seen, mut last, mut retry) = (Vec::new(), after, 2000);
    for _ in 0..100 {
        while let Some(event) = stream.next().await {
            retry = event.retry.unwrap_or(retry);
            let ids = entry_ids(std::slice::from_ref(&event));
            seen.extend(&ids);
            last = ids.last().copied().unwrap_or(last);
            if last == until {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(retry)).await;
        let opened = live::open(&site.client, &site.url("/public"), Some(&last.to_string())).await;
        if let Ok(reopened) = opened {
            *stream = reopened;
        }
    }
    panic!("entry {until} never came; saw {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_a_stream_costs_the_reader_nothing() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(TestCluster::start)
            .await
            .expect("the start task runs")
            .unwrap_or_else(|err| panic!("{err}")),
    );
    let url = cluster.url("postgres");
    let options = PgOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(1),
        ..PgOptions::default()
    };
    // Two servers over one database: the reader's, and the writer's.
    let reading = PgStore::connect(&url, options.clone()).await.expect("connects");
    let writing = PgStore::connect(&url, options).await.expect("connects");
    let reader_app =
        spawn_app((Arc::new(reading), Box::new(Arc::clone(&cluster))), Setup::default());
    let writer_app = spawn_app((Arc::new(writing), Box::new(())), Setup::default());
    let (reader_app, writer_app) = tokio::join!(reader_app, writer_app);
    let alice = user(&writer_app.service, "alice").await;
    let mut public = stream(&reader_app.site, "/public").await;
    let before = post(&writer_app.service, &alice, "before the restart").await;
    public.until_entry(before).await;

    on_cluster(&cluster, |c| c.stop().map_err(|e| e.to_string())).await;
    on_cluster(&cluster, |c| c.resume().map_err(|e| e.to_string())).await;
    let mut meanwhile = Vec::new();
    for n in 0..5 {
        meanwhile.push(post_once_back(&writer_app.service, &alice, &format!("after {n}")).await);
    }
    let last = *meanwhile.last().expect("posted");
    let seen = as_event_source(&reader_app.site, &mut public, before, last).await;
    assert_eq!(seen, meanwhile, "every message once, none lost with the NOTIFYs");

    // The reader reconnects, as a browser does, from the last id it saw.
    drop(public);
    let missed = post(&writer_app.service, &alice, "while the reader was away").await;
    let after = last.to_string();
    let url = reader_app.site.url("/public");
    let opened = live::open(&reader_app.site.client, &url, Some(&after)).await;
    let mut public = opened.unwrap_or_else(|r| panic!("refused: {}", r.status()));
    let live_again = post(&writer_app.service, &alice, "live again").await;
    assert_eq!(entry_ids(&public.until_entry(live_again).await), [missed, live_again]);
}

/// SIGTERM to a real `minitwit serve` (draining for a long while, as behind a balancer):
/// its streams end at once with a retry hint, while it still drains, not when its
/// listeners close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_streams_of_a_serve_process_while_it_drains() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = format!("sled:{}", dir.path().join("store").display());
    let mut server = ServeProcess::start_with(&store, &["--drain-delay-secs", "120"]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/public", server.web);
    let mut public = live::open(&client, &url, None).await.unwrap_or_else(|r| {
        panic!("the stream opens: {}", r.status());
    });
    server.terminate();
    let rest = public.until_end().await;
    assert!(!server.has_exited(), "the stream ended before the drain did");
    // The first hint opens every stream; the last one closes it.
    let hints = rest.iter().filter(|e| e.retry.is_some()).count();
    assert!(
        hints >= 2 && rest.last().is_some_and(|e| e.retry.is_some()),
        "ended with a retry hint: {rest:?}"
    );
}
