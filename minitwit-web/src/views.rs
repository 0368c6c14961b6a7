//! The HTML: handlebars templates embedded in the binary (strict mode, escaping exactly
//! as Jinja2/MarkupSafe does), the view models they render, and the small formatting
//! helpers (times, user addresses) the pages need.

use crate::assets::AssetUrls;
use crate::error::WebError;
use handlebars::Handlebars;
use minitwit_core::{ServiceError, TimelineEntry};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../templates/layout.hbs")),
    ("timeline", include_str!("../templates/timeline.hbs")),
    ("entry", include_str!("../templates/entry.hbs")),
    ("login", include_str!("../templates/login.hbs")),
    ("register", include_str!("../templates/register.hbs")),
    ("error", include_str!("../templates/error.hbs")),
];

/// Characters percent-encoded in a path segment (non-ASCII always is).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// How times are shown: `2026-11-22 @ 19:30`.
const SHOWN: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] @ [hour]:[minute]");
/// How times are given to the script: ISO 8601 in UTC.
const ISO: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Escapes text for HTML exactly as MarkupSafe does.
pub(crate) fn markupsafe_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The address of `username`'s page, with an optional action (`follow`, `unfollow`).
pub(crate) fn user_path(username: &str, action: Option<&str>) -> String {
    let name = utf8_percent_encode(username, SEGMENT);
    action.map_or_else(|| format!("/{name}"), |action| format!("/{name}/{action}"))
}

/// A Unix time as `(ISO 8601, shown text)` in UTC; the raw number when out of range.
fn times(unix: i64) -> (String, String) {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| Some((t.format(ISO).ok()?, t.format(SHOWN).ok()?)))
        .unwrap_or_else(|| (String::new(), unix.to_string()))
}

/// The whole page around a body.
#[derive(Debug, Serialize)]
pub(crate) struct LayoutView<'a> {
    /// The page title (before " | MiniTwit").
    pub title: &'a str,
    /// On a user's timeline: the user, whose name is escaped while "'s" is not.
    pub title_user: Option<&'a str>,
    /// The signed-in user's name.
    pub user: Option<&'a str>,
    /// Error pages show a navigation that fits signed-in and signed-out readers.
    pub error_nav: bool,
    /// Flash messages to show once.
    pub flashes: &'a [String],
    /// The rendered body (already escaped HTML).
    pub body: &'a str,
    /// Static file addresses.
    pub assets: &'a AssetUrls,
}

/// One message on a timeline.
#[derive(Debug, Serialize)]
pub(crate) struct EntryView {
    gravatar: String,
    author: String,
    author_url: String,
    text: String,
    datetime: String,
    shown: String,
}

impl From<&TimelineEntry> for EntryView {
    fn from(entry: &TimelineEntry) -> Self {
        let (datetime, shown) = times(entry.pub_date);
        Self {
            gravatar: entry.gravatar_url(48),
            author_url: user_path(&entry.author, None),
            author: entry.author.clone(),
            text: entry.text.clone(),
            datetime,
            shown,
        }
    }
}

/// The follow box on a user's page.
#[derive(Debug, Serialize)]
pub(crate) struct ProfileView {
    /// Whose page it is.
    pub username: String,
    /// Whether a reader is signed in (the box shows only then).
    pub signed_in: bool,
    /// The reader is this user.
    pub is_self: bool,
    /// The reader follows this user.
    pub following: bool,
    /// Where the Follow button posts.
    pub follow_url: String,
    /// Where the Unfollow button posts.
    pub unfollow_url: String,
}

/// A timeline page's body.
#[derive(Debug, Serialize)]
pub(crate) struct TimelineView {
    /// "My Timeline" or "Public Timeline" (a user's page uses `profile`).
    pub heading: &'static str,
    /// On a user's page: whose, and the follow state.
    pub profile: Option<ProfileView>,
    /// On "My Timeline": the name in "What's on your mind NAME?".
    pub twitbox: Option<String>,
    /// The messages' HTML, newest first, each entry rendered once for every page that
    /// shows it (see [`crate::entries`]); empty for none.
    pub entries: String,
    /// The "older messages" link.
    pub older_url: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Serialize)]
pub(crate) struct LoginView<'a> {
    /// Why the last attempt failed.
    pub error: Option<&'a str>,
    /// The name entered, kept in the form.
    pub username: &'a str,
}

/// The sign-up form.
#[derive(Debug, Serialize)]
pub(crate) struct RegisterView<'a> {
    /// Why the last attempt failed.
    pub error: Option<&'a str>,
    /// The name entered.
    pub username: &'a str,
    /// The email entered.
    pub email: &'a str,
}

/// An error page's body.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorView<'a> {
    /// "404 Not Found", say.
    pub heading: &'a str,
    /// A fixed, safe explanation.
    pub explanation: &'a str,
    /// Offer signing in (401).
    pub sign_in: bool,
}

/// The compiled templates.
pub(crate) struct Views {
    registry: Handlebars<'static>,
}

