//! [`Streams`]: the live timelines of one site, as the site holds them: the change feed,
//! the caps, the shutdown signal, and the entries rendered lately.

use super::Slots;
use crate::config::LiveConfig;
use crate::error::WebError;
use bytes::Bytes;
use minitwit_core::feed::LiveFeed;
use minitwit_core::{MessageId, TimelineEntry};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use warp::sse;

/// The live timelines of one site: the feed, the caps, the shutdown signal, and the
/// entries rendered lately.
pub(crate) struct Streams {
    pub(super) feed: Option<LiveFeed>,
    pub(super) config: LiveConfig,
    pub(super) slots: Arc<Slots>,
    closing: watch::Sender<bool>,
    rendered: Mutex<VecDeque<(MessageId, Bytes)>>,
}

/// Entries kept rendered: every stream sends the newest ones, so each is rendered once.
const RENDERED_KEPT: usize = 32;

impl Streams {
    /// Live timelines over `service`'s store, if it delivers changes and a runtime runs.
    pub(crate) fn new(service: &minitwit_core::MiniTwit, config: LiveConfig) -> Self {
        let feed = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|_| LiveFeed::start(Arc::clone(service.store()), config.limits));
        Self {
            feed,
            config,
            slots: Arc::new(Slots::new(config.max_streams, config.max_streams_per_address)),
            closing: watch::channel(false).0,
            rendered: Mutex::default(),
        }
    }

    /// An entry's event as it goes on the wire, formatted once for every stream that
    /// sends it (an entry never changes; each stream shares the same bytes): `entry`,
    /// with the message id as the event id and, as data, the entry exactly as the page
    /// renders it, as a JSON string (SSE would strip a space from every data line that
    /// starts with one).
    pub(crate) fn entry_event(
        &self,
        entry: &TimelineEntry,
        render: impl FnOnce(&TimelineEntry) -> Result<Arc<str>, WebError>,
    ) -> Result<Bytes, WebError> {
        let lock = || self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, event)) = lock().iter().find(|(id, _)| *id == entry.id) {
            return Ok(event.clone());
        }
        let html = render(entry)?;
        let data = serde_json::Value::from(&*html).to_string();
        let event = wire(sse::Event::default().event("entry").id(entry.id.to_string()).data(data));
        let mut rendered = lock();
        if rendered.len() >= RENDERED_KEPT {
            rendered.pop_front();
        }
        rendered.push_back((entry.id, event.clone()));
        Ok(event)
    }

    /// Ends every stream at once with a retry hint, and refuses new ones (503).
    pub(crate) fn end_all(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that turns `true` when every stream must end.
    pub(super) fn closing_signal(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub(super) fn closing(&self) -> bool {
        *self.closing.borrow()
    }
}

/// `event` as it goes on the wire.
pub(super) fn wire(event: sse::Event) -> Bytes {
    Bytes::from(event.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::testkit::MemoryStore;
    use minitwit_core::{MiniTwit, UserId};
    use std::cell::Cell;

    #[test]
    fn an_entry_event_is_formatted_once_and_shared_as_warp_formats_it() {
        let streams =
            Streams::new(&MiniTwit::new(Arc::new(MemoryStore::new())), LiveConfig::default());
        let entry = TimelineEntry {
            id: MessageId(7),
            author_id: UserId(1),
            author: "a".into(),
            email: "a@example.org".into(),
            text: "hi".into(),
            pub_date: 1,
        };
        let renders = Cell::new(0);
        let render = |_: &TimelineEntry| {
            renders.set(renders.get() + 1);
            Ok::<_, WebError>(Arc::from(" <li>hi</li>"))
        };
        let first = streams.entry_event(&entry, render).expect("rendered");
        let second = streams.entry_event(&entry, render).expect("kept");
        assert_eq!(renders.get(), 1, "rendered once");
        assert_eq!(first.as_ptr(), second.as_ptr(), "every stream shares the same bytes");
        let data = r#"" <li>hi</li>""#;
        let expected = sse::Event::default().event("entry").id("7").data(data).to_string();
        assert_eq!(first, expected.as_bytes());
    }
}
