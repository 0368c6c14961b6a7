//! The accept loop both listeners run: hyper's HTTP/1 server with a timer, so that a slow
//! or abusive client costs a bounded amount and never holds shutdown past its grace.
//!
//! - header read: hyper's header timeout (it also starts when a kept-alive connection
//!   begins waiting for its next request, so idle connections end by then at the latest);
//! - idle keep-alive: a connection with no request in flight since its last response is
//!   closed after the idle timeout;
//! - body read: a request body not fully received by then fails (400);
//! - whole request: a response not ready by then is the front end's 503 with
//!   `Retry-After` (see [`Instrumented::answer`]);
//! - connections: past the cap, a new connection is answered 503 with `Retry-After` and
//!   closed at once;
//! - writes: a connection that takes none of the bytes written to it for the write
//!   stall limit is closed (a reader that stopped reading a live stream, say);
//! - shutdown: accepting stops, every connection finishes its request in flight and closes,
//!   and whatever is still open when the grace period ends is dropped.
//!
//! warp's own server gives hyper no timer, hence this loop. It also decides who each
//! request comes from, for the front ends' throttles: the connection's peer or, behind a
//! reverse proxy that appends it (when trusted), the last `X-Forwarded-For` entry. That
//! reaches the filters as a [`ClientAddress`] request extension. On the web site, a
//! connection whose first request asks for a live stream is served on the
//! [`StreamLane`] (its requests still answered here, told where the stream's task goes by
//! a [`StreamRuntime`] extension).

use super::AbortOnDrop;
use super::layers::Instrumented;
use super::stream_lane::{FirstRequest, StreamLane, first_request};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use minitwit_core::rate_limit::ClientAddress;
use minitwit_web::StreamRuntime;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep, sleep_until};
use warp::http::header::{HeaderValue, RETRY_AFTER};
use warp::http::{HeaderMap, Request, StatusCode};
use warp::reply::Response;

/// What one listener allows each client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for a request's header.
    pub header_read: Duration,
    /// Longest a kept-alive connection stays open with no request.
    pub idle: Duration,
    /// Longest wait for a request's whole body.
    pub body_read: Duration,
    /// Longest a request may take, from its header to its response.
    pub request: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long shutdown waits for open connections.
    pub grace: Duration,
    /// Longest a connection may go without taking any of the bytes written to it (a
    /// client that stopped reading, such as a stalled live stream); then it is closed.
    pub write_stall: Duration,
}

impl Default for Limits {
    /// `minitwit serve`'s defaults.
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(8),
            body_read: Duration::from_secs(15),
            request: Duration::from_secs(30),
            max_connections: 1024,
            grace: Duration::from_secs(20),
            write_stall: Duration::from_secs(30),
        }
    }
}

/// The answer to a connection past the cap, written without waiting.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

/// How requests are told apart by client: by their connection's peer, or (behind a reverse
/// proxy that appends it, and only when trusted) by the last `X-Forwarded-For` entry.
#[derive(Debug, Clone, Copy)]
pub struct Clients {
    /// Take a client's address from the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
}

impl Clients {
    /// The address `request`, received from `peer`, is throttled by.
    fn address<B>(self, peer: SocketAddr, request: &Request<B>) -> ClientAddress {
        let forwarded = || last_forwarded_for(request.headers());
        let ip = if self.trust_forwarded_for { forwarded() } else { None };
        ClientAddress::new(ip.unwrap_or(peer.ip()))
    }
}

/// The last address among all `X-Forwarded-For` values: the one the nearest proxy added.
fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let values = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    values.flat_map(|value| value.split(',')).last()?.trim().parse().ok()
}

/// Serves `routes` on `listener` within `limits`, telling `clients` apart, until `stop`
/// turns true, then shuts down gracefully within the grace period. With a `lane`, a
/// connection whose first request asks for a live stream is served there.
pub async fn serve(
    routes: Arc<Instrumented>,
    listener: TcpListener,
    limits: Limits,
    clients: Clients,
    lane: Option<Arc<StreamLane>>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let routes = Arc::clone(&routes);
                        let stop = for_connections.clone();
                        let conn = Connection { routes, peer, clients, limits, stop, _slot: slot };
                        connections.spawn(conn.dispatch(stream, lane.clone()));
                    }
                    Err(_) => refuse(&stream, peer),
                },
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.grace, drained).await.is_err() {
        tracing::warn!(open = connections.len(), "grace period over: dropping open connections");
        connections.shutdown().await;
    }
}

