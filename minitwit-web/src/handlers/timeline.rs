//! `GET /`, `GET /public`, `GET /{username}`: the three timelines, 30 messages a page,
//! with an "older messages" link carrying the keyset cursor in `?before=`.

use super::Handled;
use crate::error::WebError;
use crate::site::{Site, Title, Visit};
use crate::views::{ProfileView, TimelineView, user_path};
use bytes::Bytes;
use minitwit_core::{Cursor, MiniTwit, Page, PageSize, Timeline};
use serde::Deserialize;
use std::sync::Arc;
use warp::http::StatusCode;

/// The query of a timeline page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    /// Where the page starts: a [`Cursor`] token from an "older messages" link.
    #[serde(default)]
    before: Option<String>,
}

/// A page's entries (their HTML) and the link to the next page.
type Entries = (String, Option<String>);

/// One page of `timeline` and the link to the next, for a page at `path`.
async fn entries(
    site: &Site,
    service: &MiniTwit,
    timeline: Timeline,
    query: &PageQuery,
    path: &str,
) -> Result<Entries, WebError> {
    let before = match query.before.as_deref() {
        Some(token) => {
            Some(Cursor::from_token(token).ok_or(WebError::BadRequest("bad page token"))?)
        }
        None => None,
    };
    page_views(site, service.timeline(timeline, before, PageSize::PER_PAGE).await?, path)
}

/// A page's entries as shown, and the link to the next, for a page at `path`.
fn page_views(site: &Site, page: Page, path: &str) -> Result<Entries, WebError> {
    let older = page.next.map(|next| format!("{path}?before={}", next.to_token()));
    Ok((site.entries_html(&page.entries)?, older))
}

/// `GET /`: "My Timeline", or a redirect to `/public` when nobody is signed in. Its
/// first page without flashes is built from the reader's name and the page alone, so it
/// is built again only when the page differs from the one last built for the reader (see
/// [`MiniTwit::home_first_page`]).
pub(crate) async fn home(site: Arc<Site>, query: PageQuery, visit: Visit) -> Handled {
    const TITLE: Title<'static> = Title::Fixed("My Timeline");
    let Some(user) = visit.user.clone() else {
        return Ok(site.redirect(visit, "/public"));
    };
    if query.before.is_none() && visit.session.flashes.is_empty() {
        let html = visit
            .service
            .home_first_page(&user, PageSize::PER_PAGE, &site.home_memo, |page| {
                let view = home_view(&user.username, page_views(&site, page, "/")?);
                site.render(Some(&user.username), &[], TITLE, "timeline", &view).map(Bytes::from)
            })
            .await?;
        return Ok(site.kept_page(visit, html));
    }
    let page = entries(&site, &visit.service, Timeline::Home(user.id), &query, "/").await?;
    Ok(site.page(visit, StatusCode::OK, TITLE, "timeline", &home_view(&user.username, page)))
}

/// The home timeline's view of a page for `reader`.
fn home_view(reader: &str, (entries, older_url): Entries) -> TimelineView {
    let twitbox = Some(reader.to_owned());
    TimelineView { heading: "My Timeline", profile: None, twitbox, entries, older_url }
}

/// `GET /public`: every unflagged message. Its first page is the same for every visitor
/// who is not signed in and has no flashes to see, so for them it is built once per change
/// of the public timeline (see [`MiniTwit::public_first_page`]).
pub(crate) async fn public(site: Arc<Site>, query: PageQuery, visit: Visit) -> Handled {
    const TITLE: Title<'static> = Title::Fixed("Public Timeline");
    if query.before.is_none() && visit.user.is_none() && visit.session.flashes.is_empty() {
        let html = visit
            .service
            .public_first_page(PageSize::PER_PAGE, &site.public_memo, |page| {
                let view = public_view(page_views(&site, page, "/public")?);
                site.render(None, &[], TITLE, "timeline", &view).map(Bytes::from)
            })
            .await?;
        return Ok(site.kept_page(visit, html));
    }
    let page = entries(&site, &visit.service, Timeline::Public, &query, "/public").await?;
    Ok(site.page(visit, StatusCode::OK, TITLE, "timeline", &public_view(page)))
}

/// The public timeline's view of a page.
fn public_view((entries, older_url): Entries) -> TimelineView {
    TimelineView { heading: "Public Timeline", profile: None, twitbox: None, entries, older_url }
}

/// `GET /{username}`: one user's messages and, for a signed-in reader, the follow state.
pub(crate) async fn user(
    site: Arc<Site>,
    segment: String,
    query: PageQuery,
    visit: Visit,
) -> Handled {
    let author = visit.service.user_at(&segment).await?;
    let following = match &visit.user {
        Some(reader) if reader.id != author.id => {
            visit.service.is_following(reader.id, author.id).await?
        }
        _ => false,
    };
    let path = user_path(&author.username, None);
    let (entries, older_url) =
        entries(&site, &visit.service, Timeline::User(author.id), &query, &path).await?;
    let profile = ProfileView {
        signed_in: visit.user.is_some(),
        is_self: visit.user.as_ref().is_some_and(|reader| reader.id == author.id),
        following,
        follow_url: user_path(&author.username, Some("follow")),
        unfollow_url: user_path(&author.username, Some("unfollow")),
        username: author.username.clone(),
    };
    let view =
        TimelineView { heading: "", profile: Some(profile), twitbox: None, entries, older_url };
    let title = Title::UserTimeline(&author.username);
    Ok(site.page(visit, StatusCode::OK, title, "timeline", &view))
}