impl Views {
    /// Compiles the embedded templates.
    pub fn new() -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(markupsafe_escape);
        for (name, source) in TEMPLATES {
            // The templates are compiled into the binary and covered by the tests below,
            // so a syntax error cannot reach a running server.
            registry.register_template_string(name, source).expect("embedded templates parse");
        }
        Self { registry }
    }

    /// Renders template `name` with `data`.
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, WebError> {
        self.registry
            .render(name, data)
            .map_err(|err| ServiceError::Internal(format!("rendering {name}: {err}")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::{MessageId, UserId};

    #[test]
    fn escapes_like_markupsafe() {
        assert_eq!(
            markupsafe_escape(r#"<test message 2> & "foo" 'bar'"#),
            "&lt;test message 2&gt; &amp; &#34;foo&#34; &#39;bar&#39;"
        );
    }

    #[test]
    fn user_paths_are_percent_encoded() {
        assert_eq!(user_path("Roger Histand", None), "/Roger%20Histand");
        assert_eq!(user_path("a?b#c", Some("follow")), "/a%3Fb%23c/follow");
        assert_eq!(user_path("Åse", None), "/%C3%85se");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(
            times(1_582_246_860),
            ("2020-02-21T01:01:00Z".into(), "2020-02-21 @ 01:01".into())
        );
        assert_eq!(times(i64::MAX).1, i64::MAX.to_string());
    }

    #[test]
    fn every_template_renders_in_strict_mode() {
        let views = Views::new();
        let entry = TimelineEntry {
            id: MessageId(1),
            author_id: UserId(1),
            author: "a b".into(),
            email: "a@b".into(),
            text: "<hi>".into(),
            pub_date: 0,
        };
        let profile = ProfileView {
            username: "a b".into(),
            signed_in: true,
            is_self: false,
            following: true,
            follow_url: "/a%20b/follow".into(),
            unfollow_url: "/a%20b/unfollow".into(),
        };
        let timeline = TimelineView {
            heading: "My Timeline",
            profile: Some(profile),
            twitbox: Some("me".into()),
            entries: views.render("entry", &EntryView::from(&entry)).unwrap(),
            older_url: Some("/?before=1.2".into()),
        };
        let body = views.render("timeline", &timeline).unwrap();
        assert!(body.contains("&lt;hi&gt;") && body.contains("older messages"));
        assert!(body.contains("You are currently following this user."));
        let login = views.render("login", &LoginView { error: Some("x"), username: "u" }).unwrap();
        let reg = RegisterView { error: None, username: "", email: "" };
        views.render("register", &reg).unwrap();
        let error = ErrorView { heading: "404", explanation: "gone", sign_in: true };
        views.render("error", &error).unwrap();
        let assets = AssetUrls { style: "/s".into(), script: "/j".into(), icon: "/i".into() };
        let flashes = vec!["You are now following \"foo\"".to_owned()];
        let layout = LayoutView {
            title: "Sign In",
            title_user: None,
            user: Some("me"),
            error_nav: false,
            flashes: &flashes,
            body: &login,
            assets: &assets,
        };
        let page = views.render("layout", &layout).unwrap();
        assert!(page.contains("You are now following &#34;foo&#34;"));
        assert!(page.contains("<title>Sign In | MiniTwit</title>"));
    }

    /// The timeline template before its entry became the `entry` partial (which live
    /// streams render alone): pages must stay byte-for-byte what they were.
    const TIMELINE_BEFORE_LIVE: &str = r#"<ul class="messages">
{{#each entries}}
  <li><img src="{{gravatar}}" alt="" width="48" height="48"><p>
    <strong><a href="{{author_url}}">{{author}}</a></strong>
    {{text}}
    <small>&mdash; <time datetime="{{datetime}}">{{shown}}</time></small></p></li>
{{else}}
  <li><em>There's no message so far.</em></li>
{{/each}}
</ul>
"#;

    #[test]
    fn entries_render_as_before_and_alone_exactly_as_in_the_list() {
        let views = Views::new();
        let entry = |id, text: &str| TimelineEntry {
            id: minitwit_core::MessageId(id),
            author_id: minitwit_core::UserId(1),
            author: "Åse Ø".into(),
            email: "a@b".into(),
            text: text.into(),
            pub_date: 1_582_246_860,
        };
        let entries = [entry(2, "<b>&'\"</b>"), entry(1, "two\nlines")];
        // Each entry rendered alone (as pages and streams now render them, once), then
        // put together.
        let alone: String =
            entries.iter().map(|e| views.render("entry", &EntryView::from(e)).unwrap()).collect();
        let timeline = TimelineView {
            heading: "Public Timeline",
            profile: None,
            twitbox: None,
            entries: alone,
            older_url: None,
        };
        let now = views.render("timeline", &timeline).unwrap();
        let mut before = Handlebars::new();
        before.set_strict_mode(true);
        before.register_escape_fn(markupsafe_escape);
        before.register_template_string("list", TIMELINE_BEFORE_LIVE).unwrap();
        let views_before: Vec<EntryView> = entries.iter().map(EntryView::from).collect();
        let list = before.render("list", &serde_json::json!({ "entries": views_before })).unwrap();
        assert!(now.ends_with(&list), "{now}\n---\n{list}");
        let empty = TimelineView { entries: String::new(), ..timeline };
        let empty_now = views.render("timeline", &empty).unwrap();
        let empty_before = before.render("list", &serde_json::json!({ "entries": [] })).unwrap();
        assert!(empty_now.ends_with(&empty_before), "{empty_now}\n---\n{empty_before}");
    }
}
