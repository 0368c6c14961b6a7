//! [`route_label`]: the route template a request path belongs to, so metrics labels stay
//! few whatever users are called.

use minitwit_core::Username;

/// The route template `path` belongs to: `"/"`, `"/public"`, `"/{username}"`,
/// `"/{username}/follow"`, `"/{username}/unfollow"`, `"/add_message"`, `"/register"`,
/// `"/login"`, `"/logout"`, `"/static"`, or `"other"`.
pub fn route_label(path: &str) -> &'static str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else { return "other" };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [""] => "/",
        ["public"] => "/public",
        ["register"] => "/register",
        ["login"] => "/login",
        ["logout"] => "/logout",
        ["add_message"] => "/add_message",
        ["static", ..] => "/static",
        [name] if could_be_user(name) => "/{username}",
        [name, "follow"] if could_be_user(name) => "/{username}/follow",
        [name, "unfollow"] if could_be_user(name) => "/{username}/unfollow",
        _ => "other",
    }
}

/// Whether a path segment can name a user (reserved names cannot).
fn could_be_user(segment: &str) -> bool {
    !segment.is_empty() && !Username::RESERVED.contains(&segment)
}

#[cfg(test)]
mod tests {
    use super::route_label;

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
            ("", "other"),
        ];
        for (path, label) in cases {
            assert_eq!(route_label(path), label, "{path}");
        }
    }
}
