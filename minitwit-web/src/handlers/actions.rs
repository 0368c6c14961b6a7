//! `POST /add_message` and `POST|GET /{username}/follow|unfollow`: the signed-in user's
//! actions, each ending in a redirect with a flash.

use super::Handled;
use crate::error::WebError;
use crate::idempotency::{KeyedRequest, redirect_after};
use crate::site::{Site, Visit};
use crate::views::user_path;
use minitwit_core::{MessageText, ValidationError};
use serde::Deserialize;
use std::sync::Arc;

/// The posting form.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageForm {
    /// The message text.
    #[serde(default)]
    text: String,
}

/// Follow or unfollow.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Relation {
    /// `/{username}/follow`.
    Follow,
    /// `/{username}/unfollow`.
    Unfollow,
}

/// `POST /add_message`: posts (once per idempotency key) and redirects to `/`; empty text
/// records nothing.
pub(crate) async fn add_message(
    site: Arc<Site>,
    form: MessageForm,
    request: Option<KeyedRequest>,
    mut visit: Visit,
) -> Handled {
    const RECORDED: &str = "Your message was recorded";
    let author = visit.user.clone().ok_or(WebError::Unauthorized)?;
    match MessageText::parse(&form.text) {
        Ok(text) => {
            let keyed = request.map(|request| request.keyed(Some(&author), "/", RECORDED));
            let outcome = visit.service.post_once(&author, text, keyed).await?;
            return Ok(redirect_after(&site, visit, outcome, "/", RECORDED));
        }
        Err(ValidationError::MessageEmpty) => {}
        Err(refused) => visit.session.flash(refused.to_string()),
    }
    Ok(site.redirect(visit, "/"))
}

/// `/{username}/follow` and `/{username}/unfollow`: 401 when signed out, 404 for an
/// unknown user, else (once per idempotency key) a redirect to the user's page with a
/// flash.
pub(crate) async fn follow(
    site: Arc<Site>,
    segment: String,
    relation: Relation,
    request: Option<KeyedRequest>,
    visit: Visit,
) -> Handled {
    let reader = visit.user.clone().ok_or(WebError::Unauthorized)?;
    let whom = visit.service.user_at(&segment).await?;
    let location = user_path(&whom.username, None);
    let flash = match relation {
        Relation::Follow => format!("You are now following \"{}\"", whom.username),
        Relation::Unfollow => format!("You are no longer following \"{}\"", whom.username),
    };
    let keyed = request.map(|request| request.keyed(Some(&reader), &location, &flash));
    let outcome = match relation {
        Relation::Follow => visit.service.follow_once(reader.id, whom.id, keyed).await?,
        Relation::Unfollow => visit.service.unfollow_once(reader.id, whom.id, keyed).await?,
    };
    Ok(redirect_after(&site, visit, outcome, &location, &flash))
}
