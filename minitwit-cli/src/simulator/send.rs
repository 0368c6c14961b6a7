//! Sending one action as the simulator does: Basic authentication, a JSON body,
//! `?latest=ID`, the user percent-encoded in the path; and classifying the outcome.

use super::report::{ErrorKind, Outcome};
use super::scenario::{Action, ActionKind, ActionRequest};
use super::{ReplayError, ReplayOptions};
use reqwest::Url;
use serde_json::json;
use std::time::{Duration, Instant};

/// The wait before the first retry of an action; each further one waits as much more.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// The status the simulator expects for each kind of action.
pub(crate) fn expected_status(kind: ActionKind) -> u16 {
    match kind {
        ActionKind::Register | ActionKind::Tweet | ActionKind::Follow | ActionKind::Unfollow => 204,
    }
}

/// An HTTP client configured for one replay. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Sender {
    client: reqwest::Client,
    base: Url,
    username: String,
    password: String,
    close_connections: bool,
    /// The prefix of this run's idempotency keys (random), when it sends them.
    key_prefix: Option<String>,
    retries: u32,
}

impl Sender {
    /// A client for `options`; fails on a base URL that cannot take paths.
    pub(crate) fn new(options: &ReplayOptions) -> Result<Self, ReplayError> {
        let base = Url::parse(&options.base_url)
            .ok()
            .filter(|url| !url.cannot_be_a_base() && matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| ReplayError::BaseUrl(options.base_url.clone()))?;
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(ReplayError::Client)?;
        Ok(Self {
            client,
            base,
            username: options.username.clone(),
            password: options.password.clone(),
            close_connections: options.close_connections,
            key_prefix: options
                .idempotency_keys
                .then(|| format!("replay-{:016x}", rand::random::<u64>())),
            retries: options.retries,
        })
    }

    /// `base/segments…?latest=id`, each segment percent-encoded.
    fn url(&self, segments: &[&str], latest: i64) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("Sender::new accepts only base URLs that take paths")
            .pop_if_empty()
            .extend(segments);
        url.query_pairs_mut().append_pair("latest", &latest.to_string());
        url
    }

    /// Sends `action`, and again after a 502, 503, 504 or no answer while retries are left, and
    /// says how it went: the last attempt's outcome, its latency from the first attempt.
    pub(crate) async fn send(&self, action: &Action) -> Outcome {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(action, started).await;
            let retriable = match outcome {
                // Unavailable, or a proxy that got no answer from its server.
                Outcome::Answered { status, .. } => matches!(status, 502..=504),
                Outcome::Failed(_) => true,
            };
            if !retriable || attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
            tokio::time::sleep(RETRY_BACKOFF * attempt).await;
        }
    }

    /// One attempt at `action`.
    async fn send_once(&self, action: &Action, started: Instant) -> Outcome {
        let user = action.user.as_str();
        let (url, body) = match &action.request {
            ActionRequest::Register { email, pwd } => (
                self.url(&["register"], action.id),
                json!({"username": user, "email": email, "pwd": pwd}),
            ),
            ActionRequest::Tweet { content } => {
                (self.url(&["msgs", user], action.id), json!({"content": content}))
            }
            ActionRequest::Follow { target } => {
                (self.url(&["fllws", user], action.id), json!({"follow": target}))
            }
            ActionRequest::Unfollow { target } => {
                (self.url(&["fllws", user], action.id), json!({"unfollow": target}))
            }
        };
        let mut request =
            self.client.post(url).basic_auth(&self.username, Some(&self.password)).json(&body);
        if self.close_connections {
            request = request.header(reqwest::header::CONNECTION, "close");
        }
        if let Some(prefix) = &self.key_prefix {
            let key = format!("{prefix}-{}", action.id);
            request = request.header(minitwit_core::idempotency::KEY_HEADER, key);
        }
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.bytes().await.map(|_| status)
            }
            Err(err) => Err(err),
        };
        match answer {
            Ok(status) => Outcome::Answered { status, latency: started.elapsed() },
            Err(err) => Outcome::Failed(classify(&err)),
        }
    }
}

/// The kind of a transport failure.
fn classify(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_connect() {
        ErrorKind::Connection
    } else {
        ErrorKind::Transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_users_and_carry_latest() {
        let options =
            ReplayOptions { base_url: "http://127.0.0.1:5001/".into(), ..Default::default() };
        let sender = Sender::new(&options).expect("valid base");
        let url = sender.url(&["fllws", "Roger Histand"], 42);
        assert_eq!(url.as_str(), "http://127.0.0.1:5001/fllws/Roger%20Histand?latest=42");
        let url = sender.url(&["msgs", "a/b?c#d Ø"], 1);
        assert_eq!(url.as_str(), "http://127.0.0.1:5001/msgs/a%2Fb%3Fc%23d%20%C3%98?latest=1");
        for bad in ["", "127.0.0.1:5001", "mailto:x@y", "ftp://host/"] {
            let options = ReplayOptions { base_url: bad.into(), ..Default::default() };
            assert!(matches!(Sender::new(&options), Err(ReplayError::BaseUrl(_))), "{bad}");
        }
    }
}
