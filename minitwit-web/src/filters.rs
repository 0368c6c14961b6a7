//! The routes as warp filters, one per row of CONTRACT.md §3 (their paths from the route
//! table, `route_table`), and the shared filters they are built from (state, session, cross-site guard, body limit, client address).

use crate::error::WebError;
use crate::handlers::account::{self, LoginForm, RegisterForm};
use crate::handlers::actions::{self, MessageForm, Relation};
use crate::handlers::timeline::{self, PageQuery};
use crate::handlers::{Handled, statics};
use crate::idempotency::KeyedRequest;
use crate::rejection;
use crate::route_table::{
    ADD_MESSAGE, FOLLOW, HOME, LOGIN, LOGOUT, PUBLIC, REGISTER, STATIC, UNFOLLOW, USER,
};
use crate::security::{add_site_headers, is_cross_site, is_unsafe_navigation};
use crate::site::{Site, Visit};
use futures::StreamExt as _;
use minitwit_core::idempotency::IdempotencyKey;
use minitwit_core::rate_limit::ClientAddress;
use minitwit_core::{ServiceError, idempotency};
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::filters::path::FullPath;
use warp::http::header::COOKIE;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// The whole site: every route, one rejection handler, the site's headers on everything.
pub(crate) fn site(site: Arc<Site>) -> BoxedFilter<(Response,)> {
    finished(&site, pages(&site))
}

/// The site by route label (`route_table::route_label`): under each label, the routes
/// that can take a path with that label, in [`pages`]' order, finished as [`site`] is, so
/// that each answers as the whole site would. A one-segment path could also be a user's
/// page, and any of them a live stream; `/static` has no entry (its paths may look like a
/// user's follow link), nor has any other path: the server gives those to [`site`].
pub(crate) fn site_by_label(site: &Arc<Site>) -> Vec<(&'static str, BoxedFilter<(Response,)>)> {
    let s = site;
    let live = || crate::live::routes(s);
    let one_segment = |route| either(either(live(), route), user(s));
    let routes = [
        (HOME, either(live(), home(s))),
        (PUBLIC.label, one_segment(public(s))),
        (REGISTER.label, one_segment(register(s))),
        (LOGIN.label, one_segment(login(s))),
        (LOGOUT.label, one_segment(logout(s))),
        (ADD_MESSAGE.label, one_segment(add_message(s))),
        (USER, either(live(), user(s))),
        (FOLLOW.label, follow(s)),
        (UNFOLLOW.label, follow(s)),
    ];
    routes.into_iter().map(|(label, routes)| (label, finished(s, routes))).collect()
}

/// `first`, or else `second`.
fn either(
    first: BoxedFilter<(Response,)>,
    second: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    first.or(second).unify().boxed()
}

/// `routes` with the site's rejection handler and its headers on every answer.
fn finished(site: &Arc<Site>, routes: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    let (recover_site, secure) = (site.clone(), site.config.secure_cookies);
    routes
        .recover(move |refused| rejection::handle_rejection(recover_site.clone(), refused))
        .unify()
        .map(move |mut response: Response| {
            add_site_headers(response.headers_mut(), secure);
            response
        })
        .boxed()
}

/// Every route, tried in turn.
fn pages(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    crate::live::routes(s)
        .or(home(s))
        .unify()
        .or(public(s))
        .unify()
        .or(register(s))
        .unify()
        .or(login(s))
        .unify()
        .or(logout(s))
        .unify()
        .or(add_message(s))
        .unify()
        .or(static_files(s))
        .unify()
        .or(follow(s))
        .unify()
        .or(user(s))
        .unify()
        .boxed()
}

/// A handler's outcome as the response: a failure is answered at once with its error
/// page (a rejection would let warp try the remaining routes, which could run for a
/// request already handled).
fn answered(
    handled: impl Filter<Extract = (Handled,), Error = Rejection> + Clone + Send + Sync + 'static,
    site: &Arc<Site>,
) -> BoxedFilter<(Response,)> {
    handled
        .and(with_site(site))
        .map(|handled: Handled, site: Arc<Site>| {
            handled.unwrap_or_else(|err| site.error_response(&err))
        })
        .boxed()
}

