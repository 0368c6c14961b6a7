//! The integrity check: every index entry points at a record that agrees with it, every
//! record has its index entries, and the counters equal the records. It reads the whole
//! store (O(n)); for the crash test and the CLI, not for request paths.

use crate::keys;
use crate::records::decode;
use crate::trees::{Trees, backend, corrupt, meta};
use minitwit_core::store::StoreResult;
use minitwit_core::{Message, MessageId, User, UserId};
use sled::IVec;

/// At most this many problems are listed; the rest are only counted.
const MAX_LISTED: usize = 100;

/// What [`SledStore::check_integrity`](crate::SledStore::check_integrity) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// User records.
    pub users: u64,
    /// Message records.
    pub messages: u64,
    /// Follow pairs.
    pub follows: u64,
    /// Flagged messages.
    pub flagged: u64,
    /// Descriptions of the first inconsistencies found (at most 100).
    pub problems: Vec<String>,
    /// How many inconsistencies were found in all.
    pub problem_count: u64,
}

impl IntegrityReport {
    /// Whether no inconsistency was found.
    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }

    /// Records one problem (listing at most [`MAX_LISTED`] of them).
    fn note_problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(what);
        }
    }

    /// Records the problem `what` describes unless `holds`. (It never panics: a check
    /// goes on to the end and reports every problem it finds.)
    fn note_unless(&mut self, holds: bool, what: impl FnOnce() -> String) {
        if !holds {
            self.note_problem(what());
        }
    }
}

impl Trees {
    /// Checks every record, index entry and counter. Run it on a quiet store: writes
    /// during the scan can show up as false problems.
    pub(crate) fn check_integrity(&self) -> StoreResult<IntegrityReport> {
        let mut report = IntegrityReport::default();
        self.check_users(&mut report)?;
        self.check_messages(&mut report)?;
        self.check_message_indexes(&mut report)?;
        self.check_follows(&mut report)?;
        self.check_counters(&mut report)?;
        Ok(report)
    }

    fn check_users(&self, report: &mut IntegrityReport) -> StoreResult<()> {
        let last_id = self.meta_int(meta::LAST_USER_ID)?;
        for item in self.users.iter() {
            let (key, value) = item.map_err(backend)?;
            let user: User = decode(&value)?;
            report.users += 1;
            report.note_unless(key == keys::int(user.id), || {
                format!("user {} under a wrong key", user.id)
            });
            report.note_unless(user.id.0 <= last_id, || {
                format!("user {} above the id counter", user.id)
            });
            let indexed = self.usernames.get(user.username.as_bytes()).map_err(backend)?;
            report.note_unless(indexed == Some(key), || {
                format!("user {} missing from usernames", user.id)
            });
        }
        for item in self.usernames.iter() {
            let (name, id) = item.map_err(backend)?;
            let user: Option<User> =
                self.users.get(&id).map_err(backend)?.map(|v| decode(&v)).transpose()?;
            let matches = user.is_some_and(|u| u.username.as_bytes() == &name[..]);
            report.note_unless(matches, || {
                format!("usernames entry {:?} has no matching user", String::from_utf8_lossy(&name))
            });
        }
        Ok(())
    }

    fn check_messages(&self, report: &mut IntegrityReport) -> StoreResult<()> {
        let last_id = self.meta_int(meta::LAST_MESSAGE_ID)?;
        for item in self.messages.iter() {
            let (key, value) = item.map_err(backend)?;
            let m: Message = decode(&value)?;
            report.messages += 1;
            report.flagged += u64::from(m.flagged);
            let id = m.id;
            report.note_unless(key == keys::int(id), || format!("message {id} under a wrong key"));
            report.note_unless(id.0 <= last_id, || format!("message {id} above the id counter"));
            let author = self.users.contains_key(keys::int(m.author_id)).map_err(backend)?;
            report.note_unless(author, || format!("message {id} by missing user {}", m.author_id));
            let in_public = has(&self.public_idx, keys::pair(m.pub_date, id))?;
            let in_author = has(&self.author_idx, keys::triple(m.author_id, m.pub_date, id))?;
            let in_flagged = has(&self.flagged, keys::int(id))?;
            let in_author_flagged = has(&self.author_msgs, keys::pair(m.author_id, id))?;
            let expected = (!m.flagged, !m.flagged, m.flagged, m.flagged);
            let found = (in_public, in_author, in_flagged, in_author_flagged);
            report.note_unless(found == expected, || {
                format!("message {id} (flagged: {}) indexed as public {in_public}, author {in_author}, flagged {in_flagged}, author's flagged {in_author_flagged}", m.flagged)
            });
        }
        Ok(())
    }

