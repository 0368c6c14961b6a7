//! Timeline entries rendered once. An entry's HTML depends only on the message and its
//! author, never on who reads it, so every page and live stream that shows an entry
//! shares one rendering, kept in a bounded cache by message id.
//!
//! Nothing kept can show what should not be seen: a page asks for the entries the store
//! gave it, so a flagged message or a deleted author's is simply not asked for; and an
//! entry is reused only while it is equal, field by field, to the one asked for (ids are
//! never reused, but an import undone and redone may bring other text under one).

use crate::error::WebError;
use minitwit_core::{MessageId, TimelineEntry};
use quick_cache::sync::Cache;
use std::sync::Arc;

/// Entries kept rendered by default: a few hundred bytes each, so about 1.5 MB; enough
/// for the newest pages of every timeline read at once.
pub(crate) const KEPT: usize = 2048;

/// The entries rendered lately, each with what it was rendered from.
pub(crate) struct RenderedEntries {
    cache: Cache<MessageId, Arc<Rendered>>,
}

/// One entry and its HTML.
struct Rendered {
    entry: TimelineEntry,
    html: Arc<str>,
}

impl RenderedEntries {
    /// Keeps up to `kept` entries.
    pub(crate) fn new(kept: usize) -> Self {
        Self { cache: Cache::new(kept.max(1)) }
    }

    /// `entry`'s HTML: kept, or rendered by `render` and kept.
    pub(crate) fn html(
        &self,
        entry: &TimelineEntry,
        render: impl FnOnce(&TimelineEntry) -> Result<String, WebError>,
    ) -> Result<Arc<str>, WebError> {
        if let Some(kept) = self.cache.get(&entry.id)
            && kept.entry == *entry
        {
            return Ok(Arc::clone(&kept.html));
        }
        let html: Arc<str> = render(entry)?.into();
        let rendered = Rendered { entry: entry.clone(), html: Arc::clone(&html) };
        self.cache.insert(entry.id, Arc::new(rendered));
        Ok(html)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::UserId;

    fn entry(id: i64, text: &str) -> TimelineEntry {
        TimelineEntry {
            id: MessageId(id),
            author_id: UserId(1),
            author: "a".into(),
            email: "a@b".into(),
            text: text.into(),
            pub_date: 0,
        }
    }

    #[test]
    fn an_entry_is_rendered_once_and_again_only_when_it_differs() {
        let entries = RenderedEntries::new(8);
        let renders = std::cell::Cell::new(0);
        let render = |e: &TimelineEntry| {
            renders.set(renders.get() + 1);
            Ok(format!("<li>{}</li>", e.text))
        };
        assert_eq!(&*entries.html(&entry(1, "one"), render).unwrap(), "<li>one</li>");
        assert_eq!(&*entries.html(&entry(1, "one"), render).unwrap(), "<li>one</li>");
        assert_eq!(renders.get(), 1, "kept");
        assert_eq!(&*entries.html(&entry(1, "other"), render).unwrap(), "<li>other</li>");
        assert_eq!(renders.get(), 2, "a different entry under the same id is rendered anew");
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let entries = RenderedEntries::new(8);
        for id in 0..1000 {
            entries.html(&entry(id, "x"), |e| Ok(e.text.clone())).unwrap();
        }
        assert!(entries.cache.len() <= 16, "{} kept", entries.cache.len());
    }
}
