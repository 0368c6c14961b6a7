//! One stream: a task that waits for its reader's events (and heartbeats, the idle
//! limit, the session check, shutdown), renders them as server-sent events and queues
//! them, as the bytes that go on the wire, for the response body (an entry's bytes are
//! formatted once and shared by every stream: [`super::streams::Streams::entry_event`]).
//! The queue is bounded: a reader that does not keep up is dropped (its connection
//! closed, not merely its response ended) and catches up by message id when its browser
//! reconnects.

use super::slots::Slot;
use super::streams::wire;
use super::{EVENTS_SENT, SLOW_READERS_DROPPED, StreamRuntime};
use crate::config::LiveConfig;
use crate::site::Site;
use bytes::Bytes;
use futures::Stream;
use minitwit_core::feed::{Event, LiveTimeline, Stop, Subscription};
use minitwit_core::{MessageId, UserId};
use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_util::context::TokioContext;
use warp::Reply as _;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use warp::reply::Response;
use warp::sse;

/// Who reads the stream: the cookie it was opened with (a home stream checks it again
/// now and then) and the timeline.
pub(crate) struct Reader {
    pub(crate) cookie: Option<String>,
    pub(crate) timeline: LiveTimeline,
}

/// Entries remembered per stream with their authors, to withdraw an author's.
const SENT_KEPT: usize = 256;

/// Starts the stream's task (on `runtime` if given) and answers with its body.
pub(crate) fn start(
    site: Arc<Site>,
    subscription: Subscription,
    missed: Vec<Event>,
    reader: Reader,
    slot: Slot,
    closing: watch::Receiver<bool>,
    runtime: Option<StreamRuntime>,
) -> Response {
    let config = site.streams.config;
    let (queue, events) = mpsc::channel(config.queue.max(1));
    let dropped = Arc::new(AtomicBool::new(false));
    let pump =
        Pump { site, queue, reader, closing, sent: VecDeque::new(), dropped: Arc::clone(&dropped) };
    let run = pump.run(subscription, missed);
    match runtime {
        Some(StreamRuntime(there)) => drop(there.spawn(TokioContext::new(run, Handle::current()))),
        None => drop(tokio::spawn(run)),
    }
    let body = Body { events, dropped, window: Window::new(config.write_window), _slot: slot };
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(super::EVENT_STREAM));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer answers (nginx) pass this one on as it comes.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The response body: the queued events; the slot is given back when it is dropped.
struct Body {
    events: mpsc::Receiver<Bytes>,
    /// Set when the reader was dropped for falling behind: the body fails, so that the
    /// connection is closed rather than kept open for another request.
    dropped: Arc<AtomicBool>,
    window: Window,
    _slot: Slot,
}

/// The write window of one stream ([`LiveConfig::write_window`]). The body hands hyper
/// every event queued, which it writes at once, together; then, for the window, it
/// neither reads the queue nor is woken by it. What comes meanwhile waits in the queue
/// for the next write: at a high event rate, one task turn and one socket write carry
/// several events instead of one each.
struct Window {
    length: Duration,
    /// Whether events were handed over since the last write.
    handed: bool,
    /// Whether the queue is left alone until the timer fires.
    closed: bool,
    /// The end of the current window: made at the first write, then reset.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Window {
    fn new(length: Duration) -> Self {
        Self { length, handed: false, closed: false, timer: None }
    }

    /// Ready when the queue may be read: at once, or when the window has passed.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.closed
            && let Some(timer) = self.timer.as_mut()
        {
            std::task::ready!(timer.as_mut().poll(cx));
        }
        self.closed = false;
        Poll::Ready(())
    }

    /// The queue had an event, handed over to be written.
    fn handed(&mut self) {
        self.handed = true;
    }

    /// The queue was found empty: if events went out, hyper writes them now, and the
    /// window starts. The queue's wake-up is left registered, so the next event wakes
    /// the body once, to wait out what remains of the window.
    fn drained(&mut self) {
        if self.handed && !self.length.is_zero() {
            let until = Instant::now() + self.length;
            match self.timer.as_mut() {
                Some(timer) => timer.as_mut().reset(until),
                None => self.timer = Some(Box::pin(sleep_until(until))),
            }
            self.closed = true;
        }
        self.handed = false;
    }
}

/// What ends the body of a reader dropped for falling behind.
#[derive(Debug, thiserror::Error)]
#[error("a live stream's reader fell behind and was dropped")]
struct FellBehind;

impl Stream for Body {
    type Item = Result<Bytes, FellBehind>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.dropped.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(FellBehind)));
        }
        std::task::ready!(self.window.poll_open(cx));
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                self.window.handed();
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                self.window.drained();
                Poll::Pending
            }
        }
    }
}

/// Why a stream's task ended.
enum End {
    /// The reader went away.
    Gone,
    /// The reader fell behind (counted): its connection is closed.
    Dropped,
    /// Shutdown, the idle limit, a failure: end with a retry hint.
    Retry,
    /// The reader's session ended: tell the script to stop.
    SignedOut,
}