    /// Every index entry points at a message that agrees with it.
    fn check_message_indexes(&self, report: &mut IntegrityReport) -> StoreResult<()> {
        let message = |id| self.message_by_id(id);
        for item in self.public_idx.iter() {
            let (key, copy) = item.map_err(backend)?;
            let (date, id): (i64, MessageId) = (field(&key, 0)?, field(&key, 1)?);
            let found = message(id)?;
            let ok = copy_agrees(&copy, found.as_ref())
                && found.is_some_and(|m| !m.flagged && m.pub_date == date);
            report.note_unless(ok, || {
                format!("public_idx entry ({date}, {id}) has no matching message")
            });
        }
        for item in self.author_idx.iter() {
            let (key, copy) = item.map_err(backend)?;
            let (author, date, id): (UserId, i64, MessageId) =
                (field(&key, 0)?, field(&key, 1)?, field(&key, 2)?);
            let found = message(id)?;
            let ok = copy_agrees(&copy, found.as_ref())
                && found.is_some_and(|m| !m.flagged && m.pub_date == date && m.author_id == author);
            report.note_unless(ok, || {
                format!("author_idx entry ({author}, {date}, {id}) has no matching message")
            });
        }
        for item in self.author_msgs.iter() {
            let (key, _) = item.map_err(backend)?;
            let (author, id) = (field(&key, 0)?, field(&key, 1)?);
            let ok = message(id)?.is_some_and(|m| m.flagged && m.author_id == author);
            report.note_unless(ok, || {
                format!("author_msgs entry ({author}, {id}) has no matching flagged message")
            });
        }
        for item in self.flagged.iter() {
            let (key, _) = item.map_err(backend)?;
            let id = field(&key, 0)?;
            let ok = message(id)?.is_some_and(|m| m.flagged);
            report.note_unless(ok, || format!("flagged entry {id} has no flagged message"));
        }
        Ok(())
    }

    /// Both users of every pair exist, and `follows` and `followers` mirror each other.
    fn check_follows(&self, report: &mut IntegrityReport) -> StoreResult<()> {
        for item in self.follows.iter() {
            let (key, _) = item.map_err(backend)?;
            let (a, b): (UserId, UserId) = (field(&key, 0)?, field(&key, 1)?);
            report.follows += 1;
            let users = has(&self.users, keys::int(a))? && has(&self.users, keys::int(b))?;
            report.note_unless(users, || format!("follow ({a}, {b}) names a missing user"));
            let mirrored = has(&self.followers, keys::pair(b, a))?;
            report.note_unless(mirrored, || format!("follow ({a}, {b}) missing from followers"));
        }
        for item in self.followers.iter() {
            let (key, _) = item.map_err(backend)?;
            let (b, a): (UserId, UserId) = (field(&key, 0)?, field(&key, 1)?);
            let mirrored = has(&self.follows, keys::pair(a, b))?;
            report.note_unless(mirrored, || {
                format!("followers entry ({b}, {a}) missing from follows")
            });
        }
        Ok(())
    }

    /// The counters equal the records counted by the scans above.
    fn check_counters(&self, report: &mut IntegrityReport) -> StoreResult<()> {
        let counts = self.counts()?;
        let found = (report.users, report.messages, report.follows, report.flagged);
        let kept = (counts.users, counts.messages, counts.follows, counts.flagged);
        report.note_unless(found == kept, || {
            format!("counters (users, messages, follows, flagged) say {kept:?}, records {found:?}")
        });
        Ok(())
    }
}

/// Whether `tree` holds `key`.
fn has(tree: &sled::Tree, key: IVec) -> StoreResult<bool> {
    tree.contains_key(key).map_err(backend)
}

/// Whether a timeline index entry's copy of the message record equals the record (an
/// empty copy, as stores of format 1 have, always agrees).
fn copy_agrees(copy: &[u8], record: Option<&Message>) -> bool {
    copy.is_empty() || record.is_some_and(|m| decode::<Message>(copy).is_ok_and(|c| c == *m))
}

/// Field `index` of an index key.
fn field<T: keys::Number>(key: &[u8], index: usize) -> StoreResult<T> {
    keys::field(key, index).ok_or_else(|| corrupt("an index key"))
}
