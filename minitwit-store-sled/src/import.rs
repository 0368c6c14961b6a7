//! `import`: a whole [`ImportBatch`] in one transaction; its undo, `remove_imported`; and
//! `end_import`, which closes an import (see `minitwit_core::transfer`).

use crate::keys;
use crate::trees::{Trees, abort, meta};
use minitwit_core::model::ImportBatch;
use minitwit_core::store::{IMPORT_MARK, StoreError, StoreResult};

impl Trees {
    /// Writes `batch` as it is, all or nothing; ids continue above the imported ones.
    pub(crate) fn import(&self, batch: &ImportBatch) -> StoreResult<()> {
        let imported = self.transaction(|tx| {
            for user in &batch.users {
                if tx.user_exists(user.id)? || tx.usernames.get(user.username.as_bytes())?.is_some()
                {
                    let clash = format!("user {} ({})", user.id, user.username);
                    return Err(abort(StoreError::Conflict(clash)));
                }
                tx.insert_user(user)?;
                tx.raise(meta::LAST_USER_ID, user.id.0)?;
            }
            for message in &batch.messages {
                tx.require_user(message.author_id)?;
                if tx.messages.get(keys::int(message.id))?.is_some() {
                    let clash = format!("message {}", message.id);
                    return Err(abort(StoreError::Conflict(clash)));
                }
                tx.insert_message(message)?;
                tx.raise(meta::LAST_MESSAGE_ID, message.id.0)?;
            }
            for follow in &batch.follows {
                tx.require_user(follow.follower)?;
                tx.require_user(follow.followee)?;
                tx.insert_follow(follow.follower, follow.followee)?;
            }
            Ok(())
        });
        if imported.is_ok() {
            let follows = batch.follows.clone();
            self.after_apply(move |trees| trees.homes.imported(&follows));
        }
        imported
    }

    /// Removes the batch's users (with everything of theirs), messages and follows, all
    /// or nothing; absent records are skipped. The undo of [`Trees::import`].
    pub(crate) fn remove_imported(&self, batch: &ImportBatch) -> StoreResult<()> {
        let users =
            batch.users.iter().map(|u| self.user_links(u.id)).collect::<Result<Vec<_>, _>>()?;
        let removed = self.transaction(|tx| {
            for follow in &batch.follows {
                tx.remove_follow(follow.follower, follow.followee)?;
            }
            for message in &batch.messages {
                tx.remove_message(message.id)?;
            }
            for links in &users {
                tx.remove_user(links)?;
            }
            Ok(())
        });
        // Applied (or refused): either way no cached author may outlive its record.
        let (follows, undone) = (batch.follows.clone(), removed.is_ok());
        self.after_apply(move |trees| {
            for links in &users {
                trees.authors.forget(links.id);
            }
            if undone {
                let users = users.iter().map(|links| (links.id, &links.followees[..]));
                trees.homes.import_undone(&follows, users);
            }
        });
        removed
    }

    /// Records `latest` if given and removes the mark of the import in progress.
    pub(crate) fn end_import(&self, latest: Option<i64>) -> StoreResult<()> {
        self.transaction(|tx| {
            if let Some(latest) = latest {
                tx.meta.insert(meta::LATEST, &latest.to_be_bytes()[..])?;
            }
            tx.settings.remove(IMPORT_MARK)?;
            Ok(())
        })
    }
}
