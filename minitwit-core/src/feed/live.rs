//! Who may see what: [`LiveFeed`] turns this process's deliveries into timeline entries
//! (one store read per new message, whatever the number of readers, none without
//! readers), and each reader's [`Subscription`] passes on only what its timeline shows,
//! by the rules of the pages themselves: flagged messages and messages of disabled or
//! deleted users never, a user's page only that user's messages, a home timeline only
//! the reader's own and those of the accounts the reader follows at that moment.

use super::wake::Wakers;
use super::{Change, ChangeFeed, Delivery};
use crate::model::{Message, MessageFilter, MessageId, TimelineEntry, User, UserId};
use crate::service::ServiceResult;
use crate::store::Store;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

/// The timeline a reader follows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveTimeline {
    /// Every visible message.
    Public,
    /// One author's visible messages.
    User(UserId),
    /// The reader's own visible messages and those of the accounts the reader follows.
    Home(UserId),
}

/// What a reader is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new entry of the reader's timeline.
    Entry(Arc<TimelineEntry>),
    /// These messages were hidden since: a reader not showing them yet drops them.
    Withdraw(Vec<MessageId>),
    /// Every message of this author was hidden since (disabled, deleted, unfollowed).
    WithdrawAuthor(UserId),
    /// More was missed than is worth sending one by one: the reader reloads the page.
    Reload,
}

/// Why a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The home timeline's reader was signed out everywhere, disabled or deleted.
    #[error("the reader's session ended")]
    SessionEnded,
    /// The reader fell further behind than this process keeps for it.
    #[error("the reader fell behind")]
    FellBehind,
    /// This process's feed is gone (shutting down).
    #[error("the feed closed")]
    FeedClosed,
    /// The store failed while the reader caught up.
    #[error("the store failed: {0}")]
    Store(String),
}

/// How much a reader may have missed before it is told to reload instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLimits {
    /// Most entries sent to a reader catching up (a timeline page's worth).
    pub max_missed: usize,
    /// Most messages read from the store to catch a reader up.
    pub max_scanned: usize,
    /// Resolved events kept for a reader that is behind.
    pub capacity: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self { max_missed: 30, max_scanned: 1000, capacity: 256 }
    }
}

/// What [`LiveFeed`] hands on to the subscriptions of this process.
#[derive(Debug, Clone)]
enum Resolved {
    /// A new message that is visible, with what an entry shows of its author.
    Entry(Arc<TimelineEntry>),
    /// Any other change.
    Change(Change),
    /// Deliveries may have been lost.
    Gap,
}

/// Ids remembered per reader as sent, so that each is sent once.
const RECENT: usize = 256;
/// Follow answers remembered per home reader before they are read afresh.
const FOLLOWS_KEPT: usize = 4096;

/// This process's live timelines over one store: resolves each new message once and
/// hands it to every [`Subscription`], waking them a batch at a time. Dropping it stops
/// its task and ends every subscription.
pub struct LiveFeed {
    store: Arc<dyn Store>,
    sender: broadcast::Sender<Resolved>,
    wakers: Arc<Wakers>,
    limits: LiveLimits,
    task: JoinHandle<()>,
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        self.task.abort();
        self.wakers.close();
    }
}

impl LiveFeed {
    /// Live timelines over `store`, if it delivers changes
    /// ([`Store::change_feed`]); call within a Tokio runtime.
    pub fn start(store: Arc<dyn Store>, limits: LiveLimits) -> Option<Self> {
        let feed = store.change_feed()?;
        Some(Self::over(store, feed.as_ref(), limits))
    }

    /// Live timelines over `store`, told its changes by `feed`.
    pub fn over(store: Arc<dyn Store>, feed: &dyn ChangeFeed, limits: LiveLimits) -> Self {
        let (sender, _) = broadcast::channel(limits.capacity.max(1));
        let wakers = Arc::new(Wakers::default());
        let fan_out = FanOut { sender: sender.clone(), wakers: Arc::clone(&wakers) };
        let task = tokio::spawn(resolve(Arc::clone(&store), feed.subscribe(), fan_out));
        Self { store, sender, wakers, limits, task }
    }

    /// A reader of `timeline`, and what it missed since message `after` (the last event
    /// id it saw), if it says. Without `after`, it starts at the newest message now.
    pub async fn subscribe(
        &self,
        timeline: LiveTimeline,
        after: Option<MessageId>,
    ) -> ServiceResult<(Subscription, Vec<Event>)> {
        let mut subscription = Subscription {
            store: Arc::clone(&self.store),
            timeline,
            // Subscribed before reading the store: nothing falls between the two.
            receiver: self.sender.subscribe(),
            wake: self.wakers.register(),
            wakers: Arc::clone(&self.wakers),
            last: MessageId(0),
            recent: VecDeque::new(),
            follows: HashMap::new(),
            limits: self.limits,
        };
        let missed = match after {
            Some(after) => {
                subscription.last = after;
                subscription.catch_up().await?
            }
            None => {
                subscription.last = newest(subscription.store.as_ref()).await?;
                Vec::new()
            }
        };
        Ok((subscription, missed))
    }

