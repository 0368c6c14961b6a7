//! Home timelines kept on write: a message goes into its author's home index and each
//! follower's in the transaction that stores it, so a home page is one range read
//! whatever the number of accounts followed ("fan-out on write"). Two bounds keep the
//! cost in check (see `minitwit_core::HomeIndex`):
//!
//! - each index keeps its owner's newest `kept` entries. Its *floor* is the newest entry
//!   it ever let go: above the floor the index is complete; at and below it, a page is
//!   merged from the author index as if there were no home index;
//! - an author with more than `fan_out_limit` followers turns *wide*: their messages are
//!   no longer copied, and their followers' pages merge them in at read time. Wide is for
//!   good, so crossing the limit either way never loses or repeats an entry. Entries
//!   copied before an author turned wide stay until they age out; a read drops the
//!   duplicate.
//!
//! Every index holds the unflagged messages of its owner and of the non-wide authors
//! they follow, above its floor (flagging takes a message out, unflagging puts it back).
//!
//! | tree | key | value |
//! |---|---|---|
//! | `home` | (owner, pub_date, id) | the author's id |
//! | `home_meta` | `s`, owner | the index's length, and its floor (pub_date, id) if any |
//! | `home_meta` | `n`, author | the author's number of followers |
//! | `home_meta` | `w`, author | empty: a wide author |
//! | `home_meta` | `c`, follower, author | empty: the follower follows a wide author |
//!
//! | `home_meta` | `x`, owner | empty: the index is stale (an import touched it) |
//!
//! A transaction cannot scan, so each write first works out its changes ([`HomeChanges`])
//! under the write lock, which keeps what it read true until its transaction applies them.
//!
//! Import batches copy nothing: they mark the indexes they touch stale, which reads then
//! pass by (merging, as without an index) and writes leave alone, until the end of the
//! import builds every index anew.

use crate::keys;
use crate::trees::{Trees, Tx, TxResult, backend, corrupt, decode_int};
use minitwit_core::{ImportBatch, Message, StoreResult, UserId};
use sled::IVec;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// A timeline position: `(pub_date, id)`.
pub(crate) type Position = (i64, i64);

/// `home_meta` prefixes.
const STATE: u8 = b's';
const FOLLOWERS: u8 = b'n';
const WIDE: u8 = b'w';
const WIDE_FOLLOW: u8 = b'c';
const STALE: u8 = b'x';

/// An owner's index: how many entries it holds, and its floor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) len: i64,
    pub(crate) floor: Option<Position>,
}