struct Pump {
    site: Arc<Site>,
    queue: mpsc::Sender<Bytes>,
    reader: Reader,
    closing: watch::Receiver<bool>,
    /// Entries sent lately, with their authors.
    sent: VecDeque<(MessageId, UserId)>,
    /// Shared with the body: set when the reader is dropped for falling behind.
    dropped: Arc<AtomicBool>,
}

/// The subscription's next events, owning it meanwhile: a wait that other branches of
/// the loop never cancel half-way.
async fn next(mut subscription: Subscription) -> (Subscription, Result<Vec<Event>, Stop>) {
    let events = subscription.next().await;
    (subscription, events)
}

impl Pump {
    async fn run(mut self, subscription: Subscription, missed: Vec<Event>) {
        let end = self.serve(subscription, missed).await;
        let last = match end {
            End::Gone => return,
            End::Dropped => {
                metrics::counter!(SLOW_READERS_DROPPED).increment(1);
                // Dropping the queue when this returns wakes the body to see it.
                return self.dropped.store(true, Ordering::Release);
            }
            End::Retry => retry_hint(self.site.streams.config.retry),
            End::SignedOut => wire(sse::Event::default().event("signedout").data("signed out")),
        };
        // The queue may be full or gone: the stream ends either way.
        let _ = self.queue.try_send(last);
    }

    async fn serve(&mut self, subscription: Subscription, missed: Vec<Event>) -> End {
        let config = self.site.streams.config;
        if let Some(end) = self.send(retry_hint(config.retry)).or_else(|| self.send_all(missed)) {
            return end;
        }
        let mut pending = Box::pin(next(subscription));
        // Made once and polled on every turn: made anew on each event, every one of them
        // would register and drop a waiter, or a timer, per event and stream.
        let mut closing = self.closing.clone();
        let ending = ends(&mut closing);
        let queue = self.queue.clone();
        let gone = queue.closed();
        let mut clock = Clock::new(config, self.is_home());
        let timer = sleep_until(clock.next());
        tokio::pin!(ending, gone, timer);
        loop {
            tokio::select! {
                biased;
                () = &mut ending => return End::Retry,
                () = &mut gone => return End::Gone,
                (subscription, events) = &mut pending => {
                    let events = match events {
                        Ok(events) => events,
                        Err(stop) => return self.stopped(&stop),
                    };
                    if let Some(end) = self.send_all(events) {
                        return end;
                    }
                    // The timer stays as it is: when it fires, it finds what is due.
                    clock.sent(Instant::now());
                    pending = Box::pin(next(subscription));
                }
                () = &mut timer => {
                    let now = Instant::now();
                    match clock.due(now) {
                        Some(Due::Idle) => return End::Retry,
                        Some(Due::Beat) => {
                            if let Some(end) = self.send(Bytes::from_static(HEARTBEAT)) {
                                return end;
                            }
                            clock.beat_at = now + config.heartbeat;
                        }
                        Some(Due::Check) => {
                            if !self.session_holds().await {
                                return End::SignedOut;
                            }
                            clock.check_at = Some(now + config.session_check);
                        }
                        None => {}
                    }
                    timer.as_mut().reset(clock.next());
                }
            }
        }
    }

    fn is_home(&self) -> bool {
        matches!(self.reader.timeline, LiveTimeline::Home(_))
    }

    /// Whether the home stream's cookie still signs in its reader; a store failure
    /// keeps the stream (the pages decide on their own requests).
    async fn session_holds(&self) -> bool {
        let LiveTimeline::Home(reader) = self.reader.timeline else { return true };
        match self.site.visit(self.reader.cookie.as_deref()).await {
            Ok(visit) => visit.user.is_some_and(|user| user.id == reader),
            Err(_) => true,
        }
    }

    fn stopped(&self, stop: &Stop) -> End {
        match stop {
            Stop::SessionEnded => End::SignedOut,
            Stop::FellBehind => End::Dropped,
            Stop::FeedClosed | Stop::Store(_) => {
                tracing::debug!(%stop, "a live stream ends");
                End::Retry
            }
        }
    }

    fn send_all(&mut self, events: Vec<Event>) -> Option<End> {
        events.into_iter().find_map(|event| {
            let rendered = self.render(event)?;
            metrics::counter!(EVENTS_SENT).increment(1);
            self.send(rendered)
        })
    }

