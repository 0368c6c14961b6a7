//! Live timelines (CONTRACT.md §3.6): each timeline page also answers as a stream of
//! server-sent events, for a reader that asks for one (`Accept: text/event-stream`, as
//! `EventSource` does): the public timeline at `/public`, a user's at `/{username}`,
//! the signed-in reader's home at `/`. Each new entry the page would show comes as an
//! `entry` event, its id the message id and its data the entry rendered exactly as on
//! the page (as a JSON string, which keeps its white space); a reader that reconnects with `Last-Event-ID` (or `?after=ID`) is sent what
//! it missed. The site's script turns the events into the "N new messages" bar.
//!
//! Streams are long-lived, so they have limits of their own (`slots`): a cap per process
//! (503) and per client address (429), both with `Retry-After`; a heartbeat comment, an
//! idle limit after which the stream ends with a retry hint, a bounded queue per stream
//! (a reader that does not keep up is dropped, its catch-up left to its reconnection),
//! and an end at once, with a retry hint, when the server begins shutting down
//! ([`Website::end_streams`](crate::Website::end_streams)). The stream itself (`pump`)
//! runs as a task of its own per reader.

mod pump;
mod slots;

pub(crate) use slots::Slots;

use crate::error::WebError;
use crate::route_table::PUBLIC;
use crate::site::Site;
use minitwit_core::TimelineEntry;
use minitwit_core::feed::{LiveFeed, LiveLimits, LiveTimeline};
use minitwit_core::rate_limit::ClientAddress;
use minitwit_core::{MessageId, ServiceError};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use warp::filters::BoxedFilter;
use warp::http::header::{COOKIE, HeaderValue, RETRY_AFTER};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// Open streams now (gauge).
pub const STREAMS_OPEN: &str = "minitwit_live_streams_open";
/// Events sent to streams (entries, withdrawals, reloads).
pub const EVENTS_SENT: &str = "minitwit_live_events_sent_total";
/// Streams dropped because their reader did not keep up.
pub const SLOW_READERS_DROPPED: &str = "minitwit_live_slow_readers_dropped_total";
/// Streams refused, by `reason`: `process` (cap), `address` (cap), `shutdown`.
pub const STREAMS_REFUSED: &str = "minitwit_live_streams_refused_total";

/// Registers the help texts of the live timelines' metrics with the process's recorder.
pub fn describe_metrics() {
    metrics::describe_gauge!(STREAMS_OPEN, "Live timeline streams open now");
    metrics::describe_counter!(EVENTS_SENT, "Events sent to live timeline streams");
    metrics::describe_counter!(
        SLOW_READERS_DROPPED,
        "Live timeline streams dropped because their reader did not keep up"
    );
    metrics::describe_counter!(
        STREAMS_REFUSED,
        "Live timeline streams refused, by reason (process, address, shutdown)"
    );
}

/// What live timelines allow. Build with [`Default`] and adjust the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// Most streams open at once in this process; beyond, 503. Default: 512, half the
    /// listener's connections, so streams never take every connection.
    pub max_streams: usize,
    /// Most streams open at once from one client address; beyond, 429. Default: 16.
    pub max_streams_per_address: usize,
    /// A heartbeat comment is sent after this long without an event. Default: 15 s.
    pub heartbeat: Duration,
    /// A stream that sent no event for this long ends (the browser reconnects, with its
    /// current cookie). Default: 5 minutes.
    pub idle: Duration,
    /// How often a home stream checks that its session is still valid. Default: 30 s.
    pub session_check: Duration,
    /// The reconnection delay streams ask browsers for. Default: 2 s.
    pub retry: Duration,
    /// Events queued for one stream; a reader further behind is dropped. Default: 64.
    pub queue: usize,
    /// What a reader may have missed before it is told to reload instead.
    pub limits: LiveLimits,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_streams: 512,
            max_streams_per_address: 16,
            heartbeat: Duration::from_secs(15),
            idle: Duration::from_secs(300),
            session_check: Duration::from_secs(30),
            retry: Duration::from_secs(2),
            queue: 64,
            limits: LiveLimits::default(),
        }
    }
}

