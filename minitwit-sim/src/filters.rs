//! The API's endpoints, one filter per route and method (each filter's doc comment is its
//! endpoint; the paths come from the route table, `route_table`), and the small filters they
//! share: the service, the credentials check, the `latest` and `no` query parameters and
//! size-limited JSON bodies.

use crate::auth::SimConfig;
use crate::error::{ApiError, handle_rejection};
use crate::handlers::{self, Handled};
use crate::models::ApiQuery;
use crate::route_table::{self, FOLLOWS, LATEST, MESSAGES, OPENAPI, REGISTER, USER_MESSAGES};
use bytes::Bytes;
use futures::TryStreamExt as _;
use minitwit_core::cache::{FollowsMemo, PublicPageMemo, UserPageMemo};
use minitwit_core::idempotency;
use minitwit_core::idempotency::{IdempotencyKey, Keyed};
use minitwit_core::rate_limit::RateTable;
use minitwit_core::rate_limit::{ClientAddress, DEFAULT_CELLS};
use minitwit_core::service::LatestRecorded;
use minitwit_core::{MiniTwit, PageSize, ValidationError};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::filters::path::FullPath;
use warp::http::header::AUTHORIZATION;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// Every endpoint, and the same by route label: `latest` is recorded first, and the answer
/// waits until it is durable. A route's label has only that route's endpoints (the
/// routes' first segments differ, so no other endpoint could take its paths), answering
/// them as the whole API would. The endpoints, and the memos and throttles inside them,
/// are built once.
pub fn api(service: MiniTwit, config: SimConfig) -> Routes {
    let config = Arc::new(config);
    let routes = [
        (LATEST.label, latest(&service)),
        (REGISTER.label, register(&service, &config)),
        (MESSAGES.label, public_messages(&service, &config)),
        (
            USER_MESSAGES.label,
            either(user_messages(&service, &config), post_message(&service, &config)),
        ),
        (FOLLOWS.label, either(follows(&service, &config), change_follow(&service, &config))),
        (OPENAPI.label, openapi()),
    ];
    let [(_, first), rest @ ..] = &routes;
    let all = rest.iter().fold(first.clone(), |all, (_, endpoints)| either(all, endpoints.clone()));
    let recorded = |endpoints| with_latest(&service, endpoints);
    let by_label = routes.into_iter().map(|(label, endpoints)| (label, recorded(endpoints)));
    Routes { by_label: by_label.collect(), all: recorded(all) }
}

