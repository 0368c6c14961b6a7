//! [`WebError`]: why a request failed, each variant with its HTTP status (the service's
//! failures with the status the core gives them), and the fixed texts of the error pages.

use minitwit_core::ServiceError;
use warp::http::StatusCode;
use warp::reject::Reject;

/// Why a request failed. The variant decides the status and the page shown; details
/// are for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// 400: a malformed request (a bad page token, say).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 401: the action needs a signed-in user.
    #[error("not signed in")]
    Unauthorized,
    /// 403: a state-changing request from another site.
    #[error("cross-site request refused")]
    CrossSite,
    /// 404: no such page or file.
    #[error("not found")]
    NotFound,
    /// The service refused or failed: the status the core gives it
    /// ([`ServiceError::status`]); an internal detail is logged, never shown.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Reject for WebError {}

impl WebError {
    /// The status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::CrossSite => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Service(err) => {
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// What an error page says for `status`: safe, fixed texts.
pub(crate) fn explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request could not be understood. Please check the address and try again.",
        401 => "You have to sign in to do that.",
        403 => "This request was refused. Requests from other sites cannot change anything here.",
        404 => "There is nothing here. Please check the address.",
        405 => "This address does not accept that kind of request.",
        411 | 413 => "The request is too large.",
        415 => "The request was sent in a form this site does not understand.",
        429 => "Too many requests. Please wait a moment and try again.",
        503 => "MiniTwit is temporarily unavailable. Please try again in a moment.",
        _ => "Something went wrong on our side. Please try again later.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::store::StoreError;

    #[test]
    fn service_errors_map_to_documented_statuses() {
        let status = |e: ServiceError| WebError::from(e).status().as_u16();
        assert_eq!(status(ServiceError::UnknownUser), 404);
        assert_eq!(status(StoreError::Unavailable("refused".into()).into()), 503);
        assert_eq!(status(ServiceError::AccountDisabled), 403);
        assert_eq!(status(ServiceError::InvalidPassword), 403);
        assert_eq!(status(ServiceError::Internal("secret detail".into())), 500);
    }
}
