//! What every listener serves besides its front end, and the layers around it — one
//! handler, [`Instrumented`], used for both the web site and the simulator API:
//!
//! - `/health` (alive; 503 once the store needs a restart), `/ready` (the store answers;
//!   503 while shutting down) and
//!   `/metrics` (Prometheus text);
//! - dispatch: a request whose route label the front end has a filter for goes straight
//!   to it; any other is offered to every route in turn;
//! - the request deadline: a request not answered in time gets the front end's own 503
//!   (with `Retry-After`), counted and logged like any other answer;
//! - a request id: the client's `x-request-id` if it is sane, else a fresh one; echoed in
//!   the response and written in the request's access line (there is no request span:
//!   formatting one per request would cost more than the line itself);
//! - one log line per request (front end, route label, method, status, latency; never a
//!   header, cookie or body), at `debug` for the operational routes so they cannot flood
//!   the logs;
//! - request counters and latency histograms by front end, route, method (a closed set:
//!   unknown methods are `other`) and status;
//! - the security headers on every response that lacks them (the site sets its own), and
//!   `Connection: close` on a 413 (its body was never read, so the connection cannot
//!   carry another request).

use super::metrics::{Handles, REQUEST_SECONDS, REQUESTS};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use minitwit_core::{MiniTwit, ServiceError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tower_service::Service as _;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// The target of the access log's lines.
pub const ACCESS_TARGET: &str = "minitwit::access";

/// The request id header.
const REQUEST_ID: &str = "x-request-id";
/// The longest client-supplied request id kept.
const MAX_REQUEST_ID: usize = 128;

/// A front end's rendering of a failure met outside its routes.
pub type Failure = Box<dyn Fn(ServiceError) -> Response + Send + Sync>;

/// A front end as the layers see it: a name for labels, its route labeller, and its
/// answer to a request the server gave up on.
pub struct Front {
    /// `"web"` or `"api"`.
    pub name: &'static str,
    /// The route template of a path, bounded for metrics labels.
    pub route_label: fn(&str) -> &'static str,
    /// The front end's error answer (its HTML page or its JSON error shape).
    pub failure: Failure,
}

impl Front {
    /// The label of `path`: the operational routes first, then the front end's own.
    fn label(&self, path: &str) -> &'static str {
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

    /// `/health`: alive unless the store is broken for good (a failed sync on sled),
    /// which only a restart mends: then 503, so that the supervisor restarts the process.
    fn health(&self) -> Response {
        match self.service.alive() {
            Ok(()) => text(StatusCode::OK, "ok"),
            Err(err) => {
                tracing::error!(error = %err, "not alive: the store needs a restart of the process");
                text(StatusCode::SERVICE_UNAVAILABLE, "store failed: restart the process")
            }
        }
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
    let health_ops = ops.clone();
    let health = warp::path!("health").and(warp::get()).map(move || health_ops.health());
    let ready_ops = ops.clone();
    let ready = warp::path!("ready").and(warp::get()).and_then(move || ready_ops.clone().ready());
    let metrics = warp::path!("metrics").and(warp::get()).map(move || ops.metrics());
    health.or(ready).unify().or(metrics).unify().boxed()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    warp::reply::with_status(body.into(), status).into_response()
}

/// A front end's routes by label: for a route label, the filter that answers the paths
/// with that label as the whole front end would.
pub type ByLabel = Vec<(&'static str, BoxedFilter<(Response,)>)>;

/// One listener's handler: the operational routes and a front end's, with every layer of
/// this module around them.
pub struct Instrumented {
    front: Front,
    /// Every route, tried in turn: the operational routes, then the front end's.
    routes: BoxedFilter<(Response,)>,
    /// The front end's routes by label, each request going straight to its label's.
    by_label: ByLabel,
    meters: Meters,
}

impl Instrumented {
    /// `front`'s `routes` with the operational routes of `ops`; a request whose label is
    /// in `by_label` goes straight to that filter.
    pub fn new(
        front: Front,
        routes: BoxedFilter<(Response,)>,
        by_label: ByLabel,
        ops: Ops,
    ) -> Self {
        let finished = |routes: BoxedFilter<_>| routes.recover(unmatched).unify().boxed();
        let routes = finished(ops_routes(ops).or(routes).unify().boxed());
        let by_label = by_label.into_iter().map(|(label, routes)| (label, finished(routes)));
        Self { front, routes, by_label: by_label.collect(), meters: Meters::default() }
    }

    /// The filter for requests labelled `route`: its own, or every route in turn.
    fn routes_for(&self, route: &str) -> &BoxedFilter<(Response,)> {
        let labelled = self.by_label.iter().find(|(label, _)| *label == route);
        labelled.map_or(&self.routes, |(_, routes)| routes)
    }

    /// Answers `request` within `deadline` (past it, the front end's 503); counts and logs
    /// the answer and tags it with the request id and the security headers.
    pub async fn answer<B>(&self, request: Request<B>, deadline: Duration) -> Response
    where
        B: hyper::body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let start = Instant::now();
        let route = self.front.label(request.uri().path());
        let method = method_label(request.method());
        let id = request_id(request.headers());
        // Sane ids are visible ASCII, so this is the id itself.
        let id_text = id.to_str().unwrap_or_default();
        let routed = warp::service(self.routes_for(route).clone()).call(request);
        let mut response = match tokio::time::timeout(deadline, routed).await {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                tracing::warn!(
                    front = self.front.name,
                    route,
                    method,
                    request_id = id_text,
                    seconds = deadline.as_secs(),
                    "the request ran out of time"
                );
                (self.front.failure)(ServiceError::TimedOut)
            }
        };
        let labels = (route, method, response.status().as_u16());
        self.record(labels, start, id_text);
        tag(&mut response, id);
        response
    }

    /// Counts the answer and writes its access line, which carries the request's fields.
    fn record(&self, labels: LabelSet, start: Instant, request_id: &str) {
        let seconds = start.elapsed().as_secs_f64();
        self.meters.record(self.front.name, labels, seconds);
        let (route, method, status) = labels;
        let front = self.front.name;
        let latency_ms = seconds * 1000.0;
        macro_rules! access {
            ($level:ident) => {
                tracing::$level!(
                    target: ACCESS_TARGET,
                    front,
                    route,
                    method,
                    request_id,
                    status,
                    latency_ms,
                    "request"
                )
            };
        }
        if ops_label(route).is_some() {
            access!(debug);
        } else if status >= 500 {
            access!(warn);
        } else {
            access!(info);
        }
    }
}

/// Tags a response with its request id and, unless its front end set them already, the
/// security headers; a 413 also closes the connection (its body was not read).
fn tag(response: &mut Response, id: HeaderValue) {
    let too_large = response.status() == StatusCode::PAYLOAD_TOO_LARGE;
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, id);
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        minitwit_web::add_security_headers(headers);
    }
    if too_large {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
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

/// The request's id: the client's if it is sane, else a fresh one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    let given = headers.get(REQUEST_ID).filter(|id| is_sane_id(id.as_bytes()));
    given.cloned().unwrap_or_else(fresh_id)
}

