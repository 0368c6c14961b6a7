//! The API's route table: each route's path, its metrics label and the methods it
//! serves, written once. The filters take their paths from it, [`route_label`] its
//! labels, and the 405 answer its allow-lists.

use warp::Filter;
use warp::filters::BoxedFilter;

/// One route of the API: `/{segment}`, or `/{segment}/{username}`.
pub(crate) struct Route {
    /// The first path segment.
    segment: &'static str,
    /// Whether a username segment follows it.
    user: bool,
    /// The route template: the metrics label.
    pub(crate) label: &'static str,
    /// The methods it serves, as a 405's `Allow` lists them.
    pub(crate) allow: &'static str,
}

/// `GET /latest`
pub(crate) const LATEST: Route = fixed("latest", "/latest", "GET");
/// `POST /register`
pub(crate) const REGISTER: Route = fixed("register", "/register", "POST");
/// `GET /msgs`
pub(crate) const MESSAGES: Route = fixed("msgs", "/msgs", "GET");
/// `GET|POST /msgs/{username}`
pub(crate) const USER_MESSAGES: Route = by_user("msgs", "/msgs/{username}", "GET, POST");
/// `GET|POST /fllws/{username}`
pub(crate) const FOLLOWS: Route = by_user("fllws", "/fllws/{username}", "GET, POST");
/// `GET /openapi.yaml`
pub(crate) const OPENAPI: Route = fixed("openapi.yaml", "/openapi.yaml", "GET");

/// Every route of the API.
const ROUTES: [&Route; 6] = [&LATEST, &REGISTER, &MESSAGES, &USER_MESSAGES, &FOLLOWS, &OPENAPI];

const fn fixed(segment: &'static str, label: &'static str, allow: &'static str) -> Route {
    Route { segment, user: false, label, allow }
}

const fn by_user(segment: &'static str, label: &'static str, allow: &'static str) -> Route {
    Route { segment, user: true, label, allow }
}

impl Route {
    /// The filter of a route without a username: exactly its path.
    pub(crate) fn path(&self) -> BoxedFilter<()> {
        warp::path(self.segment).and(warp::path::end()).boxed()
    }

    /// The filter of a route with a username: its path, extracting the username's
    /// segment as sent (`Roger%20Histand`); the handler asks the core for the user.
    pub(crate) fn user_path(&self) -> BoxedFilter<(String,)> {
        warp::path(self.segment).and(warp::path::param::<String>()).and(warp::path::end()).boxed()
    }

    /// Whether a path of these segments (after the leading `/`) is this route.
    fn matches(&self, first: &str, user: Option<&str>) -> bool {
        self.segment == first
            && match user {
                None => !self.user,
                Some(name) => self.user && !name.is_empty(),
            }
    }
}

/// The route `path` belongs to, if any.
pub(crate) fn route_of(path: &str) -> Option<&'static Route> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let mut segments = path.split('/');
    let first = segments.next().unwrap_or_default();
    let user = segments.next();
    if segments.next().is_some() {
        return None;
    }
    ROUTES.into_iter().find(|route| route.matches(first, user))
}

/// The route template a request path belongs to (`"/msgs/{username}"`, …), for metrics
/// labels and dispatch: any path outside the API is `"other"`, so the label set stays
/// bounded.
pub fn route_label(path: &str) -> &'static str {
    route_of(path).map_or(OTHER, |route| route.label)
}

/// The label of paths outside every route.
const OTHER: &str = "other";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_route_templates() {
        assert_eq!(route_label("/latest"), "/latest");
        assert_eq!(route_label("/register"), "/register");
        assert_eq!(route_label("/msgs"), "/msgs");
        assert_eq!(route_label("/msgs/Roger%20Histand"), "/msgs/{username}");
        assert_eq!(route_label("/fllws/a"), "/fllws/{username}");
        assert_eq!(route_label("/openapi.yaml"), "/openapi.yaml");
        for other in ["/", "", "/msgs/", "/fllws", "/msgs/a/b", "/public", "/latest/x"] {
            assert_eq!(route_label(other), "other", "{other}");
        }
    }

    #[test]
    fn every_label_is_the_routes_template() {
        for route in ROUTES {
            let user = if route.user { "/{username}" } else { "" };
            assert_eq!(route.label, format!("/{}{user}", route.segment));
        }
    }
}