/// The API's filters: all of them, and each route's by its label.
pub struct Routes {
    /// Each route's endpoints, under its label.
    pub by_label: Vec<(&'static str, BoxedFilter<(Response,)>)>,
    /// Every endpoint, tried in turn.
    pub all: BoxedFilter<(Response,)>,
}

/// `first`, or else `second`.
fn either(
    first: BoxedFilter<(Response,)>,
    second: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    first.or(second).unify().boxed()
}

/// `endpoints` (405 for another method of a known path, every failure in the JSON error
/// shape) after `latest` is recorded, answered once it is durable.
fn with_latest(
    service: &MiniTwit,
    endpoints: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    let endpoints = endpoints.or(other_methods()).unify().recover(handle_rejection).unify();
    latest_recorded(service)
        .and(endpoints)
        .then(handlers::once_latest_is_durable)
        .recover(handle_rejection)
        .unify()
        .boxed()
}

/// Every request: records `latest=N` from the query before anything else happens, so it is
/// recorded whatever the outcome of the request. Its durability is waited for after the
/// request's own work (which, for a write, has made it durable already).
fn latest_recorded(service: &MiniTwit) -> BoxedFilter<(Option<LatestRecorded>,)> {
    warp::query::<ApiQuery>()
        .and(with_service(service))
        .and_then(|query: ApiQuery, service| async move {
            handlers::record_latest(query.latest, service).await.map_err(Rejection::from)
        })
        .boxed()
}

/// `GET /latest`
fn latest(service: &MiniTwit) -> BoxedFilter<(Response,)> {
    answered(LATEST.path().and(warp::get()).and(with_service(service)).then(handlers::latest))
}

/// `POST /register`
fn register(service: &MiniTwit, config: &Arc<SimConfig>) -> BoxedFilter<(Response,)> {
    answered(
        REGISTER
            .path()
            .and(warp::post())
            .and(registration_throttled(config))
            .and(write_body(config))
            .and(with_service(service))
            .then(handlers::register),
    )
}

/// `GET /msgs?no=N`, its answers kept while the public timeline is unchanged.
fn public_messages(service: &MiniTwit, config: &Arc<SimConfig>) -> BoxedFilter<(Response,)> {
    let memo = Arc::new(PublicPageMemo::<Bytes>::new());
    answered(
        MESSAGES
            .path()
            .and(warp::get())
            .and(authorized(config))
            .and(page_size())
            .and(with_service(service))
            .and(warp::any().map(move || Arc::clone(&memo)))
            .then(handlers::public_messages),
    )
}

/// `GET /msgs/{username}?no=N`, its answers kept while the user's timeline is unchanged.
fn user_messages(service: &MiniTwit, config: &Arc<SimConfig>) -> BoxedFilter<(Response,)> {
    let memo = Arc::new(UserPageMemo::<Bytes>::new());
    answered(
        USER_MESSAGES
            .user_path()
            .and(warp::get())
            .and(authorized(config))
            .and(page_size())
            .and(with_service(service))
            .and(warp::any().map(move || Arc::clone(&memo)))
            .then(handlers::user_messages),
    )
}

/// `POST /msgs/{username}`
fn post_message(service: &MiniTwit, config: &Arc<SimConfig>) -> BoxedFilter<(Response,)> {
    answered(
        USER_MESSAGES
            .user_path()
            .and(warp::post())
            .and(authorized(config))
            .and(write_body(config))
            .and(with_service(service))
            .then(handlers::post_message),
    )
}

/// `GET /fllws/{username}?no=N`, its answers kept while no follow list changes.
fn follows(service: &MiniTwit, config: &Arc<SimConfig>) -> BoxedFilter<(Response,)> {
    let memo = Arc::new(FollowsMemo::<Bytes>::new());
    answered(
        FOLLOWS
            .user_path()
            .and(warp::get())
            .and(authorized(config))
            .and(page_size())
            .and(with_service(service))
            .and(warp::any().map(move || Arc::clone(&memo)))
            .then(handlers::follows),
    )
}

/// `POST /fllws/{username}`
fn change_follow(service: &MiniTwit, config: &Arc<SimConfig>) -> BoxedFilter<(Response,)> {
    answered(
        FOLLOWS
            .user_path()
            .and(warp::post())
            .and(authorized(config))
            .and(write_body(config))
            .and(with_service(service))
            .then(handlers::change_follow),
    )
}

/// `GET /openapi.yaml`, without credentials.
fn openapi() -> BoxedFilter<(Response,)> {
    OPENAPI.path().and(warp::get()).map(handlers::openapi).boxed()
}

/// Any method a known path does not support: 405 with the methods it does. (Listed last:
/// it rejects as "not found" for the supported methods, so it never masks their errors.)
fn other_methods() -> BoxedFilter<(Response,)> {
    warp::path::full()
        .and(warp::method())
        .and_then(|path: FullPath, method: Method| async move {
            let Some(route) = route_table::route_of(path.as_str()) else {
                return Err(warp::reject::not_found());
            };
            let allow = route.allow;
            if allow.split(", ").any(|allowed| allowed == method.as_str()) {
                return Err(warp::reject::not_found());
            }
            Err(Rejection::from(ApiError::MethodNotAllowed(allow)))
        })
        .boxed()
}

/// A handler's outcome as the response: a failure is answered at once in the JSON error
/// shape (a rejection would let warp try the remaining routes for a request already
/// handled).
fn answered(
    handled: impl Filter<Extract = (Handled,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> BoxedFilter<(Response,)> {
    handled.map(|handled: Handled| handled.unwrap_or_else(|err| err.response())).boxed()
}

/// Injects the service.
fn with_service(service: &MiniTwit) -> BoxedFilter<(MiniTwit,)> {
    let service = service.clone();
    warp::any().map(move || service.clone()).boxed()
}

/// Passes only requests with the simulator's credentials; 403 otherwise.
fn authorized(config: &Arc<SimConfig>) -> BoxedFilter<()> {
    let config = Arc::clone(config);
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let allowed = config.authorizes(headers.get(AUTHORIZATION));
            async move { if allowed { Ok(()) } else { Err(Rejection::from(ApiError::NotAuthorized)) } }
        })
        .untuple_one()
        .boxed()
}

/// Passes the simulator's own registrations; throttles everyone else's per client address
/// (429 with `Retry-After` beyond the limit). The address is the [`ClientAddress`]
/// extension the server sets on each request.
fn registration_throttled(config: &Arc<SimConfig>) -> BoxedFilter<()> {
    let config = Arc::clone(config);
    let table = Arc::new(RateTable::new(config.register_per_address, DEFAULT_CELLS));
    warp::ext::optional::<ClientAddress>()
        .and(warp::header::headers_cloned())
        .and_then(move |client: Option<ClientAddress>, headers: HeaderMap| {
            let passed = admit_registration(&config, &table, client, &headers);
            async move { passed.map_err(Rejection::from) }
        })
        .untuple_one()
        .boxed()
}

fn admit_registration(
    config: &SimConfig,
    table: &RateTable,
    client: Option<ClientAddress>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if config.authorizes(headers.get(AUTHORIZATION)) {
        return Ok(());
    }
    client.map_or(Ok(()), |client| table.check(&client)).map_err(ApiError::Throttled)
}

/// The page size from `no` (default and cap from the core); 400 when it is not a count.
fn page_size() -> BoxedFilter<(PageSize,)> {
    warp::query::<ApiQuery>()
        .and_then(|query: ApiQuery| async move {
            PageSize::parse(query.no.as_deref()).map_err(|err| Rejection::from(ApiError::from(err)))
        })
        .boxed()
}

/// A write's JSON body of type `T` and, when the request carries an `Idempotency-Key`,
/// the key (400 when malformed) as the core takes it: scoped to the caller, with what
/// tells this request from another (method, path and query, body) and the answer the
/// write gets when applied, a 204.
fn write_body<T: DeserializeOwned + Send + 'static>(
    config: &Arc<SimConfig>,
) -> BoxedFilter<(T, Option<Keyed>)> {
    let config = Arc::clone(config);
    warp::method()
        .and(warp::path::full())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(body_bytes())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  bytes: Vec<u8>| {
                let (method, path) = (method.as_str().as_bytes(), path.as_str().as_bytes());
                let keyed = keyed(&config, &headers, &[method, path, query.as_bytes(), &bytes]);
                async move {
                    let body = parse_object(&bytes)
                        .map_err(|err| Rejection::from(ApiError::BadBody(err.to_string())))?;
                    Ok::<_, Rejection>((body, keyed?))
                }
            },
        )
        .untuple_one()
        .boxed()
}