/// The live timelines of one site: the feed, the caps, the shutdown signal, and the
/// entries rendered lately.
pub(crate) struct Streams {
    feed: Option<LiveFeed>,
    config: LiveConfig,
    slots: Arc<Slots>,
    closing: watch::Sender<bool>,
    rendered: Mutex<VecDeque<(MessageId, Arc<str>)>>,
}

/// Entries kept rendered: every stream sends the newest ones, so each is rendered once.
const RENDERED_KEPT: usize = 32;

impl Streams {
    /// Live timelines over `service`'s store, if it delivers changes and a runtime runs.
    pub(crate) fn new(service: &minitwit_core::MiniTwit, config: LiveConfig) -> Self {
        let feed = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|_| LiveFeed::start(Arc::clone(service.store()), config.limits));
        Self {
            feed,
            config,
            slots: Arc::new(Slots::new(config.max_streams, config.max_streams_per_address)),
            closing: watch::channel(false).0,
            rendered: Mutex::default(),
        }
    }

    /// An entry's event data, rendered once for every stream that sends it (an entry
    /// never changes): the entry exactly as the page renders it, as a JSON string (SSE
    /// would strip a space from every data line that starts with one).
    pub(crate) fn entry_data(
        &self,
        site: &Site,
        entry: &TimelineEntry,
    ) -> Result<Arc<str>, WebError> {
        let lock = || self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, data)) = lock().iter().find(|(id, _)| *id == entry.id) {
            return Ok(Arc::clone(data));
        }
        let html = site.render_entry(entry)?;
        let data: Arc<str> = serde_json::Value::String(html).to_string().into();
        let mut rendered = lock();
        if rendered.len() >= RENDERED_KEPT {
            rendered.pop_front();
        }
        rendered.push_back((entry.id, Arc::clone(&data)));
        Ok(data)
    }

    /// Ends every stream at once with a retry hint, and refuses new ones (503).
    pub(crate) fn end_all(&self) {
        self.closing.send_replace(true);
    }

    fn closing(&self) -> bool {
        *self.closing.borrow()
    }
}

/// The timeline a stream request names.
#[derive(Debug, Clone)]
enum Kind {
    Home,
    Public,
    User(String),
}

/// The stream routes: `GET /`, `/public` and `/{username}` asked for as
/// `text/event-stream`; every other request passes on to the pages.
pub(crate) fn routes(site: &Arc<Site>) -> BoxedFilter<(Response,)> {
    let kind = warp::path::end()
        .map(|| Kind::Home)
        .or(PUBLIC.path().map(|| Kind::Public))
        .unify()
        .or(warp::path::param::<String>().and(warp::path::end()).map(Kind::User))
        .unify();
    let site = Arc::clone(site);
    warp::get()
        .and(wants_stream())
        .and(kind)
        .and(warp::any().map(move || Arc::clone(&site)))
        .and(warp::header::headers_cloned())
        .and(after_query())
        .and(warp::ext::optional::<ClientAddress>())
        .then(open)
        .boxed()
}

/// Passes requests that accept `text/event-stream`; others are not found here, so the
/// pages answer them as ever.
fn wants_stream() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("accept")
        .and_then(|accept: Option<String>| async move {
            match accept {
                Some(accept) if accept.contains("text/event-stream") => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
}

/// The raw `after=ID` of the query, if any.
fn after_query() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::query::raw().map(Some).or(warp::any().map(|| None)).unify().map(
        |query: Option<String>| {
            query.and_then(|query| {
                query.split('&').find_map(|pair| pair.strip_prefix("after=").map(str::to_owned))
            })
        },
    )
}

/// Where the reader left off: `Last-Event-ID`, else `?after=`; 400 when not a number.
fn resume_point(headers: &HeaderMap, after: Option<String>) -> Result<Option<MessageId>, WebError> {
    let header = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("x").to_owned());
    let Some(text) = header.filter(|t| !t.is_empty()).or(after) else { return Ok(None) };
    text.trim().parse().map(Some).map_err(|_| WebError::BadRequest("malformed event id"))
}