    /// Queues `event`; a full queue drops the reader, a closed one means it is gone.
    fn send(&self, event: Bytes) -> Option<End> {
        match self.queue.try_send(event) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(_)) => Some(End::Dropped),
            Err(mpsc::error::TrySendError::Closed(_)) => Some(End::Gone),
        }
    }

    /// `event` as the script reads it; `None` for nothing to send.
    fn render(&mut self, event: Event) -> Option<Bytes> {
        match event {
            Event::Entry(entry) => {
                let event = match self.site.streams.entry_event(&entry, |e| self.site.entry_html(e))
                {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::error!(%error, "a live entry could not be rendered");
                        return None;
                    }
                };
                if self.sent.len() >= SENT_KEPT {
                    self.sent.pop_front();
                }
                self.sent.push_back((entry.id, entry.author_id));
                Some(event)
            }
            Event::Withdraw(ids) => withdraw(
                ids.into_iter().filter(|id| self.sent.iter().any(|(s, _)| s == id)).collect(),
            ),
            Event::WithdrawAuthor(author) => {
                let ids = self.sent.iter().filter(|(_, a)| *a == author).map(|(id, _)| *id);
                withdraw(ids.collect())
            }
            Event::Reload => Some(wire(sse::Event::default().event("reload").data("reload"))),
        }
    }
}

/// What a stream's one timer waits for: the idle limit and the heartbeat, which move
/// with each event sent, and a home stream's session check.
struct Clock {
    config: LiveConfig,
    idle_until: Instant,
    beat_at: Instant,
    check_at: Option<Instant>,
}

/// What [`Clock::due`] found due.
enum Due {
    Idle,
    Beat,
    Check,
}

impl Clock {
    fn new(config: LiveConfig, home: bool) -> Self {
        let now = Instant::now();
        Self {
            config,
            idle_until: now + config.idle,
            beat_at: now + config.heartbeat,
            check_at: home.then(|| now + config.session_check),
        }
    }

    /// An event was sent at `now`: the idle limit and the heartbeat start again.
    fn sent(&mut self, now: Instant) {
        self.idle_until = now + self.config.idle;
        self.beat_at = now + self.config.heartbeat;
    }

    /// The earliest deadline.
    fn next(&self) -> Instant {
        let soonest = self.idle_until.min(self.beat_at);
        self.check_at.map_or(soonest, |check| soonest.min(check))
    }

    /// What is due at `now`, the idle limit first.
    fn due(&self, now: Instant) -> Option<Due> {
        if now >= self.idle_until {
            Some(Due::Idle)
        } else if now >= self.beat_at {
            Some(Due::Beat)
        } else if self.check_at.is_some_and(|check| now >= check) {
            Some(Due::Check)
        } else {
            None
        }
    }
}

/// Resolves once the site begins shutting down (or is gone).
async fn ends(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// `withdraw` with the ids, space-separated; nothing for none.
fn withdraw(ids: Vec<MessageId>) -> Option<Bytes> {
    if ids.is_empty() {
        return None;
    }
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Some(wire(sse::Event::default().event("withdraw").data(ids.join(" "))))
}

/// A heartbeat: an empty comment.
const HEARTBEAT: &[u8] = b":\n\n";

/// The retry hint a stream starts and ends with: how long a reconnecting browser waits.
fn retry_hint(retry: Duration) -> Bytes {
    wire(sse::Event::default().retry(retry).comment(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `window` lets the queue be read now.
    fn open(window: &mut Window) -> bool {
        let waker = futures::task::noop_waker();
        window.poll_open(&mut Context::from_waker(&waker)).is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_write_the_queue_waits_out_the_window_and_after_quiet_it_does_not() {
        let length = Duration::from_millis(100);
        let mut window = Window::new(length);
        assert!(open(&mut window), "the first event goes at once");
        window.handed();
        window.drained();
        assert!(!open(&mut window), "what follows a write waits");
        tokio::time::advance(length / 2).await;
        assert!(!open(&mut window), "until the window has passed");
        tokio::time::advance(length / 2).await;
        assert!(open(&mut window));
        window.drained();
        assert!(open(&mut window), "nothing was written: no window starts");
        let mut none = Window::new(Duration::ZERO);
        none.handed();
        none.drained();
        assert!(open(&mut none), "a zero window writes every event as it comes");
    }

    #[test]
    fn a_heartbeat_is_warps_empty_comment() {
        assert_eq!(HEARTBEAT, sse::Event::default().comment("").to_string().as_bytes());
    }

    #[test]
    fn one_timer_finds_the_idle_limit_the_heartbeat_and_the_session_check() {
        let config = LiveConfig::default();
        let mut clock = Clock::new(config, true);
        let start = clock.beat_at - config.heartbeat;
        assert!(clock.due(start).is_none());
        assert_eq!(clock.next(), start + config.heartbeat.min(config.session_check));
        assert!(matches!(clock.due(start + config.heartbeat), Some(Due::Beat)));
        assert!(matches!(clock.due(start + config.idle), Some(Due::Idle)), "idle first");
        clock.beat_at = start + config.idle;
        assert!(matches!(clock.due(start + config.session_check), Some(Due::Check)));
        clock.beat_at = start + config.heartbeat;
        let later = start + config.heartbeat / 2;
        clock.sent(later);
        assert!(clock.due(start + config.heartbeat).is_none(), "an event puts off the beat");
        assert_eq!(clock.idle_until, later + config.idle);
        assert!(Clock::new(config, false).check_at.is_none(), "only a home stream checks");
    }
}
