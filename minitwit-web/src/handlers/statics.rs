//! `GET /static/{file}`: the embedded style sheet, script and icon.

use super::Handled;
use crate::error::WebError;
use crate::site::Site;
use std::sync::Arc;
use warp::path::Tail;

/// Serves an embedded file, or 404.
pub(crate) async fn file(site: Arc<Site>, tail: Tail, if_none_match: Option<String>) -> Handled {
    site.assets.serve(tail.as_str(), if_none_match.as_deref()).ok_or(WebError::NotFound)
}