/// The shared state.
fn with_site(
    site: &Arc<Site>,
) -> impl Filter<Extract = (Arc<Site>,), Error = Infallible> + Clone + use<> {
    let site = site.clone();
    warp::any().map(move || site.clone())
}

/// The reader: session cookie and signed-in user.
fn visit(site: &Arc<Site>) -> impl Filter<Extract = (Visit,), Error = Rejection> + Clone + use<> {
    with_site(site).and(warp::header::headers_cloned()).and_then(
        |site: Arc<Site>, headers: HeaderMap| async move {
            let cookie = headers.get(COOKIE).and_then(|v| v.to_str().ok());
            site.visit(cookie).await.map_err(warp::reject::custom)
        },
    )
}

/// Refuses state-changing requests from other sites (CONTRACT.md §7.2) with 403.
fn same_site() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(|headers: HeaderMap| async move {
            if is_cross_site(&headers) {
                Err(warp::reject::custom(WebError::CrossSite))
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

/// Refuses a state-changing GET without same-origin browser signals (see
/// [`is_unsafe_navigation`]) with 403.
fn same_origin_get() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and_then(|headers: HeaderMap| async move {
            if is_unsafe_navigation(&headers) {
                Err(warp::reject::custom(WebError::CrossSite))
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

/// A url-encoded form, at most `max_form_bytes` long (413 beyond). A body the client
/// aborts is its own failure: 400, logged at debug, never a 500.
fn form<T: DeserializeOwned + Send + 'static>(
    site: &Site,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone + use<T> {
    form_bytes(site).and_then(|bytes: Vec<u8>| async move { parse_form(&bytes) })
}

/// A [`form`] of a write, with the request's idempotency key if it carries one.
fn keyed_form<T: DeserializeOwned + Send + 'static>(
    site: &Site,
) -> impl Filter<Extract = (T, Option<KeyedRequest>), Error = Rejection> + Clone + use<T> {
    idempotency_key()
        .and(warp::method())
        .and(target())
        .and(form_bytes(site))
        .and_then(|key: Option<IdempotencyKey>, method: Method, target: String, bytes: Vec<u8>| async move {
            let form = parse_form(&bytes)?;
            let request = key.map(|key| KeyedRequest::new(key, method.as_str(), &target, bytes));
            Ok::<_, Rejection>((form, request))
        })
        .untuple_one()
}

/// The idempotency key of a write without a body (follow, unfollow), if it carries one.
fn keyed_request() -> impl Filter<Extract = (Option<KeyedRequest>,), Error = Rejection> + Clone {
    idempotency_key().and(warp::method()).and(target()).map(
        |key: Option<IdempotencyKey>, method: Method, target: String| {
            key.map(|key| KeyedRequest::new(key, method.as_str(), &target, Vec::new()))
        },
    )
}

/// The `Idempotency-Key` header, if sent; 400 when it is not a valid key.
fn idempotency_key() -> impl Filter<Extract = (Option<IdempotencyKey>,), Error = Rejection> + Clone
{
    warp::header::optional::<String>(idempotency::KEY_HEADER).and_then(
        |raw: Option<String>| async move {
            raw.map(|raw| IdempotencyKey::parse(&raw)).transpose().map_err(|invalid| {
                warp::reject::custom(WebError::Service(ServiceError::Invalid(invalid)))
            })
        },
    )
}

/// The request's path and query, as sent.
fn target() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path::full().and(query).map(|path: FullPath, query: String| {
        if query.is_empty() {
            path.as_str().to_owned()
        } else {
            format!("{}?{query}", path.as_str())
        }
    })
}

/// A form's body, at most `max_form_bytes` long (413 beyond).
fn form_bytes(site: &Site) -> impl Filter<Extract = (Vec<u8>,), Error = Rejection> + Clone + use<> {
    warp::body::content_length_limit(site.config.max_form_bytes)
        .and(warp::body::stream())
        .and_then(|body| async move { read_body(body).await })
}

/// A url-encoded form of type `T`; 400 when malformed.
fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|_| warp::reject::custom(WebError::BadRequest("malformed form")))
}

/// Collects a body whose length the limit above has already bounded.
async fn read_body<S, B>(body: S) -> Result<Vec<u8>, Rejection>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|err| {
            tracing::debug!(error = %err, "the client aborted the request body");
            warp::reject::custom(WebError::BadRequest("the request body could not be read"))
        })?;
        bytes.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
    }
    Ok(bytes)
}