/// The request's key, if it carries one, as [`write_body`] gives it.
fn keyed(
    config: &SimConfig,
    headers: &HeaderMap,
    request: &[&[u8]],
) -> Result<Option<Keyed>, Rejection> {
    let Some(raw) = headers.get(idempotency::KEY_HEADER) else { return Ok(None) };
    let key = raw.to_str().ok().map(IdempotencyKey::parse);
    let key = key.unwrap_or(Err(ValidationError::IdempotencyKeyInvalid)).map_err(ApiError::from)?;
    let scope = config.key_scope(headers.get(AUTHORIZATION));
    Ok(Some(Keyed::new(scope, key, request, 204, Vec::new())))
}

/// The raw query string, empty when there is none.
fn raw_query() -> BoxedFilter<(String,)> {
    warp::query::raw().or(warp::any().map(String::new)).unify().boxed()
}

/// The body, read up to [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES) whether or not the
/// client announced its length: 413 beyond.
fn body_bytes() -> BoxedFilter<(Vec<u8>,)> {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(|announced: Option<u64>, body| async move {
            if announced.is_some_and(|len| len > crate::MAX_BODY_BYTES) {
                return Err(Rejection::from(ApiError::BodyTooLarge));
            }
            Ok(read_limited(body).await?)
        })
        .boxed()
}

/// Parses a JSON object into `T`. Every body of the API is an object: going through a map
/// first refuses arrays, which serde would otherwise accept as a struct's fields in order.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)?;
    T::deserialize(serde_json::Value::Object(object))
}

/// Collects a body stream, refusing it as soon as it grows beyond the limit.
async fn read_limited<S, B>(body: S) -> Result<Vec<u8>, ApiError>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(mut chunk) =
        body.try_next().await.map_err(|_| ApiError::BadBody("the body could not be read".into()))?
    {
        if bytes.len() + chunk.remaining()
            > usize::try_from(crate::MAX_BODY_BYTES).unwrap_or(usize::MAX)
        {
            return Err(ApiError::BodyTooLarge);
        }
        bytes.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
    }
    Ok(bytes)
}