impl Extent {
    fn encode(self) -> Vec<u8> {
        let mut bytes = self.len.to_be_bytes().to_vec();
        if let Some((pub_date, id)) = self.floor {
            bytes.extend_from_slice(&pub_date.to_be_bytes());
            bytes.extend_from_slice(&id.to_be_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> StoreResult<Self> {
        let int = |range: std::ops::Range<usize>| {
            bytes.get(range).ok_or_else(|| corrupt("a home index extent")).and_then(decode_int)
        };
        let floor = if bytes.len() > 8 { Some((int(8..16)?, int(16..24)?)) } else { None };
        Ok(Self { len: int(0..8)?, floor })
    }

    /// Whether the index holds (or would hold) an entry at `position`.
    fn covers(self, position: Position) -> bool {
        self.floor.is_none_or(|floor| position > floor)
    }
}

/// Where a new message goes in one owner's index.
#[derive(Debug)]
enum Copy {
    /// Into the index, letting its oldest entry go if it is full.
    Insert { owner: UserId, extent: Extent, drop: Option<Position> },
    /// Nowhere: it would be the entry let go. It becomes the floor.
    AsFloor { owner: UserId, len: i64 },
}

/// The home-index changes of one write, worked out before its transaction.
#[derive(Debug, Default)]
pub(crate) struct HomeChanges {
    put: Vec<(IVec, IVec)>,
    remove: Vec<IVec>,
    put_meta: BTreeMap<Vec<u8>, Vec<u8>>,
    remove_meta: Vec<Vec<u8>>,
    /// The copies of a message whose id the transaction gives: author and pub_date.
    copies: Option<(UserId, i64, Vec<Copy>)>,
}

impl Trees {
    /// The fan-out of a message `author` posts at `pub_date`, or unflags (then its `id`
    /// is known; a new message's comes in the transaction).
    pub(crate) fn plan_post(
        &self,
        author: UserId,
        pub_date: i64,
        id: Option<i64>,
    ) -> StoreResult<HomeChanges> {
        let mut owners = vec![author];
        if !self.is_wide(author)? {
            owners.extend(self.followers_of(author)?.into_iter().filter(|&f| f != author));
        }
        // A new message's id is greater than any other: it sorts after every entry of
        // the same date.
        let position = (pub_date, id.unwrap_or(i64::MAX));
        let mut copies = Vec::with_capacity(owners.len());
        for owner in owners {
            copies.extend(self.copy_into(owner, position)?);
        }
        Ok(HomeChanges { copies: Some((author, pub_date, copies)), ..HomeChanges::default() })
    }

    /// Where a message at `position` goes in `owner`'s index, if anywhere.
    fn copy_into(&self, owner: UserId, position: Position) -> StoreResult<Option<Copy>> {
        let extent = self.extent(owner)?;
        if !extent.covers(position) || self.is_stale(owner)? {
            return Ok(None);
        }
        if usize::try_from(extent.len).unwrap_or(0) < self.home_options.kept {
            let extent = Extent { len: extent.len + 1, ..extent };
            return Ok(Some(Copy::Insert { owner, extent, drop: None }));
        }
        match self.oldest_entry(owner)? {
            Some(oldest) if oldest < position => {
                let extent = Extent { len: extent.len, floor: extent.floor.max(Some(oldest)) };
                Ok(Some(Copy::Insert { owner, extent, drop: Some(oldest) }))
            }
            _ => Ok(Some(Copy::AsFloor { owner, len: extent.len })),
        }
    }

    /// Taking `message` out of every index (flagged), or putting it back (unflagged).
    pub(crate) fn plan_flag(&self, message: &Message, flagged: bool) -> StoreResult<HomeChanges> {
        if !flagged {
            return self.plan_post(message.author_id, message.pub_date, Some(message.id));
        }
        let mut changes = HomeChanges::default();
        let mut owners = self.followers_of(message.author_id)?;
        owners.push(message.author_id);
        for owner in owners {
            let key = keys::triple(owner, message.pub_date, message.id);
            if self.home.contains_key(&key).map_err(backend)? {
                changes.put_extent(owner, self.extent(owner)?.shrunk(1));
                changes.remove.push(key);
            }
        }
        Ok(changes)
    }

    /// `follower` now following `followee` (unless they do already): the followee's
    /// newest entries copied into the follower's index, or, for a wide followee (or one
    /// this follow makes wide), a note to merge them at read time.
    pub(crate) fn plan_follow(
        &self,
        follower: UserId,
        followee: UserId,
    ) -> StoreResult<HomeChanges> {
        let mut changes = HomeChanges::default();
        if follower == followee || self.is_following(follower, followee)? {
            return Ok(changes);
        }
        let followers = self.follower_count(followee)? + 1;
        changes.put_follower_count(followee, followers);
        if self.is_wide(followee)? {
            changes.put_meta.insert(meta_key(WIDE_FOLLOW, &[follower, followee]), Vec::new());
        } else if u64::try_from(followers).unwrap_or(0) > self.home_options.fan_out_limit {
            changes.put_meta.insert(meta_key(WIDE, &[followee]), Vec::new());
            for other in self.followers_of(followee)?.into_iter().chain([follower]) {
                changes.put_meta.insert(meta_key(WIDE_FOLLOW, &[other, followee]), Vec::new());
            }
        } else {
            self.backfill(follower, followee, &mut changes)?;
        }
        Ok(changes)
    }

    /// Copies `followee`'s newest entries above `follower`'s floor into their index,
    /// keeping it within bounds.
    fn backfill(
        &self,
        follower: UserId,
        followee: UserId,
        changes: &mut HomeChanges,
    ) -> StoreResult<()> {
        if self.is_stale(follower)? {
            return Ok(());
        }
        let extent = self.extent(follower)?;
        let kept = self.home_options.kept;
        // One more than fits, to tell whether some stay out (then they are the floor).
        let mut found = Vec::new();
        for item in self.author_idx.scan_prefix(keys::int(followee)).rev() {
            let position = position_of(&item.map_err(backend)?.0)?;
            if !extent.covers(position) || found.len() > kept {
                break;
            }
            found.push(position);
        }
        let mut floor = extent.floor;
        if found.len() > kept {
            floor = floor.max(found.pop());
        }
        // The index and the new entries together: the oldest beyond the bound go.
        let len = usize::try_from(extent.len).unwrap_or(0) + found.len();
        let over = len.saturating_sub(kept);
        let mut all: Vec<(Position, bool)> = found.into_iter().map(|p| (p, false)).collect();
        all.extend(self.oldest_entries(follower, over)?.into_iter().map(|(p, _)| (p, true)));
        all.sort_unstable();
        let over = over.min(all.len());
        for &(position, indexed) in &all[..over] {
            floor = floor.max(Some(position));
            if indexed {
                changes.remove.push(keys::triple(follower, position.0, position.1));
            }
        }
        for &(position, indexed) in &all[over..] {
            if !indexed {
                let key = keys::triple(follower, position.0, position.1);
                changes.put.push((key, keys::int(followee)));
            }
        }
        let len = i64::try_from(len - over).unwrap_or(i64::MAX);
        changes.put_extent(follower, Extent { len, floor });
        Ok(())
    }

    /// `follower` no longer following `followee`: the followee's entries leave the
    /// follower's index.
    pub(crate) fn plan_unfollow(
        &self,
        follower: UserId,
        followee: UserId,
    ) -> StoreResult<HomeChanges> {
        let mut changes = HomeChanges::default();
        if follower == followee || !self.is_following(follower, followee)? {
            return Ok(changes);
        }
        changes.put_follower_count(followee, self.follower_count(followee)? - 1);
        changes.remove_meta.push(meta_key(WIDE_FOLLOW, &[follower, followee]));
        self.remove_entries_by(follower, followee, &mut changes)?;
        Ok(changes)
    }

    /// Removes `author`'s entries from `owner`'s index.
    fn remove_entries_by(
        &self,
        owner: UserId,
        author: UserId,
        changes: &mut HomeChanges,
    ) -> StoreResult<()> {
        let mut removed = 0;
        for item in self.home.scan_prefix(keys::int(owner)) {
            let (key, value) = item.map_err(backend)?;
            if decode_author(&value)? == author {
                changes.remove.push(key);
                removed += 1;
            }
        }
        if removed > 0 {
            changes.put_extent(owner, self.extent(owner)?.shrunk(removed));
        }
        Ok(())
    }

    /// A user deleted with their messages and follows: their index and notes go, and
    /// their entries leave their followers' indexes.
    pub(crate) fn plan_delete_user(
        &self,
        user: UserId,
        followees: &[UserId],
        followers: &[UserId],
    ) -> StoreResult<HomeChanges> {
        let mut changes = HomeChanges::default();
        for item in self.home.scan_prefix(keys::int(user)) {
            changes.remove.push(item.map_err(backend)?.0);
        }
        for item in self.home_meta.scan_prefix(meta_key(WIDE_FOLLOW, &[user])) {
            changes.remove_meta.push(item.map_err(backend)?.0.to_vec());
        }
        for prefix in [STATE, FOLLOWERS, WIDE] {
            changes.remove_meta.push(meta_key(prefix, &[user]));
        }
        for &followee in followees.iter().filter(|&&f| f != user) {
            changes.put_follower_count(followee, self.follower_count(followee)? - 1);
        }
        for &follower in followers.iter().filter(|&&f| f != user) {
            changes.remove_meta.push(meta_key(WIDE_FOLLOW, &[follower, user]));
            self.remove_entries_by(follower, user, &mut changes)?;
        }
        Ok(changes)
    }

    /// `owner`'s index extent (empty if none).
    pub(crate) fn extent(&self, owner: UserId) -> StoreResult<Extent> {
        let stored = self.home_meta.get(meta_key(STATE, &[owner])).map_err(backend)?;
        stored.map_or(Ok(Extent::default()), |bytes| Extent::decode(&bytes))
    }

    /// The wide authors `follower` follows.
    pub(crate) fn wide_followees(&self, follower: UserId) -> StoreResult<Vec<UserId>> {
        let prefix = meta_key(WIDE_FOLLOW, &[follower]);
        self.home_meta
            .scan_prefix(&prefix)
            .map(|item| {
                let (key, _) = item.map_err(backend)?;
                keys::field(&key[1..], 1).ok_or_else(|| corrupt("a wide follow"))
            })
            .collect()
    }

    /// Whether `owner`'s index is stale: reads merge instead.
    pub(crate) fn is_stale(&self, owner: UserId) -> StoreResult<bool> {
        self.home_meta.contains_key(meta_key(STALE, &[owner])).map_err(backend)
    }

    /// The indexes an import batch touches: its users', its messages' authors' and
    /// their followers', and its follows' followers'.
    pub(crate) fn import_touches(&self, batch: &ImportBatch) -> StoreResult<BTreeSet<UserId>> {
        let mut owners: BTreeSet<UserId> = batch.users.iter().map(|u| u.id).collect();
        let authors: BTreeSet<UserId> = batch.messages.iter().map(|m| m.author_id).collect();
        for &author in &authors {
            owners.extend(self.followers_of(author)?);
        }
        owners.extend(authors);
        owners.extend(batch.follows.iter().map(|f| f.follower));
        Ok(owners)
    }

    fn is_wide(&self, author: UserId) -> StoreResult<bool> {
        self.home_meta.contains_key(meta_key(WIDE, &[author])).map_err(backend)
    }

    fn follower_count(&self, author: UserId) -> StoreResult<i64> {
        let stored = self.home_meta.get(meta_key(FOLLOWERS, &[author])).map_err(backend)?;
        stored.map_or(Ok(0), |bytes| decode_int(&bytes))
    }

    fn followers_of(&self, author: UserId) -> StoreResult<Vec<UserId>> {
        self.second_fields(&self.followers, author)
    }

    fn oldest_entry(&self, owner: UserId) -> StoreResult<Option<Position>> {
        Ok(self.oldest_entries(owner, 1)?.first().map(|&(position, _)| position))
    }

    /// Up to `n` of `owner`'s oldest entries, with their authors.
    fn oldest_entries(&self, owner: UserId, n: usize) -> StoreResult<Vec<(Position, UserId)>> {
        self.home
            .scan_prefix(keys::int(owner))
            .take(n)
            .map(|item| {
                let (key, value) = item.map_err(backend)?;
                Ok((position_of(&key)?, decode_author(&value)?))
            })
            .collect()
    }
}

impl Extent {
    /// The extent after `by` entries left.
    fn shrunk(self, by: i64) -> Self {
        Self { len: (self.len - by).max(0), ..self }
    }
}

impl HomeChanges {
    fn put_extent(&mut self, owner: UserId, extent: Extent) {
        self.put_meta.insert(meta_key(STATE, &[owner]), extent.encode());
    }

    fn put_follower_count(&mut self, author: UserId, followers: i64) {
        self.put_meta.insert(meta_key(FOLLOWERS, &[author]), followers.to_be_bytes().to_vec());
    }
}

impl Tx<'_> {
    /// Marks the indexes of `owners` stale.
    pub(crate) fn mark_stale(&self, owners: &BTreeSet<UserId>) -> TxResult<()> {
        for &owner in owners {
            self.home_meta.insert(meta_key(STALE, &[owner]), &[][..])?;
        }
        Ok(())
    }

    /// Applies `changes`; `id` is the id of the message they copy, if any.
    pub(crate) fn apply_home(&self, changes: &HomeChanges, id: Option<i64>) -> TxResult<()> {
        for key in &changes.remove {
            self.home.remove(key)?;
        }
        for (key, value) in &changes.put {
            self.home.insert(key, value)?;
        }
        for key in &changes.remove_meta {
            self.home_meta.remove(key.as_slice())?;
        }
        for (key, value) in &changes.put_meta {
            self.home_meta.insert(key.as_slice(), value.as_slice())?;
        }
        if let (Some((author, pub_date, copies)), Some(id)) = (&changes.copies, id) {
            self.apply_copies(*author, *pub_date, id, copies)?;
        }
        Ok(())
    }

    fn apply_copies(
        &self,
        author: UserId,
        pub_date: i64,
        id: i64,
        copies: &[Copy],
    ) -> TxResult<()> {
        for copy in copies {
            let (owner, extent) = match *copy {
                Copy::Insert { owner, extent, drop } => {
                    if let Some((date, old)) = drop {
                        self.home.remove(keys::triple(owner, date, old))?;
                    }
                    self.home.insert(keys::triple(owner, pub_date, id), keys::int(author))?;
                    (owner, extent)
                }
                Copy::AsFloor { owner, len } => {
                    (owner, Extent { len, floor: Some((pub_date, id)) })
                }
            };
            self.home_meta.insert(meta_key(STATE, &[owner]), extent.encode())?;
        }
        Ok(())
    }
}

/// A `home_meta` key: the prefix, then the fields.
fn meta_key(prefix: u8, fields: &[i64]) -> Vec<u8> {
    let mut key = vec![prefix];
    for &field in fields {
        key.extend_from_slice(&keys::int(field));
    }
    key
}

/// The (pub_date, id) of a `home` or `author_idx` key.
pub(crate) fn position_of(key: &[u8]) -> StoreResult<Position> {
    let field = |i| keys::field(key, i).ok_or_else(|| corrupt("a timeline index key"));
    Ok((field(1)?, field(2)?))
}

fn decode_author(value: &[u8]) -> StoreResult<UserId> {
    keys::field(value, 0).ok_or_else(|| corrupt("a home index entry"))
}

/// Rebuilding and checking every index from the messages and follows.
impl Trees {
    /// Builds every home index anew (a store upgraded from an earlier format, and after
    /// an import): follower counts, wide authors, then each user's index. Not one
    /// transaction: run it when nothing else writes; after a crash, run it again.
    pub(crate) fn rebuild_home(&self) -> StoreResult<()> {
        self.home.clear().map_err(backend)?;
        self.home_meta.clear().map_err(backend)?;
        let mut meta = sled::Batch::default();
        let counts = self.follower_counts()?;
        let limit = self.home_options.fan_out_limit;
        for (&author, &count) in &counts {
            meta.insert(meta_key(FOLLOWERS, &[author]), &count.to_be_bytes()[..]);
            if u64::try_from(count).unwrap_or(0) > limit {
                meta.insert(meta_key(WIDE, &[author]), &[][..]);
                for follower in self.followers_of(author)?.into_iter().filter(|&f| f != author) {
                    meta.insert(meta_key(WIDE_FOLLOW, &[follower, author]), &[][..]);
                }
            }
        }
        self.home_meta.apply_batch(meta).map_err(backend)?;
        let (mut users, started) = (0u64, std::time::Instant::now());
        for item in self.users.iter() {
            let owner =
                keys::field(&item.map_err(backend)?.0, 0).ok_or_else(|| corrupt("a user key"))?;
            self.rebuild_index(owner)?;
            users += 1;
            if users % 10_000 == 0 {
                tracing::info!(
                    users,
                    seconds = started.elapsed().as_secs(),
                    "building home indexes"
                );
            }
        }
        Ok(())
    }

    /// Writes `owner`'s index from scratch: the newest `kept` unflagged messages of theirs
    /// and of the non-wide authors they follow; the next newest is the floor.
    fn rebuild_index(&self, owner: UserId) -> StoreResult<()> {
        let expected = self.expected_index(owner)?;
        let mut batch = sled::Batch::default();
        for &(position, author) in &expected.entries {
            batch.insert(keys::triple(owner, position.0, position.1), keys::int(author));
        }
        self.home.apply_batch(batch).map_err(backend)?;
        let len = i64::try_from(expected.entries.len()).unwrap_or(i64::MAX);
        let extent = Extent { len, floor: expected.floor };
        if extent != Extent::default() {
            self.home_meta.insert(meta_key(STATE, &[owner]), extent.encode()).map_err(backend)?;
        }
        Ok(())
    }

    /// What a freshly built index of `owner` holds.
    fn expected_index(&self, owner: UserId) -> StoreResult<Expected> {
        let kept = self.home_options.kept;
        let mut authors = vec![owner];
        for followee in self.followee_ids(owner)? {
            if followee != owner && !self.is_wide(followee)? {
                authors.push(followee);
            }
        }
        let mut all = Vec::new();
        for author in authors {
            for item in self.author_idx.scan_prefix(keys::int(author)).rev().take(kept + 1) {
                all.push((position_of(&item.map_err(backend)?.0)?, author));
            }
        }
        all.sort_unstable_by_key(|&(position, _)| std::cmp::Reverse(position));
        let floor = all.get(kept).map(|&(position, _)| position);
        all.truncate(kept);
        Ok(Expected { entries: all, floor })
    }

    /// Follower counts by author, self-follows left out.
    fn follower_counts(&self) -> StoreResult<BTreeMap<UserId, i64>> {
        let mut counts = BTreeMap::new();
        for item in self.followers.iter() {
            let (key, _) = item.map_err(backend)?;
            let field = |i| keys::field(&key, i).ok_or_else(|| corrupt("a follow key"));
            let (followee, follower) = (field(0)?, field(1)?);
            if followee != follower {
                *counts.entry(followee).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// The problems of `owner`'s index: entries it should not hold or lacks, and a
    /// length that is not its count. Above the floor it must hold exactly the unflagged
    /// messages of the owner and of the non-wide authors they follow (a wide author's
    /// older copies may stay).
    pub(crate) fn home_problems(&self, owner: UserId) -> StoreResult<Vec<String>> {
        if self.is_stale(owner)? {
            return Ok(Vec::new());
        }
        let extent = self.extent(owner)?;
        let mut followed = BTreeSet::from([owner]);
        let mut wanted = BTreeSet::new();
        for author in self.followee_ids(owner)?.into_iter().chain([owner]) {
            followed.insert(author);
            if author == owner || !self.is_wide(author)? {
                wanted.extend(self.positions_above(author, extent.floor)?);
            }
        }
        let mut problems = Vec::new();
        let mut len = 0;
        for item in self.home.scan_prefix(keys::int(owner)) {
            let (key, value) = item.map_err(backend)?;
            let (position, author) = (position_of(&key)?, decode_author(&value)?);
            len += 1;
            let copied_before_wide = author != owner && self.is_wide(author)?;
            let belongs = extent.covers(position)
                && followed.contains(&author)
                && (wanted.remove(&position) || copied_before_wide);
            if !belongs {
                problems.push(format!("home of user {owner}: {position:?} by {author} is extra"));
            }
        }
        for position in wanted {
            problems.push(format!("home of user {owner}: the message at {position:?} is missing"));
        }
        if len != extent.len {
            problems.push(format!("home of user {owner}: {len} entries, counted {}", extent.len));
        }
        Ok(problems)
    }

    /// The positions of `author`'s unflagged messages above `floor`.
    fn positions_above(
        &self,
        author: UserId,
        floor: Option<Position>,
    ) -> StoreResult<Vec<Position>> {
        let start = match floor {
            Some((pub_date, id)) => Bound::Excluded(keys::triple(author, pub_date, id)),
            None => Bound::Included(keys::int(author)),
        };
        let end = Bound::Included(keys::triple(author, i64::MAX, i64::MAX));
        self.author_idx
            .range((start, end))
            .map(|item| position_of(&item.map_err(backend)?.0))
            .collect()
    }
}

/// A freshly built index: its entries, newest first, and its floor.
struct Expected {
    entries: Vec<(Position, UserId)>,
    floor: Option<Position>,
}
