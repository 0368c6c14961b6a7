//! The site's route table: each route's path and metrics label, written once. The filters
//! take their paths from it, and [`route_label`] its labels, so metrics labels stay few
//! whatever users are called. Every fixed first segment is a reserved username (a test
//! below proves it), so no user's page hides behind a route.

use minitwit_core::Username;
use warp::Filter;
use warp::filters::BoxedFilter;

/// A route under a fixed first segment: `/{segment}`, or everything below it.
pub(crate) struct Fixed {
    /// The first path segment.
    segment: &'static str,
    /// Whether the route takes the rest of the path too (`/static/{file}`).
    prefix: bool,
    /// The route template: the metrics label.
    pub(crate) label: &'static str,
}

/// `GET /public`
pub(crate) const PUBLIC: Fixed = exactly("public", "/public");
/// `GET|POST /register`
pub(crate) const REGISTER: Fixed = exactly("register", "/register");
/// `GET|POST /login`
pub(crate) const LOGIN: Fixed = exactly("login", "/login");
/// `GET /logout`
pub(crate) const LOGOUT: Fixed = exactly("logout", "/logout");
/// `POST /add_message`
pub(crate) const ADD_MESSAGE: Fixed = exactly("add_message", "/add_message");
/// `GET /static/{file}`
pub(crate) const STATIC: Fixed = Fixed { segment: "static", prefix: true, label: "/static" };

/// Every route under a fixed first segment.
const FIXED: [&Fixed; 6] = [&PUBLIC, &REGISTER, &LOGIN, &LOGOUT, &ADD_MESSAGE, &STATIC];

/// The label of `GET /`.
pub(crate) const HOME: &str = "/";
/// The label of `GET /{username}`.
pub(crate) const USER: &str = "/{username}";
/// The label of paths outside every route.
const OTHER: &str = "other";

/// A route below a user's page: `/{username}/{segment}`.
pub(crate) struct UserAction {
    /// The segment after the username.
    pub(crate) segment: &'static str,
    /// The route template: the metrics label.
    pub(crate) label: &'static str,
}

/// `GET|POST /{username}/follow`
pub(crate) const FOLLOW: UserAction = UserAction { segment: "follow", label: "/{username}/follow" };
/// `GET|POST /{username}/unfollow`
pub(crate) const UNFOLLOW: UserAction =
    UserAction { segment: "unfollow", label: "/{username}/unfollow" };

const fn exactly(segment: &'static str, label: &'static str) -> Fixed {
    Fixed { segment, prefix: false, label }
}

impl Fixed {
    /// The route's path filter: exactly `/{segment}`, or its first segment for a prefix.
    pub(crate) fn path(&self) -> BoxedFilter<()> {
        let first = warp::path(self.segment);
        if self.prefix { first.boxed() } else { first.and(warp::path::end()).boxed() }
    }

    /// The label of a path whose first segment is this route's, with `rest` following.
    fn label_with(&self, rest: &[&str]) -> &'static str {
        if rest.is_empty() || self.prefix { self.label } else { OTHER }
    }
}

/// The route template `path` belongs to: `"/"`, `"/public"`, `"/{username}"`,
/// `"/{username}/follow"`, `"/{username}/unfollow"`, `"/add_message"`, `"/register"`,
/// `"/login"`, `"/logout"`, `"/static"`, or `"other"`.
pub fn route_label(path: &str) -> &'static str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else { return OTHER };
    let segments: Vec<&str> = rest.split('/').collect();
    let under_fixed = segments.split_first().and_then(|(first, rest)| {
        let route = fixed(first)?;
        Some(route.label_with(rest))
    });
    if let Some(label) = under_fixed {
        return label;
    }
    match segments.as_slice() {
        [""] => HOME,
        [name] if could_be_user(name) => USER,
        [name, action] if could_be_user(name) => user_action(action).map_or(OTHER, |a| a.label),
        _ => OTHER,
    }
}

/// The fixed route whose first segment is `segment`.
fn fixed(segment: &str) -> Option<&'static Fixed> {
    FIXED.into_iter().find(|route| route.segment == segment)
}

/// The route below a user's page named by `segment`.
fn user_action(segment: &str) -> Option<&'static UserAction> {
    [&FOLLOW, &UNFOLLOW].into_iter().find(|action| action.segment == segment)
}

/// Whether a path segment can name a user (reserved names cannot).
fn could_be_user(segment: &str) -> bool {
    !segment.is_empty() && !Username::RESERVED.contains(&segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::ValidationError;

    #[test]
    fn paths_map_to_their_templates() {
        let cases = [
            ("/", "/"),
            ("/public", "/public"),
            ("/public?before=1.2", "/public"),
            ("/Roger%20Histand", "/{username}"),
            ("/foo/follow", "/{username}/follow"),
            ("/foo/unfollow", "/{username}/unfollow"),
            ("/add_message", "/add_message"),
            ("/register", "/register"),
            ("/login", "/login"),
            ("/logout", "/logout"),
            ("/static/style.css", "/static"),
            ("/metrics", "other"),
            ("/foo/bar", "other"),
            ("/a/b/c", "other"),
            ("/public/follow", "other"),
            ("", "other"),
        ];
        for (path, label) in cases {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn every_top_level_path_of_the_site_is_a_reserved_username() {
        for route in FIXED {
            let refused = Username::parse(route.segment).err();
            assert_eq!(refused, Some(ValidationError::UsernameReserved), "{}", route.segment);
        }
    }
}