/// The client address used for throttling: the extension the server sets on each request
/// (`minitwit_cli::serve` resolves it from the peer or a trusted proxy's header).
fn client() -> impl Filter<Extract = (Option<IpAddr>,), Error = Infallible> + Copy {
    warp::ext::optional::<ClientAddress>()
        .map(|client: Option<ClientAddress>| client.map(ClientAddress::ip))
}

/// `GET`, or `HEAD` (hyper sends the same head without the body): for the routes that only
/// read. Routes whose GET changes something (logout, the legacy follow links) take no HEAD.
fn read() -> impl Filter<Extract = (), Error = Rejection> + Copy {
    warp::get().or(warp::head()).unify()
}

fn page_query() -> impl Filter<Extract = (PageQuery,), Error = Rejection> + Clone {
    warp::query::<PageQuery>()
}

/// `GET /`
fn home(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    answered(
        warp::path::end()
            .and(read())
            .and(with_site(s))
            .and(page_query())
            .and(visit(s))
            .then(timeline::home),
        s,
    )
}

/// `GET /public`
fn public(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    answered(
        PUBLIC
            .path()
            .and(read())
            .and(with_site(s))
            .and(page_query())
            .and(visit(s))
            .then(timeline::public),
        s,
    )
}

/// `GET /register`, `POST /register`
fn register(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    let show = read().and(with_site(s)).and(visit(s)).then(account::register_form);
    let submit = warp::post()
        .and(same_site())
        .and(with_site(s))
        .and(keyed_form::<RegisterForm>(s))
        .and(client())
        .and(visit(s))
        .then(account::register);
    answered(REGISTER.path().and(show.or(submit).unify()), s)
}

/// `GET /login`, `POST /login`
fn login(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    let show = read().and(with_site(s)).and(visit(s)).then(account::login_form);
    let submit = warp::post()
        .and(same_site())
        .and(with_site(s))
        .and(form::<LoginForm>(s))
        .and(client())
        .and(visit(s))
        .then(account::login);
    answered(LOGIN.path().and(show.or(submit).unify()), s)
}

/// `GET /logout`
fn logout(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    answered(
        LOGOUT.path().and(same_origin_get()).and(with_site(s)).and(visit(s)).then(account::logout),
        s,
    )
}

/// `POST /add_message`
fn add_message(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    answered(
        ADD_MESSAGE
            .path()
            .and(warp::post())
            .and(same_site())
            .and(with_site(s))
            .and(keyed_form::<MessageForm>(s))
            .and(visit(s))
            .then(actions::add_message),
        s,
    )
}

/// `GET /static/{file}`
fn static_files(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    answered(
        STATIC
            .path()
            .and(read())
            .and(with_site(s))
            .and(warp::path::tail())
            .and(warp::header::optional::<String>("if-none-match"))
            .then(statics::file),
        s,
    )
}

/// `POST|GET /{username}/follow`, `POST|GET /{username}/unfollow` (GET: the original's
/// links, kept for same-origin and non-browser clients).
fn follow(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    let relation = warp::path(FOLLOW.segment)
        .map(|| Relation::Follow)
        .or(warp::path(UNFOLLOW.segment).map(|| Relation::Unfollow))
        .unify();
    answered(
        with_site(s)
            .and(warp::path::param::<String>())
            .and(relation)
            .and(warp::path::end())
            .and(warp::post().and(same_site()).or(same_origin_get()).unify())
            .and(keyed_request())
            .and(visit(s))
            .then(actions::follow),
        s,
    )
}

/// `GET /{username}`
fn user(s: &Arc<Site>) -> BoxedFilter<(Response,)> {
    answered(
        with_site(s)
            .and(warp::path::param::<String>())
            .and(warp::path::end())
            .and(read())
            .and(page_query())
            .and(visit(s))
            .then(timeline::user),
        s,
    )
}
