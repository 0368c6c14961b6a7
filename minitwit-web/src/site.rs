//! [`Site`]: everything a request handler needs (service, templates, session codec,
//! throttle, static files), per-request [`Visit`]s (who is reading, their session), and
//! the helpers that turn a handler's result into a response with the session cookie.

use crate::assets::{AssetUrls, Assets};
use crate::config::WebConfig;
use crate::entries::{self, RenderedEntries};
use crate::error::{WebError, explanation};
use crate::live::streams::Streams;
use crate::session::{Session, SessionCodec};
use crate::throttle::SiteThrottle;
use crate::views::{EntryView, ErrorView, LayoutView, Views};
use bytes::Bytes;
use minitwit_core::cache::{HomePageMemo, PublicPageMemo};
use minitwit_core::consistency::ReadToken;
use minitwit_core::{MiniTwit, ServiceError, TimelineEntry, User, UserId};
use serde::Serialize;
use std::sync::Arc;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER, SET_COOKIE,
};
use warp::http::{Response, StatusCode};
use warp::reply::Response as WarpResponse;

/// The site's shared state.
pub(crate) struct Site {
    /// The core service.
    pub service: MiniTwit,
    /// The configuration.
    pub config: WebConfig,
    /// Login attempt limiters.
    pub throttle: SiteThrottle,
    /// The static files.
    pub assets: Assets,
    /// The public timeline's first page as visitors who are not signed in see it.
    pub public_memo: PublicPageMemo<Bytes>,
    /// Readers' home pages (first pages, without flashes), each as its reader sees it.
    pub home_memo: HomePageMemo<Bytes>,
    /// Live timelines.
    pub streams: Streams,
    /// Timeline entries rendered lately, shared by every page and stream.
    entries: RenderedEntries,
    views: Views,
    sessions: SessionCodec,
    asset_urls: AssetUrls,
}

/// One request's reader: the signed-in user, if any, the session as it changes, and the
/// service as this reader sees it (reading its own writes).
pub(crate) struct Visit {
    /// The service bound to this browser's read token: use it for every call.
    pub service: MiniTwit,
    /// The signed-in user.
    pub user: Option<User>,
    /// The session; changes are written back with the response.
    pub session: Session,
    original: Session,
    token: ReadToken,
}

