//! A client of the site's live timelines (server-sent events over real HTTP): opens a
//! timeline page as `text/event-stream`, with or without `Last-Event-ID`, and reads its
//! events one by one, with a generous deadline for each (a hang fails the test; nothing
//! is timed).

use std::time::Duration;

/// How long one event may take to arrive before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// One server-sent event, or a comment / retry hint (`event` empty, no data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`entry`, `withdraw`, `reload`, `signedout`), or empty.
    pub event: String,
    /// The `id:` field.
    pub id: Option<String>,
    /// The `data:` lines, joined with newlines.
    pub data: String,
    /// The `retry:` field, in milliseconds.
    pub retry: Option<u64>,
}

/// An open stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// Opens `url` as an event stream, sending `last_event_id` if given: the stream, or the
/// response that refused it.
pub async fn open(
    client: &reqwest::Client,
    url: &str,
    last_event_id: Option<&str>,
) -> Result<EventStream, reqwest::Response> {
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("the server answers");
    let is_stream = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("text/event-stream"));
    if response.status() != 200 || !is_stream {
        return Err(response);
    }
    Ok(EventStream { response, buffer: String::new() })
}

impl EventStream {
    /// The next event (or comment), `None` once the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream sends something (a heartbeat at least) in time");
            match chunk {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next event with a name (skipping comments and retry hints); `None` at the end.
    pub async fn next_named(&mut self) -> Option<SseEvent> {
        loop {
            let event = self.next().await?;
            if !event.event.is_empty() {
                return Some(event);
            }
        }
    }

    /// The named events up to and including the entry with id `until`; panics if the
    /// stream ends first.
    pub async fn until_entry(&mut self, until: i64) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next_named().await.unwrap_or_else(|| {
                panic!("the stream ended before entry {until}; it sent {seen:?}")
            });
            let done = event.event == "entry" && event.id.as_deref() == Some(&until.to_string());
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Everything until the server ends the stream.
    pub async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        while let Some(event) = self.next().await {
            seen.push(event);
        }
        seen
    }
}

/// The ids of the entries among `events`.
pub fn entry_ids(events: &[SseEvent]) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.event == "entry")
        .filter_map(|e| e.id.as_deref()?.parse().ok())
        .collect()
}

fn parse(block: &str) -> SseEvent {
    let mut event = SseEvent::default();
    let mut data = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        match field {
            "event" => event.event = value.to_owned(),
            "data" => data.push(value.to_owned()),
            "id" => event.id = Some(value.to_owned()),
            "retry" => event.retry = value.parse().ok(),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}
