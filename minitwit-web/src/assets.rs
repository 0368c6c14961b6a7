//! The static files (style sheet, script, icon), embedded in the binary and served with
//! caching headers: under a content-hashed name they never change, so browsers keep them
//! for a year; under their plain name they are revalidated with an `ETag`.

use serde::Serialize;
use sha2::{Digest, Sha256};
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue};
use warp::http::{Response, StatusCode};
use warp::reply::Response as WarpResponse;

/// One embedded file.
struct Asset {
    name: &'static str,
    hashed_name: String,
    content_type: &'static str,
    bytes: &'static [u8],
    etag: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        let hash = hex_prefix(&Sha256::digest(bytes));
        let hashed_name = match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
            None => format!("{name}.{hash}"),
        };
        Self { name, hashed_name, content_type, bytes, etag: format!("\"{hash}\"") }
    }
}

/// The first 8 bytes of a digest, in hex: plenty to tell versions apart.
fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Where the pages find the static files (content-hashed addresses).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AssetUrls {
    /// The style sheet.
    pub style: String,
    /// The script: local times and live timelines.
    pub script: String,
    /// The icon.
    pub icon: String,
}

/// All embedded files.
pub(crate) struct Assets {
    files: Vec<Asset>,
}

impl Assets {
    /// The files compiled into the binary.
    pub fn embedded() -> Self {
        Self {
            files: vec![
                Asset::new(
                    "style.css",
                    "text/css; charset=utf-8",
                    include_bytes!("../static/style.css"),
                ),
                // One script for every page: local times, then live timelines.
                Asset::new(
                    "site.js",
                    "text/javascript; charset=utf-8",
                    concat!(
                        include_str!("../static/localtime.js"),
                        include_str!("../static/live.js")
                    )
                    .as_bytes(),
                ),
                Asset::new("favicon.svg", "image/svg+xml", include_bytes!("../static/favicon.svg")),
            ],
        }
    }

    fn url(&self, name: &str) -> String {
        let hashed = self.files.iter().find(|f| f.name == name).map_or(name, |f| &f.hashed_name);
        format!("/static/{hashed}")
    }

    /// The addresses the layout links to.
    pub fn urls(&self) -> AssetUrls {
        AssetUrls {
            style: self.url("style.css"),
            script: self.url("site.js"),
            icon: self.url("favicon.svg"),
        }
    }

    /// The response for `/static/{name}`, or `None` when there is no such file.
    pub fn serve(&self, name: &str, if_none_match: Option<&str>) -> Option<WarpResponse> {
        let (file, immutable) = self.files.iter().find_map(|f| {
            (f.hashed_name == name).then_some((f, true)).or((f.name == name).then_some((f, false)))
        })?;
        let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        let fresh =
            if_none_match.is_some_and(|tags| tags.split(',').any(|t| t.trim() == file.etag));
        let (status, body) =
            if fresh { (StatusCode::NOT_MODIFIED, &[][..]) } else { (StatusCode::OK, file.bytes) };
        let mut response = Response::new(body.into());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(file.content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        if let Ok(etag) = HeaderValue::from_str(&file.etag) {
            headers.insert(ETAG, etag);
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_immutable_and_etags_revalidate() {
        let assets = Assets::embedded();
        let style = assets.urls().style;
        let hashed = style.trim_start_matches("/static/");
        assert_ne!(hashed, "style.css");
        let immutable = assets.serve(hashed, None).unwrap();
        assert!(immutable.headers()[CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        let plain = assets.serve("style.css", None).unwrap();
        assert_eq!(plain.headers()[CACHE_CONTROL], "no-cache");
        let etag = plain.headers()[ETAG].to_str().unwrap().to_owned();
        assert_eq!(assets.serve("style.css", Some(&etag)).unwrap().status(), 304);
        assert!(assets.serve("nope.css", None).is_none());
    }
}
