//! Records for tests and benchmarks that fill a store directly (an import), where who
//! the users are does not matter, and users registered by name.

use crate::model::NewUser;
use crate::store::Store;
use crate::synthetic::Shape;
use crate::{Email, User, UserId, Username};

/// User number `n` (id `n`) as such tests write it: named as the synthetic data sets name
/// it (`user{n}`, `user{n}@example.com`, enabled, whatever their shape), with a
/// placeholder where the password hash goes (no one signs in as these users).
pub fn numbered_user(n: i64) -> User {
    User { pw_hash: "hash".into(), ..Shape::SMALL.user(UserId(n)) }
}

/// A new user named `name`, `{name}@example.com` (spaces as dots), with the password
/// hash `hash-of-{name}`.
pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: Username::parse(name).expect("test names are valid"),
        email: Email::parse(&format!("{}@example.com", name.replace(' ', ".")))
            .expect("test addresses are valid"),
        pw_hash: format!("hash-of-{name}"),
    }
}

/// [`new_user`] created in `store`.
pub async fn registered(store: &dyn Store, name: &str) -> User {
    store.create_user(new_user(name)).await.expect("creating a fresh user")
}

#[cfg(test)]
mod tests {
    use super::numbered_user;
    use crate::model::UserId;

    #[test]
    fn a_numbered_user_is_named_by_its_id() {
        let user = numbered_user(7);
        assert_eq!((user.id, user.username.as_str()), (UserId(7), "user7"));
        assert_eq!((user.email.as_str(), user.pw_hash.as_str()), ("user7@example.com", "hash"));
        assert!(!user.disabled);
    }
}