    /// Readers subscribed in this process now.
    pub fn readers(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// The newest message id, flagged or not; 0 in an empty store.
async fn newest(store: &dyn Store) -> ServiceResult<MessageId> {
    let filter = MessageFilter { limit: 1, ..MessageFilter::default() };
    Ok(store.list_messages(filter).await?.first().map_or(MessageId(0), |m| m.id))
}

/// Where the resolver hands each event: the channel the subscriptions read, and their
/// wake-ups.
struct FanOut {
    sender: broadcast::Sender<Resolved>,
    wakers: Arc<Wakers>,
}

impl FanOut {
    async fn send(&self, resolved: Resolved) {
        // Nobody subscribed is fine.
        let _ = self.sender.send(resolved);
        self.wakers.wake_all().await;
    }
}

/// The resolver: each delivery to the subscriptions, a new message read as an entry
/// once, and not at all while nobody is subscribed (a reader who subscribes later reads
/// the store after subscribing, so it sees the message there); when the deliveries end,
/// so do the subscriptions.
async fn resolve(
    store: Arc<dyn Store>,
    mut deliveries: broadcast::Receiver<Delivery>,
    fan_out: FanOut,
) {
    loop {
        let resolved = match deliveries.recv().await {
            Ok(Delivery::Change(Change::Posted { .. })) if fan_out.sender.receiver_count() == 0 => {
                continue;
            }
            Ok(Delivery::Change(Change::Posted { id, .. })) => {
                match entry(store.as_ref(), id).await {
                    Ok(Some(entry)) => Resolved::Entry(Arc::new(entry)),
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::warn!(%error, %id, "a new message could not be read for live timelines");
                        Resolved::Gap
                    }
                }
            }
            Ok(Delivery::Change(change)) => Resolved::Change(change),
            Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => Resolved::Gap,
            Err(broadcast::error::RecvError::Closed) => return fan_out.wakers.close(),
        };
        fan_out.send(resolved).await;
    }
}

/// Message `id` as a timeline entry, if it is visible (unflagged, its author enabled).
async fn entry(store: &dyn Store, id: MessageId) -> ServiceResult<Option<TimelineEntry>> {
    let Some(message) = store.message_by_id(id).await? else { return Ok(None) };
    if message.flagged {
        return Ok(None);
    }
    let author = store.user_by_id(message.author_id).await?;
    Ok(author.filter(|a| !a.disabled).map(|author| entry_of(message, &author)))
}

fn entry_of(message: Message, author: &User) -> TimelineEntry {
    TimelineEntry {
        id: message.id,
        author_id: message.author_id,
        author: author.username.clone(),
        email: author.email.clone(),
        text: message.text,
        pub_date: message.pub_date,
    }
}

/// One reader's live timeline: [`Subscription::next`] waits for its next event.
pub struct Subscription {
    store: Arc<dyn Store>,
    timeline: LiveTimeline,
    receiver: broadcast::Receiver<Resolved>,
    /// Notified when the receiver has something new (or the feed closed).
    wake: Arc<Notify>,
    wakers: Arc<Wakers>,
    /// The highest message id sent or caught up to: where a catch-up starts.
    last: MessageId,
    /// Ids sent lately, newest last: each is sent once.
    recent: VecDeque<MessageId>,
    /// On a home timeline: whether the reader follows an author, as last known.
    follows: HashMap<UserId, bool>,
    limits: LiveLimits,
}

impl Subscription {
    /// The timeline this reader follows.
    pub fn timeline(&self) -> LiveTimeline {
        self.timeline
    }

