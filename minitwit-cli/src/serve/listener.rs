//! The accept loop both listeners run: hyper's HTTP/1 server with a timer, so that a slow
//! or abusive client costs a bounded amount and never holds shutdown past its grace.
//!
//! - header read: hyper's header timeout (it also starts when a kept-alive connection
//!   begins waiting for its next request, so idle connections end by then at the latest);
//! - idle keep-alive: a connection with no request in flight since its last response is
//!   closed after the idle timeout;
//! - body read: a request body not fully received by then fails (400);
//! - whole request: a response not ready by then is a 503 with `Retry-After`;
//! - connections: past the cap, a new connection is answered 503 with `Retry-After` and
//!   closed at once;
//! - shutdown: accepting stops, every connection finishes its request in flight and closes,
//!   and whatever is still open when the grace period ends is dropped.
//!
//! warp's own server gives hyper no timer, hence this loop; the client's address reaches
//! the filters as a `SocketAddr` request extension (see `minitwit_web`'s client filter).

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower_service::Service as _;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Request, StatusCode, header};
use warp::reply::{Reply as _, Response};

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
}

/// The answer to a connection past the cap, written without waiting.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

/// Serves `routes` on `listener` within `limits` until `stop` turns true, then shuts down
/// gracefully within the grace period.
pub async fn serve(
    routes: BoxedFilter<(Response,)>,
    listener: TcpListener,
    limits: Limits,
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
                        let routes = routes.clone();
                        let stop = for_connections.clone();
                        connections.spawn(connection(routes, stream, peer, limits, stop, slot));
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

/// Serves one connection until it ends, idles out, or shutdown closes it.
async fn connection(
    routes: BoxedFilter<(Response,)>,
    stream: TcpStream,
    peer: SocketAddr,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(watch::Sender::new(Activity::default()));
    let handler = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request| {
        handle(routes.clone(), peer, limits, Arc::clone(&handler), request)
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read);
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

/// Requests on one connection: how many are in flight, and whether any was served.
#[derive(Debug, Default, Clone, Copy)]
struct Activity {
    in_flight: usize,
    served: bool,
}

/// Resolves once the connection has had no request in flight for `idle` since its last
/// response (before the first request, hyper's header timeout applies instead).
async fn idle_for(activity: &watch::Sender<Activity>, idle: Duration) {
    let mut changes = activity.subscribe();
    loop {
        let now = *changes.borrow_and_update();
        if now.in_flight == 0 && now.served {
            tokio::select! {
                () = tokio::time::sleep(idle) => return,
                _ = changes.changed() => {}
            }
        } else if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Answers one request: the routes, given the peer address, the body deadline and the
/// whole-request deadline; counted in the connection's activity.
async fn handle(
    routes: BoxedFilter<(Response,)>,
    peer: SocketAddr,
    limits: Limits,
    activity: Arc<watch::Sender<Activity>>,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    activity.send_modify(|now| now.in_flight += 1);
    let deadline = Instant::now() + limits.body_read;
    let mut request = request.map(|body| TimedBody::new(body, deadline));
    request.extensions_mut().insert(peer);
    let answered = tokio::time::timeout(limits.request, warp::service(routes).call(request)).await;
    activity.send_modify(|now| {
        now.in_flight -= 1;
        now.served = true;
    });
    Ok(match answered {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => too_slow(),
    })
}

/// The answer to a request that ran out of time.
fn too_slow() -> Response {
    tracing::warn!("a request ran out of time");
    let body = "The request took too long. Please try again in a moment.";
    let mut response =
        warp::reply::with_status(body, StatusCode::SERVICE_UNAVAILABLE).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    minitwit_web::add_security_headers(response.headers_mut());
    response
}

/// A request body that fails once its deadline passes.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, deadline: Instant) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep_until(deadline)) }
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
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Some(Err(BodyError::TimedOut)))
            }
            Poll::Pending => Poll::Pending,
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
