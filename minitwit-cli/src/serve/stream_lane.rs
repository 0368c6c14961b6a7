//! The stream lane: live timeline connections (CONTRACT.md §3.6) served by a runtime of
//! their own, whose threads run at the lowest CPU priority Linux has (`SCHED_IDLE`: they
//! run when nothing else of normal priority wants the CPU, and give it up at once when
//! something does). A post's fan-out to every open stream (a socket write per stream
//! and, over loopback, the receiving side's TCP work too, which the kernel does on the
//! writer's thread) then takes only the CPU that ordinary requests leave, instead of
//! queueing each request that arrives during it.
//!
//! - Which connections: the web listener peeks at a connection's first bytes
//!   ([`first_request`]); one whose first request accepts `text/event-stream` moves here
//!   for its whole life. This is a scheduling hint, nothing more: both runtimes answer
//!   every request alike.
//! - What runs here: the connection's reads and writes (hyper, the response body), and
//!   each stream's task (the web site's pump, told where by a
//!   [`StreamRuntime`](minitwit_web::StreamRuntime) request extension). Each request's
//!   handler (its store reads, its subscription) runs on the main runtime, and the
//!   stream's task is polled in the main runtime's context, so that what it creates
//!   (store connections, timers) is driven by the main runtime: nothing of the store
//!   ever waits for an idle thread.

use super::AbortOnDrop;
use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::time::Duration;
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};
use tokio::net::TcpStream;
use tokio::runtime::{Handle, Runtime};

/// The runtime live stream connections are served on.
pub struct StreamLane {
    /// Always `Some` until dropped (then shut down without waiting).
    runtime: Option<Runtime>,
    /// The runtime the requests' handlers run on: the one that started the lane.
    requests: Handle,
}

impl StreamLane {
    /// Starts the lane's threads (one per CPU); handlers will run on the caller's runtime.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn start() -> io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("minitwit-streams")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(Self { runtime: Some(runtime), requests: Handle::current() })
    }

    /// Serves `stream` on the lane with `serve` (given the stream and the runtime to run
    /// handlers on) until it ends. Dropping the returned future ends it too.
    pub async fn serve<F, S>(&self, stream: TcpStream, serve: S)
    where
        S: FnOnce(TcpStream, Handle) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else { return };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => return tracing::debug!(%error, "cannot move a stream connection"),
        };
        let requests = self.requests.clone();
        let task = AbortOnDrop(runtime.spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream, requests).await,
                Err(error) => tracing::debug!(%error, "cannot take a stream connection"),
            }
        }));
        task.finished().await;
    }
}

impl Drop for StreamLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority to the lowest (`SCHED_IDLE` on Linux).
fn lower_priority() {
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    let lowered = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle);
    if let Err(error) = lowered {
        tracing::warn!(?error, "cannot lower the priority of the live streams' threads");
    }
}

/// What a connection's first bytes say about its first request.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstRequest {
    /// It accepts `text/event-stream`: a live stream.
    Stream,
    /// Anything else.
    Other,
    /// Nothing came within the header read limit, or the client closed: the connection
    /// is closed without an answer, as hyper would.
    Nothing,
}

/// The most of a first request looked at: its head, as browsers send it.
const PEEKED: usize = 4096;

/// Waits for the connection's first bytes (at most `within`), without taking them, and
/// tells whether its first request asks for a live stream.
pub async fn first_request(stream: &TcpStream, within: Duration) -> FirstRequest {
    let mut head = vec![0; PEEKED];
    match tokio::time::timeout(within, stream.peek(&mut head)).await {
        Ok(Ok(read)) if read > 0 => classify(&head[..read]),
        _ => FirstRequest::Nothing,
    }
}

/// A stream request is one that names the event stream's media type (in its `Accept`
/// header, in practice; anywhere in the head is as good for a hint).
fn classify(head: &[u8]) -> FirstRequest {
    let wanted = minitwit_web::EVENT_STREAM.as_bytes();
    if head.windows(wanted.len()).any(|window| window == wanted) {
        FirstRequest::Stream
    } else {
        FirstRequest::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_accepts_an_event_stream_is_a_stream() {
        let stream = b"GET /public HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
        let page = b"GET /public HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n";
        assert_eq!(classify(stream), FirstRequest::Stream);
        assert_eq!(classify(page), FirstRequest::Other);
        assert_eq!(classify(b"GET / HT"), FirstRequest::Other, "a partial head");
    }
}