    /// The reader's next events: one, or the entries caught up after a gap.
    pub async fn next(&mut self) -> Result<Vec<Event>, Stop> {
        loop {
            let resolved = match self.receiver.try_recv() {
                Ok(resolved) => resolved,
                Err(TryRecvError::Empty) if self.wakers.closed() => return Err(Stop::FeedClosed),
                Err(TryRecvError::Empty) => {
                    self.wake.notified().await;
                    continue;
                }
                Err(TryRecvError::Lagged(_)) => return Err(Stop::FellBehind),
                Err(TryRecvError::Closed) => return Err(Stop::FeedClosed),
            };
            let events = match resolved {
                Resolved::Entry(entry) => self.on_entry(entry).await?.into_iter().collect(),
                Resolved::Change(change) => self.on_change(change)?.into_iter().collect(),
                Resolved::Gap => {
                    self.follows.clear();
                    self.catch_up().await.map_err(|err| Stop::Store(err.to_string()))?
                }
            };
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }

    /// A new entry, if this reader's timeline shows it and it was not sent yet.
    async fn on_entry(&mut self, entry: Arc<TimelineEntry>) -> Result<Option<Event>, Stop> {
        if self.recent.contains(&entry.id) {
            return Ok(None);
        }
        let shown =
            self.shows(entry.author_id).await.map_err(|err| Stop::Store(err.to_string()))?;
        if !shown {
            return Ok(None);
        }
        self.sent(entry.id);
        Ok(Some(Event::Entry(entry)))
    }

    /// What a change other than a post means to this reader.
    fn on_change(&mut self, change: Change) -> Result<Option<Event>, Stop> {
        let reader = match self.timeline {
            LiveTimeline::Home(reader) => Some(reader),
            _ => None,
        };
        Ok(match change {
            Change::Flagged(ids) => Some(Event::Withdraw(ids)),
            Change::UserDisabled(user) | Change::UserDeleted(user) if Some(user) == reader => {
                return Err(Stop::SessionEnded);
            }
            Change::SessionsEnded(user) if Some(user) == reader => return Err(Stop::SessionEnded),
            Change::UserDisabled(user) | Change::UserDeleted(user) => {
                Some(Event::WithdrawAuthor(user))
            }
            Change::Followed(pair) if Some(pair.follower) == reader => {
                self.remember_follow(pair.followee, true);
                None
            }
            Change::Unfollowed(pair) if Some(pair.follower) == reader => {
                self.remember_follow(pair.followee, false);
                Some(Event::WithdrawAuthor(pair.followee))
            }
            _ => None,
        })
    }

    /// Whether this reader's timeline shows `author`'s messages now.
    async fn shows(&mut self, author: UserId) -> ServiceResult<bool> {
        Ok(match self.timeline {
            LiveTimeline::Public => true,
            LiveTimeline::User(user) => author == user,
            LiveTimeline::Home(reader) if author == reader => true,
            LiveTimeline::Home(reader) => match self.follows.get(&author) {
                Some(&follows) => follows,
                None => {
                    let follows = self.store.is_following(reader, author).await?;
                    self.remember_follow(author, follows);
                    follows
                }
            },
        })
    }

    fn remember_follow(&mut self, author: UserId, follows: bool) {
        if self.follows.len() >= FOLLOWS_KEPT {
            self.follows.clear();
        }
        self.follows.insert(author, follows);
    }

    fn sent(&mut self, id: MessageId) {
        self.last = self.last.max(id);
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
    }

    /// The entries of this timeline after the last one sent, read from the store by
    /// message id (a keyset: nothing missed, nothing twice), oldest first; or
    /// [`Event::Reload`] when more was missed than the limits allow.
    async fn catch_up(&mut self) -> ServiceResult<Vec<Event>> {
        let scanned = self.limits.max_scanned;
        let missed = self.store.messages_after(Some(self.last), scanned + 1).await?;
        if missed.len() > scanned {
            return self.reload().await;
        }
        let mut authors: HashMap<UserId, Option<User>> = HashMap::new();
        let mut events = Vec::new();
        for message in missed {
            self.last = self.last.max(message.id);
            if message.flagged || self.recent.contains(&message.id) {
                continue;
            }
            if !self.shows(message.author_id).await? {
                continue;
            }
            let author = match authors.get(&message.author_id) {
                Some(author) => author.clone(),
                None => {
                    let author = self.store.user_by_id(message.author_id).await?;
                    authors.insert(message.author_id, author.clone());
                    author
                }
            };
            let Some(author) = author.filter(|a| !a.disabled) else { continue };
            self.sent(message.id);
            events.push(Event::Entry(Arc::new(entry_of(message, &author))));
        }
        if events.len() > self.limits.max_missed {
            return self.reload().await;
        }
        Ok(events)
    }

    /// [`Event::Reload`], continuing from the newest message.
    async fn reload(&mut self) -> ServiceResult<Vec<Event>> {
        self.last = newest(self.store.as_ref()).await?;
        Ok(vec![Event::Reload])
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::feed::Hub;
    use crate::model::NewMessage;
    use crate::testkit::Counted;
    use crate::testkit::records::registered;

    /// Posts `text` by `author` to `store` and tells `hub`, as a store's write does.
    async fn post(store: &dyn Store, hub: &Hub, author: &User, text: &str) -> MessageId {
        let text = crate::MessageText::parse(text).expect("valid text");
        let message = NewMessage { author_id: author.id, text, pub_date: 1_700_000_000 };
        let id = store.add_message(message).await.expect("posted");
        hub.publish(Change::Posted { id, author: author.id });
        id
    }

    #[tokio::test]
    async fn a_new_message_is_read_only_while_someone_is_subscribed() {
        let store = Arc::new(Counted::new());
        let hub = Hub::default();
        let feed = LiveFeed::over(store.clone(), &hub, LiveLimits::default());
        let alice = registered(store.as_ref(), "alice").await;
        post(store.as_ref(), &hub, &alice, "nobody is reading").await;
        // The resolver has taken the delivery (and, on this one thread, dealt with it).
        while !hub.sender.is_empty() {
            tokio::task::yield_now().await;
        }
        let (mut reader, missed) = feed.subscribe(LiveTimeline::Public, None).await.unwrap();
        assert!(missed.is_empty());
        let read = post(store.as_ref(), &hub, &alice, "someone is").await;
        // Deliveries are resolved in order: once the second arrives, the first was handled.
        match reader.next().await.unwrap().as_slice() {
            [Event::Entry(entry)] => assert_eq!(entry.id, read),
            other => panic!("expected the second post, got {other:?}"),
        }
        assert_eq!(store.calls(&["message_by_id"]), 1, "the first post was never read");
    }
}
