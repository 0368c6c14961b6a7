//! The JSON bodies the API reads (requests, deserialised leniently so that missing fields
//! get the contract's texts) and writes (responses, in the reference's shape).

use minitwit_core::TimelineEntry;
use serde::{Deserialize, Serialize};

/// Query parameters any endpoint may carry.
#[derive(Debug, Default, Deserialize)]
pub struct ApiQuery {
    /// The id of the simulator action this request is, stored as `latest`.
    pub latest: Option<String>,
    /// How many items a listing returns.
    pub no: Option<String>,
}

/// `POST /register`. Missing fields read as empty, so the core names what is missing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisterBody {
    /// The new user's name.
    pub username: Option<String>,
    /// The new user's email address.
    pub email: Option<String>,
    /// The new user's password (the reference calls it `pwd`).
    pub pwd: Option<String>,
}

/// `POST /msgs/{username}`.
#[derive(Debug, Deserialize)]
pub struct PostBody {
    /// The message text.
    pub content: String,
}

/// `POST /fllws/{username}`: an object with exactly one key, `follow` or `unfollow`.
#[derive(Debug, Deserialize)]
pub enum FollowBody {
    /// The name of the user to follow.
    #[serde(rename = "follow")]
    Follow(String),
    /// The name of the user to stop following.
    #[serde(rename = "unfollow")]
    Unfollow(String),
}

/// One message in a listing, as the reference renders it.
#[derive(Debug, Serialize)]
pub struct MessageDto {
    /// The text.
    pub content: String,
    /// Publication time, Unix seconds.
    pub pub_date: i64,
    /// The author's name.
    pub user: String,
}

impl From<TimelineEntry> for MessageDto {
    fn from(entry: TimelineEntry) -> Self {
        Self { content: entry.text, pub_date: entry.pub_date, user: entry.author }
    }
}

/// `GET /latest`.
#[derive(Debug, Serialize)]
pub struct LatestDto {
    /// The id of the last simulator action, or -1.
    pub latest: i64,
}

/// `GET /fllws/{username}`.
#[derive(Debug, Serialize)]
pub struct FollowsDto {
    /// The names of the users the user follows.
    pub follows: Vec<String>,
}
