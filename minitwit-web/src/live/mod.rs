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
pub(crate) mod streams;

pub(crate) use slots::Slots;

use crate::error::WebError;
use crate::route_table::PUBLIC;
use crate::site::Site;
use minitwit_core::feed::LiveTimeline;
use minitwit_core::rate_limit::ClientAddress;
use minitwit_core::{MessageId, ServiceError};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
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

/// The media type a stream request accepts, and its answer's.
pub const EVENT_STREAM: &str = "text/event-stream";

/// Where a stream's task runs, when the server gives one as a request extension (a
/// runtime of lower CPU priority, say): it is polled there, in the context of the
/// runtime that answered the request, so that what it creates (store connections,
/// timers) belongs to the latter. Without it, the task runs where the request was
/// answered.
#[derive(Debug, Clone)]
pub struct StreamRuntime(pub tokio::runtime::Handle);

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
        .and(warp::ext::optional::<StreamRuntime>())
        .then(open)
        .boxed()
}

/// Passes requests that accept `text/event-stream`; others are not found here, so the
/// pages answer them as ever.
fn wants_stream() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("accept")
        .and_then(|accept: Option<String>| async move {
            match accept {
                Some(accept) if accept.contains(EVENT_STREAM) => Ok(()),
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
    runtime: Option<StreamRuntime>,
) -> Response {
    let client = client.map(ClientAddress::ip);
    match open_stream(kind, &site, &headers, after, client, runtime).await {
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
    runtime: Option<StreamRuntime>,
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
    let closing = streams.closing_signal();
    Ok(pump::start(Arc::clone(site), subscription, missed, reader, slot, closing, runtime))
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
    use minitwit_core::Store;
    use minitwit_core::feed::{ChangeFeed, Hub};
    use minitwit_core::layer::StoreLayer;
    use minitwit_core::testkit::MemoryStore;

    /// The in-memory store, with a change feed of its own.
    struct Fed {
        inner: MemoryStore,
        hub: Arc<Hub>,
    }

    impl StoreLayer for Fed {
        fn inner(&self) -> &dyn Store {
            &self.inner
        }

        fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
            Some(Arc::clone(&self.hub) as Arc<dyn ChangeFeed>)
        }
    }

    #[tokio::test]
    async fn a_streams_task_runs_on_the_runtime_its_request_names() {
        let store = Fed { inner: MemoryStore::new(), hub: Arc::default() };
        let config = crate::WebConfig::new(vec![7; 64]).expect("a configuration");
        let service = minitwit_core::MiniTwit::new(Arc::new(store));
        let site = crate::Website::new(service, config).routes();
        let lane = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let open = |runtime: Option<StreamRuntime>| {
            let request = warp::test::request().path("/public").header("accept", EVENT_STREAM);
            let request = match runtime {
                Some(runtime) => request.extension(runtime),
                None => request,
            };
            request.filter(&site)
        };
        let here = open(None).await.expect("a stream here");
        assert_eq!(lane.metrics().num_alive_tasks(), 0, "a stream without a runtime named");
        let there = open(Some(StreamRuntime(lane.handle().clone()))).await.expect("a stream");
        assert_eq!((here.status(), there.status()), (StatusCode::OK, StatusCode::OK));
        assert_eq!(lane.metrics().num_alive_tasks(), 1, "the stream's task runs there");
        drop((here, there));
        lane.shutdown_background();
    }

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
