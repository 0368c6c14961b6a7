//! Dispatch by route label: for every label a front end gives a filter of its own, that
//! filter answers each request exactly as the whole front end (every route tried in turn)
//! does — status, `Location`, `Allow` and body — over every method, for the paths of that
//! label and the odd ones beside them (reserved names, bad queries, trailing segments).
//! In process, through warp's test requests: the server dispatches with these filters.

use minitwit_core::testkit::MemoryStore;
use minitwit_core::{HashCost, MiniTwit};
use std::collections::BTreeSet;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::reply::Response;

const SIM_AUTH: &str = "Basic c2ltdWxhdG9yOnN1cGVyX3NhZmUh";
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "DELETE"];

type ByLabel = Vec<(&'static str, BoxedFilter<(Response,)>)>;

/// A request: method, path, body.
type Sent = (&'static str, &'static str, &'static str);

fn service() -> MiniTwit {
    MiniTwit::with_hash_cost(Arc::new(MemoryStore::new()), HashCost::Insecure)
}

async fn send(filter: &BoxedFilter<(Response,)>, (method, path, body): Sent, api: bool) -> String {
    let mut request = warp::test::request().method(method).path(path).body(body);
    if api {
        request =
            request.header("authorization", SIM_AUTH).header("content-type", "application/json");
    } else {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let response = request.reply(filter).await;
    let header = |name| response.headers().get(name).map(|v| v.to_str().unwrap_or("?").to_owned());
    format!(
        "{} location={:?} allow={:?}\n{}",
        response.status(),
        header("location"),
        header("allow"),
        String::from_utf8_lossy(response.body())
    )
}

/// Sends every request to `all` and to its label's filter; returns the labels exercised.
async fn same_answers(
    all: &BoxedFilter<(Response,)>,
    by_label: &ByLabel,
    label_of: fn(&str) -> &'static str,
    requests: &[Sent],
    api: bool,
) -> BTreeSet<&'static str> {
    let mut exercised = BTreeSet::new();
    for &request in requests {
        let label = label_of(request.1);
        let Some((_, labelled)) = by_label.iter().find(|(l, _)| *l == label) else { continue };
        exercised.insert(label);
        let whole = send(all, request, api).await;
        let direct = send(labelled, request, api).await;
        assert_eq!(direct, whole, "{} {} (label {label})", request.0, request.1);
    }
    exercised
}

/// POSTs each body to its path through `api`, each to be answered 204.
async fn write_through(api: &BoxedFilter<(Response,)>, writes: &[(&'static str, &'static str)]) {
    for &(path, body) in writes {
        let answer = send(api, ("POST", path, body), true).await;
        assert!(answer.starts_with("204"), "{path}: {answer}");
    }
}

fn every_method(paths: &[&'static str], body: &'static str) -> Vec<Sent> {
    paths.iter().flat_map(|path| METHODS.map(|method| (method, *path, body))).collect()
}

#[tokio::test]
async fn the_apis_labels_answer_as_the_whole_api() {
    let routes = minitwit_sim::routes_by_label(service(), minitwit_sim::SimConfig::default());
    // Two users, a message and a follow, written through the whole API.
    write_through(
        &routes.all,
        &[
            ("/register", r#"{"username":"alice","email":"a@example.com","pwd":"pw"}"#),
            ("/register", r#"{"username":"bob","email":"b@example.com","pwd":"pw"}"#),
            ("/msgs/alice", r#"{"content":"hello"}"#),
            ("/fllws/alice?latest=7", r#"{"follow":"bob"}"#),
        ],
    )
    .await;
    let paths = [
        "/latest",
        "/latest?latest=9",
        "/latest?latest=x",
        "/register",
        "/msgs",
        "/msgs?no=2",
        "/msgs?no=x",
        "/msgs/alice",
        "/msgs/alice?no=1",
        "/msgs/nobody",
        "/msgs/Roger%20Histand",
        "/fllws/alice",
        "/fllws/alice?no=x",
        "/fllws/nobody",
        "/openapi.yaml",
    ];
    // Bodies that change nothing: each request is sent twice, and must answer alike.
    let mut requests = every_method(&paths, "");
    requests.extend(every_method(&["/msgs/alice", "/fllws/alice", "/register"], "[1]"));
    requests.extend(every_method(&["/fllws/alice"], r#"{"follow":"nobody"}"#));
    let exercised =
        same_answers(&routes.all, &routes.by_label, minitwit_sim::route_label, &requests, true)
            .await;
    let labels: BTreeSet<_> = routes.by_label.iter().map(|(label, _)| *label).collect();
    assert_eq!(exercised, labels, "every label with a filter of its own is tried");
}

#[tokio::test]
async fn the_sites_labels_answer_as_the_whole_site() {
    let service = service();
    let api = minitwit_sim::routes(service.clone(), minitwit_sim::SimConfig::default());
    write_through(
        &api,
        &[
            ("/register", r#"{"username":"alice","email":"a@example.com","pwd":"pw"}"#),
            ("/msgs/alice", r#"{"content":"hello"}"#),
        ],
    )
    .await;
    let config = minitwit_web::WebConfig::new(vec![7u8; minitwit_web::MIN_SESSION_KEY_LEN])
        .expect("a key of the shortest length is usable");
    let site = minitwit_web::Website::new(service, config);
    let paths = [
        "/",
        "/?before=x",
        "/public",
        "/public?before=1.5",
        "/public?before=x",
        "/register",
        "/login",
        "/logout",
        "/add_message",
        "/alice",
        "/alice?before=x",
        "/nobody",
        "/Roger%20Histand",
        "/alice/follow",
        "/alice/unfollow",
        "/nobody/follow",
        "/public/follow",
        "/static/follow",
        "/register/x",
    ];
    // Forms that change nothing: each request is sent twice, and must answer alike.
    let mut requests = every_method(&paths, "");
    requests.extend(every_method(&["/register", "/login", "/add_message"], "text=&junk=%ZZ"));
    let exercised = same_answers(
        &site.routes(),
        &site.routes_by_label(),
        minitwit_web::route_label,
        &requests,
        false,
    )
    .await;
    let labels: BTreeSet<_> = site.routes_by_label().iter().map(|(label, _)| *label).collect();
    assert_eq!(exercised, labels, "every label with a filter of its own is tried");
}