/// Resolves when the stop flag turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: stop as well.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Answers a connection past the cap with 503 and closes it.
fn refuse(stream: &TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "connection refused: too many open connections");
    // Best effort: a client that cannot take these few bytes at once gets a bare close.
    let _ = stream.try_write(BUSY);
}

/// One accepted connection: who it is from, what it may do, and its place among the
/// listener's connections (given back when it ends).
struct Connection {
    routes: Arc<Instrumented>,
    peer: SocketAddr,
    clients: Clients,
    limits: Limits,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves `stream` here or, when there is a `lane` and the first request asks for a
    /// live stream, on the lane (its handlers still run here).
    async fn dispatch(mut self, stream: TcpStream, lane: Option<Arc<StreamLane>>) {
        let Some(lane) = lane else { return self.serve(stream, None).await };
        let peeking = Instant::now();
        let first = tokio::select! {
            first = first_request(&stream, self.limits.header_read) => first,
            // Stopping before a request came: close, as hyper would.
            () = stopped(&mut self.stop) => FirstRequest::Nothing,
        };
        // The header is due within the limit of the accept, the wait for its first bytes
        // included (hyper's timer starts only now; it has one limit per connection).
        self.limits.header_read = self.limits.header_read.saturating_sub(peeking.elapsed());
        match first {
            FirstRequest::Stream => lane.serve(stream, |s, main| self.serve(s, Some(main))).await,
            FirstRequest::Other => self.serve(stream, None).await,
            FirstRequest::Nothing => {}
        }
    }

    /// Serves `stream` until it ends, idles out, or shutdown closes it; requests are
    /// answered on `handlers` if given (then the connection carries one request only),
    /// else on the runtime polling this.
    async fn serve(self, stream: TcpStream, handlers: Option<Handle>) {
        let Self { routes, peer, clients, limits, mut stop, _slot } = self;
        let activity = Arc::new(Activity::new());
        let handler = Arc::clone(&activity);
        // Answered elsewhere: this is the lane, where the live streams' tasks go as well.
        let streams = handlers.as_ref().map(|_| StreamRuntime(Handle::current()));
        // A stream's connection carries that one request: what follows on a connection
        // is not a stream, and belongs on the main runtime.
        let keep_alive = handlers.is_none();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let client = clients.address(peer, &request);
            request.extensions_mut().insert(client);
            if let Some(streams) = &streams {
                request.extensions_mut().insert(streams.clone());
            }
            let answer = handle(Arc::clone(&routes), limits, Arc::clone(&handler), request);
            on(handlers.clone(), answer)
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read);
        builder.keep_alive(keep_alive);
        let stream = super::stall::StallGuard::new(stream, limits.write_stall);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended");
                    }
                    return;
                }
                () = stopped(&mut stop), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = idle_for(&activity, limits.idle), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Runs `answer` on `runtime` if given (cancelled if this is dropped), else in place.
async fn on<F>(runtime: Option<Handle>, answer: F) -> Result<Response, Infallible>
where
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let Some(runtime) = runtime else { return answer.await };
    // Cancelled only when the runtime shuts down: the process is ending.
    Ok(AbortOnDrop(runtime.spawn(answer)).finished().await.map_or_else(ending, |answer| {
        let Ok(response) = answer;
        response
    }))
}

/// The answer to a request whose handler the ending process cancelled: 503, retry.
fn ending() -> Response {
    let mut response = Response::new(Vec::<u8>::new().into());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Requests on one connection: how many are in flight, and when the last one ended.
/// Plain atomics, so that a request costs two counter updates and wakes nothing; the
/// idle check reads them when its timer fires.
#[derive(Debug)]
struct Activity {
    /// When the connection opened: the origin of `last_end`.
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request; `u64::MAX` before any.
    last_end: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end: AtomicU64::new(u64::MAX),
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        let millis = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_end.store(millis, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Since when the connection has been idle: no request in flight, at least one
    /// served.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.last_end.load(Ordering::Acquire) {
            u64::MAX => None,
            millis => Some(self.opened + Duration::from_millis(millis)),
        }
    }
}

/// Resolves once the connection has had no request in flight for `idle` since its last
/// response (before the first request, hyper's header timeout applies instead). One
/// timer per idle period, re-armed from the last response when it fires early.
async fn idle_for(activity: &Activity, idle: Duration) {
    let mut deadline = Instant::now() + idle;
    loop {
        tokio::time::sleep_until(deadline).await;
        let now = Instant::now();
        deadline = match activity.idle_since() {
            Some(since) if since + idle <= now => return,
            Some(since) => since + idle,
            None => now + idle,
        };
    }
}

