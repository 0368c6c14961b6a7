//! The site's one rejection handler: every failure, the site's own ([`WebError`]) or
//! warp's, becomes an HTML error page that leaks nothing.

use crate::error::WebError;
use crate::site::Site;
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reject::{
    InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, PayloadTooLarge, Rejection,
    UnsupportedMediaType,
};
use warp::reply::Response;

/// The status of a rejection warp produced.
fn status_of(rejection: &Rejection) -> StatusCode {
    if rejection.is_not_found() {
        StatusCode::NOT_FOUND
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        StatusCode::PAYLOAD_TOO_LARGE
    } else if rejection.find::<LengthRequired>().is_some() {
        StatusCode::LENGTH_REQUIRED
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        StatusCode::METHOD_NOT_ALLOWED
    } else if rejection.find::<UnsupportedMediaType>().is_some() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else if rejection.find::<InvalidQuery>().is_some()
        || rejection.find::<InvalidHeader>().is_some()
        || rejection.find::<warp::filters::body::BodyDeserializeError>().is_some()
    {
        StatusCode::BAD_REQUEST
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// The site's one rejection handler: every failure becomes an HTML error page.
pub(crate) async fn handle_rejection(
    site: Arc<Site>,
    rejection: Rejection,
) -> Result<Response, Infallible> {
    match rejection.find::<WebError>() {
        Some(err) => Ok(site.error_response(err)),
        None => Ok(site.error_page(status_of(&rejection))),
    }
}
