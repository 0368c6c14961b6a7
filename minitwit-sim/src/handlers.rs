//! Each endpoint's work: turn the parsed request into core types, call the [`MiniTwit`]
//! service, render the answer. No rule lives here: validation is the core's. Every handler
//! returns [`Handled`]; `filters` answers its failure at once in the JSON error shape.

use crate::error::ApiError;
use crate::models::{FollowBody, FollowsDto, LatestDto, MessageDto, PostBody, RegisterBody};
use bytes::Bytes;
use minitwit_core::cache::{FollowsMemo, PublicPageMemo, UserPageMemo};
use minitwit_core::idempotency::{FollowChange, Keyed, Outcome};
use minitwit_core::service::LatestRecorded;
use minitwit_core::{
    MessageText, MiniTwit, Page, PageSize, Registration, ServiceError, idempotency,
};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply as _, Response};

/// What a handler returns: a response, or why the request failed.
pub type Handled = Result<Response, ApiError>;

/// The answer to a write: 204 with an empty body, the simulator's success for every
/// write; or, for a retry of a keyed write, the answer its receipt recorded, marked
/// replayed.
fn answer(outcome: Outcome) -> Response {
    let Outcome::Replayed(receipt) = outcome else {
        return warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
    };
    let mut response = Response::new(receipt.body.into());
    *response.status_mut() = StatusCode::from_u16(receipt.status).unwrap_or(StatusCode::OK);
    let replayed = HeaderValue::from_static("true");
    response.headers_mut().insert(idempotency::REPLAYED_HEADER, replayed);
    response
}

/// Records `latest` when the query carries one; 400 when it is not an integer.
pub async fn record_latest(
    latest: Option<String>,
    service: MiniTwit,
) -> Result<Option<LatestRecorded>, ApiError> {
    let Some(raw) = latest else { return Ok(None) };
    let latest = raw.parse::<i64>().map_err(|_| ApiError::BadLatest)?;
    Ok(Some(service.record_latest(latest).await?))
}

/// The request's answer, once its `latest` is durable; the failure if it cannot be.
pub async fn once_latest_is_durable(latest: Option<LatestRecorded>, answer: Response) -> Response {
    match latest {
        Some(latest) => match latest.durable().await {
            Ok(()) => answer,
            Err(err) => ApiError::from(err).response(),
        },
        None => answer,
    }
}

/// `GET /latest`
pub async fn latest(service: MiniTwit) -> Handled {
    let latest = service.latest().await?;
    Ok(warp::reply::json(&LatestDto { latest }).into_response())
}

/// `POST /register`
pub async fn register(body: RegisterBody, keyed: Option<Keyed>, service: MiniTwit) -> Handled {
    let field = |value: &Option<String>| value.clone().unwrap_or_default();
    let registration =
        Registration::parse(&field(&body.username), &field(&body.email), &field(&body.pwd), None)?;
    Ok(answer(service.register_once(registration, keyed).await?))
}

/// `GET /msgs`: the same answer for every caller, so it is built once per change of the
/// public timeline (see [`MiniTwit::public_first_page`]).
pub async fn public_messages(
    size: PageSize,
    service: MiniTwit,
    memo: Arc<PublicPageMemo<Bytes>>,
) -> Handled {
    Ok(json_response(service.public_first_page(size, &memo, messages_json).await?))
}

/// `GET /msgs/{username}`: the same answer for every caller, kept like `GET /msgs`'s
/// (see [`MiniTwit::user_first_page`]).
pub async fn user_messages(
    segment: String,
    size: PageSize,
    service: MiniTwit,
    memo: Arc<UserPageMemo<Bytes>>,
) -> Handled {
    Ok(json_response(service.user_first_page(&segment, size, &memo, messages_json).await?))
}

/// A page's messages in the reference's shape, as JSON.
fn messages_json(page: Page) -> Result<Bytes, ApiError> {
    let messages: Vec<MessageDto> = page.entries.into_iter().map(MessageDto::from).collect();
    let json = serde_json::to_vec(&messages)
        .map_err(|err| ServiceError::Internal(format!("encoding messages: {err}")))?;
    Ok(Bytes::from(json))
}

/// A 200 with a JSON `body`.
fn json_response(body: Bytes) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `POST /msgs/{username}`
pub async fn post_message(
    segment: String,
    body: PostBody,
    keyed: Option<Keyed>,
    service: MiniTwit,
) -> Handled {
    let text = match MessageText::parse(&body.content) {
        Ok(text) => text,
        Err(refused) => {
            // An unknown user is the answer before a refused text (404 before 400).
            service.user_at(&segment).await?;
            return Err(refused.into());
        }
    };
    // The user looked up and the message stored in one store call (one statement on
    // PostgreSQL); the core still applies every rule.
    Ok(answer(service.post_once_at(&segment, text, keyed).await?))
}

/// `GET /fllws/{username}`: the user looked up and their follows listed in one store
/// call (one statement on PostgreSQL); the answer kept while no follow list changes,
/// over a store that tells (see [`MiniTwit::followees_derived_at`]).
pub async fn follows(
    segment: String,
    size: PageSize,
    service: MiniTwit,
    memo: Arc<FollowsMemo<Bytes>>,
) -> Handled {
    Ok(json_response(service.followees_derived_at(&segment, size, &memo, follows_json).await?))
}

/// A follow list in the reference's shape, as JSON.
fn follows_json(follows: Vec<String>) -> Result<Bytes, ApiError> {
    let json = serde_json::to_vec(&FollowsDto { follows })
        .map_err(|err| ServiceError::Internal(format!("encoding follows: {err}")))?;
    Ok(Bytes::from(json))
}

/// `POST /fllws/{username}`
pub async fn change_follow(
    segment: String,
    body: FollowBody,
    keyed: Option<Keyed>,
    service: MiniTwit,
) -> Handled {
    let (target, change) = match body {
        FollowBody::Follow(target) => (target, FollowChange::Follow),
        FollowBody::Unfollow(target) => (target, FollowChange::Unfollow),
    };
    // Both users looked up and the follow changed in one store call (one statement on
    // PostgreSQL); the core still applies every rule.
    Ok(answer(service.change_follow_at(&segment, &target, change, keyed).await?))
}

/// `GET /openapi.yaml`
pub fn openapi() -> Response {
    let reply = warp::reply::with_header(crate::OPENAPI_YAML, "content-type", "application/yaml");
    reply.into_response()
}