/// What a page is called: a fixed title, or "NAME's Timeline".
pub(crate) enum Title<'a> {
    /// A fixed title such as "Public Timeline".
    Fixed(&'a str),
    /// A user's timeline.
    UserTimeline(&'a str),
}

impl Site {
    /// The site over `service` with `config`.
    pub fn new(service: MiniTwit, config: WebConfig) -> Self {
        let assets = Assets::embedded();
        let streams = Streams::new(&service, config.live);
        Self {
            service,
            throttle: SiteThrottle::new(&config),
            asset_urls: assets.urls(),
            assets,
            public_memo: PublicPageMemo::new(),
            home_memo: HomePageMemo::new(),
            streams,
            entries: RenderedEntries::new(entries::KEPT),
            views: Views::new(),
            sessions: SessionCodec::new(&config),
            config,
        }
    }

    /// The reader of a request with this `Cookie` header. A session that no longer
    /// belongs to its user (see [`Session::is_valid_for`]) is signed out, and a cookie that
    /// cannot be used is cleared.
    pub async fn visit(&self, cookie_header: Option<&str>) -> Result<Visit, WebError> {
        let original = self.sessions.read(cookie_header);
        let mut session = Session { stale: false, ..original.clone() };
        let token = ReadToken::at(session.wrote_at);
        let service = self.service.for_reader(token.clone());
        let user = match session.user_id {
            Some(id) => signed_in(&service, &session, id).await?,
            None => None,
        };
        if user.is_none() {
            session.sign_out();
        }
        Ok(Visit { service, user, session, original, token })
    }

    /// A page: `template` rendered with `data` inside the layout, showing (and so
    /// consuming) the session's flashes.
    pub fn page<T: Serialize>(
        &self,
        mut visit: Visit,
        status: StatusCode,
        title: Title<'_>,
        template: &str,
        data: &T,
    ) -> WarpResponse {
        let flashes = std::mem::take(&mut visit.session.flashes);
        let reader = visit.user.as_ref().map(|u| u.username.as_str());
        match self.render(reader, &flashes, title, template, data) {
            Ok(html) => self.with_session(visit, html_response(status, html.into())),
            Err(err) => self.error_response(&err),
        }
    }

    /// `template` rendered with `data` inside the layout, for `reader` (signed in, or
    /// `None`) with `flashes` shown.
    pub fn render<T: Serialize>(
        &self,
        reader: Option<&str>,
        flashes: &[String],
        title: Title<'_>,
        template: &str,
        data: &T,
    ) -> Result<String, WebError> {
        let (title, title_user) = match title {
            Title::Fixed(title) => (title, None),
            Title::UserTimeline(name) => ("", Some(name)),
        };
        let body = self.views.render(template, data)?;
        let layout = LayoutView {
            title,
            title_user,
            user: reader,
            error_nav: false,
            flashes,
            body: &body,
            assets: &self.asset_urls,
        };
        self.views.render("layout", &layout)
    }

    /// One timeline entry, exactly as a page shows it, rendered once for every page and
    /// stream that shows it.
    pub fn entry_html(&self, entry: &TimelineEntry) -> Result<Arc<str>, WebError> {
        self.entries.html(entry, |entry| self.views.render("entry", &EntryView::from(entry)))
    }

    /// A timeline's entries, one after the other, as its page shows them.
    pub fn entries_html(&self, entries: &[TimelineEntry]) -> Result<String, WebError> {
        let mut html = String::new();
        for entry in entries {
            html.push_str(&self.entry_html(entry)?);
        }
        Ok(html)
    }

    /// A page built before and kept (`html`: shown to every visitor who is not signed in
    /// and has no flashes to see, or to one reader), with `visit`'s session cookie.
    pub fn kept_page(&self, visit: Visit, html: Bytes) -> WarpResponse {
        self.with_session(visit, html_response(StatusCode::OK, html))
    }

    /// A `302 Found` to `location` (an absolute path).
    pub fn redirect(&self, visit: Visit, location: &str) -> WarpResponse {
        let mut response = WarpResponse::new(Default::default());
        *response.status_mut() = StatusCode::FOUND;
        if let Ok(value) = HeaderValue::from_str(location) {
            response.headers_mut().insert(LOCATION, value);
        }
        self.with_session(visit, response)
    }

    /// The error page for `status`: fixed texts only, no session touched; a 503 says
    /// when to retry.
    pub fn error_page(&self, status: StatusCode) -> WarpResponse {
        let heading =
            format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
        let view = ErrorView {
            heading: &heading,
            explanation: explanation(status),
            sign_in: status == StatusCode::UNAUTHORIZED,
        };
        let html = self.views.render("error", &view).and_then(|body| {
            let layout = LayoutView {
                title: &heading,
                title_user: None,
                user: None,
                error_nav: true,
                flashes: &[],
                body: &body,
                assets: &self.asset_urls,
            };
            self.views.render("layout", &layout)
        });
        // The templates are tested; should one still fail, a bare page says as much.
        let html = html.unwrap_or_else(|_| heading.clone());
        let mut response = html_response(status, html.into());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// The error page for `err`; internal failures are logged (only there).
    pub fn error_response(&self, err: &WebError) -> WarpResponse {
        if let WebError::Service(failure @ (ServiceError::Internal(_) | ServiceError::Store(_))) =
            err
        {
            tracing::error!(detail = %failure, "request failed");
        }
        self.error_page(err.status())
    }

    /// Adds the session cookie to `response` when the session (or the position of the
    /// browser's latest write) changed.
    fn with_session(&self, mut visit: Visit, mut response: WarpResponse) -> WarpResponse {
        visit.session.wrote_at = visit.token.position();
        if visit.session != visit.original
            && let Ok(cookie) = HeaderValue::from_str(&self.sessions.write(&visit.session))
        {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        response
    }
}

/// An HTML response that no shared cache keeps (pages are personal).
fn html_response(status: StatusCode, html: Bytes) -> WarpResponse {
    let mut response = Response::new(html.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The user `session` names, if the session is still theirs.
async fn signed_in(
    service: &MiniTwit,
    session: &Session,
    id: UserId,
) -> Result<Option<User>, WebError> {
    // The user and their session generation in one store call (one statement on
    // PostgreSQL): every signed-in request pays it.
    let Some((user, generation)) = service.user_with_generation(id).await? else {
        return Ok(None);
    };
    Ok(session.is_valid_for(&user, generation).then_some(user))
}
