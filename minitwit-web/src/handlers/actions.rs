//! `POST /add_message` and `POST|GET /{username}/follow|unfollow`: the signed-in user's
//! actions, each ending in a redirect with a flash.

use super::Handled;
use crate::error::WebError;
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

/// `POST /add_message`: posts and redirects to `/`; empty text records nothing.
pub(crate) async fn add_message(site: Arc<Site>, form: MessageForm, mut visit: Visit) -> Handled {
    let author = visit.user.clone().ok_or(WebError::Unauthorized)?;
    match MessageText::parse(&form.text) {
        Ok(text) => {
            visit.service.post(&author, text).await?;
            visit.session.flash("Your message was recorded");
        }
        Err(ValidationError::MessageEmpty) => {}
        Err(refused) => visit.session.flash(refused.to_string()),
    }
    Ok(site.redirect(visit, "/"))
}

/// `/{username}/follow` and `/{username}/unfollow`: 401 when signed out, 404 for an
/// unknown user, else a redirect to the user's page with a flash.
pub(crate) async fn follow(
    site: Arc<Site>,
    segment: String,
    relation: Relation,
    mut visit: Visit,
) -> Handled {
    let reader = visit.user.clone().ok_or(WebError::Unauthorized)?;
    let whom = visit.service.user_at(&segment).await?;
    let flash = match relation {
        Relation::Follow => {
            visit.service.follow(&reader, &whom).await?;
            format!("You are now following \"{}\"", whom.username)
        }
        Relation::Unfollow => {
            visit.service.unfollow(&reader, &whom).await?;
            format!("You are no longer following \"{}\"", whom.username)
        }
    };
    visit.session.flash(flash);
    Ok(site.redirect(visit, &user_path(&whom.username, None)))
}