/// Short, visible ASCII: safe to log and to echo in a header.
fn is_sane_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(u8::is_ascii_graphic)
}

/// A new request id: this process's random 64-bit prefix and a counter, in hex; unique
/// across replicas without drawing random numbers per request, and written without the
/// formatting machinery.
fn fresh_id() -> HeaderValue {
    static PREFIX: LazyLock<u64> = LazyLock::new(rand::random);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut id = [0u8; 32];
    let (prefix, counter) = id.split_at_mut(16);
    hex_into(prefix, *PREFIX);
    hex_into(counter, NEXT.fetch_add(1, Ordering::Relaxed));
    // Hex digits only: always a valid header value.
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Writes `value` into `out` as 16 lowercase hex digits.
fn hex_into(out: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (place, digit) in out.iter_mut().rev().enumerate() {
        *digit = DIGITS[((value >> (4 * place)) & 0xf) as usize];
    }
}

/// A label set of the request metrics within one front end.
type LabelSet = (&'static str, &'static str, u16);

/// One front end's request metric handles, registered once per label set: a request then
/// costs a read lock, a quick hash and two atomic updates, not formatting four labels.
#[derive(Default)]
struct Meters {
    handles: Handles<LabelSet, (Counter, Histogram)>,
}

impl Meters {
    /// Counts a request and records its latency.
    fn record(&self, front: &'static str, labels: LabelSet, seconds: f64) {
        let register = |&(route, method, status): &LabelSet| {
            let tags = [
                ("front", front.to_owned()),
                ("route", route.to_owned()),
                ("method", method.to_owned()),
                ("status", status.to_string()),
            ];
            (metrics::counter!(REQUESTS, &tags), metrics::histogram!(REQUEST_SECONDS, &tags))
        };
        self.handles.with(labels, register, |(counter, histogram)| {
            counter.increment(1);
            histogram.record(seconds);
        });
    }
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
        assert!(is_sane_id(b"abc-123"));
        assert!(!is_sane_id(b""));
        assert!(!is_sane_id(b"a b"));
        assert!(!is_sane_id(b"x\ny"));
        assert!(!is_sane_id("x".repeat(MAX_REQUEST_ID + 1).as_bytes()));
        assert_eq!(fresh_id().len(), 32);
        assert_ne!(fresh_id(), fresh_id());
        let mut hex = [0u8; 16];
        hex_into(&mut hex, 0x0123_4567_89ab_cdef);
        assert_eq!(&hex, b"0123456789abcdef");
    }

    #[test]
    fn the_operational_paths_are_reserved_usernames() {
        for segment in ["health", "ready", "metrics"] {
            assert!(ops_label(&format!("/{segment}")).is_some(), "{segment}");
            let refused = minitwit_core::Username::parse(segment).err();
            assert_eq!(refused, Some(minitwit_core::ValidationError::UsernameReserved));
        }
    }

    #[test]
    fn method_labels_are_a_closed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::from_bytes(b"FOOBAR").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
