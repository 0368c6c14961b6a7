//! Browser-facing protections: the cross-site request check of CONTRACT.md §7.2 (Fetch
//! Metadata, then `Origin` against `Host`, as Go's `CrossOriginProtection` does), the
//! security headers every response carries (and HSTS, on the site's behind HTTPS): the
//! one place they are written.

use warp::http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The Content-Security-Policy: no inline script or style, pictures only from here and
/// Gravatar, connections (the live timelines' event streams) and forms only to here, no
/// framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self' https://www.gravatar.com https://secure.gravatar.com; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether a state-changing request comes from a browser on another site and must be
/// refused. Requests without these headers are not from browsers and pass.
pub(crate) fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name: HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    match text(HeaderName::from_static("sec-fetch-site")) {
        Some("same-origin" | "none") => false,
        Some("cross-site") => true,
        // same-site (a sibling subdomain), unknown values, or an older browser: the
        // Origin decides.
        _ => text(header::ORIGIN).is_some_and(|origin| !origin_matches(origin, headers)),
    }
}

/// Whether a state-changing GET (sign-out, the legacy follow links) must be refused: a
/// browser that sends Fetch Metadata must say `same-origin` (or `none`: typed in the
/// address bar); without it, an `Origin` or `Referer` (the site's referrer policy sends
/// it only to itself) must name this host; any other browser signal is refused. Only a
/// request with no browser signal at all passes unchecked (the non-browser clients).
pub(crate) fn is_unsafe_navigation(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let origin = text("origin").or_else(|| text("referer").map(referer_origin));
    match origin {
        Some(origin) => !origin_matches(origin, headers),
        None => ["sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user"]
            .iter()
            .any(|name| headers.contains_key(*name)),
    }
}

/// The `scheme://authority` part of a `Referer` URL.
fn referer_origin(referer: &str) -> &str {
    let authority_start = referer.find("://").map_or(0, |i| i + 3);
    let end = referer[authority_start..]
        .find(['/', '?', '#'])
        .map_or(referer.len(), |i| i + authority_start);
    &referer[..end]
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn origin_matches(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some((_scheme, authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// What browsers are told to remember behind HTTPS: HTTPS only, for a year.
const HSTS: &str = "max-age=31536000";

/// `Cross-Origin-Opener-Policy`, which `http` has no constant for; checked when compiled,
/// not on every response.
const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// The security headers every response carries, names and values checked when compiled.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
    (CROSS_ORIGIN_OPENER_POLICY, HeaderValue::from_static("same-origin")),
];

/// Adds the security headers to a response (any response: the serve layers add them to
/// the API's and the operational routes' too).
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.reserve(SECURITY_HEADERS.len());
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, value);
    }
}

/// Adds the site's headers to one of its answers: the security headers, and
/// `Strict-Transport-Security` when it is served over HTTPS (`secure`).
pub(crate) fn add_site_headers(headers: &mut HeaderMap, secure: bool) {
    add_security_headers(headers);
    if secure {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let host = ("host", "example.com:5000");
        assert!(!is_cross_site(&headers(&[host])), "no browser headers: not a browser");
        assert!(!is_cross_site(&headers(&[host, ("sec-fetch-site", "same-origin")])));
        assert!(!is_cross_site(&headers(&[host, ("sec-fetch-site", "none")])));
        assert!(is_cross_site(&headers(&[host, ("sec-fetch-site", "cross-site")])));
        let same = ("origin", "http://example.com:5000");
        let other = ("origin", "https://evil.example");
        assert!(!is_cross_site(&headers(&[host, same])));
        assert!(is_cross_site(&headers(&[host, other])));
        assert!(is_cross_site(&headers(&[host, ("origin", "null")])));
        assert!(!is_cross_site(&headers(&[host, ("sec-fetch-site", "same-site"), same])));
        assert!(is_cross_site(&headers(&[host, ("sec-fetch-site", "same-site"), other])));
    }

    #[test]
    fn state_changing_gets_need_same_origin_signals() {
        let host = ("host", "example.com:5000");
        assert!(!is_unsafe_navigation(&headers(&[host])), "no browser signal: a script");
        assert!(!is_unsafe_navigation(&headers(&[host, ("sec-fetch-site", "same-origin")])));
        assert!(!is_unsafe_navigation(&headers(&[host, ("sec-fetch-site", "none")])));
        for site in ["cross-site", "same-site", "bogus"] {
            let sent = headers(&[host, ("sec-fetch-site", site)]);
            assert!(is_unsafe_navigation(&sent), "{site}");
        }
        let same = ("referer", "http://example.com:5000/bob");
        let other = ("referer", "http://sub.example.com:5000/bob");
        assert!(!is_unsafe_navigation(&headers(&[host, same])));
        assert!(is_unsafe_navigation(&headers(&[host, other])));
        assert!(is_unsafe_navigation(&headers(&[host, ("origin", "null")])));
        assert!(is_unsafe_navigation(&headers(&[host, ("sec-fetch-mode", "navigate")])));
    }
}
