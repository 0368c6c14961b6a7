//! How the API fails: [`ApiError`], each variant with its HTTP status, and
//! [`handle_rejection`], the one place where every rejection becomes the JSON error shape
//! `{"status":N,"error_msg":"…"}`. Internal details go to the log, never to the client.

use minitwit_core::{ServiceError, ValidationError};
use serde::Serialize;
use std::convert::Infallible;
use warp::http::header::{ALLOW, RETRY_AFTER};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply as _, Response};

/// The text of every 403 for missing or wrong simulator credentials.
pub const NOT_AUTHORIZED: &str = "You are not authorized to use this resource!";

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 403: the request lacks the simulator's credentials.
    #[error("You are not authorized to use this resource!")]
    NotAuthorized,
    /// 400: `latest` in the query is not an integer.
    #[error("The query parameter latest must be an integer")]
    BadLatest,
    /// 400: the body is not JSON of the expected shape; the text says what is wrong.
    #[error("Invalid request body: {0}")]
    BadBody(String),
    /// 405: the path exists but not with this method; the methods it allows.
    #[error("Method not allowed")]
    MethodNotAllowed(&'static str),
    /// 413: the body is larger than [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    #[error("The request body may be at most {} bytes", crate::MAX_BODY_BYTES)]
    BodyTooLarge,
    /// 429: too many registrations from this address without the simulator's
    /// credentials; how long until the next may pass.
    #[error("Too many registrations from this address; try again later")]
    Throttled(std::time::Duration),
    /// The service refused or failed: the status the core gives it
    /// ([`ServiceError::status`]).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl warp::reject::Reject for ApiError {}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::Service(err.into())
    }
}

impl ApiError {
    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotAuthorized => StatusCode::FORBIDDEN,
            Self::BadLatest | Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Service(err) => {
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// The answer to this failure: its status and the JSON error shape (and `Allow` for a
    /// 405), logged first when the operator should know.
    pub(crate) fn response(&self) -> Response {
        self.log();
        let mut response = error_response(self.status(), &self.client_text());
        if let Self::MethodNotAllowed(allow) = self {
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// What the client is told: the contract's text, without an internal detail.
    fn client_text(&self) -> String {
        match self {
            Self::Service(err) => err.client_text(),
            other => other.to_string(),
        }
    }

    /// Seconds a client should wait before retrying, for the `Retry-After` of a 429 or
    /// 503.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Throttled(wait) => Some(wait.as_secs() + 1),
            Self::Service(err) if err.status() == 503 => Some(1),
            _ => None,
        }
    }

    /// Logs what the operator should see: the detail of an internal failure (which the
    /// client never gets) and store outages.
    fn log(&self) {
        match self {
            Self::Service(err @ (ServiceError::Internal(_) | ServiceError::Store(_))) => {
                tracing::error!(detail = %err, "internal error in the simulator API");
            }
            Self::Service(ServiceError::Unavailable(reason)) => {
                tracing::warn!(%reason, "store unavailable");
            }
            Self::Service(ServiceError::Overloaded) => tracing::debug!("hashing overloaded"),
            _ => {}
        }
    }
}

/// The API's answer to a service failure met outside its routes (the server giving up on
/// a request at its deadline, [`ServiceError::TimedOut`]): the JSON error shape, with
/// `Retry-After` for a 503.
pub fn failure_response(err: ServiceError) -> Response {
    ApiError::Service(err).response()
}

/// The JSON error shape of every failed request.
#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error_msg: &'a str,
}

/// A response with `status` and the JSON error shape.
fn error_response(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody { status: status.as_u16(), error_msg: message };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// Renders any rejection as the JSON error shape. Our own [`ApiError`]s come first (a
/// combined rejection may also hold "not found" or "method not allowed" from routes that
/// did not match), then warp's own; anything unforeseen is logged and answered with a
/// bare 500.
pub async fn handle_rejection(rejection: warp::Rejection) -> Result<Response, Infallible> {
    use warp::reject::{
        InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader,
        PayloadTooLarge, UnsupportedMediaType,
    };
    if let Some(err) = rejection.find::<ApiError>() {
        return Ok(err.response());
    }
    let (status, message) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "Not found".to_owned())
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed".to_owned())
    } else if rejection.find::<InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "Invalid query string".to_owned())
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, ApiError::BodyTooLarge.to_string())
    } else if let Some(err) = rejection.find::<MissingHeader>() {
        (StatusCode::BAD_REQUEST, err.to_string())
    } else if let Some(err) = rejection.find::<InvalidHeader>() {
        (StatusCode::BAD_REQUEST, err.to_string())
    } else if let Some(err) = rejection.find::<LengthRequired>() {
        (StatusCode::LENGTH_REQUIRED, err.to_string())
    } else if let Some(err) = rejection.find::<UnsupportedMediaType>() {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, err.to_string())
    } else {
        tracing::error!(?rejection, "unhandled rejection in the simulator API");
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".to_owned())
    };
    Ok(error_response(status, &message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::store::StoreError;

    #[test]
    fn statuses_follow_the_contract() {
        let cases = [
            (ApiError::NotAuthorized, 403),
            (ApiError::BadLatest, 400),
            (ApiError::BodyTooLarge, 413),
            (ServiceError::UsernameTaken.into(), 400),
            (ValidationError::EmailInvalid.into(), 400),
            (ServiceError::InvalidPassword.into(), 403),
            (ServiceError::UnknownUser.into(), 404),
            (ServiceError::from(StoreError::Unavailable("refused".into())).into(), 503),
            (ServiceError::from(StoreError::Backend("disk".into())).into(), 500),
            (ServiceError::Internal("secret detail".into()).into(), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
        }
    }

    #[test]
    fn internal_details_stay_out_of_the_message() {
        let err = ApiError::from(ServiceError::Internal("secret detail".into()));
        assert_eq!(err.client_text(), "Internal server error");
        assert!(err.to_string().contains("secret detail"), "the log and embedders see it");
        let err = ApiError::from(ServiceError::from(StoreError::Unavailable("db: refused".into())));
        assert_eq!(err.client_text(), "The service is temporarily unavailable");
    }
}
