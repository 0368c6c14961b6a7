//! What every listener serves besides its front end, and the layers around it — one
//! function, [`instrument`], used for both the web site and the simulator API:
//!
//! - `/health` (alive), `/ready` (the store answers; 503 while shutting down) and
//!   `/metrics` (Prometheus text);
//! - a request id: the client's `x-request-id` if it is sane, else a fresh one; echoed in
//!   the response and recorded in the request's log span;
//! - one log line per request (front end, route label, method, status, latency; never a
//!   header, cookie or body), at `debug` for the operational routes so they cannot flood
//!   the logs;
//! - request counters and latency histograms by front end, route, method (a closed set:
//!   unknown methods are `other`) and status;
//! - the security headers, on every response of both listeners.

use super::metrics::{REQUEST_SECONDS, REQUESTS};
use crate::logging::ACCESS_TARGET;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use minitwit_core::MiniTwit;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Instant;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// The request id header.
const REQUEST_ID: &str = "x-request-id";
/// The longest client-supplied request id kept.
const MAX_REQUEST_ID: usize = 128;
/// The most label sets whose metric handles are kept (routes × methods × statuses is far
/// fewer; beyond it, handles are looked up per request).
const MAX_LABEL_SETS: usize = 1024;

/// A front end as the layers see it: a name for labels, and its route labeller.
#[derive(Clone, Copy)]
pub struct Front {
    /// `"web"` or `"api"`.
    pub name: &'static str,
    /// The route template of a path, bounded for metrics labels.
    pub route_label: fn(&str) -> &'static str,
}

impl Front {
    /// The label of `path`: the operational routes first, then the front end's own.
    fn label(self, path: &str) -> &'static str {
        ops_label(path).unwrap_or_else(|| (self.route_label)(path))
    }
}

/// What the operational routes need; shared by both listeners.
#[derive(Clone)]
pub struct Ops {
    service: MiniTwit,
    metrics: PrometheusHandle,
    shutting_down: Arc<AtomicBool>,
}

impl Ops {
    /// Operational routes over `service`, rendering `metrics`.
    pub fn new(service: MiniTwit, metrics: PrometheusHandle) -> Self {
        Self { service, metrics, shutting_down: Arc::new(AtomicBool::new(false)) }
    }