/// Opens a stream, or answers why not.
async fn open(
    kind: Kind,
    site: Arc<Site>,
    headers: HeaderMap,
    after: Option<String>,
    client: Option<ClientAddress>,
) -> Response {
    match open_stream(kind, &site, &headers, after, client.map(ClientAddress::ip)).await {
        Ok(response) => response,
        Err(refused) => refused.response(&site),
    }
}

/// Why a stream was not opened.
enum Refused {
    /// A cap or shutdown: the status, and when to retry.
    Busy(StatusCode, &'static str),
    /// Anything else, as any page would answer it.
    Failed(WebError),
}

impl From<WebError> for Refused {
    fn from(err: WebError) -> Self {
        Self::Failed(err)
    }
}

impl From<ServiceError> for Refused {
    fn from(err: ServiceError) -> Self {
        Self::Failed(WebError::Service(err))
    }
}

impl Refused {
    fn response(self, site: &Site) -> Response {
        match self {
            Self::Busy(status, reason) => {
                metrics::counter!(STREAMS_REFUSED, "reason" => reason).increment(1);
                let mut response = site.error_page(status);
                let seconds = site.streams.config.retry.as_secs().max(1);
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            Self::Failed(err) => site.error_response(&err),
        }
    }
}

async fn open_stream(
    kind: Kind,
    site: &Arc<Site>,
    headers: &HeaderMap,
    after: Option<String>,
    client: Option<IpAddr>,
) -> Result<Response, Refused> {
    let streams = &site.streams;
    let Some(feed) = streams.feed.as_ref() else { return Err(WebError::NotFound.into()) };
    if streams.closing() {
        return Err(Refused::Busy(StatusCode::SERVICE_UNAVAILABLE, "shutdown"));
    }
    let after = resume_point(headers, after)?;
    let slot = streams.slots.take(client).map_err(|refusal| match refusal {
        slots::Refusal::Process => Refused::Busy(StatusCode::SERVICE_UNAVAILABLE, "process"),
        slots::Refusal::Address => Refused::Busy(StatusCode::TOO_MANY_REQUESTS, "address"),
    })?;
    let cookie = headers.get(COOKIE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let timeline = timeline(&kind, site, cookie.as_deref()).await?;
    let (subscription, missed) = feed.subscribe(timeline, after).await?;
    let reader = pump::Reader { cookie, timeline };
    Ok(pump::start(
        Arc::clone(site),
        subscription,
        missed,
        reader,
        slot,
        streams.closing.subscribe(),
    ))
}

/// The live timeline `kind` names for this reader: 401 for a home stream signed out,
/// 404 for an unknown user.
async fn timeline(kind: &Kind, site: &Site, cookie: Option<&str>) -> Result<LiveTimeline, Refused> {
    Ok(match kind {
        Kind::Public => LiveTimeline::Public,
        Kind::User(segment) => LiveTimeline::User(site.service.user_at(segment).await?.id),
        Kind::Home => {
            let visit = site.visit(cookie).await?;
            LiveTimeline::Home(visit.user.ok_or(WebError::Unauthorized)?.id)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_resume_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(resume_point(&headers, None).ok(), Some(None));
        assert_eq!(resume_point(&headers, Some("12".into())).ok(), Some(Some(MessageId(12))));
        headers.insert("last-event-id", HeaderValue::from_static("7"));
        assert_eq!(resume_point(&headers, Some("12".into())).ok(), Some(Some(MessageId(7))));
        headers.insert("last-event-id", HeaderValue::from_static("x"));
        assert!(resume_point(&headers, None).is_err());
    }
}