/// Answers one request: the routes, given the body deadline and the whole-request
/// deadline; counted in the connection's activity.
async fn handle(
    routes: Arc<Instrumented>,
    limits: Limits,
    activity: Arc<Activity>,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    activity.begin();
    let request = request.map(|body| TimedBody::new(body, limits.body_read));
    let response = routes.answer(request, limits.request).await;
    activity.end();
    Ok(response)
}

/// A request body that fails once its deadline passes. The timer starts when the body
/// is first found not to be all there: a request whose body came with its header (or
/// that has none) never sets one.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, within: Duration) -> Self {
        Self { inner, deadline: Instant::now() + within, timer: None }
    }
}

/// Why a timed body failed.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body was not received in time")]
    TimedOut,
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this.timer.get_or_insert_with(|| Box::pin(sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::TimedOut))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::layers::{Front, Ops};
    use minitwit_core::MiniTwit;
    use minitwit_core::testkit::MemoryStore;
    use warp::Filter as _;

    /// The calling thread: its name and its scheduling policy.
    fn this_thread() -> String {
        let policy = thread_priority::thread_schedule_policy().expect("a policy");
        format!("{} {policy:?}", std::thread::current().name().unwrap_or("unnamed"))
    }

    /// A listener, with a stream lane, whose every answer says where its handler ran and
    /// where its body was written: "HANDLER | BODY".
    async fn reporting_server() -> (SocketAddr, watch::Sender<bool>) {
        let routes = warp::any()
            .map(|| {
                let handler = this_thread();
                let body = futures::stream::once(async move {
                    Ok::<_, Infallible>(Bytes::from(format!("{handler} | {}", this_thread())))
                });
                warp::reply::Reply::into_response(warp::reply::stream(body))
            })
            .boxed();
        let front = Front {
            name: "web",
            route_label: |_| "any",
            failure: Box::new(|_| Response::new(Vec::<u8>::new().into())),
        };
        let service = MiniTwit::new(Arc::new(MemoryStore::new()));
        let ops = Ops::new(service, crate::serve::metrics::handle().expect("a recorder"));
        let routes = Arc::new(Instrumented::new(front, routes, Vec::new(), ops));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let lane = Some(Arc::new(StreamLane::start().expect("the lane")));
        let clients = Clients { trust_forwarded_for: false };
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(routes, listener, Limits::default(), clients, lane, stopped));
        (addr, stop)
    }

    #[tokio::test]
    async fn a_live_stream_is_written_at_low_priority_and_answered_by_the_main_runtime() {
        let (addr, _stop) = reporting_server().await;
        let client = reqwest::Client::new();
        let ask = |accept: &'static str| {
            let request = client.get(format!("http://{addr}/public")).header("accept", accept);
            async move { request.send().await.expect("an answer").text().await.expect("a body") }
        };
        let main = this_thread();
        let stream = ask("text/event-stream").await;
        assert_eq!(stream, format!("{main} | minitwit-streams Normal(Idle)"), "a stream");
        let page = ask("text/html").await;
        assert_eq!(page, format!("{main} | {main}"), "a page");
    }

    fn request(forwarded_for: &[&str]) -> Request<()> {
        let mut builder = Request::builder();
        for value in forwarded_for {
            builder = builder.header("x-forwarded-for", *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn clients_are_their_peers_unless_the_proxy_is_trusted() {
        let peer: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        let ip = |trust_forwarded_for, forwarded_for: &[&str]| {
            Clients { trust_forwarded_for }.address(peer, &request(forwarded_for)).ip()
        };
        let addr = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(ip(false, &["1.2.3.4, 5.6.7.8"]), peer.ip());
        assert_eq!(ip(true, &["1.2.3.4, 5.6.7.8"]), addr("5.6.7.8"));
        assert_eq!(ip(true, &["1.2.3.4", "9.9.9.9"]), addr("9.9.9.9"), "the last header");
        assert_eq!(ip(true, &["junk"]), peer.ip(), "an unparsable entry");
        assert_eq!(ip(true, &[]), peer.ip(), "no header");
    }

    #[test]
    fn clients_are_grouped_as_the_core_says() {
        let v6: SocketAddr = "[2001:db8::1:2:3:4]:80".parse().unwrap();
        let grouped = Clients { trust_forwarded_for: false }.address(v6, &request(&[])).ip();
        assert_eq!(grouped, "2001:db8::".parse::<IpAddr>().unwrap());
    }
}