    /// From now on `/ready` answers 503.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    async fn ready(self) -> Result<Response, Rejection> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
        }
        Ok(match self.service.ready().await {
            Ok(()) => text(StatusCode::OK, "ready"),
            Err(err) => {
                tracing::warn!(error = %err, "not ready: the store does not answer");
                text(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
        })
    }

    fn metrics(&self) -> Response {
        let mut response = text(StatusCode::OK, self.metrics.render());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

/// The route labels of the operational routes.
fn ops_label(path: &str) -> Option<&'static str> {
    match path {
        "/health" => Some("/health"),
        "/ready" => Some("/ready"),
        "/metrics" => Some("/metrics"),
        _ => None,
    }
}

/// `GET /health`, `GET /ready`, `GET /metrics`.
fn ops_routes(ops: Ops) -> BoxedFilter<(Response,)> {
    let health = warp::path!("health").and(warp::get()).map(|| text(StatusCode::OK, "ok"));
    let ready_ops = ops.clone();
    let ready = warp::path!("ready").and(warp::get()).and_then(move || ready_ops.clone().ready());
    let metrics = warp::path!("metrics").and(warp::get()).map(move || ops.metrics());
    health.or(ready).unify().or(metrics).unify().boxed()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    warp::reply::with_status(body.into(), status).into_response()
}

/// `front`'s routes with the operational routes and every layer of this module.
pub fn instrument(
    front: Front,
    routes: BoxedFilter<(Response,)>,
    ops: Ops,
) -> BoxedFilter<(Response,)> {
    let served = ops_routes(ops).or(routes).unify().recover(unmatched).unify();
    let meters = Arc::new(Meters::default());
    warp::any()
        .map(Instant::now)
        .and(request_id())
        .and(warp::method())
        .and(warp::path::full())
        .and(served)
        .map(move |start: Instant, id: String, method: Method, path: FullPath, response| {
            finish(front, &meters, start, &id, &method, path.as_str(), response)
        })
        .with(warp::trace(move |info| {
            tracing::info_span!(
                "request",
                front = front.name,
                route = front.label(info.path()),
                method = %info.method(),
                request_id = tracing::field::Empty,
            )
        }))
        .map(Reply::into_response)
        .boxed()
}

/// A request no route took: 404 (or 405 for a known path with another method).
async fn unmatched(rejection: Rejection) -> Result<Response, Rejection> {
    let status = if rejection.is_not_found() {
        StatusCode::NOT_FOUND
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(text(status, status.canonical_reason().unwrap_or("error")))
}

/// The request's id, recorded in the current (request) span.
fn request_id() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::header::optional::<String>(REQUEST_ID).or(warp::any().map(|| None)).unify().map(
        |given: Option<String>| {
            let id = given.filter(|id| is_sane_id(id)).unwrap_or_else(fresh_id);
            tracing::Span::current().record("request_id", id.as_str());
            id
        },
    )
}

/// Short, visible ASCII: safe to log and to echo in a header.
fn is_sane_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A new request id: this process's random 64-bit prefix and a counter, in hex; unique
/// across replicas without drawing random numbers per request.
fn fresh_id() -> String {
    static PREFIX: LazyLock<u64> = LazyLock::new(rand::random);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:016x}{:016x}", *PREFIX, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A label set of the request metrics within one front end.
type LabelSet = (&'static str, &'static str, u16);

/// One front end's request metric handles, registered once per label set: a request then
/// costs a read lock and two atomic updates, not hashing and formatting four labels.
#[derive(Default)]
struct Meters {
    handles: RwLock<HashMap<LabelSet, (Counter, Histogram)>>,
}

impl Meters {
    /// Counts a request and records its latency.
    fn record(&self, front: &'static str, labels: LabelSet, seconds: f64) {
        let cached = self.read().get(&labels).cloned();
        let (counter, histogram) = cached.unwrap_or_else(|| self.register(front, labels));
        counter.increment(1);
        histogram.record(seconds);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<LabelSet, (Counter, Histogram)>> {
        // The map only ever holds complete entries: a poisoned lock is still good.
        self.handles.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handles of a label set seen for the first time, kept while there is room.
    fn register(&self, front: &'static str, labels: LabelSet) -> (Counter, Histogram) {
        let (route, method, status) = &labels;
        let tags = [
            ("front", front.to_owned()),
            ("route", (*route).to_owned()),
            ("method", (*method).to_owned()),
            ("status", status.to_string()),
        ];
        let handles =
            (metrics::counter!(REQUESTS, &tags), metrics::histogram!(REQUEST_SECONDS, &tags));
        let mut map = self.handles.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() < MAX_LABEL_SETS {
            map.insert(labels, handles.clone());
        }
        handles
    }
}

/// Records the request's metrics and log line, and tags the response with its id.
fn finish(
    front: Front,
    meters: &Meters,
    start: Instant,
    id: &str,
    method: &Method,
    path: &str,
    mut response: Response,
) -> Response {
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let route = front.label(path);
    meters.record(front.name, (route, method_label(method), status), seconds);
    let latency_ms = seconds * 1000.0;
    if ops_label(path).is_some() {
        tracing::debug!(target: ACCESS_TARGET, status, latency_ms, "request");
    } else if status >= 500 {
        tracing::warn!(target: ACCESS_TARGET, status, latency_ms, "request");
    } else {
        tracing::info!(target: ACCESS_TARGET, status, latency_ms, "request");
    }
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    minitwit_web::add_security_headers(response.headers_mut());
    response
}

/// The method as a metrics label, from a closed set: a method a client invents is
/// `other`, so clients cannot create series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|known| *known == method).map_or("other", Method::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_printable() {
        assert!(is_sane_id("abc-123"));
        assert!(!is_sane_id(""));
        assert!(!is_sane_id("a b"));
        assert!(!is_sane_id("x\ny"));
        assert!(!is_sane_id(&"x".repeat(MAX_REQUEST_ID + 1)));
        assert_eq!(fresh_id().len(), 32);
        assert_ne!(fresh_id(), fresh_id());
    }

    #[test]
    fn method_labels_are_a_closed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::from_bytes(b"FOOBAR").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
